"""Duplicate claims within the window: exact, suspect, corrected resubmissions and replays."""

import orjson
import pytest

from processor.contracts import decode_event
from processor.engine import decide
from processor.engine.duplicates import MAX_MS, MIN_MS, SWEEP_AFTER, Seen, SeenClaims, fingerprint, submitted_ms
from processor.samples import generate
from tests.conftest import a_claim

DAY_MS = 86_400_000
FIRST = a_claim(claim_id="CLM-1", submitted_at="2025-11-03T10:00:00Z")

DUPLICATE_CASES = [
    # (why, second claim, where it was read, outcome, reason id or None)
    ("the same claim again is an exact duplicate", a_claim(claim_id="CLM-1", submitted_at="2025-11-04T09:00:00Z"),
     "0:2", "returned", "claim.duplicate"),
    ("the same content under another id is a suspect", a_claim(claim_id="CLM-2"), "0:2", "needs_review",
     "claim.suspect_duplicate"),
    ("the same id with other content is a corrected resubmission",
     a_claim(claim_id="CLM-1", billing_provider={"npi": "1245319599"}), "0:2", "accepted", None),
    ("the same record read again (a replay) is not its own duplicate", FIRST, "0:1", "accepted", None),
    ("outside the window nothing is a duplicate", a_claim(claim_id="CLM-1", submitted_at="2026-01-10T10:00:00Z"),
     "0:2", "accepted", None),
]  # fmt: skip


@pytest.mark.parametrize(("why", "second", "source", "outcome", "rule_id"), DUPLICATE_CASES,
                         ids=[c[0] for c in DUPLICATE_CASES])  # fmt: skip
def test_duplicates(small_table, why, second, source, outcome, rule_id):
    seen = SeenClaims(30 * DAY_MS)
    first_duplicate, _ = seen.check(FIRST, "0:1")
    assert first_duplicate is None
    duplicate, _ = seen.check(second, source)
    decision = decide(second, "claim", small_table, None, duplicate)
    assert decision.outcome == outcome
    assert [r.id for r in decision.reasons] == ([rule_id] if rule_id else [])
    if rule_id:
        assert "CLM-1" in decision.reasons[0].message and decision.reasons[0].carc == "18"


def test_fingerprint_ignores_the_id_and_submission_time():
    assert fingerprint(FIRST) == fingerprint(a_claim(claim_id="X", submitted_at="2026-01-01T00:00:00Z"))
    assert fingerprint(FIRST) != fingerprint(a_claim(patient={"birth_date": "1961-04-13", "sex": "F"}))


FINGERPRINT_CASES = [
    a_claim(),
    a_claim(lines=[{"line_number": 1, "code": "99213", "system": "CPT", "units": 2.5, "service_date": "2025-10-01"},
                   {"line_number": 2, "code": "A0428", "system": "HCPCS", "units": 0.1, "service_date": "2025-10-01",
                    "modifiers": ["59", "RT"], "diagnosis_pointers": [1], "revenue_code": "0450"}]),
    a_claim(lines=[{"line_number": 1, "code": "99213", "system": "CPT", "units": 1e-7, "service_date": "2025-10-01"},
                   {"line_number": 2, "code": "99214", "system": "CPT", "units": 99999.0, "service_date": "2025-10-02"},
                   {"line_number": 3, "code": "99215", "system": "CPT", "units": 12345, "service_date": "2025-10-03"}]),
    a_claim(submitter_id="SUB-\u00e9\u4e2d\U0001f600\"\\\u001f"),
    {**{k: v for k, v in a_claim().items() if k != "lines"}, "claim_type": "inpatient",  # a stay: no lines
     "admission_date": "2025-09-28", "discharge_date": "2025-10-01", "discharge_status": "01"},
]  # fmt: skip


@pytest.mark.parametrize("claim", FINGERPRINT_CASES)
def test_a_decoded_claim_has_the_fingerprint_of_its_json_object(claim):
    """The worker hashes the ``Claim`` decoded from the bytes (msgspec, sorted fields), ``processor check`` and
    a refused event the JSON object (orjson, sorted keys): the same content must give the same hash, or a
    window would miss repeats across the two, and across versions of the worker."""
    typed = decode_event(orjson.dumps(claim), "claim")
    assert typed is not None, "the case must be a valid claim, or it tests nothing"
    assert fingerprint(typed[1]) == fingerprint(claim)


def test_sample_claims_have_the_fingerprint_of_their_json_objects():
    checked = 0
    for kind, event in generate(3000, seed=11):
        typed = decode_event(orjson.dumps(event), kind) if kind == "claim" else None
        if typed is not None:
            assert fingerprint(typed[1]) == fingerprint(event)
            checked += 1
    assert checked > 1000


