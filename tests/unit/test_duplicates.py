"""Duplicate claims per member and per line within the window: exact, suspect, replacements, voids, replays."""

from __future__ import annotations

import copy

import orjson
import pytest

from processor.contracts import decode_event
from processor.engine.duplicates import (
    MAX_MS,
    MIN_MS,
    SWEEP_AFTER,
    Change,
    Deferred,
    Seen,
    SeenClaims,
    Verdict,
    changelog_records,
    entry,
    member_partition_key,
    submitted_ms,
)
from processor.samples import generate
from tests.conftest import a_claim
from tests.unit.test_schemas import validator

DAY_MS = 86_400_000
WINDOW = 30 * DAY_MS
MEMBER = {"id": "W100000001", "payer_id": "PAYER01", "relationship": "self"}


def a_line(number: int = 1, **changes: object) -> dict:
    """A billed line: an office visit on 2025-11-03 for $80, in the office (POS 11)."""
    line = {"line_number": number, "code": "99213", "system": "CPT", "units": 1, "service_date": "2025-11-03",
            "diagnosis_pointers": [1, 2], "charge": "80.00", "place_of_service": "11"}  # fmt: skip
    line.update(changes)
    return line


def billed(claim_id: str = "CLM-1", *lines: dict, **changes: object) -> dict:
    """A member's claim billing ``lines`` (one office visit when none are given)."""
    return a_claim(**{"claim_id": claim_id, "member": dict(MEMBER), "lines": list(lines) or [a_line()], **changes})


def a_stay(claim_id: str = "CLM-S", **changes: object) -> dict:
    """An inpatient stay without lines: one line for the window, admission..discharge."""
    claim = {k: v for k, v in billed(claim_id).items() if k != "lines"}
    claim.update(claim_type="inpatient", admission_date="2025-10-28", discharge_date="2025-11-01",
                 discharge_status="01", facility_type="11", charge="12000.00")  # fmt: skip
    claim.update(changes)
    return claim


FIRST = billed("CLM-1", a_line(1), a_line(2, code="80053", system="CPT", charge="25"))
HELD = "3-100"  # its control number


def summary(verdict: Verdict | None) -> tuple | None:
    """A verdict in brief: resent, replaces_unknown, replaced, and (line number, exact, matched claim id,
    control number, line) per matched line."""
    if verdict is None:
        return None
    lines = tuple((m.line_number, m.exact, m.claim_id, m.control_number, m.matched_line) for m in verdict.lines)
    return verdict.resent, verdict.replaces_unknown, verdict.replaced, lines


BOTH_EXACT = ((1, True, "CLM-1", HELD, 1), (2, True, "CLM-1", HELD, 2))

