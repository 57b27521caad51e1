"""The engine against a small table of real codes: one case a line, each with the reason it exists."""

from __future__ import annotations

import importlib

import msgspec
import orjson
import pytest

from processor.code_table.table import MCE, MCE_AGE, MUE, RELEASE, CodeTable, policy_record
from processor.contracts import Claim, Order, decode_event
from processor.engine import RULES, Outcome, decide, policy_from
from processor.engine.memo import memo_of
from tests.conftest import SMALL_POLICY, SMALL_TABLE, a_claim, an_order

decide_module = importlib.import_module("processor.engine.decide")  # the module, not the function it exports


def dx(*codes: str, system: str = "ICD-10-CM") -> list[dict]:
    return [{"code": code, "system": system} for code in codes]


def line(
    code: str,
    system: str = "CPT",
    day: str = "2025-11-03",
    pointers: tuple[int, ...] = (1,),
    number: int = 1,
    modifiers: tuple[str, ...] = (),
    units: float = 1,
    **more: object,
) -> dict:
    """A claim line; ``more`` adds fields (``charge``, ``place_of_service``, ``rendering_provider``)."""
    return {"line_number": number, "code": code, "system": system, "modifiers": list(modifiers), "units": units,
            "service_date": day, "diagnosis_pointers": list(pointers), **more}  # fmt: skip


def born(birth_date: str, sex: str = "F") -> dict:
    return {"birth_date": birth_date, "sex": sex}


ADULT_MALE = born("1961-04-12", "M")


# An inpatient stay (837I) for SMALL_TABLE: no lines, one ICD-10-PCS procedure.
STAY = {
    "claim_type": "inpatient",
    "admission_date": "2025-11-01",
    "discharge_date": "2025-11-03",
    "discharge_status": "01",
    "diagnoses": [{"code": "N39.0", "system": "ICD-10-CM"}, {"code": "I10", "system": "ICD-10-CM"}],
    "procedures": [{"code": "0DTJ4ZZ", "system": "ICD-10-PCS", "date": "2025-11-02"}],
    "lines": [],
}
ADULT, CHILD = {"birth_date": "1961-04-12", "sex": "M"}, {"birth_date": "2020-04-12", "sex": "F"}

