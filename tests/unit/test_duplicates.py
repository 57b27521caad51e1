"""Duplicate claims within the window: exact, suspect, corrected resubmissions and replays."""

import pytest

from processor.engine import decide
from processor.engine.duplicates import SWEEP_AFTER, SeenClaims, fingerprint
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