CASES = [
    # (why, the new claim, where it was read, its control number, the verdict in brief)
    ("another member, same birth date, sex, provider, code and day: no match",
     billed("CLM-2", a_line(1), member={"id": "W100000002", "payer_id": "PAYER01"}), "0:2", "0-2", None),
    ("a dependent of the same subscriber (another relationship) is another member",
     billed("CLM-2", a_line(1), member={**MEMBER, "relationship": "child"}), "0:2", "0-2", None),
    ("the same member's claim resent under a new claim id: every line exact, the claim a duplicate",
     billed("CLM-2", a_line(1), a_line(2, code="80053", charge="25.00")), "0:2", "0-2",
     (True, False, None, BOTH_EXACT)),
    ("the same claim id resent with its content: every line exact",
     copy.deepcopy(FIRST) | {"submitted_at": "2025-11-04T09:00:00Z"}, "0:2", "0-2", (True, False, None, BOTH_EXACT)),
    ("a charge spelled another way ($80 = $80.00) is the same charge",
     billed("CLM-2", a_line(1, charge="80")), "0:2", "0-2", (True, False, None, (BOTH_EXACT[0],))),
    ("differing only in charge: a suspect naming the claim and line",
     billed("CLM-2", a_line(1, charge="95.00")), "0:2", "0-2", (False, False, None, ((1, False, "CLM-1", HELD, 1),))),
    ("differing only in place of service: a suspect",
     billed("CLM-2", a_line(1, place_of_service="22")), "0:2", "0-2",
     (False, False, None, ((1, False, "CLM-1", HELD, 1),))),
    ("differing only in units: a suspect, never returned without a person",
     billed("CLM-2", a_line(1, units=2)), "0:2", "0-2", (False, False, None, ((1, False, "CLM-1", HELD, 1),))),
    ("the claim's place of service stands for a line's: the same place",
     billed("CLM-2", {k: v for k, v in a_line(1).items() if k != "place_of_service"}, place_of_service="11"),
     "0:2", "0-2", (True, False, None, (BOTH_EXACT[0],))),
    ("one line repeated, one new: a suspect claim line by line, not a resent claim",
     billed("CLM-2", a_line(1), a_line(2, code="85025")), "0:2", "0-2",
     (False, False, None, ((1, True, "CLM-1", HELD, 1),))),
    ("another day of service: no match",
     billed("CLM-2", a_line(1, service_date="2025-11-04")), "0:2", "0-2", None),
    ("another rendering provider on the line: another service, no match",
     billed("CLM-2", a_line(1, rendering_provider={"npi": "1245319599"})), "0:2", "0-2", None),
    ("the billing provider as the claim's rendering provider is the same provider",
     billed("CLM-2", a_line(1), rendering_provider={"npi": "1234567893"}), "0:2", "0-2",
     (True, False, None, (BOTH_EXACT[0],))),
    ("a repeat procedure (76) is never exact, but a suspect",
     billed("CLM-2", a_line(1, modifiers=["76"])), "0:2", "0-2", (False, False, None, ((1, False, "CLM-1", HELD, 1),))),
    ("a repeat lab test (91) is never exact",
     billed("CLM-2", a_line(2, code="80053", charge="25", modifiers=["91"])), "0:2", "0-2",
     (False, False, None, ((2, False, "CLM-1", HELD, 2),))),
    ("a distinct procedural service (59) is never exact",
     billed("CLM-2", a_line(1, modifiers=["59"])), "0:2", "0-2", (False, False, None, ((1, False, "CLM-1", HELD, 1),))),
    ("a code spelled in lower case is the same code", billed("CLM-2", a_line(1, system="cpt")), "0:2", "0-2",
     (True, False, None, (BOTH_EXACT[0],))),
    ("the same record read again at its source (a replay) is no duplicate of itself", FIRST, "0:1", HELD, None),
    ("outside the window nothing matches",
     billed("CLM-2", a_line(1), submitted_at="2026-01-10T10:00:00Z"), "0:2", "0-2", None),
    ("a replacement of the held claim is no duplicate of it, and replaces it",
     billed("CLM-2", a_line(1), a_line(2, code="80053", charge="25"), frequency="replacement", replaces=HELD), "0:2",
     "0-2", (False, False, HELD, ())),
    ("a replacement of a control number the window does not hold goes to review",
     billed("CLM-2", a_line(1, charge="70"), frequency="replacement", replaces="9-999"), "0:2", "0-2",
     (False, True, None, ((1, False, "CLM-1", HELD, 1),))),
    ("a replacement of another member's claim is not held for this member",
     billed("CLM-2", a_line(1), member={"id": "W100000002", "payer_id": "PAYER01"}, frequency="replacement",
            replaces=HELD), "0:2", "0-2", (False, True, None, ())),
    ("a void of the held claim removes it and matches nothing",
     billed("CLM-1", a_line(1), a_line(2, code="80053", charge="25"), frequency="void", replaces=HELD), "0:2",
     "0-2", (False, False, HELD, ())),
    ("a void of an unknown control number goes to review", billed("CLM-2", frequency="void", replaces="9-999"),
     "0:2", "0-2", (False, True, None, ())),
    ("a void of another member's claim goes to review",
     billed("CLM-2", member={"id": "W100000002"}, frequency="void", replaces=HELD), "0:2", "0-2",
     (False, True, None, ())),
]  # fmt: skip