CLAIM_CASES = [
    # (why, changes, outcome, [(reason id, field, value)])
    ("a clean claim is accepted", {}, "accepted", []),
    # A payer's claim: who, how much, where, who rendered and referred it, what it replaces (issue 23).
    (
        "a claim whose charge is the sum of its lines' charges is accepted, in decimals",
        {"charge": "107.50", "lines": [line("99213", charge="95"), line("36415", number=2, charge="12.50")]},
        "accepted",
        [],
    ),
    (
        "a claim whose charge is not the sum of its lines' is returned",
        {"charge": "100.00", "lines": [line("99213", charge="95.00"), line("36415", number=2, charge="12.50")]},
        "returned",
        [("claim.unbalanced", "charge", "100.00")],
    ),
    (
        "a line with no charge leaves a charged claim unbalanced",
        {"charge": "95.00", "lines": [line("99213", charge="95.00"), line("36415", number=2)]},
        "returned",
        [("claim.unbalanced", "charge", "95.00")],
    ),
    ("a claim with no charge at all is not balanced (JSON events may leave charges out)", {}, "accepted", []),
    ("a place of service of CMS's list is accepted", {"place_of_service": "11"}, "accepted", []),
    (
        "an unknown place of service is returned",
        {"place_of_service": "30"},
        "returned",
        [("place_of_service.not_in_table", "place_of_service", "30")],
    ),
    (
        "a place of service that is not two digits is returned",
        {"place_of_service": "O1"},
        "returned",
        [("place_of_service.malformed", "place_of_service", "O1")],
    ),
    (
        "a line's place of service is checked on its own date: 10 (telehealth at home) exists from 2022",
        {
            "lines": [line("99213", day="2021-12-31", place_of_service="10")],
            "diagnoses": dx("I10"),
            "patient": ADULT,
            "submitted_at": "2022-01-05T10:00:00Z",
        },
        "returned",  # (the small table's ICD-10-CM releases and CPT rows start later: they say so too)
        [
            ("diagnosis.date_not_covered", "diagnoses[0].code", "I10"),
            ("procedure.not_valid_on_date", "lines[0].code", "99213"),
            ("place_of_service.not_valid_on_date", "lines[0].place_of_service", "10"),
        ],
    ),
    (
        "a place of service on a date no POS release covers goes to review",
        {"place_of_service": "11", "lines": [line("99213", day="2026-01-15")], "submitted_at": "2026-01-16T09:00:00Z"},
        "needs_review",
        [("place_of_service.date_not_covered", "place_of_service", "11")],
    ),
    (
        "a rendering provider NPI with a bad check digit is returned",
        {"rendering_provider": {"npi": "1234567890"}},
        "returned",
        [("npi.rendering_invalid", "rendering_provider.npi", "1234567890")],
    ),
    (
        "a line's rendering provider is checked too, and the referring provider",
        {"lines": [line("99213", rendering_provider={"npi": "1234567891"})], "referring_provider": {"npi": "123"}},
        "returned",
        [
            ("npi.referring_invalid", "referring_provider.npi", "123"),
            ("npi.rendering_invalid", "lines[0].rendering_provider.npi", "1234567891"),
        ],
    ),
    (
        "valid rendering and referring NPIs are accepted",
        {"rendering_provider": {"npi": "1234567893"}, "referring_provider": {"npi": "1234567893"}},
        "accepted",
        [],
    ),
    (
        "a modifier given twice on one line is returned",
        {"lines": [line("99213", modifiers=("RT", "RT"))]},
        "returned",
        [("modifier.repeated", "lines[0].modifiers[1]", "RT")],
    ),
    (
        "LT and RT on one line are returned: a bilateral procedure is modifier 50",
        {"lines": [line("99213", modifiers=("LT", "RT"))]},
        "returned",
        [("modifier.both_sides", "lines[0].modifiers[1]", "RT")],
    ),
    (
        "a replacement that names no claim is returned",
        {"frequency": "replacement"},
        "returned",
        [("claim.replaces_missing", "replaces", None)],
    ),
    (
        "a claim with no member id is returned",
        {"member": {"payer_id": "PAYER01"}},
        "returned",
        [("member.missing", "member.id", None)],
    ),
    (
        "a header code is returned",
        {"diagnoses": dx("E11")},
        "returned",
        [("diagnosis.header", "diagnoses[0].code", "E11")],
    ),
    ("codes are accepted without the dot", {"diagnoses": dx("E119")}, "accepted", []),
    ("lower case is accepted", {"diagnoses": dx("e11.9")}, "accepted", []),
    ("7th-character codes are billable", {"diagnoses": dx("S52.521A")}, "accepted", []),
    (
        "a code missing its 7th character is unknown",
        {"diagnoses": dx("S52.521X")},
        "returned",
        [("diagnosis.not_in_table", "diagnoses[0].code", "S52.521X")],
    ),
    (
        "E11.A is new in FY2026: valid on 2025-10-01",
        {"diagnoses": dx("E11.A"), "lines": [line("99213", day="2025-10-01")]},
        "accepted",
        [],
    ),
    (
        "E11.A is not valid on 2025-09-30",
        {"diagnoses": dx("E11.A"), "lines": [line("99213", day="2025-09-30")]},
        "returned",
        [("diagnosis.not_valid_on_date", "diagnoses[0].code", "E11.A")],
    ),
    (
        "B88.0 is billable on 2025-09-30",
        {"diagnoses": dx("B88.0"), "lines": [line("99213", day="2025-09-30")]},
        "accepted",
        [],
    ),
    (
        "B88.0 is a header from 2025-10-01",
        {"diagnoses": dx("B88.0"), "lines": [line("99213", day="2025-10-01")]},
        "returned",
        [("diagnosis.header", "diagnoses[0].code", "B88.0")],
    ),
    (
        "B88.01 did not exist on 2025-09-30",
        {"diagnoses": dx("B88.01"), "lines": [line("99213", day="2025-09-30")]},
        "returned",
        [("diagnosis.not_valid_on_date", "diagnoses[0].code", "B88.01")],
    ),
    (
        "a malformed diagnosis is returned",
        {"diagnoses": dx("E11..9")},
        "returned",
        [("diagnosis.malformed", "diagnoses[0].code", "E11..9")],
    ),
    (
        "a well-formed code not in the table is returned",
        {"diagnoses": dx("E11.99")},
        "returned",
        [("diagnosis.not_in_table", "diagnoses[0].code", "E11.99")],
    ),
    (
        "ICD-9 is not a diagnosis system here",
        {"diagnoses": dx("250.00", system="ICD-9-CM")},
        "returned",
        [("diagnosis.system_unknown", "diagnoses[0].system", "ICD-9-CM")],
    ),
    (
        "a procedure system cannot code a diagnosis",
        {"diagnoses": dx("99213", system="CPT")},
        "returned",
        [("diagnosis.system_unknown", "diagnoses[0].system", "CPT")],
    ),
    (
        "a bad NPI check digit is returned",
        {"billing_provider": {"npi": "1234567890"}},
        "returned",
        [("npi.invalid", "billing_provider.npi", "1234567890")],
    ),
    ("an HCPCS Level II line is accepted", {"lines": [line("J1100", "HCPCS")]}, "accepted", []),
    (
        "a 5-digit code is not HCPCS Level II",
        {"lines": [line("99213", "HCPCS")]},
        "returned",
        [("procedure.malformed", "lines[0].code", "99213")],
    ),
    (
        "ICD-10-PCS codes an inpatient stay's procedures, not a professional line",
        {"lines": [line("0DTJ4ZZ", "ICD-10-PCS")]},
        "returned",
        [("procedure.system_unknown", "lines[0].system", "ICD-10-PCS")],
    ),
    ("an ICD-10-PCS procedure of a stay is accepted", STAY, "accepted", []),
    (
        "ICD-10-PCS has no letter O",
        {**STAY, "procedures": [{"code": "0DTJ4ZO", "system": "ICD-10-PCS", "date": "2025-11-02"}]},
        "returned",
        [("procedure.malformed", "procedures[0].code", "0DTJ4ZO")],
    ),
    (
        "a stay cannot end before it begins",
        {**STAY, "admission_date": "2025-11-03", "discharge_date": "2025-11-01", "procedures": []},
        "returned",
        [("date.discharge_before_admission", "discharge_date", "2025-11-01")],
    ),
    (
        "a procedure is done during the stay",
        {**STAY, "procedures": [{"code": "0DTJ4ZZ", "system": "ICD-10-PCS", "date": "2025-11-05"}]},
        "returned",
        [("procedure.date_outside_stay", "procedures[0].date", "2025-11-05")],
    ),
    (
        "a secondary diagnosis repeating the principal is returned on a stay",
        {**STAY, "diagnoses": dx("N39.0", "N39.0")},
        "returned",
        [("diagnosis.duplicate_of_principal", "diagnoses[1].code", "N39.0")],
    ),
    ("a repeated diagnosis is no MCE edit on a professional", {"diagnoses": dx("E11.9", "E11.9")}, "accepted", []),
    (
        "a routine exam is no principal diagnosis of a stay (MCE)",
        {**STAY, "diagnoses": dx("Z00.00", "I10")},
        "returned",
        [("diagnosis.unacceptable_principal", "diagnoses[0].code", "Z00.00")],
    ),
    ("a routine exam may be first-listed on a professional claim", {"diagnoses": dx("Z00.00", "I10")}, "accepted", []),
    (
        "some principal diagnoses need a secondary one (MCE)",
        {**STAY, "diagnoses": dx("Z51.89")},
        "returned",
        [("diagnosis.requires_secondary", "diagnoses[0].code", "Z51.89")],
    ),
    ("with its secondary diagnosis it is accepted", {**STAY, "diagnoses": dx("Z51.89", "N39.0")}, "accepted", []),
    (
        "a questionable reason for admission goes to a coder (MCE)",
        {**STAY, "diagnoses": dx("E11.9", "N39.0")},
        "needs_review",
        [("diagnosis.questionable_admission", "diagnoses[0].code", "E11.9")],
    ),
    (
        "a procedure Medicare never covers is returned (MCE)",
        {**STAY, "procedures": [{"code": "00F3XZZ", "system": "ICD-10-PCS", "date": "2025-11-02"}]},
        "returned",
        [("procedure.non_covered", "procedures[0].code", "00F3XZZ")],
    ),
    (
        "a procedure of limited coverage goes to a coder (MCE)",
        {**STAY, "procedures": [{"code": "02WA3QZ", "system": "ICD-10-PCS", "date": "2025-11-02"}]},
        "needs_review",
        [("procedure.limited_coverage", "procedures[0].code", "02WA3QZ")],
    ),
    (
        "an adult-only code on a child is returned on any claim (MCE adult list)",
        {"patient": CHILD, "diagnoses": dx("M80.021P")},
        "returned",
        [("diagnosis.age_conflict", "diagnoses[0].code", "M80.021P")],
    ),
    (
        "CMS's last sex lists apply only when a payer switches them on",
        {"patient": ADULT, "diagnoses": dx("I10", "Z34.00")},
        "accepted",
        [],
    ),
    (
        "a payer-internal code is checked as the CPT code it maps to",
        {"lines": [line("X100", "ACME-INTERNAL")]},
        "accepted",
        [],
    ),
    (
        "an internal code the cross-reference does not map goes to review",
        {"lines": [line("X200", "ACME-INTERNAL")]},
        "needs_review",
        [("crosswalk.unmapped", "lines[0].code", "X200")],
    ),
    (
        "an internal code mapped to a code that does not exist goes to review",
        {"lines": [line("X300", "ACME-INTERNAL")]},
        "needs_review",
        [("crosswalk.target_invalid", "lines[0].code", "X300")],
    ),
    (
        "an internal code missing from its table is returned",
        {"lines": [line("X999", "ACME-INTERNAL")]},
        "returned",
        [("procedure.not_in_table", "lines[0].code", "X999")],
    ),
    (
        "an unknown system is returned",
        {"lines": [line("X100", "NOPE")]},
        "returned",
        [("procedure.system_unknown", "lines[0].system", "NOPE")],
    ),
    (
        "a date that is not on the calendar is returned",
        {"lines": [line("99213", day="2025-02-30")]},
        "returned",
        [("date.invalid", "lines[0].service_date", "2025-02-30")],
    ),
    (
        "a missing field is returned, named",
        {"billing_provider": {}},
        "returned",
        [("event.missing_field", "billing_provider.npi", None)],
    ),
    (
        "a wrong type is returned, named",
        {"diagnoses": [{"code": 11, "system": "ICD-10-CM"}]},
        "returned",
        [("event.invalid_field", "diagnoses[0].code", 11)],
    ),
    (
        "zero units are returned",
        {"lines": [{**line("99213"), "units": 0}]},
        "returned",
        [("event.invalid_field", "lines[0].units", 0)],
    ),
    (
        "more than 450 lines (the IOCE cap) are returned",
        {"lines": [line("99213", number=n % 999 + 1) for n in range(451)]},
        "returned",
        [("event.invalid_field", "lines", "[451 items]")],
    ),
    ("the code without its dot, 7th character", {"diagnoses": dx("S52521A")}, "accepted", []),
    # Dates that make sense, and the dates the table covers.
    (
        "a date of service before the patient was born is returned",
        {"patient": born("2025-12-01")},
        "returned",
        [("date.before_birth", "lines[0].service_date", "2025-11-03")],
    ),
    (
        "a date of service after the claim was submitted is returned",
        {"submitted_at": "2025-11-02T23:00:00Z"},
        "returned",
        [("date.after_submission", "lines[0].service_date", "2025-11-03")],
    ),
    (
        "a pointer past the last diagnosis is returned",
        {"lines": [line("99213", pointers=(1, 3))]},
        "returned",
        [("line.pointer_invalid", "lines[0].diagnosis_pointers[1]", 3)],
    ),
    (
        "two lines with one line number are returned: a denial names a line by its number",
        {"lines": [line("99213"), line("36415", number=2), line("J1100", "HCPCS", number=1)]},
        "returned",
        [("line.duplicate_number", "lines[2].line_number", 1)],
    ),
    (
        "a submission time that is not on the calendar is returned",
        {"submitted_at": "2025-11-31T10:00:00Z"},
        "returned",
        [("date.invalid_datetime", "submitted_at", "2025-11-31T10:00:00Z")],
    ),
    (
        "a submission time that is not on the clock is returned",
        {"submitted_at": "2025-11-03T25:61:61Z"},
        "returned",
        [("date.invalid_datetime", "submitted_at", "2025-11-03T25:61:61Z")],
    ),
    (
        "a birth date 225 years before the date of service is returned, and no age edit is judged on it",
        {"patient": born("1800-11-03"), "diagnoses": dx("O80")},
        "returned",
        [("date.birth_too_early", "patient.birth_date", "1800-11-03")],
    ),
    ("a patient of 124 is the oldest the MCE knows", {"patient": born("1901-11-03")}, "accepted", []),
    (
        "a date after the last loaded ICD-10-CM release (FY2026) goes to review, not returned",
        {"diagnoses": dx("E11.9"), "lines": [line("99213", day="2026-10-01")], "submitted_at": "2026-10-02T09:00:00Z"},
        "needs_review",
        [("diagnosis.date_not_covered", "diagnoses[0].code", "E11.9")],
    ),
    (
        "a date before the first loaded release (FY2025) goes to review",
        {"diagnoses": dx("E11.A"), "lines": [line("99213", day="2024-09-30")]},
        "needs_review",
        [("diagnosis.date_not_covered", "diagnoses[0].code", "E11.A")],
    ),
    (
        "2025-09-30 is the last day FY2025 covers",
        {"lines": [line("99213", day="2025-09-30")]},
        "accepted",
        [],
    ),
    (
        "an HCPCS code after the HCPCS releases loaded goes to review",
        {
            "lines": [line("J1100", "HCPCS", day="2026-09-30"), line("J1100", "HCPCS", day="2027-01-04", number=2)],
            "submitted_at": "2027-01-05T09:00:00Z",
        },
        "needs_review",
        [
            ("diagnosis.date_not_covered", "diagnoses[0].code", "E11.9"),
            ("procedure.date_not_covered", "lines[1].code", "J1100"),
        ],
    ),
    (
        "a deleted CPT code (99201 ended 2020-12-31) is returned",
        {"lines": [line("99201")]},
        "returned",
        [("procedure.not_valid_on_date", "lines[0].code", "99201")],
    ),
    (
        "a non-billable HCPCS code is returned",
        {"lines": [line("A9270", "HCPCS")]},
        "returned",
        [("procedure.not_billable", "lines[0].code", "A9270")],
    ),
    # The patient: age and sex edits from the table's attributes.
    (
        "a delivery code for a 30-year-old woman is accepted",
        {"diagnoses": dx("O80"), "patient": born("1995-06-01")},
        "accepted",
        [],
    ),
    (
        "a maternity code past 64 is returned (MCE maternity 9-64)",
        {"diagnoses": dx("O80"), "patient": born("1955-06-01")},
        "returned",
        [("diagnosis.age_conflict", "diagnoses[0].code", "O80")],
    ),
    (
        "a maternity code for a male patient is returned",
        {"diagnoses": dx("O80"), "patient": born("1995-06-01", "M")},
        "returned",
        [("diagnosis.sex_conflict", "diagnoses[0].code", "O80")],
    ),
    (
        "a maternity code with sex unknown is not a sex conflict",
        {"diagnoses": dx("O80"), "patient": born("1995-06-01", "U")},
        "accepted",
        [],
    ),
    (
        "a newborn code (Z38) for an adult is returned",
        {"diagnoses": dx("Z38.00")},
        "returned",
        [("diagnosis.age_conflict", "diagnoses[0].code", "Z38.00")],
    ),
    (
        "a newborn code on the day of birth is accepted",
        {"diagnoses": dx("P22.0"), "patient": born("2025-11-03"), "lines": [line("99213")]},
        "accepted",
        [],
    ),
    (
        "a perinatal code (P22.0) on a one-year-old is returned",
        {"diagnoses": dx("P22.0"), "patient": born("2024-11-03")},
        "returned",
        [("diagnosis.age_conflict", "diagnoses[0].code", "P22.0")],
    ),
    (
        "a payer's sex edit on a procedure denies the line (CARC 7)",
        {"lines": [line("55700")]},
        "accepted",
        [("procedure.sex_conflict", "lines[0].code", "55700")],
    ),
    (
        "a payer's age edit on a procedure denies the line (CARC 6)",
        {"lines": [line("99381")], "patient": ADULT_MALE},
        "accepted",
        [("procedure.age_conflict", "lines[0].code", "99381")],
    ),
    # The principal diagnosis.
    (
        "a manifestation code (G63, 'in diseases classified elsewhere') cannot be principal",
        {"diagnoses": dx("G63", "E11.9")},
        "returned",
        [("diagnosis.manifestation_principal", "diagnoses[0].code", "G63")],
    ),
    ("a manifestation code after its cause is accepted", {"diagnoses": dx("E11.9", "G63")}, "accepted", []),
    (
        "an external cause code (W19.XXXA) cannot be principal",
        {"diagnoses": dx("W19.XXXA", "S52.521A")},
        "returned",
        [("diagnosis.external_cause_principal", "diagnoses[0].code", "W19.XXXA")],
    ),
    ("an external cause code after the injury is accepted", {"diagnoses": dx("S52.521A", "W19.XXXA")}, "accepted", []),
    (
        "a code-first code listed first (E08.9) goes to review",
        {"diagnoses": dx("E08.9")},
        "needs_review",
        [("diagnosis.code_first_principal", "diagnoses[0].code", "E08.9")],
    ),
    # Coverage: HbA1c (83036) is supported by diabetes, E08-E13 (NCD 190.21).
    ("HbA1c pointing at diabetes is covered", {"lines": [line("83036", pointers=(1,))]}, "accepted", []),
    (
        "HbA1c pointing at hypertension only is not medically necessary: the line is denied",
        {"lines": [line("83036", pointers=(2,))]},
        "accepted",
        [("coverage.not_supported", "lines[0].code", "83036")],
    ),
    # NCCI pairs and MUEs (hand-written rows in the CMS layout).
    (
        "a column-2 code billed with its column-1 code (indicator 0) is denied",
        {"lines": [line("93000"), line("93005", number=2)]},
        "accepted",
        [("ncci.bundled", "lines[1].code", "93005")],
    ),
    (
        "the same pair on different days is not an NCCI pair",
        {"lines": [line("93000"), line("93005", day="2025-11-04", number=2)], "submitted_at": "2025-11-05T09:00:00Z"},
        "accepted",
        [],
    ),
    (
        "an indicator-1 pair without a modifier is denied",
        {"lines": [line("20610"), line("20552", number=2)]},
        "accepted",
        [("ncci.modifier_required", "lines[1].code", "20552")],
    ),
    (
        "an indicator-1 pair with XS is accepted",
        {"lines": [line("20610"), line("20552", number=2, modifiers=("XS",))]},
        "accepted",
        [],
    ),
    (
        "an indicator-1 pair with 59 is accepted",
        {"lines": [line("20610"), line("20552", number=2, modifiers=("59",))]},
        "accepted",
        [],
    ),
    ("a deleted pair (indicator 9) is no edit", {"lines": [line("99213"), line("36415", number=2)]}, "accepted", []),
    (
        "59 with an X modifier on one line is returned (N519)",
        {"lines": [line("20552", modifiers=("59", "XS"))]},
        "returned",
        [("modifier.invalid_combination", "lines[0].modifiers", ["59", "XS"])],
    ),
    (
        "a modifier CMS ended is invalid on a later date (CARC 182)",
        {"lines": [line("99213", modifiers=("GD",))]},
        "returned",
        [("modifier.invalid", "lines[0].modifiers[0]", "GD")],
    ),
    ("units up to the MUE are accepted", {"lines": [line("36415", units=2)]}, "accepted", []),
    (
        "units over the MUE deny the line (CARC 151)",
        {"lines": [line("36415", units=3)]},
        "accepted",
        [("units.over_mue", "lines[0].units", 3)],
    ),
]


