"""Every reason answers in its submitter's terms: a claim with X12 codes a 277CA allows, a lab order in HL7 v2;
and docs/rules.md shows each rule's answer as the code has it.

The code values below were looked up in published copies of the code lists (X12 507, 508 and 98 as
maintained by WPC; the WPC CARC and RARC lists; HL7 v2 tables 0008, 0357 and 0516), with their meaning. Those of
the payer's claim (issue 23: 164, 249, 400, 464; N286, N290, N379, N382, N823, M47, M77) were checked in
copies of the X12 claim status, CARC and RARC lists (2018 and later wording; N38 and M78 are retired, so M77
and N823 are used); X12 gives no status code for a "use modifier 50" edit, so LT with RT answers 453 with N519.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.engine import RULES, decide, policy_from
from processor.engine.answers import claim_element, claim_stc, hl7_location
from processor.engine.rules import CLAIM_TYPES, RETURNED, REVIEW, Rule
from tests.conftest import a_claim, an_order
from tests.unit.test_engine import dx, line
from tests.unit.test_schemas import validator

# X12 code list 507, claim status category: the A codes a 277CA may use (X12 RFI 1942; no P, F or R codes).
CATEGORIES = {
    "A2": "Acknowledgement/Acceptance into adjudication system",
    "A3": "Acknowledgement/Returned as unprocessable claim",
    "A6": "Acknowledgement/Rejected for Missing Information",
    "A7": "Acknowledgement/Rejected for Invalid Information",
    "A8": "Acknowledgement/Rejected for relational field in error",
}
# X12 code list 508, health care claim status.
STATUSES = {
    "21": "Missing or invalid information (needs another status naming the element)",
    "41": "Special handling required at payer site",
    "45": "Awaiting benefit determination",
    "46": "Internal review/audit",
    "54": "Duplicate of a previously processed claim/line",
    "78": "Duplicate of an existing claim/line, awaiting processing",
    "86": "Diagnosis and patient gender mismatch",
    "157": "Entity's Gender",
    "158": "Entity's date of birth",
    "164": "Entity's contract/member number",
    "178": "Submitted charges",
    "187": "Date(s) of service",
    "189": "Facility admission date",
    "190": "Facility discharge date",
    "234": "Patient discharge status",
    "247": "Line information",
    "249": "Place of service",
    "254": "Principal diagnosis code",
    "255": "Diagnosis code",
    "453": "Procedure Code Modifier(s) for Service(s) Rendered",
    "454": "Procedure code for services rendered",
    "400": "Claim is out of balance",
    "455": "Revenue code for services rendered",
    "464": "Payer Assigned Claim Control Number",
    "465": "Principal Procedure Code for Service(s) Rendered",
    "474": "Procedure code and patient gender mismatch",
    "475": "Procedure code not valid for patient age",
    "476": "Missing or invalid units of service",
    "477": "Diagnosis code pointer is missing or invalid",
    "478": "Claim submitter's identifier",
    "486": "Principal Procedure Date",
    "490": "Other Procedure Code for Service(s) Rendered",
    "492": "Other Procedure Date",
    "538": "Claim or Encounter Identifier",
    "562": "Entity's National Provider Identifier (NPI)",
    "675": "Facility admission through discharge dates",
    "735": "This service/claim is included in the allowance for another service or claim",
    "765": "Institutional charges are non covered",
    "772": "The greatest level of diagnosis code specificity is required",
    "796": "Procedure code not valid for date of service",
}
PEND_STATUSES = {"41", "45", "46", "78"}  # what a claim accepted into adjudication (A2) waits for
ENTITY_STATUSES = {"157", "158", "164", "562"}  # "This code requires use of an Entity Code"
# X12 code list 98, entity identifier.
ENTITIES = {"85": "Billing Provider", "QC": "Patient", "DK": "Ordering Physician", "IL": "Insured or Subscriber",
            "82": "Rendering Provider", "DN": "Referring Provider"}  # fmt: skip
CARCS = {
    "4": "The procedure code is inconsistent with the modifier used",
    "6": "The procedure/revenue code is inconsistent with the patient's age",
    "7": "The procedure/revenue code is inconsistent with the patient's gender",
    "9": "The diagnosis is inconsistent with the patient's age",
    "10": "The diagnosis is inconsistent with the patient's gender",
    "14": "The date of birth follows the date of service",
    "16": "Claim/service lacks information or has submission/billing error(s) (at least one remark code)",
    "18": "Exact duplicate claim/service",
    "50": "These are non-covered services because this is not deemed a 'medical necessity' by the payer",
    "96": "Non-covered charge(s) (at least one remark code)",
    "110": "Billing date predates service date",
    "146": "Diagnosis was invalid for the date(s) of service reported",
    "151": "The payer deems the information submitted does not support this many/frequency of services",
    "181": "Procedure code was invalid on the date of service",
    "182": "Procedure modifier was invalid on the date of service",  # shared/DOMAIN.md: 4 or 182, modifier invalid
    "236": "Procedure or procedure/modifier combination not compatible with another on the same day (NCCI)",
}
RARCS = {
    "M51": "Missing/incomplete/invalid procedure code(s)",
    "M52": "Missing/incomplete/invalid 'from' date(s) of service",
    "M64": "Missing/incomplete/invalid other diagnosis",
    "M76": "Missing/incomplete/invalid diagnosis or condition",
    "M81": "You are required to code to the highest level of specificity",
    "M47": "Missing/incomplete/invalid Payer Claim Control Number",
    "M77": "Missing/incomplete/invalid/inappropriate place of service",
    "MA63": "Missing/incomplete/invalid principal diagnosis",
    "MA130": "Your claim contains incomplete and/or invalid information ... unprocessable",
    "N257": "Missing/incomplete/invalid billing provider/supplier primary identifier",
    "N265": "Missing/incomplete/invalid ordering provider primary identifier",
    "N286": "Missing/incomplete/invalid referring provider primary identifier",
    "N290": "Missing/incomplete/invalid rendering provider primary identifier",
    "N301": "Missing/incomplete/invalid procedure date(s)",
    "N318": "Missing/incomplete/invalid discharge or end of care date",
    "N329": "Missing/incomplete/invalid patient birth date",
    "N362": "The number of Days or Units of Service exceeds our acceptable maximum",
    "N379": "Claim level information does not match line level information",
    "N382": "Missing/incomplete/invalid patient identifier",
    "N386": "This decision was based on a National Coverage Determination (NCD)",
    "N425": "Statutorily excluded service(s)",
    "N519": "Invalid combination of HCPCS modifiers",
    "N823": "Incomplete/invalid procedure modifier(s)",
}
# HL7 v2 table 0357, message error condition (ERR-3).
CONDITIONS = {
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "207": "Application internal error",
}
ACKS = {"AA": "Application Accept", "AE": "Application Error", "AR": "Application Reject"}  # HL7 table 0008
SEVERITIES = {"E": "Error", "W": "Warning"}  # HL7 table 0516

CLAIM_FIELDS = [
    "claim_id", "submitter_id", "patient.birth_date", "patient.sex", "billing_provider.npi", "diagnoses[0].code",
    "diagnoses[3].system", "lines[0].code", "lines[1].modifiers[0]", "lines[0].units", "lines[0].service_date",
    "lines[0].diagnosis_pointers[1]", "lines[0].revenue_code", "lines[2]", "admission_date", "discharge_date",
    "discharge_status", "procedures[0].code", "procedures[1].date", "procedures[2].system", "member.id",
    "charge", "lines[1].charge", "place_of_service", "lines[0].place_of_service", "rendering_provider.npi",
    "lines[2].rendering_provider.npi", "referring_provider.npi", "replaces",
]  # fmt: skip


def test_a_claim_answers_only_with_categories_a_277ca_allows():
    for rule in RULES.values():
        returned, held = rule.claim_answer(RETURNED), rule.claim_answer(REVIEW)
        assert returned.category in CATEGORIES.keys() - {"A2"}, rule.id
        assert (held.category, held.status) == ("A2", rule.pend), rule.id
        assert not rule.category.startswith("P"), rule.id


def test_every_needs_review_rule_answers_a2_with_a_pend_status():
    for rule in RULES.values():
        assert rule.pend in PEND_STATUSES, rule.id
        if rule.outcome == REVIEW:
            assert rule.category == "A2", rule.id


def test_every_code_is_one_that_was_looked_up():
    for rule in RULES.values():
        assert rule.stc.status in STATUSES and rule.stc.entity in (*ENTITIES, None), rule.id
        assert (rule.stc.entity is not None) == (rule.stc.status in ENTITY_STATUSES), rule.id
        assert rule.carc in (*CARCS, None) and rule.rarc in (*RARCS, None), rule.id
        assert rule.carc != "16" or rule.rarc, f"{rule.id}: CARC 16 needs a remark code"
        assert rule.hl7_condition in CONDITIONS, rule.id
    for field in CLAIM_FIELDS:
        element = claim_element(field)
        assert element is not None and element.status in STATUSES and element.entity in (*ENTITIES, None), field


def test_dates_answer_with_the_most_specific_adjustment_reason():
    assert (RULES["date.before_birth"].carc, RULES["date.before_birth"].rarc) == ("14", "N329")
    assert RULES["date.after_submission"].carc == "110"


@pytest.mark.parametrize(
    ("rule_id", "field", "answer"),
    [
        ("event.missing_field", "patient.birth_date", "A6:158:QC"),  # 21 needs the element: the patient's DOB
        ("event.invalid_field", "lines[0].units", "A7:476"),
        ("event.invalid_field", "(event)", "A7:21"),  # nothing names it better
        ("date.invalid", "lines[1].service_date", "A7:187"),
        ("diagnosis.not_in_table", "diagnoses[0].code", "A7:254"),  # the principal diagnosis
        ("diagnosis.not_in_table", "diagnoses[1].code", "A7:255"),
        ("date.after_submission", "discharge_date", "A8:190"),
        ("procedure.malformed", "procedures[0].code", "A7:465"),
        ("procedure.malformed", "lines[0].code", "A7:454"),
        ("procedure.date_outside_stay", "procedures[1].date", "A8:492"),
        ("date.before_birth", "lines[0].service_date", "A8:158:QC"),  # the rule's own status names the DOB
        ("npi.invalid", "billing_provider.npi", "A7:562:85"),
        ("npi.invalid", "ordering_provider.npi", "A7:562:DK"),
        ("event.missing_field", "member.payer_id", "A6:164:IL"),
        ("event.invalid_field", "lines[1].charge", "A7:178"),
        ("event.invalid_field", "lines[0].place_of_service", "A7:249"),
        ("place_of_service.not_in_table", "lines[0].place_of_service", "A7:249"),  # the rule's own status
        ("npi.rendering_invalid", "lines[0].rendering_provider.npi", "A7:562:82"),
        ("claim.unbalanced", "charge", "A7:400"),
    ],
)
def test_the_field_makes_a_claims_answer_exact(rule_id, field, answer):
    assert str(claim_stc(RULES[rule_id], field, RETURNED)) == answer


@pytest.mark.parametrize(
    ("field", "location"),
    [
        ("tests[0].code", "OBR^1^4"),  # OBR-4 universal service identifier
        ("tests[2].code", "OBR^3^4"),
        ("tests[2].system", "OBR^3^4^1^3"),  # its third component, the coding system
        ("diagnoses[0].code", "DG1^1^3"),  # DG1-3 diagnosis code
        ("diagnoses", "DG1^1^3"),
        ("ordering_provider.npi", "ORC^1^12"),  # ORC-12 ordering provider
        ("patient.birth_date", "PID^1^7"),  # PID-7 date/time of birth
        ("patient.sex", "PID^1^8"),  # PID-8 administrative sex
        ("collection_date", "OBR^1^7"),  # OBR-7 observation date/time
        ("order_id", "ORC^1^2"),  # ORC-2 placer order number
        ("(event)", None),
    ],
)
def test_an_order_field_has_its_hl7_error_location(field, location):
    assert hl7_location(field) == location


def test_a_returned_claim_answers_in_x12_and_its_record_matches_the_schema(small_table):
    decision = decide(a_claim(lines=[line("99213", pointers=(3,))]), "claim", small_table)
    record = decision.as_record({}, "2026-01-01T00:00:00.000Z")
    validator("decision").validate(record)
    (reason,) = record["reasons"]
    assert reason["id"] == "line.pointer_invalid"
    assert reason["stc"] == {"category": "A8", "status": "477", "entity": None}
    assert (reason["category"], reason["carc"], reason["rarc"]) == ("A8", "16", "M76")
    assert "hl7" not in reason and "hl7_ack" not in record


def test_a_claim_held_for_review_is_accepted_into_adjudication_with_a_pend_status(small_table):
    held = policy_from({"claim": {"diagnosis.header": "needs_review"}})
    decision = decide(a_claim(diagnoses=dx("E11")), "claim", small_table, held)
    record = decision.as_record({}, "2026-01-01T00:00:00.000Z")
    validator("decision").validate(record)
    assert record["outcome"] == "needs_review"
    assert record["reasons"][0]["stc"] == {"category": "A2", "status": "46", "entity": None}


def test_a_lab_order_answers_in_hl7(small_table):
    order = an_order(tests=[{"code": "4548-5", "system": "LOINC"}], ordering_provider={"npi": "1234567890"})
    decision = decide(order, "order", small_table)
    record = decision.as_record(order, "2026-01-01T00:00:00.000Z")
    validator("decision").validate(record)
    assert record["hl7_ack"] == "AR"
    hl7 = {reason["id"]: reason["hl7"] for reason in record["reasons"]}
    assert hl7 == {
        "npi.invalid": {"ack": "AE", "location": "ORC^1^12", "condition": "102", "severity": "W"},
        "test.malformed": {"ack": "AR", "location": "OBR^1^4", "condition": "102", "severity": "E"},
    }
    assert all("stc" not in reason and "carc" not in reason for reason in record["reasons"])
    npi = next(reason for reason in decision.reasons if reason.id == "npi.invalid")
    assert npi.rarc == "N265"  # the ordering provider's identifier, not the billing provider's (N257)
    accepted = decide(an_order(), "order", small_table).as_record({}, "2026-01-01T00:00:00.000Z")
    assert (accepted["hl7_ack"], accepted["reasons"]) == ("AA", [])


# docs/rules.md: the rules table shows every rule with its answers as RULES has them.

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
COLUMNS = ["id", "checks", "claim types", "MCE", "claim", "order", "277CA STC", "CARC / RARC", "HL7"]


def doc_table(heading: str) -> list[list[str]]:
    """The first table under ``heading`` in docs/rules.md: its rows (header and rule line too) as cells."""
    lines = DOC.read_text().splitlines()
    table: list[str] = []
    for text in lines[lines.index(heading) + 1 :]:
        if text.startswith("|"):
            table.append(text)
        elif table or text.startswith("#"):
            break
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in table]


def answer_cells(rule: Rule, on_claims: bool, on_orders: bool) -> dict[str, str]:
    """What the rules table says of ``rule``'s answers: ``-`` where it never runs."""
    codes = " / ".join(code for code in (rule.carc, rule.rarc) if code) or "-"
    types = "all" if rule.claim_types == CLAIM_TYPES else ", ".join(sorted(rule.claim_types))
    return {
        "claim types": types if on_claims else "-",
        "MCE": rule.mce or "-",
        "277CA STC": f"{rule.claim_answer(RETURNED)} · {rule.claim_answer(REVIEW)}" if on_claims else "-",
        "CARC / RARC": codes if on_claims else "-",
        "HL7": rule.hl7_condition if on_orders else "-",
    }


def test_the_rules_table_shows_every_rule_with_its_current_answers():
    header, _rule, *rows = doc_table("## Rules")
    assert header == COLUMNS
    documented = {row[0].strip("`"): dict(zip(COLUMNS, row, strict=True)) for row in rows}
    assert documented.keys() == RULES.keys()
    for rule_id, cells in documented.items():
        rule = RULES[rule_id]
        for kind in ("claim", "order"):
            outcome = rule.outcome_for(kind)
            assert cells[kind] in ("-", outcome.value if outcome else "off"), (rule_id, kind)
        expected = answer_cells(rule, cells["claim"] != "-", cells["order"] != "-")
        assert {column: cells[column] for column in expected} == expected, rule_id


def test_the_hl7_location_table_matches_the_code():
    _header, _rule, *rows = doc_table("### Lab orders: HL7 v2")
    assert rows
    for field, location, *_ in rows:
        assert hl7_location(field.strip("`")) == (location.strip("`") if location != "-" else None), field