@pytest.mark.parametrize(("why", "claim", "source", "control_number", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_claim_is_judged_per_member_and_per_line(why, claim, source, control_number, expected):
    window = SeenClaims(WINDOW)
    assert window.check(FIRST, "0:1", HELD)[0] is None
    verdict, seen = window.check(claim, source, control_number)
    assert summary(verdict) == expected
    remembered = not (verdict and verdict.resent) and claim.get("frequency") != "void"
    assert (seen is not None) == remembered, "a resent claim or a void is not remembered"


WITHIN_CASES = [
    # (why, lines of one claim, the verdict in brief)
    ("a line repeating another line of the same claim is exact, naming it",
     [a_line(1), a_line(2)], (False, False, None, ((2, True, "CLM-1", "0-1", 1),))),
    ("a line repeating another with a repeat modifier is a suspect",
     [a_line(1), a_line(2, modifiers=["76"])], (False, False, None, ((2, False, "CLM-1", "0-1", 1),))),
    ("the right knee and the left knee are not the same service: a suspect, never exact",
     [a_line(1, code="73560", modifiers=["RT"]), a_line(2, code="73560", modifiers=["LT"])],
     (False, False, None, ((2, False, "CLM-1", "0-1", 1),))),
    ("distinct services on one claim match nothing", [a_line(1), a_line(2, code="85025")], None),
]  # fmt: skip


@pytest.mark.parametrize(("why", "lines", "expected"), WITHIN_CASES, ids=[c[0] for c in WITHIN_CASES])
def test_a_claims_lines_are_matched_against_its_own_earlier_lines(why, lines, expected):
    verdict, seen = SeenClaims(WINDOW).check(billed("CLM-1", *lines), "0:1", "0-1")
    assert summary(verdict) == expected and seen is not None


def test_the_same_site_again_is_exact_and_another_site_a_suspect():
    window = SeenClaims(WINDOW)
    window.check(billed("CLM-1", a_line(1, code="73560", modifiers=["RT"])), "0:1", "0-1")
    right, _ = window.check(billed("CLM-2", a_line(1, code="73560", modifiers=["rt"])), "0:2", "0-2")
    left, _ = window.check(billed("CLM-3", a_line(1, code="73560", modifiers=["LT"])), "0:3", "0-3")
    assert right.resent and not left.resent and [m.exact for m in left.lines] == [False]


def test_a_replacement_takes_the_place_of_the_claim_it_replaces():
    window = SeenClaims(WINDOW)
    window.check(FIRST, "0:1", HELD)
    corrected = billed("CLM-1", a_line(1, charge="90.00"), frequency="replacement", replaces=HELD)
    verdict, seen = window.check(corrected, "0:2", "0-2")
    assert verdict.replaced == HELD and seen.replaces == HELD and window.store.entry(HELD) is None
    # The replaced claim's lab line is gone with it; the replacement's visit is held.
    lab_again, _ = window.check(billed("CLM-3", a_line(1, code="80053", charge="25")), "0:3", "0-3")
    visit_again, _ = window.check(billed("CLM-4", a_line(1, charge="90")), "0:4", "0-4")
    assert lab_again is None
    assert summary(visit_again) == (True, False, None, ((1, True, "CLM-1", "0-2", 1),))
    # A second replacement of the same control number finds nothing to replace.
    again, _ = window.check(billed("CLM-1", a_line(1, charge="91"), frequency="replacement", replaces=HELD), "0:5",
                            "0-5")  # fmt: skip
    assert again.replaces_unknown and again.replaced is None


def test_a_replacement_read_again_at_its_source_replaces_the_same_claim_again():
    window = SeenClaims(WINDOW)
    window.check(FIRST, "0:1", HELD)
    corrected = billed("CLM-1", a_line(1, charge="90.00"), frequency="replacement", replaces=HELD)
    first, _ = window.check(corrected, "0:2", "0-2")
    replayed, _ = window.check(corrected, "0:2", "0-2")
    assert first == replayed == Verdict(replaced=HELD)


def test_a_void_removes_the_claim_it_names():
    window = SeenClaims(WINDOW)
    window.check(FIRST, "0:1", HELD)
    verdict, seen = window.check(billed("CLM-1", frequency="void", replaces=HELD), "0:2", "0-2")
    assert verdict == Verdict(replaced=HELD) and seen is None and len(window) == 0
    assert window.check(billed("CLM-5", a_line(1)), "0:3", "0-3")[0] is None


def test_an_inpatient_stay_counts_as_one_line():
    window = SeenClaims(WINDOW)
    window.check(a_stay("CLM-S1"), "0:1", "0-1")
    again, _ = window.check(a_stay("CLM-S2"), "0:2", "0-2")
    recharged, _ = window.check(a_stay("CLM-S3", charge="13000"), "0:3", "0-3")
    longer, _ = window.check(a_stay("CLM-S4", discharge_date="2025-11-02"), "0:4", "0-4")
    assert summary(again) == (True, False, None, ((0, True, "CLM-S1", "0-1", 0),))
    assert [m.exact for m in recharged.lines] == [False] and longer is None


def test_the_changelog_records_say_what_changed_in_order():
    window = SeenClaims(WINDOW, staged=True)
    _, first = window.check(FIRST, "0:1", HELD)
    verdict, seen = window.check(billed("CLM-1", frequency="replacement", replaces=HELD), "0:2", "0-2")
    assert changelog_records(verdict, seen) == [(HELD.encode(), None), (b"0-2", seen.as_record())]
    assert [(c.key, c.value) for c in window.pending()] == [(HELD.encode(), first.as_record()),
                                                             *changelog_records(verdict, seen)]  # fmt: skip
    void, nothing = window.check(billed("CLM-1", frequency="void", replaces="0-2"), "0:3", "0-3")
    assert changelog_records(void, nothing) == [(b"0-2", None)] and window.pending()[-1].source == "0:3"


def test_the_window_is_rebuilt_from_its_changelog_with_tombstones():
    window = SeenClaims(WINDOW)
    records = []
    for claim, source, number in ((FIRST, "0:1", HELD), (billed("CLM-7", a_line(1, code="85025")), "0:2", "0-2"),
                                  (billed("CLM-7", frequency="void", replaces="0-2"), "0:3", "0-3")):  # fmt: skip
        records += changelog_records(*window.check(claim, source, number))
    rebuilt = SeenClaims(WINDOW)
    for key, value in [*records, (b"x", b"not json"), (None, FIRST and records[0][1]), (b"other", records[0][1])]:
        rebuilt.apply_record(key, value)  # garbage, no key, an entry under another key: ignored, never fatal
    assert len(rebuilt) == 1 and rebuilt.store.entry(HELD) == window.store.entry(HELD)
    assert rebuilt.check(billed("CLM-8", a_line(1)), "0:9", "0-9")[0].lines[0].control_number == HELD
    assert rebuilt.check(billed("CLM-9", a_line(1, code="85025")), "0:10", "0-10")[0] is None  # voided


def test_pending_changes_are_seen_at_once_and_reach_the_store_on_commit():
    window = SeenClaims(WINDOW, staged=True)
    window.check(FIRST, "0:1", HELD)
    window.check(billed("CLM-2", a_line(1, code="85025")), "0:2", "0-2")
    assert len(window.store) == 0 and window.check(FIRST, "0:3", "0-3")[0].resent  # the overlay answers
    window.commit(1)
    assert window.store.entry(HELD) is not None and window.store.entry("0-2") is None
    assert [c.control_number for c in window.pending()] == ["0-2"]
    window.check(billed("CLM-2", frequency="void", replaces="0-2"), "0:4", "0-4")
    assert window.check(billed("CLM-3", a_line(1, code="85025")), "0:5", "0-5")[0] is None  # voided, pending
    window.rollback()  # its delivery failed: decided again
    assert window.pending() == [] and window.check(billed("CLM-3", a_line(1, code="85025")), "0:5", "0-5") == (
        None, window.pending()[0].seen)  # fmt: skip


def test_a_pending_void_hides_the_committed_claim():
    window = SeenClaims(WINDOW, staged=True)
    window.check(FIRST, "0:1", HELD)
    window.commit()
    window.check(billed("CLM-1", frequency="void", replaces=HELD), "0:2", "0-2")
    assert window.check(FIRST, "0:3", "0-3")[0] is None
    window.commit()
    assert window.store.entry(HELD) is None


def test_what_left_the_window_is_forgotten_and_what_is_in_it_is_kept():
    """Memory follows the window, not the history: a worker running for months keeps about a window."""
    window = SeenClaims(WINDOW)
    per_day = 300
    for day in range(120):  # four months
        when = f"2025-{7 + day // 30:02d}-{1 + day % 30:02d}T10:00:00Z"
        for n in range(per_day):
            member = {"id": f"M{day}-{n}"}
            window.check(billed(f"C{day}-{n}", member=member, submitted_at=when), f"0:{day}:{n}", f"0-{day}-{n}")
    assert 30 * per_day <= len(window) <= 31 * per_day * 1.5 + SWEEP_AFTER
    newest = "2025-10-29T10:00:00Z"
    kept = billed("X1", member={"id": "M100-1"}, submitted_at=newest)  # 19 days before the newest: still held
    gone = billed("X2", member={"id": "M10-1"}, submitted_at="2025-07-13T10:00:00Z")
    assert window.check(kept, "1:1", "1-1")[0].resent
    assert window.check(gone, "1:2", "1-2")[0] is None  # more than a window before the newest: forgotten


def test_a_member_is_one_partition_key_whoever_hashes_the_claim():
    typed = decode_event(orjson.dumps(FIRST), "claim")
    assert typed is not None
    key = member_partition_key(FIRST)
    assert key == member_partition_key(typed[1]) == member_partition_key(billed("CLM-9", a_line(1, code="85025")))
    assert key != member_partition_key(billed(member={"id": "W100000002", "payer_id": "PAYER01"}))
    assert len(key) == 16 and b"W100000001" not in key


def test_a_decoded_claim_makes_the_entry_of_its_json_object():
    """The worker hashes the ``Claim`` decoded from the bytes, ``processor check`` and a refused event the JSON
    object: both must make the same entry, or a window would miss repeats across the two."""
    checked = 0
    for kind, event in generate(3000, seed=11):
        typed = decode_event(orjson.dumps(event), kind) if kind == "claim" else None
        if typed is not None:
            assert entry(typed[1], "0:1", "0-1") == entry(event, "0:1", "0-1")
            checked += 1
    assert checked > 1000


def test_an_entry_holds_no_patient_data():
    seen = entry(FIRST, "0:1", HELD)
    record = seen.as_record()
    for phi in (b"W100000001", b"1961-04-12", b"PAYER01", b"99213", b"1234567893"):
        assert phi not in record
    assert Seen.from_record(record) == seen
    for kept in (seen, entry(a_stay(frequency="replacement", replaces="1-2"), "0:1:2", "0-1-2")):
        validator("window-entry").validate(orjson.loads(kept.as_record()))


def test_a_claim_without_a_member_id_time_or_id_is_not_checked():
    window = SeenClaims(WINDOW)
    for claim in (billed(member={"id": " "}), billed(submitted_at="yesterday"), billed(claim_id=""),
                  {**FIRST, "member": None}, {**FIRST, "lines": "garbage", "patient": 7}):  # fmt: skip
        verdict, seen = window.check(claim, "0:1", HELD)
        assert verdict is None and (seen is None or claim["lines"] == "garbage")
    assert Deferred().check(FIRST, "0:1", HELD) == (None, entry(FIRST, "0:1", HELD))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "a tombstone"),
        (b"not json", "garbage"),
        (b'{"claim_id": "C", "fingerprint": "' + b"0" * 32 + b'", "at_ms": 1, "source": "0:1"}',
         "an entry of the previous format"),
        (Seen("0-1", "C", 1, "0:1", "zz", ()).as_record(), "not a member hash"),
        (Seen("0-1", "C", 10**17, "0:1", "0" * 32, ()).as_record(), "after the year 9999"),
        (Seen("0-1", "", 1, "0:1", "0" * 32, ()).as_record(), "no claim id"),
        (Seen("", "C", 1, "0:1", "0" * 32, ()).as_record(), "no control number"),
        (b'{"control_number": "0-1", "claim_id": "C", "at_ms": 1, "source": "0:1", "member": "' + b"0" * 32
         + b'", "lines": [{"line_number": 1}]}', "a line without its hashes"),
        (b'{"control_number": "0-1", "claim_id": "C", "at_ms": 1e300, "source": "0:1", "member": "' + b"0" * 32
         + b'", "lines": []}', "no time"),
    ],
)  # fmt: skip
def test_a_changelog_value_that_is_not_an_entry_is_ignored(value, why):
    assert Seen.from_record(value) is None, why
    SeenClaims(WINDOW).apply_record(b"0-1", value)  # never fatal