@pytest.mark.parametrize(("why", "changes", "outcome", "expected"), CLAIM_CASES, ids=[c[0] for c in CLAIM_CASES])
def test_claim(small_table, why, changes, outcome, expected):
    decision = decide(a_claim(**changes), "claim", small_table)
    assert decision.outcome == outcome, [r.message for r in decision.reasons]
    assert [(r.id, r.field, r.value) for r in decision.reasons] == expected


def test_an_unknown_code_of_a_loaded_system_is_returned(small_table):
    decision = decide(a_claim(lines=[line("E0114", "HCPCS"), line("99213", number=2)]), "claim", small_table)
    assert decision.outcome == "returned"
    assert [(r.id, r.field, r.value) for r in decision.reasons] == [
        ("procedure.not_in_table", "lines[0].code", "E0114")
    ]


ORDER_CASES = [
    ("a clean order is accepted", {}, "accepted", []),
    ("a CPT test code is accepted", {"tests": [{"code": "83036", "system": "CPT"}]}, "accepted", []),
    (
        "a bad LOINC check digit is returned to the doctor",
        {"tests": [{"code": "4548-5", "system": "LOINC"}]},
        "returned",
        [("test.malformed", "tests[0].code", "4548-5")],
    ),
    (
        "a header diagnosis on an order goes to review",
        {"diagnoses": dx("E11")},
        "needs_review",
        [("diagnosis.header", "diagnoses[0].code", "E11")],
    ),
    (
        "a bad NPI on an order goes to review",
        {"ordering_provider": {"npi": "1234567890"}},
        "needs_review",
        [("npi.invalid", "ordering_provider.npi", "1234567890")],
    ),
    (
        "an invalid test outweighs a review",
        {"tests": [{"code": "4548-5", "system": "LOINC"}], "diagnoses": dx("E11")},
        "returned",
        [("test.malformed", "tests[0].code", "4548-5"), ("diagnosis.header", "diagnoses[0].code", "E11")],
    ),
    (
        "a test coded in ICD-10-CM is the wrong system",
        {"tests": dx("E11.9")},
        "returned",
        [("test.system_unknown", "tests[0].system", "ICD-10-CM")],
    ),
    (
        "an order without a diagnosis goes to review",
        {"diagnoses": []},
        "needs_review",
        [("order.no_diagnosis", "diagnoses", [])],
    ),
    (
        "an order without an ordering NPI goes to review, and is still checked",
        {"ordering_provider": {}, "diagnoses": dx("E11")},
        "needs_review",
        [("npi.missing", "ordering_provider.npi", None), ("diagnosis.header", "diagnoses[0].code", "E11")],
    ),
    (
        "a payer's age edit on a test goes to review on an order",
        {"tests": [{"code": "99381", "system": "CPT"}]},
        "needs_review",
        [("test.age_conflict", "tests[0].code", "99381")],
    ),
    (
        "HbA1c for hypertension only goes to review (not medically necessary)",
        {"diagnoses": dx("I10")},
        "needs_review",
        [("coverage.not_supported", "tests[0].code", "4548-4")],
    ),
    (
        "a collection date before birth goes to review",
        {"patient": born("2025-12-01")},
        "needs_review",
        [("date.before_birth", "collection_date", "2025-11-03")],
    ),
    (
        "a birth date 125 years before the collection date goes to review (the lab asks the doctor)",
        {"patient": born("1900-11-03")},
        "needs_review",
        [("date.birth_too_early", "patient.birth_date", "1900-11-03")],
    ),
    (
        "a collection date no loaded release covers goes to review",
        {"collection_date": "2026-10-05"},
        "needs_review",
        [("diagnosis.date_not_covered", "diagnoses[0].code", "E11.9")],
    ),
    (
        "E11.A on an order on 2025-09-30 goes to review",
        {"collection_date": "2025-09-30", "diagnoses": dx("E11.A")},
        "needs_review",
        [("diagnosis.not_valid_on_date", "diagnoses[0].code", "E11.A")],
    ),
    (
        "E11.A on an order on 2025-10-01 is accepted",
        {"collection_date": "2025-10-01", "diagnoses": dx("E11.A")},
        "accepted",
        [],
    ),
    (
        "a test the table does not have is returned",
        {"tests": [{"code": "718-7", "system": "LOINC"}]},
        "returned",
        [("test.not_in_table", "tests[0].code", "718-7")],
    ),
    (
        "a test no longer valid on the collection date is returned",
        {"tests": [{"code": "2093-3", "system": "LOINC"}]},
        "returned",
        [("test.not_valid_on_date", "tests[0].code", "2093-3")],
    ),
    (
        "a test the table marks as not orderable is returned",
        {"tests": [{"code": "24331-1", "system": "LOINC"}]},
        "returned",
        [("test.not_billable", "tests[0].code", "24331-1")],
    ),
    (
        "an HCPCS test after the loaded HCPCS releases goes to review",
        {"tests": [{"code": "G0103", "system": "HCPCS"}], "collection_date": "2027-01-04", "diagnoses": []},
        "needs_review",
        [("test.date_not_covered", "tests[0].code", "G0103"), ("order.no_diagnosis", "diagnoses", [])],
    ),
    (
        "a payer's sex edit on a test goes to review on an order",
        {"tests": [{"code": "G0103", "system": "HCPCS"}]},
        "needs_review",
        [("test.sex_conflict", "tests[0].code", "G0103")],
    ),
    (
        "a maternity diagnosis for a man on an order goes to review",
        {"tests": [{"code": "83036", "system": "CPT"}], "diagnoses": dx("E11.9", "O80"), "patient": ADULT_MALE},
        "needs_review",
        [("diagnosis.sex_conflict", "diagnoses[1].code", "O80")],
    ),
]