def test_the_window_is_rebuilt_from_its_changelog():
    seen = SeenClaims(30 * DAY_MS)
    _, entry = seen.check(FIRST, "0:1")
    rebuilt = SeenClaims(30 * DAY_MS)
    rebuilt.apply_record(entry.as_record())
    rebuilt.apply_record(b"not json")  # ignored, never fatal
    assert rebuilt.check(a_claim(claim_id="CLM-1", submitted_at="2025-11-05T00:00:00Z"), "0:9")[0].exact


def test_what_left_the_window_is_forgotten_and_what_is_in_it_is_kept():
    """Memory follows the window, not the history: a worker running for months keeps about a window."""
    seen = SeenClaims(30 * DAY_MS)
    start, per_day = 1_760_000_000_000, 400
    for day in range(120):  # four months
        for n in range(per_day):
            seen.remember(f"CLM-{day}-{n}", f"content-{day}-{n}", start + day * DAY_MS + n, f"0:{day * per_day + n}")
    window = 30 * per_day
    assert window <= len(seen) <= window * 1.5 + SWEEP_AFTER  # a window, plus what the next sweep drops
    newest = start + 119 * DAY_MS
    assert seen.match("CLM-100-1", "content-100-1", newest, "0:99999999").exact  # 19 days ago: still known
    assert seen.match("OTHER", "content-95-3", newest, "0:99999999").first_id == "CLM-95-3"  # same content
    assert seen.match("CLM-10-1", "content-10-1", start + 12 * DAY_MS, "0:99999999") is None  # forgotten


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
        ("0001-01-01T00:00:00", MIN_MS),
        ("2025-02-30T10:00:00Z", None),
        ("yesterday", None),
        (None, None),
        (1762164000, None),
    ],
)
def test_a_submission_time_is_milliseconds_in_utc_or_none_and_never_an_error(submitted_at, expected):
    assert submitted_ms({"submitted_at": submitted_at}) == expected


@pytest.mark.parametrize("submitted_at", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
                                          "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])  # fmt: skip
def test_claims_at_the_ends_of_time_are_decided_not_dead_lettered(small_table, submitted_at):
    seen = SeenClaims(30 * DAY_MS)
    claim = a_claim(submitted_at=submitted_at)
    seen.check(claim, "0:1")
    duplicate, _ = seen.check(claim, "0:2")
    decision = decide(claim, "claim", small_table, None, duplicate)  # a duplicate's message names the time
    assert decision.outcome in ("accepted", "returned")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "a tombstone"),
        (b"not json", "garbage"),
        (b'{"claim_id": "C", "fingerprint": "zz", "at_ms": 1, "source": "0:1"}', "not a fingerprint"),
        (b'{"claim_id": "C", "fingerprint": "' + b"0" * 32 + b'", "at_ms": 1e300, "source": "0:1"}', "no time"),
        (b'{"claim_id": "C", "fingerprint": "' + b"0" * 32 + b'", "at_ms": 99999999999999999, "source": "0"}',
         "after the year 9999"),
        (b'{"claim_id": "", "fingerprint": "' + b"0" * 32 + b'", "at_ms": 1, "source": "0:1"}', "no id"),
        (b'{"claim_id": "C", "at_ms": 1, "source": "0:1"}', "a field missing"),
    ],
)  # fmt: skip
def test_a_changelog_value_that_is_not_an_entry_is_ignored(value, why):
    assert Seen.from_record(value) is None, why


def test_an_entry_survives_its_changelog_record():
    entry = Seen("CLM-1", fingerprint(FIRST), 1_762_164_000_000, "0:1")
    assert Seen.from_record(entry.as_record()) == entry


def test_a_claim_dated_far_ahead_of_its_decision_does_not_age_the_window_out(small_table):
    """One claim dated 2199 must not move the window's newest time: everything real would be a window behind
    it and be dropped. It is decided (and accepted here), not remembered; a real duplicate after it is found."""
    import orjson

    from processor.routing import Decided, decide_value

    window = SeenClaims(30 * DAY_MS)
    decided_at = "2025-11-05T12:00:00.000Z"

    def decided(claim, where):
        result = decide_value(orjson.dumps(claim), "claim", small_table, None, decided_at, {}, None, window, where)
        assert isinstance(result, Decided)
        return result

    decided(FIRST, "0:1")
    far = decided(a_claim(claim_id="CLM-FAR", submitted_at="2199-01-01T00:00:00Z", lines=FIRST["lines"][:1]), "0:2")
    assert far.seen is None and far.decision.outcome == "accepted"
    for n in range(SWEEP_AFTER + 2):  # enough new claims for a sweep
        decided(a_claim(claim_id=f"CLM-N{n}", patient={**FIRST["patient"], "member_id": f"M{n}"}), f"0:{n + 3}")
    again = decided(a_claim(claim_id="CLM-1", submitted_at="2025-11-04T09:00:00Z"), "0:99999")
    assert [r.id for r in again.decision.reasons] == ["claim.duplicate"]
    # a day of clock difference is allowed: such a claim is remembered
    assert decided(a_claim(claim_id="CLM-SOON", submitted_at="2025-11-06T11:00:00Z"), "0:100000").seen is not None
