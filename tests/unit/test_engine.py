"""The engine against a small table of real codes: one case a line, each with the reason it exists."""

from __future__ import annotations

import pytest

from processor.engine import RULES, Outcome, decide
from tests.conftest import a_claim, an_order


def dx(*codes: str, system: str = "ICD-10-CM") -> list[dict]:
    return [{"code": code, "system": system} for code in codes]


def line(code: str, system: str = "CPT", day: str = "2025-11-03", pointers: tuple[int, ...] = (1,)) -> dict:
    return {"line_number": 1, "code": code, "system": system, "modifiers": [], "units": 1,
            "service_date": day, "diagnosis_pointers": list(pointers)}  # fmt: skip


CLAIM_CASES = [
    # (why, changes, outcome, [(reason id, field, value)])
    ("a clean claim is accepted", {}, "accepted", []),
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
    ("an ICD-10-PCS line is accepted", {"lines": [line("0DTJ4ZZ", "ICD-10-PCS")]}, "accepted", []),
    (
        "ICD-10-PCS has no letter O",
        {"lines": [line("0DTJ4ZO", "ICD-10-PCS")]},
        "returned",
        [("procedure.malformed", "lines[0].code", "0DTJ4ZO")],
    ),
    ("a payer-internal code in the table is accepted", {"lines": [line("X100", "ACME-INTERNAL")]}, "accepted", []),
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
]


@pytest.mark.parametrize(("why", "changes", "outcome", "expected"), CLAIM_CASES, ids=[c[0] for c in CLAIM_CASES])
def test_claim(small_table, why, changes, outcome, expected):
    decision = decide(a_claim(**changes), "claim", small_table)
    assert decision.outcome == outcome, [r.message for r in decision.reasons]
    assert [(r.id, r.field, r.value) for r in decision.reasons] == expected


def test_an_unknown_code_of_a_loaded_system_is_returned(small_table):
    decision = decide(a_claim(lines=[line("E0114", "HCPCS"), line("99213")]), "claim", small_table)
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
]


@pytest.mark.parametrize(("why", "changes", "outcome", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_order(small_table, why, changes, outcome, expected):
    decision = decide(an_order(**changes), "order", small_table)
    assert decision.outcome == outcome, [r.message for r in decision.reasons]
    assert [(r.id, r.field, r.value) for r in decision.reasons] == expected


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
    assert (reason.category, reason.carc, reason.rarc) == ("A7", "16", "M76")


def test_diagnosis_is_checked_on_the_dates_of_the_lines_that_point_at_it(small_table):
    claim = a_claim(
        diagnoses=dx("I10", "E11.A"),
        lines=[line("99213", day="2025-09-30", pointers=(1,)), line("99213", day="2025-10-01", pointers=(2,))],
    )
    assert decide(claim, "claim", small_table).outcome == "accepted"


def test_decision_records_the_table_version(small_table):
    assert decide(a_claim(), "claim", small_table).code_table_version == "test"


def test_every_rule_is_declared_with_a_message_and_outcomes():
    for rule in RULES.values():
        assert rule.outcome in Outcome and rule.order_outcome in Outcome
        assert "{field}" in rule.message or "{value" in rule.message
        assert rule.category in {"A3", "A6", "A7", "A8", "P2"}