@pytest.mark.parametrize(("why", "changes", "outcome", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_order(small_table, why, changes, outcome, expected):
    decision = decide(an_order(**changes), "order", small_table)
    assert decision.outcome == outcome, [r.message for r in decision.reasons]
    assert [(r.id, r.field, r.value) for r in decision.reasons] == expected


def test_an_order_without_an_ordering_provider_goes_to_review(small_table):
    order = an_order()
    del order["ordering_provider"]
    decision = decide(order, "order", small_table)
    assert decision.outcome == "needs_review"
    assert [(r.id, r.field) for r in decision.reasons] == [("npi.missing", "ordering_provider.npi")]


def test_a_claim_without_a_billing_npi_is_still_returned(small_table):
    decision = decide(a_claim(billing_provider={}), "claim", small_table)
    assert [(r.id, r.outcome) for r in decision.reasons] == [("event.missing_field", "returned")]


NOT_LOADED_CASES = [
    # (the system left out of the table, kind, event, rule id)
    ("ICD-10-CM", "claim", a_claim(), "diagnosis.system_not_loaded"),
    ("CPT", "claim", a_claim(), "procedure.system_not_loaded"),
    ("LOINC", "order", an_order(), "test.system_not_loaded"),
    ("POS", "claim", a_claim(place_of_service="11"), "place_of_service.system_not_loaded"),
]


@pytest.mark.parametrize(("system", "kind", "event", "rule_id"), NOT_LOADED_CASES, ids=[c[3] for c in NOT_LOADED_CASES])
def test_a_system_not_loaded_goes_to_review(system, kind, event, rule_id):
    from processor.code_table.table import CodeTable
    from tests.conftest import SMALL_TABLE

    table = CodeTable("partial").load((k, r) for k, r in SMALL_TABLE if r["system"] != system)
    decision = decide(event, kind, table)
    assert decision.outcome == "needs_review"
    assert rule_id in [r.id for r in decision.reasons]


def test_every_rule_has_a_case_with_a_real_code():
    covered = {i for cases in (CLAIM_CASES, ORDER_CASES) for *_, expected in cases for i, _, _ in expected}
    covered |= {case[3] for case in NOT_LOADED_CASES} | {"npi.missing"}
    # The duplicate window's reasons (real claims through the window: tests/unit/test_member_check.py).
    covered |= {"claim.duplicate", "line.duplicate", "claim.suspect_duplicate", "claim.replaces_unknown"}
    covered |= {"diagnosis.sex_list_conflict"}  # off by default: test_a_payer_can_keep_cms_last_sex_lists
    assert set(RULES) - covered == set()


def test_a_payer_can_keep_cms_last_sex_lists(small_table):
    """CMS dropped the MCE sex lists from FY2025; a payer who keeps them switches the rule on."""
    claim = a_claim(patient={"birth_date": "1961-04-12", "sex": "M"}, diagnoses=dx("I10", "Z34.00"))
    assert decide(claim, "claim", small_table).outcome == "accepted"
    policy = policy_from({"rules": {"diagnosis.sex_list_conflict": "returned"}})
    decision = decide(claim, "claim", small_table, policy)
    assert [(r.id, r.field, r.value) for r in decision.reasons] == [
        ("diagnosis.sex_list_conflict", "diagnoses[1].code", "Z34.00")
    ]
    assert "sex F" in decision.reasons[0].message


def test_every_review_says_what_to_check(small_table):
    for cases, kind, make in ((CLAIM_CASES, "claim", a_claim), (ORDER_CASES, "order", an_order)):
        for _why, changes, _outcome, _expected in cases:
            for reason in decide(make(**changes), kind, small_table).reasons:
                assert (reason.outcome == "needs_review") == bool(reason.review), reason
                assert "{" not in reason.message and "{" not in (reason.review or ""), reason


def test_the_out_of_coverage_reason_names_the_loaded_releases(small_table):
    claim = a_claim(lines=[line("99213", day="2026-10-01")], submitted_at="2026-10-01T12:00:00Z")
    reason = decide(claim, "claim", small_table).reasons[0]
    assert "does not cover ICD-10-CM on 2026-10-01" in reason.message
    assert "ICD-10-CM FY2026 2025-10-01 to 2026-09-30" in reason.message
    assert (reason.category, reason.review) == ("A2", reason.review) and "2026-10-01" in reason.review


def test_reasons_carry_the_payers_codes(small_table):
    def codes_of(kind, event):
        return [(r.category, r.carc, r.rarc) for r in decide(event, kind, small_table).reasons]

    assert codes_of("claim", a_claim(diagnoses=dx("O80"), patient=born("1995-06-01", "M"))) == [("A8", "10", None)]
    # Payment edits deny the line: the claim is accepted for processing (A2), the line carries CARC/RARC.
    assert codes_of("claim", a_claim(lines=[line("36415", units=3)])) == [("A2", "151", "N362")]
    assert codes_of("claim", a_claim(lines=[line("83036", pointers=(2,))])) == [("A2", "50", None)]
    assert codes_of("claim", a_claim(lines=[line("93000"), line("93005", number=2)])) == [("A2", "236", None)]
    assert codes_of("claim", a_claim(lines=[line("99201")])) == [("A7", "181", None)]


def test_a_system_with_no_codes_loaded_goes_to_review(small_table):
    """LOINC is not shipped: with no LOINC rows the table cannot say, so a coder looks."""
    from processor.code_table.table import CodeTable
    from tests.conftest import SMALL_TABLE

    without_loinc = CodeTable("no-loinc").load((k, r) for k, r in SMALL_TABLE if r["system"] != "LOINC")
    decision = decide(an_order(), "order", without_loinc)
    assert decision.outcome == "needs_review"
    assert [(r.id, r.field) for r in decision.reasons] == [("test.system_not_loaded", "tests[0].code")]
    assert "LOINC" in decision.reasons[0].message


def test_messages_name_the_field_the_value_and_what_to_do(small_table):
    reason = decide(a_claim(diagnoses=dx("E11")), "claim", small_table).reasons[0]
    assert reason.message.startswith("diagnoses[0].code is 'E11'")
    assert "billable code" in reason.message
    assert (reason.category, reason.carc, reason.rarc) == ("A7", "16", "M81")


def test_diagnosis_is_checked_on_the_dates_of_the_lines_that_point_at_it(small_table):
    claim = a_claim(
        diagnoses=dx("I10", "E11.A"),
        lines=[
            line("99213", day="2025-09-30", pointers=(1,)),
            line("99213", day="2025-10-01", pointers=(2,), number=2),
        ],
    )
    assert decide(claim, "claim", small_table).outcome == "accepted"


def test_decision_records_the_table_version(small_table):
    assert decide(a_claim(), "claim", small_table).code_table_version == "test"


def test_every_rule_is_declared_with_a_message_and_outcomes():
    for rule in RULES.values():
        # None: off unless a payer's rules file switches it on (diagnosis.sex_list_conflict)
        assert rule.outcome in (*Outcome, None) and rule.order_outcome in (*Outcome, None)
        assert "{field}" in rule.message or "{value" in rule.message
        assert rule.category in {"A2", "A3", "A6", "A7", "A8"}


def test_remembered_answers_follow_the_table_as_it_changes():
    """The engine keeps its per-code answers in its memo of the table; a change to the table must reach the
    next decision, and a reason must name the field of the event at hand, not of the one that filled the memo."""
    table = CodeTable("test").load([*SMALL_TABLE, *SMALL_POLICY])
    claim = a_claim(diagnoses=dx("E11.9", "I10"))
    assert decide(claim, "claim", table).outcome is Outcome.ACCEPTED
    assert memo_of(table)  # the answers were kept

    ((key, record),) = [(k, r) for k, r in SMALL_TABLE if k.startswith("ICD-10-CM|I10|")]
    table.apply(key, None)  # I10 withdrawn
    assert not memo_of(table)
    withdrawn = decide(claim, "claim", table)
    assert [(r.id, r.field) for r in withdrawn.reasons] == [("diagnosis.not_in_table", "diagnoses[1].code")]
    swapped = decide(a_claim(diagnoses=dx("I10", "E11.9")), "claim", table)  # same answer, other field
    assert [(r.id, r.field) for r in swapped.reasons] == [("diagnosis.not_in_table", "diagnoses[0].code")]

    table.apply(key, record)  # and back
    assert decide(claim, "claim", table).outcome is Outcome.ACCEPTED


# The small table's codes with CMS's MCE lists and the releases, but no coverage, NCCI or MUE rows.
FAST_TABLE = [*SMALL_TABLE, *((k, r) for k, r in SMALL_POLICY if k.split("|")[0] in (MCE, MCE_AGE, RELEASE))]


def typed(event: dict, kind: str) -> Claim | Order:
    """``event`` as ``decode_event`` gives it to the engine (the worker's path)."""
    decoded = decode_event(orjson.dumps(event), kind)
    assert decoded is not None
    return decoded[1]


def test_a_clean_event_is_decided_alike_with_the_memo_cold_and_warm():
    """A clean claim, a stay and a clean order are accepted alike before and after their codes' answers are in the
    memo, and the reasonless record written from kept bytes is the one ``as_record`` gives."""
    table = CodeTable("test").load(FAST_TABLE)
    claim = typed(a_claim(lines=[line("99213", pointers=(1, 2), modifiers=("RT",)), line("93000", number=2)]), "claim")
    stay = typed(a_claim(**STAY, admitting_diagnosis={"code": "N39.0", "system": "ICD-10-CM"}), "claim")
    order = typed(an_order(), "order")
    events = [(claim, "claim"), (stay, "claim"), (order, "order")]
    cold = [decide(event, kind, table) for event, kind in events]  # fills the memo
    warm = [decide(event, kind, table) for event, kind in events]
    assert warm == cold
    assert all(d.outcome is Outcome.ACCEPTED and not d.reasons for d in warm)
    at, source = "2026-01-01T00:00:00.000Z", {"topic": "t", "partition": 0, "offset": 7}
    for decision, (event, _) in zip(warm, events, strict=True):
        raw = msgspec.json.encode(event)
        assert decision.encode_record(raw, at, source) == orjson.dumps(
            decision.as_record(orjson.Fragment(raw), at, source)
        )
        assert decision.encode_record(raw, at) == orjson.dumps(decision.as_record(orjson.Fragment(raw), at))


def test_remembered_answers_follow_the_table_and_the_policy():
    """The memo is the table's as it is: a code withdrawn, a new MUE, a payer's policy each reach the very next
    decision of a claim accepted, with its answers remembered, just before."""
    table = CodeTable("test").load(FAST_TABLE)
    claim = typed(a_claim(lines=[line("99213", pointers=(1, 2), units=3)]), "claim")
    for _ in range(2):  # the second with the answers remembered
        assert decide(claim, "claim", table).outcome is Outcome.ACCEPTED

    ((key, record),) = [(k, r) for k, r in SMALL_TABLE if k.startswith("ICD-10-CM|I10|")]
    table.apply(key, None)  # I10 withdrawn
    for _ in range(2):
        withdrawn = decide(claim, "claim", table)
        assert [(r.id, r.field) for r in withdrawn.reasons] == [("diagnosis.not_in_table", "diagnoses[1].code")]
    lenient = policy_from({"claim": {"diagnosis.not_in_table": "off"}})
    assert decide(claim, "claim", table, lenient).reasons == ()
    table.apply(key, record)  # and back
    for _ in range(2):
        assert decide(claim, "claim", table).outcome is Outcome.ACCEPTED

    table.apply(*policy_record(MUE, "99213", "2024-01-01", None, {"code": "99213", "max_units": 2}))  # a new MUE
    for _ in range(2):
        capped = decide(claim, "claim", table)
        assert [(r.id, r.outcome) for r in capped.reasons] == [("units.over_mue", Outcome.DENIED)]
    returned = decide(claim, "claim", table, policy_from({"claim": {"units.over_mue": "returned"}}))
    assert returned.outcome is Outcome.RETURNED


def test_remembered_answers_keep_claim_types_and_dates_apart():
    """The same codes on claims of other kinds and dates: an answer remembered for one is never another's."""
    table = CodeTable("test").load(FAST_TABLE)
    professional = typed(a_claim(diagnoses=dx("E11.9", "I10")), "claim")
    for _ in range(2):
        assert decide(professional, "claim", table).outcome is Outcome.ACCEPTED
    # E11.9 is on CMS's questionable admission list: a stay is held for review on it, however often a
    # professional claim of it was accepted.
    stay = typed(a_claim(**{**STAY, "diagnoses": dx("E11.9", "I10")}), "claim")
    for _ in range(2):
        assert [r.id for r in decide(stay, "claim", table).reasons] == ["diagnosis.questionable_admission"]
    # B88.0 is billable in FY2025 and a header from FY2026: a date of the other year is judged anew.
    fy2025 = typed(a_claim(diagnoses=dx("B88.0"), lines=[line("99213", day="2025-09-15")]), "claim")
    fy2026 = typed(a_claim(diagnoses=dx("B88.0"), lines=[line("99213", day="2025-11-03")]), "claim")
    for _ in range(2):
        assert decide(fy2025, "claim", table).outcome is Outcome.ACCEPTED
        assert [r.id for r in decide(fy2026, "claim", table).reasons] == ["diagnosis.header"]
    # An outpatient claim of the same codes; a diagnosis no line points at is judged on the claim's first date
    # of service, a pointed one on its lines' dates.
    first_fy2025 = [line("99213", day="2025-09-15", pointers=(1,)), line("93000", day="2025-11-03", number=2)]
    outpatient = typed(a_claim(claim_type="outpatient", diagnoses=dx("E11.9", "B88.0"), lines=first_fy2025), "claim")
    first_fy2026 = [line("99213", day="2025-10-20", pointers=(1,)), line("93000", day="2025-11-03", number=2)]
    later = typed(a_claim(diagnoses=dx("E11.9", "B88.0"), lines=first_fy2026), "claim")
    for _ in range(2):
        assert decide(outpatient, "claim", table).outcome is Outcome.ACCEPTED
        assert [(r.id, r.field) for r in decide(later, "claim", table).reasons] == [
            ("diagnosis.header", "diagnoses[1].code")
        ]
    assert decide(outpatient, "claim", table).outcome is Outcome.ACCEPTED
    assert decide(professional, "claim", table).outcome is Outcome.ACCEPTED


def generated_events(count: int, seed: int) -> list[tuple[str, Claim | Order]]:
    """The sample generator's events, half of them with a mistake, as the engine gets them."""
    from processor import samples

    return [(kind, typed(event, kind)) for kind, event in samples.generate(count, seed=seed, bad_share=0.5)
            if decode_event(orjson.dumps(event), kind) is not None]  # fmt: skip


def test_remembered_answers_never_change_a_decision():
    """There is one review, and a clean event costs little because each code's answer is remembered: so the memo
    must never change what is decided. Over generated events (half broken, every claim type), with a payer's
    policy and without, each decision with the memo warm equals the one with the memo emptied just before."""
    from processor.code_table.sources import table_records

    table = CodeTable("memo-guard").load([*table_records(demo=True), *SMALL_POLICY])
    lenient = policy_from({"rules": {"diagnosis.header": "off", "npi.invalid": "needs_review"}})
    events = generated_events(1_000, seed=11)
    for policy in (None, lenient):
        warm = [decide(event, kind, table, policy) for kind, event in events]
        cold = []
        for kind, event in events:
            memo_of(table).clear()
            cold.append(decide(event, kind, table, policy))
        assert warm == cold
        assert sum(not d.reasons for d in warm) > len(events) // 3  # clean events are among them


def test_a_code_the_memo_says_has_no_patient_or_principal_edit_has_none():
    """The review skips a code's age and sex edits (``fits_patient``) and its principal-diagnosis edits
    (``principal``) when its remembered answer says it has none (``patient_edits``, ``principal_edits``): for
    every answer the generated events and the small table leave in the memo, running those edits anyway, for
    patients of every sex and of ages 0 to 124, on every claim type, finds nothing where the answer says none."""
    from processor.code_table.sources import table_records

    table = CodeTable("edits-guard").load([*table_records(demo=True), *SMALL_TABLE, *SMALL_POLICY])
    for kind, event in generated_events(1_000, seed=12):
        decide(event, kind, table)
    for _why, changes, *_ in CLAIM_CASES:
        decide(a_claim(**changes), "claim", table)
    answers = [(key, found) for key, found in memo_of(table).items()
               if isinstance(found, decide_module._Coded) and key[3][0] is not None]  # fmt: skip
    assert any(not found.patient_edits for _, found in answers) and any(found.patient_edits for _, found in answers)
    for (role, *_, days), found in answers:
        day = days[0]
        for sex in "MFU":
            for age in (0, 1, 10, 17, 30, 64, 65, 124):
                review = decide_module._Review("claim", table, decide_module.DEFAULT_POLICY)
                review.birth, review.sex = f"{int(day[:4]) - age:04d}{day[4:]}", sex
                if not found.patient_edits:
                    review.fits_patient("procedure" if role == "icd_procedure" else role, "x", found.code, found, day)
                if role == "diagnosis" and not found.principal_edits:
                    for claim_type in ("professional", "outpatient", "inpatient"):
                        review.principal(found.code, found, claim_type, has_secondary=False)
                assert not review.reasons, (role, found)
