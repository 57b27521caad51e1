"""Line dispositions: a payment edit denies the claim line it fires on, and the claim goes on, as CMS's editors
deny a line (IOCE line dispositions; NCCI and MUE denials on the 835 with group code CO)."""

import pytest

from processor.contracts import _full_validator
from processor.engine import decide, policy_from
from tests.conftest import a_claim
from tests.unit.test_engine import dx, line


def test_a_bundled_line_is_denied_and_the_claim_accepted(small_table):
    claim = a_claim(lines=[line("93000"), line("93005", number=2)])
    decision = decide(claim, "claim", small_table)
    assert decision.outcome == "accepted"
    record = decision.as_record(claim, "2026-01-01T00:00:00.000Z", {"topic": "claims", "partition": 0, "offset": 1})
    assert record["lines_denied"] == [2]
    (reason,) = record["reasons"]
    assert (reason["id"], reason["outcome"], reason["line_number"]) == ("ncci.bundled", "denied", 2)
    assert reason["adjustment"] == {"group": "CO", "carc": "236", "rarc": None}
    assert reason["stc"] == {"category": "A2", "status": "20", "entity": None}  # accepted for processing
    assert _full_validator("decision").is_valid(record), list(_full_validator("decision").iter_errors(record))


def test_a_front_end_edit_still_returns_the_claim_and_a_denied_line_rides_along(small_table):
    claim = a_claim(diagnoses=dx("E11"), lines=[line("36415", units=3, pointers=(1,))])
    decision = decide(claim, "claim", small_table)
    assert decision.outcome == "returned"
    assert {(r.id, r.outcome) for r in decision.reasons} == {
        ("diagnosis.header", "returned"),
        ("units.over_mue", "denied"),
    }


def test_a_payer_moves_a_rule_between_return_denial_and_review(small_table):
    bundled = a_claim(lines=[line("93000"), line("93005", number=2)])
    unknown = a_claim(lines=[line("99213"), line("E0114", "HCPCS", number=2)])
    policy = policy_from({"claim": {"ncci.bundled": "returned", "procedure.not_in_table": "denied"}})
    assert decide(bundled, "claim", small_table, policy).outcome == "returned"
    decision = decide(unknown, "claim", small_table, policy)
    assert decision.outcome == "accepted" and decision.lines_denied == [2]
    review = policy_from({"claim": {"units.over_mue": "needs_review"}})
    assert decide(a_claim(lines=[line("36415", units=3)]), "claim", small_table, review).outcome == "needs_review"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"claim": {"diagnosis.header": "denied"}}, "only a rule that fires on a claim line can deny"),
        ({"order": {"coverage.not_supported": "denied"}}, "a lab order has none"),
    ],
)
def test_only_a_rule_on_a_claim_line_can_deny(settings, problem):
    with pytest.raises(ValueError, match=problem):
        policy_from(settings)


def test_denied_in_the_rules_section_leaves_lab_orders_at_their_default():
    policy = policy_from({"rules": {"coverage.not_supported": "denied"}})
    assert policy.outcome("coverage.not_supported", "claim") == "denied"
    assert policy.outcome("coverage.not_supported", "order") == "needs_review"


def test_a_payment_edit_on_a_stay_procedure_returns_the_claim(small_table):
    """An inpatient stay's ICD-10-PCS procedure is no billed line: a rule that would deny a line returns."""
    stay = a_claim(
        claim_type="inpatient", admission_date="2025-11-01", discharge_date="2025-11-03", discharge_status="01",
        diagnoses=dx("N39.0"), lines=[], procedures=[{"code": "0DTJ4ZZ", "system": "ICD-10-PCS", "date": "2025-11-02"}],
    )  # fmt: skip
    stay["procedures"][0]["code"] = "0DTJ4ZY"  # well formed, in no release
    policy = policy_from({"claim": {"procedure.not_in_table": "denied"}})
    decision = decide(stay, "claim", small_table, policy)
    assert decision.outcome == "returned"
    assert [(r.id, r.outcome, r.line_number) for r in decision.reasons] == [
        ("procedure.not_in_table", "returned", None)
    ]


# Issue 12's cases, as CMS's editors answer them: the line is denied, the claim accepted.


def test_an_mue_of_one_a_day_is_met_by_three_lines_of_one_unit(small_table):
    """MAI 2 (per date of service): units of a code on one date are summed over the claim's lines."""
    claim = a_claim(lines=[line("J1100", "HCPCS", number=n) for n in (1, 2, 3)])
    decision = decide(claim, "claim", small_table)
    assert decision.outcome == "accepted" and decision.lines_denied == [1, 2, 3]
    assert {r.id for r in decision.reasons} == {"units.over_mue"}
    assert "3 units on 2025-11-03 over 3 line(s)" in decision.reasons[0].message
    assert "adjudication indicator 2" in decision.reasons[0].message
    one = a_claim(lines=[line("J1100", "HCPCS")])
    assert decide(one, "claim", small_table).reasons == ()


def test_an_mue_per_line_judges_each_line(small_table):
    """MAI 1 (the project's CSV form without an indicator): each line on its own."""
    claim = a_claim(lines=[line("36415", units=2), line("36415", units=2, number=2)])
    assert decide(claim, "claim", small_table).reasons == ()


@pytest.mark.parametrize(
    ("first", "second", "denied"),
    [
        (("RT",), ("RT",), True),  # the same site: no bypass
        ((), ("RT",), True),  # one site named: does not show two sites
        (("LT",), ("RT",), False),  # different sites
        ((), ("XS",), False),  # a distinct-service modifier bypasses by itself
    ],
)
def test_an_anatomic_modifier_bypasses_a_pair_only_for_different_sites(small_table, first, second, denied):
    claim = a_claim(lines=[line("20610", modifiers=first), line("20552", number=2, modifiers=second)])
    decision = decide(claim, "claim", small_table)
    assert decision.outcome == "accepted"
    assert decision.lines_denied == ([2] if denied else [])


def test_ncci_pairs_come_from_the_table_of_the_claim_type(small_table):
    lines = [line("93000"), line("36415", number=2)]
    professional = decide(a_claim(lines=lines), "claim", small_table)
    assert professional.reasons == ()  # the practitioner table holds no 93000/36415 edit
    outpatient = decide(a_claim(claim_type="outpatient", lines=lines), "claim", small_table)
    assert [(r.id, r.line_number) for r in outpatient.reasons] == [("ncci.bundled", 2)]
    assert "Misuse of column two code with column one code" in outpatient.reasons[0].message
    assert "hospital" in outpatient.reasons[0].message


def test_an_invalid_modifier_returns_the_claim(small_table):
    decision = decide(a_claim(lines=[line("99213", modifiers=("GD", "ZZ", "25"))]), "claim", small_table)
    assert decision.outcome == "returned"
    assert [(r.id, r.field, r.value) for r in decision.reasons] == [
        ("modifier.invalid", "lines[0].modifiers[0]", "GD"),  # ended 2019-12-31
        ("modifier.invalid", "lines[0].modifiers[1]", "ZZ"),  # no such modifier
    ]  # 25 is CPT's (AMA): not judged until a payer loads CPT modifiers
    assert decision.reasons[0].carc == "182"