def test_an_entry_survives_its_changelog_record():
    seen = entry(billed(frequency="replacement", replaces="1-2"), "0:1", "0-1")
    assert seen.replaces == "1-2" and Seen.from_record(seen.as_record()) == seen
    assert Change("0-1", seen, "0:1").value == seen.as_record()


@pytest.mark.parametrize(
    ("submitted_at", "expected"),
    [
        ("2025-11-03T10:00:00Z", 1_762_164_000_000),
        ("2025-11-03T11:00:00+01:00", 1_762_164_000_000),  # the same instant
        ("2025-11-03T10:00:00.123456Z", 1_762_164_000_123),
        ("2025-11-03T10:00:00", 1_762_164_000_000),  # no offset: UTC, on every machine alike
        ("1969-12-31T23:59:59.999Z", -1),
        ("9999-12-31T23:59:59.999+00:00", MAX_MS),
        ("0001-01-01T00:00:00Z", MIN_MS),
        ("9999-12-31T23:59:59-01:00", None),  # in UTC that is the year 10000
        ("0001-01-01T00:00:00+01:00", None),  # and that the year 0
        ("2025-02-30T10:00:00Z", None),
        ("yesterday", None),
        (None, None),
        (1762164000, None),
    ],
)
def test_a_submission_time_is_milliseconds_in_utc_or_none_and_never_an_error(submitted_at, expected):
    assert submitted_ms({"submitted_at": submitted_at}) == expected
