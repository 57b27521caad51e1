"""The formats submitters speak, in and out: X12 837P/837I with their 999 and 277CA, HL7 v2 ORM^O01 and OML^O21
with their ACK and ORL^O22, FHIR R4 Claim and ServiceRequest with their ClaimResponse and OperationOutcome.

Every event read validates against its JSON Schema; every position points at the element the value came from;
the engine decides the events; the answers are checked by the libraries that know each standard: pyx12
against the 999 (X231A1) and 277CA (X214) implementation guides, hl7apy against the v2.5.1 message
structures, fhir.resources against FHIR's R4B models. Fixtures (fictional people and practices) are in
tests/fixtures/formats/.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from processor.code_table.table import CodeTable
from processor.engine import decide
from processor.formats import (
    Format,
    build_277ca,
    build_999,
    build_fhir_response,
    build_hl7_response,
    detect,
    parse_837,
    parse_fhir,
    parse_hl7,
    position_of,
    validate_x12,
)
from processor.formats.fhir import ERROR_EXPRESSION
from processor.formats.x12 import read_interchange
from processor.formats.x12_validation import STALE_STATUS_CODES
from tests.conftest import SMALL_POLICY, SMALL_TABLE, rows
from tests.unit.test_schemas import validator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
NOW = datetime(2025, 11, 5, 15, 0, tzinfo=UTC)
DECIDED_AT = "2025-11-05T15:00:00.000Z"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# The real codes the fixtures use, on top of the engine tests' small table.
FORMAT_CODES = rows(
    *[(system, code, True, "2024-10-01", None) for system, code in (
        ("ICD-10-CM", "J06.9"), ("ICD-10-CM", "R05.9"), ("ICD-10-CM", "E78.5"), ("ICD-10-CM", "K21.9"),
        ("ICD-10-CM", "M25.561"), ("ICD-10-CM", "Z23"), ("ICD-10-CM", "J45.909"), ("ICD-10-CM", "K35.80"),
        ("ICD-10-CM", "R10.31"), ("ICD-10-CM", "R07.9"), ("ICD-10-CM", "R50.9"), ("ICD-10-PCS", "3E0336Z"),
    )],
    *[(system, code, True, "2024-01-01", None) for system, code in (
        ("CPT", "99214"), ("CPT", "90686"), ("CPT", "80053"), ("CPT", "99284"), ("CPT", "85025"),
        ("HCPCS", "G0008"),
    )],
)  # fmt: skip


@pytest.fixture(scope="module")
def table() -> CodeTable:
    """The small table of the engine's tests, plus the real codes the fixtures use."""
    return CodeTable("formats-test").load([*SMALL_TABLE, *SMALL_POLICY, *FORMAT_CODES])


def decided(events: list[tuple[str, dict[str, Any]]], table: CodeTable) -> list[dict[str, Any]]:
    """The decision records of ``(kind, event)`` pairs; each one checked against the decision schema."""
    records = [decide(event, kind, table).as_record(event, DECIDED_AT) for kind, event in events]
    for record in records:
        validator("decision").validate(record)
    return records


def value_of(event: dict[str, Any], field: str) -> Any:
    """The value at an event field path such as ``lines[2].modifiers[0]``."""
    value: Any = event
    for step in re.findall(r"\[\d+\]|[^.\[\]]+", field):
        value = value[int(step[1:-1])] if step.startswith("[") else value[step]
    return value


# Detecting the format.

DETECT_CASES = [
    ("the content type wins over the bytes", "application/edi-x12", b'{"claim_id": "CLM-1"}', Format.X12),
    ("parameters of the content type are ignored", "application/fhir+json; charset=utf-8", b"{}", Format.FHIR),
    ("HL7 v2 by its content type", "x-application/hl7-v2+er7", b"MSH|^~\\&|", Format.HL7V2),
    ("the project's JSON by its content type, even naming a resource", "application/json",
     b'{"resourceType": "Claim"}', Format.JSON),
    ("X12 by its first bytes", None, b"ISA*00*          *00*", Format.X12),
    ("a byte order mark and blank lines before the ISA", None, b"\xef\xbb\xbf \r\nISA*00*", Format.X12),
    ("HL7 v2 by MSH and its field separator", None, b"MSH|^~\\&|EHR|", Format.HL7V2),
    ("an HL7 v2 batch", None, b"BHS|^~\\&|", Format.HL7V2),
    ("FHIR names its resourceType", None, b'{"resourceType": "ServiceRequest", "id": "x"}', Format.FHIR),
    ("the project's own event names none", None, b'{"claim_id": "CLM-1"}', Format.JSON),
    ("an unknown content type falls back to the bytes", "text/plain", b"ISA*00*", Format.X12),
    ("MSH followed by a letter is no HL7 header", None, b"MSHX|", Format.UNKNOWN),
    ("nothing recognisable", None, b"hello", Format.UNKNOWN),
    ("an empty record", None, b"", Format.UNKNOWN),
    ("a record with no value", None, None, Format.UNKNOWN),
]  # fmt: skip


@pytest.mark.parametrize(("why", "content_type", "raw", "expected"), DETECT_CASES, ids=[c[0] for c in DETECT_CASES])
def test_detect(why, content_type, raw, expected):
    assert detect(content_type, raw) is expected


@pytest.mark.parametrize("name", ["837p-50-claims.x12", "837i-3-claims.x12", "orm-o01.hl7", "oml-o21.hl7",
                                  "fhir-claim.json", "fhir-service-request.json"])  # fmt: skip
def test_every_fixture_is_recognised_by_its_first_bytes(name):
    expected = {".x12": Format.X12, ".hl7": Format.HL7V2, ".json": Format.FHIR}[Path(name).suffix]
    assert detect(None, fixture(name)) is expected


# X12 837P: 50 claims, a few with the mistakes the claim tests know.

# (claim, outcome, [(rule, field, 277CA STC01)])
CLAIM_OUTCOMES_837P = [
    ("MGF0251107", "returned", [("diagnosis.not_in_table", "diagnoses[1].code", "A7:255")]),
    ("MGF0251109", "accepted", [("ncci.bundled", "lines[2].code", "A2:20")]),
    ("MGF0251112", "returned", [("diagnosis.not_valid_on_date", "diagnoses[0].code", "A7:254")]),
    ("MGF0251117", "needs_review", [("diagnosis.code_first_principal", "diagnoses[0].code", "A2:46")]),
    ("MGF0251121", "returned", [("date.invalid", "lines[0].service_date", "A7:187"),
                                ("date.invalid", "lines[1].service_date", "A7:187")]),
    ("MGF0251126", "returned", [("diagnosis.system_unknown", "diagnoses[0].system", "A7:254")]),
    ("MGF0251131", "returned", [("npi.invalid", "billing_provider.npi", "A7:562:85")]),
    ("MGF0251132", "returned", [("npi.invalid", "billing_provider.npi", "A7:562:85")]),
]  # fmt: skip
RETURNED_837P = {claim for claim, outcome, _ in CLAIM_OUTCOMES_837P if outcome == "returned"}


@pytest.fixture(scope="module")
def professional():
    return parse_837(fixture("837p-50-claims.x12"))


@pytest.fixture(scope="module")
def professional_decisions(professional, table):
    return decided([("claim", claim.event) for claim in professional.claims], table)


def test_837p_gives_one_schema_valid_claim_per_2300_loop(professional):
    assert professional.failure is None
    claims = professional.claims
    assert len(claims) == 50
    assert len({claim.event["claim_id"] for claim in claims}) == 50
    for claim in claims:
        validator("claim").validate(claim.event)
        assert claim.event["claim_type"] == "professional"
        assert claim.event["submitter_id"] == "RBS00417"
        assert claim.event["submitted_at"] == "2025-11-05T14:32:00Z"


def test_837p_maps_a_claim_as_its_segments_say(professional):
    first = professional.claims[0].event
    assert first == {
        "claim_id": "MGF0251101", "claim_type": "professional", "submitter_id": "RBS00417",
        "submitted_at": "2025-11-05T14:32:00Z", "patient": {"birth_date": "1972-10-08", "sex": "F"},
        "billing_provider": {"npi": "1748529637"},
        "member": {"id": "LHP668319468", "relationship": "self", "payer_id": "LHP0001"},
        "charge": "95.00", "place_of_service": "11",
        "diagnoses": [{"code": "K219", "system": "ICD-10-CM"}, {"code": "E119", "system": "ICD-10-CM"},
                      {"code": "N390", "system": "ICD-10-CM"}],
        "lines": [{"line_number": 1, "code": "99213", "system": "CPT", "modifiers": [], "units": 1,
                   "service_date": "2025-10-08", "diagnosis_pointers": [1, 2, 3], "charge": "95.00"}],
    }  # fmt: skip
    by_id = {claim.event["claim_id"]: claim.event for claim in professional.claims}
    assert by_id["MGF0251126"]["diagnoses"] == [{"code": "25000", "system": "ICD-9-CM"}]  # BK: ICD-9-CM
    assert by_id["MGF0251131"]["billing_provider"] == {"npi": "1326509870"}  # the second billing provider
    child = by_id["MGF0251133"]  # under a patient level (HL 23): the dependent's own birth date
    assert child["patient"]["birth_date"] > "2011-12-31"
    assert [line["code"] for line in by_id["MGF0251109"]["lines"]] == ["99214", "93000", "93005"]
    assert {line["system"] for claim in by_id.values() for line in claim["lines"]} == {"CPT", "HCPCS"}


# (claim, field, where it came from)
POSITION_CASES = [
    ("MGF0251101", "claim_id", "2300 CLM-01 (segment 19)"),
    ("MGF0251101", "submitter_id", "1000A NM1-09 (segment 3)"),
    ("MGF0251101", "submitted_at", "BHT-04 (segment 2)"),
    ("MGF0251101", "billing_provider.npi", "2010AA NM1-09 (segment 8)"),
    ("MGF0251101", "patient.birth_date", "2010BA DMG-02 (segment 17)"),
    ("MGF0251101", "diagnoses[1].code", "2300 HI-02-2 (segment 20)"),
    ("MGF0251101", "diagnoses[1].system", "2300 HI-02-1 (segment 20)"),
    ("MGF0251101", "lines[0].code", "2400 SV1-01-2 (segment 22)"),
    ("MGF0251101", "lines[0].units", "2400 SV1-04 (segment 22)"),
    ("MGF0251101", "lines[0].diagnosis_pointers[2]", "2400 SV1-07-3 (segment 22)"),
    ("MGF0251101", "lines[0].service_date", "2400 DTP-03 (segment 23)"),
    ("MGF0251101", "lines[0].modifiers[0]", "2400 SV1-01-3 (segment 22)"),  # no modifier: where it would be
    ("MGF0251109", "lines[2].code", "2400 SV1-01-2 (segment 154)"),
    ("MGF0251121", "lines[1].service_date", "2400 DTP-03 (segment 351)"),
    ("MGF0251131", "billing_provider.npi", "2010AA NM1-09 (segment 484)"),
    ("MGF0251133", "patient.birth_date", "2010CA DMG-02 (segment 532)"),
]


@pytest.mark.parametrize(("claim_id", "field", "where"), POSITION_CASES)
def test_837p_positions(professional, claim_id, field, where):
    claim = next(claim for claim in professional.claims if claim.event["claim_id"] == claim_id)
    assert str(position_of(claim.positions, field)) == where


def x12_element(segments: list[list[str]], position) -> str:
    elements = segments[position.ordinal - 1]
    assert elements[0] == position.segment
    value = elements[position.element] if position.element < len(elements) else ""
    if position.component:
        parts = value.split(":")
        value = parts[position.component - 1] if position.component <= len(parts) else ""
    return value


@pytest.mark.parametrize(("name", "values"), [("837p-50-claims.x12", 600), ("837i-3-claims.x12", 50)])
def test_every_837_position_holds_the_value_it_gave_the_event(name, values):
    raw = fixture(name)
    segments = read_interchange(raw).groups[0].transactions[0].segments
    checked = 0
    for claim in parse_837(raw).claims:
        for field, position in claim.positions.items():
            if field.endswith((".system", "]")) or field in ("claim_type", "diagnoses", "procedures"):
                continue  # a qualifier named as a system, or a whole item: no single value to compare
            if field in ("member.relationship", "frequency"):
                continue  # a code named by the reader (SBR02 18: self): tests/unit/test_x12_claim_fields.py
            value = value_of(claim.event, field) if _has(claim.event, field) else None
            if not isinstance(value, str | int | float) or field == "submitted_at":
                continue
            text = x12_element(segments, position)
            if field.endswith("charge"):  # an amount, written with two decimals: 95 is 95.00
                assert Decimal(text) == Decimal(value), (claim.event["claim_id"], field)
                checked += 1
                continue
            expected = str(value).replace("-", "") if field.endswith(("date", "birth_date")) else str(value)
            # a range (RD8) holds the first and last day; a DT date and time starts with the date
            assert expected in text.split("-") or text[:8] == expected, (claim.event["claim_id"], field)
            checked += 1
    assert checked > values


def _has(event: dict[str, Any], field: str) -> bool:
    try:
        value_of(event, field)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def test_837p_decisions(professional, professional_decisions):
    by_id = {record["event_id"]: record for record in professional_decisions}
    for claim_id, outcome, reasons in CLAIM_OUTCOMES_837P:
        record = by_id[claim_id]
        assert record["outcome"] == outcome, claim_id
        got = [(r["id"], r["field"], ":".join(p for p in r["stc"].values() if p)) for r in record["reasons"]]
        assert got == reasons, claim_id
    assert by_id["MGF0251109"]["lines_denied"] == [3]
    named = {claim_id for claim_id, _, _ in CLAIM_OUTCOMES_837P}
    assert all(record["outcome"] == "accepted" and not record["reasons"]
               for claim_id, record in by_id.items() if claim_id not in named)  # fmt: skip


def test_999_of_the_837p_notes_the_date_off_the_calendar_and_conforms_to_x231a1(professional):
    answer = build_999(professional, control_number=9001, created_at=NOW)
    for segment in ("GS*FA*LHP0001*RBS00417*20251105*1500*9001*X*005010X231A1", "AK1*HC*4711*005010X222A1",
                    "AK2*837*0001*005010X222A1", "IK3*DTP*347*2400*8", "CTX*CLM01:MGF0251121",
                    "IK4*3*1251*8*20250230", "IK3*DTP*351*2400*8", "IK5*E", "AK9*E*1*1*1"):  # fmt: skip
        assert f"{segment}~" in answer
    assert validate_x12(answer) == []


def test_277ca_of_the_837p_names_every_rejected_claim_and_conforms_to_x214(professional, professional_decisions):
    answer = build_277ca(professional, professional_decisions, control_number=9002, created_at=NOW)
    assert validate_x12(answer) == []
    segments = [segment.split("*") for segment in answer.split("~\n") if segment]
    stcs: dict[str, list[list[str]]] = {}
    claim = None
    for segment in segments:
        if segment[0] == "TRN" and segment[1] == "2" and segment[2].startswith("MGF"):
            claim = segment[2]
        elif segment[0] in ("HL", "SE"):
            claim = None
        elif segment[0] == "STC" and claim is not None and segment[3] in ("U", "WQ") and len(segment) > 4:
            stcs.setdefault(claim, []).append(segment)
    assert len(stcs) == 50
    rejected = {claim for claim, found in stcs.items() if found[0][3] == "U"}
    assert rejected == RETURNED_837P
    for claim_id, _, reasons in CLAIM_OUTCOMES_837P:
        if claim_id in RETURNED_837P:
            assert [stc[1] for stc in stcs[claim_id]] == [stc for _, _, stc in reasons]
    assert stcs["MGF0251117"][0][1:4] == ["A2:46", "20251105", "WQ"]  # held for review: accepted, pended
    assert stcs["MGF0251101"][0][1:4] == ["A2:20", "20251105", "WQ"]
    # Where in the 837 and what to do, in STC12; the lines a reason names, in 2220D.
    assert stcs["MGF0251107"][0][12].startswith("2300 HI-02-2 (segment 110) diagnoses[1].code is 'S52521X'")
    assert "SVC*HC:99214*140*****1~\nSTC*A7:187*20251105*U~\nREF*FJ*MGF0251121-1~" in answer
    assert "QTY*90*44~\nQTY*AA*6~" in answer


def test_837i_reads_stays_and_outpatient_claims_by_type_of_bill():
    parsed = parse_837(fixture("837i-3-claims.x12"))
    assert parsed.failure is None
    stay, outpatient, unacceptable = (claim.event for claim in parsed.claims)
    for event in (stay, outpatient, unacceptable):
        validator("claim").validate(event)
    assert [stay["claim_type"], outpatient["claim_type"], unacceptable["claim_type"]] == [
        "inpatient", "outpatient", "inpatient"]  # fmt: skip
    assert (stay["admission_date"], stay["discharge_date"], stay["discharge_status"]) == (
        "2025-11-01", "2025-11-04", "01")  # fmt: skip
    assert stay["diagnoses"][0] == {"code": "K3580", "system": "ICD-10-CM"}
    assert stay["admitting_diagnosis"] == {"code": "R1031", "system": "ICD-10-CM"}
    assert stay["procedures"] == [{"code": "0DTJ4ZZ", "system": "ICD-10-PCS", "date": "2025-11-02"},
                                  {"code": "3E0336Z", "system": "ICD-10-PCS", "date": "2025-11-02"}]  # fmt: skip
    # Room and board (0120) and the OR (0360) carry no HCPCS code: only the lab line is checked.
    assert stay["lines"] == [{"line_number": 2, "revenue_code": "0300", "code": "80053", "system": "CPT",
                              "modifiers": [], "units": 1, "service_date": "2025-11-01",
                              "charge": "185.00"}]  # fmt: skip
    assert [line["revenue_code"] for line in outpatient["lines"]] == ["0450", "0730", "0300"]
    assert unacceptable["patient"] == {"birth_date": "1967-08-11", "sex": "F"}  # the dependent (2010CA)
    positions = parsed.claims[0].positions
    assert str(positions["discharge_date"]) == "2300 DTP-03 (segment 21)"
    assert str(positions["discharge_status"]) == "2300 CL1-03 (segment 23)"
    assert str(positions["procedures[1].date"]) == "2300 HI-01-4 (segment 28)"
    assert str(positions["claim_type"]) == "2300 CLM-05-1 (segment 19)"


def test_837i_answers_conform_and_the_277ca_gives_the_bill_type(table):
    parsed = parse_837(fixture("837i-3-claims.x12"))
    records = decided([("claim", claim.event) for claim in parsed.claims], table)
    assert [record["outcome"] for record in records] == ["accepted", "accepted", "returned"]
    assert records[2]["reasons"][0]["id"] == "diagnosis.unacceptable_principal"
    ack = build_999(parsed, control_number=11, created_at=NOW)
    answer = build_277ca(parsed, records, control_number=12, created_at=NOW)
    assert "AK9*A*1*1*1~" in ack
    assert "REF*BLT*111~" in answer and "REF*BLT*131~" in answer
    assert "TRN*2*MVH25110403~\nSTC*A8:254*20251105*U*3120" in answer
    assert validate_x12(ack) == [] and validate_x12(answer) == []


def recount(raw: bytes) -> bytes:
    """The interchange with SE01 set to the number of segments its transaction set now holds."""
    text = raw.decode()
    start, end = text.index("ST*837"), text.index("SE*")
    count = text[start:end].count("~") + 1
    return re.sub(r"SE\*\d+\*", f"SE*{count}*", text).encode()


P837 = fixture("837p-50-claims.x12")
# (why, the broken interchange, segments its answer holds)
BROKEN_837 = [
    ("SE01 miscounts the transaction set", P837.replace(b"SE*918*", b"SE*917*"), ["IK5*R*4", "AK9*R*1*1*0"]),
    ("SE02 does not repeat ST02", P837.replace(b"SE*918*0001", b"SE*918*0002"), ["IK5*R*3", "AK9*R*1*1*0"]),
    ("a segment no 837 has", recount(P837.replace(b"HI*ABK:K219", b"ZZZ*1~\nHI*ABK:K219")),
     ["IK3*ZZZ*20**6", "IK5*R*5", "AK9*R*1*1*0"]),
    ("a segment id that is no segment id", recount(P837.replace(b"HI*ABK:K219", b"h1*1~\nHI*ABK:K219")),
     ["IK3*h1*20**1", "IK5*R*5", "AK9*R*1*1*0"]),
    ("a claim outside any subscriber level", recount(P837.replace(b"HL*2*1*22*0~\n", b"", 1)),
     ["IK3*CLM*18**2", "IK5*R*5", "AK9*R*1*1*0"]),
    ("GE01 miscounts the group", P837.replace(b"GE*1*4711", b"GE*2*4711"), ["IK5*A", "AK9*R*1*1*0*5"]),
    ("a functional group of another kind", P837.replace(b"GS*HC*", b"GS*HP*"), ["AK1*HP*4711", "AK9*R*1*1*0*1"]),
    ("the last segment has no terminator", P837.rstrip()[:-1], ["TA1*000004711*251105*1432*R*023"]),
    ("IEA02 does not repeat ISA13", P837.replace(b"IEA*1*000004711", b"IEA*1*000004712"),
     ["TA1*000004711*251105*1432*R*001"]),
    ("the ISA is cut short", P837[:60], ["TA1*000000000*251105*1500*R*022"]),
    ("a version other than 005010", P837.replace(b"*00501*", b"*00401*", 1), ["TA1*000004711*251105*1432*R*003"]),
]  # fmt: skip


@pytest.mark.parametrize(("why", "raw", "expected"), BROKEN_837, ids=[case[0] for case in BROKEN_837])
def test_a_broken_837_yields_a_rejection_and_no_claims(why, raw, expected):
    parsed = parse_837(raw)
    assert parsed.claims == []
    assert parsed.failure is not None
    assert "FITZGERALD" not in parsed.failure and "20250230" not in parsed.failure  # names no content
    answer = build_999(parsed, control_number=77, created_at=NOW)
    for segment in expected:
        assert f"{segment}~" in answer or f"{segment}*" in answer, answer
    assert build_277ca(parsed, [], control_number=78, created_at=NOW) is None
    assert validate_x12(answer) == []


def test_one_broken_transaction_set_of_two_partially_accepts_the_group(table):
    text = fixture("837i-3-claims.x12").decode()
    start, end = text.index("ST*837"), text.index("GE*")
    second = text[start:end].replace("ST*837*0001", "ST*837*0002").replace("SE*84*0001", "SE*80*0002")
    raw = (text[:end] + second + text[end:]).replace("GE*1*882", "GE*2*882").encode()
    parsed = parse_837(raw)
    assert [claim.transaction for claim in parsed.claims] == ["0001"] * 3
    answer = build_999(parsed, control_number=5, created_at=NOW)
    assert "AK2*837*0002*005010X223A2~\nIK5*R*4~\nAK9*P*2*2*1~" in answer
    assert validate_x12(answer) == []
    records = decided([("claim", claim.event) for claim in parsed.claims], table)
    assert validate_x12(build_277ca(parsed, records, control_number=6, created_at=NOW)) == []


def test_pyx12_finds_the_837p_fixture_conforms_but_for_its_dates_off_the_calendar():
    problems = validate_x12(fixture("837p-50-claims.x12").decode())
    assert [(p.segment, p.ordinal, p.element, p.code) for p in problems] == [("DTP", 347, 3, "8"), ("DTP", 351, 3, "8")]
    assert validate_x12(fixture("837i-3-claims.x12").decode()) == []


def test_pyx12s_claim_status_list_trails_x12s(professional, professional_decisions):
    """pyx12 4.0 lacks status 772 (diagnosis.header's answer): the 277CA is right, pyx12's list is stale."""
    records = copy.deepcopy(professional_decisions)
    record = next(r for r in records if r["event_id"] == "MGF0251107")
    record["reasons"][0]["stc"] = {"category": "A7", "status": "772", "entity": None}
    answer = build_277ca(professional, records, control_number=1, created_at=NOW)
    problems = validate_x12(answer)
    assert [(p.segment, p.code) for p in problems] == [("STC", "7")]
    assert "772" in STALE_STATUS_CODES


# HL7 v2.

HL7_TABLE_CODES = ["ORM", "OML"]


@pytest.fixture(scope="module")
def orm():
    return parse_hl7(fixture("orm-o01.hl7"))


@pytest.fixture(scope="module")
def oml():
    return parse_hl7(fixture("oml-o21.hl7"))


def hl7apy_validates(text: str) -> str:
    """The message structure hl7apy finds after validating ``text`` strictly against HL7 v2.5.1."""
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    return message.name


def test_orm_o01_gives_an_order_per_orc_group(orm):
    assert orm.failure is None
    assert [order.event for order in orm.orders] == [
        {"order_id": "MGF-LAB-77001", "lab_id": "PRL", "ordering_provider": {"npi": "1453627188"},
         "patient": {"birth_date": "1961-04-12", "sex": "F"}, "member": {"id": "LHP771204953"},
         "collection_date": "2025-11-03",
         "tests": [{"code": "4548-4", "system": "LOINC"}], "diagnoses": [{"code": "E11.9", "system": "ICD-10-CM"}]},
        {"order_id": "MGF-LAB-77002", "lab_id": "PRL", "ordering_provider": {"npi": "1453627188"},
         "patient": {"birth_date": "1961-04-12", "sex": "F"}, "member": {"id": "LHP771204953"},
         "collection_date": "2025-11-03",
         "tests": [{"code": "2093-4", "system": "LOINC"}], "diagnoses": [{"code": "E78.5", "system": "ICD-10-CM"}]},
    ]  # fmt: skip
    for order in orm.orders:
        validator("order").validate(order.event)


# (fixture, order, field, position, ERR-2)
HL7_POSITION_CASES = [
    ("orm-o01.hl7", 0, "order_id", "ORC-2.1 (segment 4)", "ORC^1^2^1^1"),
    ("orm-o01.hl7", 0, "ordering_provider.npi", "ORC-12.1 (segment 4)", "ORC^1^12^1^1"),
    ("orm-o01.hl7", 0, "patient.birth_date", "PID-7 (segment 2)", "PID^1^7"),
    ("orm-o01.hl7", 1, "tests[0].code", "OBR-4.1 (segment 8)", "OBR^2^4^1^1"),
    ("orm-o01.hl7", 1, "tests[0].system", "OBR-4.3 (segment 8)", "OBR^2^4^1^3"),
    ("orm-o01.hl7", 1, "diagnoses[0].code", "DG1-3.1 (segment 9)", "DG1^2^3^1^1"),
    ("orm-o01.hl7", 1, "lab_id", "MSH-6.1 (segment 1)", "MSH^1^6^1^1"),
    ("oml-o21.hl7", 0, "collection_date", "SPM-17.1 (segment 9)", "SPM^1^17^1^1"),  # OBR-7 empty: the specimen's
    ("oml-o21.hl7", 1, "collection_date", "OBR-7.1 (segment 11)", "OBR^2^7^1^1"),
    ("oml-o21.hl7", 1, "tests[0].system", "OBR-4.3 (segment 11)", "OBR^2^4^1^3"),
]


@pytest.mark.parametrize(("name", "index", "field", "where", "erl"), HL7_POSITION_CASES)
def test_hl7_positions(name, index, field, where, erl):
    position = position_of(parse_hl7(fixture(name)).orders[index].positions, field)
    assert (str(position), position.erl) == (where, erl)


def test_ack_of_an_orm_rejects_with_the_error_located(orm, table):
    records = decided([("order", order.event) for order in orm.orders], table)
    assert [record["hl7_ack"] for record in records] == ["AA", "AR"]
    ack = build_hl7_response(orm, records, control_id="LAB-ACK-1", created_at=NOW)
    segments = ack.split("\r")
    assert segments[0] == (
        "MSH|^~\\&|LIS|PRL^2.16.840.1.113883.3.9999.1^ISO|MAPLEGROVE_EHR|"
        "MAPLEGROVE^2.16.840.1.113883.3.9999.10^ISO|20251105150000||ACK^O01^ACK|LAB-ACK-1|P|2.5.1"
    )
    assert segments[1] == "MSA|AR|MGF-ORM-000123"
    assert segments[2].startswith("ERR||OBR^2^4^1^1|102^Data type error^HL70357|E|test.malformed|||tests[0].code is")
    assert len(segments) == 4 and segments[3] == ""
    assert hl7apy_validates(ack) == "ACK"


def test_orl_o22_of_an_oml_answers_each_order(oml, table):
    records = decided([("order", order.event) for order in oml.orders], table)
    assert [record["outcome"] for record in records] == ["needs_review", "returned"]
    orl = build_hl7_response(oml, records, control_id="LAB-ORL-7", created_at=NOW)
    segments = orl.split("\r")
    assert "|ORL^O22^ORL_O22|LAB-ORL-7|P|2.5.1" in segments[0]
    assert segments[1] == "MSA|AR|PCC-OML-20251104-0042"
    assert segments[2].startswith("ERR||DG1^1^3^1^1|207^Application internal error^HL70357|W|diagnosis.header|")
    assert segments[3].startswith("ERR||OBR^2^4^1^3|103^Table value not found^HL70357|E|test.system_unknown|")
    assert segments[4].startswith("PID|1||MRN902211")
    assert segments[5:9] == [
        "ORC|OK|PCC-90441^PRAIRIECC|||HD", "OBR|1|PCC-90441^PRAIRIECC||83036^Hemoglobin A1c^C4",
        "ORC|UA|PCC-90442^PRAIRIECC", "OBR|1|PCC-90442^PRAIRIECC||CBCD^CBC with differential^99PRL",
    ]  # fmt: skip
    assert hl7apy_validates(orl) == "ORL_O22"


def test_orl_o22_accepts_an_oml_with_nothing_wrong(table):
    text = fixture("oml-o21.hl7").replace(b"E11^Type 2 diabetes mellitus^I10C", b"E11.9^Type 2 diabetes^I10C")
    text = text.replace(b"CBCD^CBC with differential^99PRL", b"85025^CBC with differential^C4")
    parsed = parse_hl7(text)
    records = decided([("order", order.event) for order in parsed.orders], table)
    orl = build_hl7_response(parsed, records, control_id="LAB-ORL-8", created_at=NOW)
    assert orl.split("\r")[1] == "MSA|AA|PCC-OML-20251104-0042"
    assert "ERR|" not in orl and "ORC|OK|PCC-90442^PRAIRIECC\r" in orl
    assert hl7apy_validates(orl) == "ORL_O22"


def test_orders_sharing_a_placer_number_are_one_order_with_its_tests():
    text = fixture("orm-o01.hl7").replace(b"MGF-LAB-77002", b"MGF-LAB-77001")
    (order,) = parse_hl7(text).orders
    assert [test["code"] for test in order.event["tests"]] == ["4548-4", "2093-4"]
    assert [d["code"] for d in order.event["diagnoses"]] == ["E11.9", "E78.5"]
    assert str(order.positions["tests[1].code"]) == "OBR-4.1 (segment 8)"


ORM = fixture("orm-o01.hl7")
# (why, the message, HL7 condition, ERR-2)
BROKEN_HL7 = [
    ("not an order message", ORM.replace(b"ORM^O01^ORM_O01", b"ADT^A01^ADT_A01"), "200", "MSH^1^9^1^1"),
    ("an event an ORM does not have", ORM.replace(b"ORM^O01^ORM_O01", b"ORM^O02"), "201", "MSH^1^9^1^2"),
    ("a version it does not know", ORM.replace(b"|P|2.5.1", b"|P|2.9"), "203", "MSH^1^12^1^1"),
    ("an OBR before any ORC", re.sub(rb"ORC\|NW\|MGF-LAB-77001[^\r]*\r", b"", ORM), "100", "OBR^1^1"),
    ("a segment without a segment id", ORM.replace(b"\rPV1|1|O", b"\r|1|O"), "100", "MSH^1^1"),
    ("no MSH at all", b"PID|1||MRN1\rORC|NW|X\r", "100", "MSH^1^1"),
    ("not HL7 at all", b"hello", "100", "MSH^1^1"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "raw", "condition", "location"), BROKEN_HL7, ids=[c[0] for c in BROKEN_HL7])
def test_an_hl7_message_that_cannot_be_read_is_rejected_with_its_condition(why, raw, condition, location):
    parsed = parse_hl7(raw)
    assert parsed.orders == []
    assert parsed.failure is not None and "WHITAKER" not in parsed.failure
    ack = build_hl7_response(parsed, [], control_id="ACK-9", created_at=NOW)
    segments = ack.split("\r")
    assert segments[1].startswith("MSA|AR|")
    assert segments[2].startswith(f"ERR||{location}|{condition}^")
    if parsed.messages[0].control_id:  # MSA-2 repeats MSH-10: without an MSH there is none to repeat
        assert hl7apy_validates(ack) == "ACK"


def test_a_batch_is_answered_in_a_batch(table):
    raw = b"BHS|^~\\&|EHR|CLINIC|LIS|PRL|20251105080000\r" + ORM + fixture("oml-o21.hl7") + b"BTS|2\r"
    parsed = parse_hl7(raw)
    assert parsed.batch and len(parsed.messages) == 2 and len(parsed.orders) == 4
    records = decided([("order", order.event) for order in parsed.orders], table)
    answer = build_hl7_response(parsed, records, control_id="B-1", created_at=NOW)
    assert answer.startswith("BHS|^~\\&|||||20251105150000||||B-1\r") and answer.endswith("BTS|2\r")
    assert "|ACK^O01^ACK|B-1-1|" in answer and "|ORL^O22^ORL_O22|B-1-2|" in answer


def test_hl7_escape_sequences_are_read_and_written():
    text = ORM.replace(b"4548-4^Hemoglobin A1c", b"4548-4\\S\\X^Hemoglobin A1c")
    (first, _) = parse_hl7(text).orders
    assert first.event["tests"][0]["code"] == "4548-4^X"


# FHIR.

FHIR_CLAIM = json.loads(fixture("fhir-claim.json"))
FHIR_REQUEST = json.loads(fixture("fhir-service-request.json"))


def fhir(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource).encode()


def test_fhir_claim_gives_a_claim_event_with_fhirpaths():
    parsed = parse_fhir(fixture("fhir-claim.json"))
    (entry,) = parsed.entries
    validator("claim").validate(entry.event)
    assert entry.kind == "claim"
    assert entry.event["billing_provider"] == {"npi": "1748529637"}
    assert entry.event["patient"] == {"birth_date": "1968-02-14", "sex": "F"}
    assert entry.event["lines"][1]["units"] == 3 and entry.event["lines"][1]["diagnosis_pointers"] == [2]
    assert entry.positions["lines[1].code"] == "Claim.item[1].productOrService.coding[0].code"
    assert entry.positions["billing_provider.npi"] == "Claim.provider.resolve().identifier[0].value"
    assert entry.positions["diagnoses[1].code"] == "Claim.diagnosis[1].diagnosisCodeableConcept.coding[0].code"


# (why, changes to the Claim, ClaimResponse outcome, error expressions, lines denied)
FHIR_CLAIM_CASES = [
    ("a header diagnosis returns the claim", {}, "error",
     ["Claim.diagnosis[1].diagnosisCodeableConcept.coding[0].code"], None),
    ("over the MUE: the line is denied, the claim accepted", {"diagnosis.1.code": "E11.9"}, "complete", [], [2]),
    ("nothing wrong", {"diagnosis.1.code": "E11.9", "item.1.quantity": 1}, "complete", [], None),
    ("an unknown code of the first item", {"diagnosis.1.code": "E11.9", "item.0.code": "99999"}, "error",
     ["Claim.item[0].productOrService.coding[0].code"], None),
]  # fmt: skip


def changed_claim(changes: dict[str, Any]) -> dict[str, Any]:
    claim = copy.deepcopy(FHIR_CLAIM)
    for key, value in changes.items():
        part, index, what = key.split(".")
        if part == "diagnosis":
            claim["diagnosis"][int(index)]["diagnosisCodeableConcept"]["coding"][0]["code"] = value
        elif what == "quantity":
            claim["item"][int(index)]["quantity"]["value"] = value
        else:
            claim["item"][int(index)]["productOrService"]["coding"][0]["code"] = value
    return claim


@pytest.mark.parametrize(("why", "changes", "outcome", "expressions", "denied"), FHIR_CLAIM_CASES,
                         ids=[case[0] for case in FHIR_CLAIM_CASES])  # fmt: skip
def test_fhir_claim_response(table, why, changes, outcome, expressions, denied):
    parsed = parse_fhir(fhir(changed_claim(changes)))
    records = decided([("claim", parsed.entries[0].event)], table)
    response = build_fhir_response(parsed, records, created_at=NOW)
    ClaimResponse.model_validate(response)
    assert response["outcome"] == outcome
    assert response["request"] == {"reference": "Claim/clm-mgf-0251177"}
    assert response["patient"] == {"identifier": FHIR_CLAIM["contained"][0]["identifier"][0]}
    got = [error["extension"][0]["url"] == ERROR_EXPRESSION and error["extension"][0]["valueString"]
           for error in response.get("error", ())]  # fmt: skip
    assert got == expressions
    for error in response.get("error", ()):
        codes = [coding["code"] for coding in error["code"]["coding"]]
        assert codes[0] in {reason["id"] for reason in records[0]["reasons"]}
    if outcome == "complete":
        reasons = {item["itemSequence"]: item["adjudication"][0].get("reason") for item in response["item"]}
        assert [sequence for sequence, reason in reasons.items() if reason] == (denied or [])
        if denied:
            assert reasons[2]["coding"][0] == {"system": "https://x12.org/codes/claim-adjustment-reason-codes",
                                               "code": "151"}  # fmt: skip


def test_fhir_institutional_claim_is_a_stay_by_its_type_of_bill(table):
    claim = changed_claim({"diagnosis.1.code": "E11.9"})
    claim["type"]["coding"][0]["code"] = "institutional"
    claim["supportingInfo"] = [
        {"sequence": 1, "category": {"coding": [{"code": "typeofbill"}]}, "code": {"coding": [{"code": "0111"}]}},
        {"sequence": 2, "category": {"coding": [{"code": "admissionperiod"}]},
         "timingPeriod": {"start": "2025-11-01T08:00:00-06:00", "end": "2025-11-04T11:30:00-06:00"}},
        {"sequence": 3, "category": {"coding": [{"code": "discharge-status"}]}, "code": {"coding": [{"code": "01"}]}},
    ]  # fmt: skip
    claim["procedure"] = [
        {
            "sequence": 1,
            "date": "2025-11-02",
            "procedureCodeableConcept": {
                "coding": [{"system": "http://www.cms.gov/Medicare/Coding/ICD10", "code": "0DTJ4ZZ"}]
            },
        }
    ]
    (entry,) = parse_fhir(fhir(claim)).entries
    validator("claim").validate(entry.event)
    assert entry.event["claim_type"] == "inpatient"
    assert (entry.event["admission_date"], entry.event["discharge_date"]) == ("2025-11-01", "2025-11-04")
    assert entry.event["procedures"] == [{"code": "0DTJ4ZZ", "system": "ICD-10-PCS", "date": "2025-11-02"}]
    assert entry.positions["discharge_status"] == "Claim.supportingInfo[2].code.coding[0].code"
    assert entry.positions["claim_type"] == "Claim.supportingInfo[0].code.coding[0].code"


def test_fhir_service_request_gives_an_order_and_an_operation_outcome(table):
    parsed = parse_fhir(fixture("fhir-service-request.json"))
    (entry,) = parsed.entries
    validator("order").validate(entry.event)
    assert entry.event["order_id"] == "PCC-90517" and entry.event["lab_id"] == "PRL"
    records = decided([("order", entry.event)], table)
    assert records[0]["outcome"] == "needs_review"  # the requester's NPI fails its check digit
    outcome = build_fhir_response(parsed, records, created_at=NOW)
    OperationOutcome.model_validate(outcome)
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("warning", "value")
    assert issue["expression"] == ["ServiceRequest.requester.resolve().identifier[0].value"]
    assert issue["details"]["coding"][0]["code"] == "npi.invalid"


def test_a_fhir_bundle_answers_in_a_bundle_and_groups_a_requisition(table):
    second = copy.deepcopy(FHIR_REQUEST)
    second["id"] = "sr-pcc-90518"
    second["code"]["coding"][0].update(code="2093-3", display="Cholesterol [Mass/volume] in Serum or Plasma")
    first = copy.deepcopy(FHIR_REQUEST)
    for request in (first, second):
        request["requisition"] = {"system": "urn:oid:2.16.840.1.113883.3.9999.8", "value": "PCC-REQ-3377"}
        request["requester"] = {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1987654328"}}
    claim = changed_claim({"diagnosis.1.code": "E11.9"})
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": "urn:uuid:6b1f0c52-0d7e-4c3b-9a59-2f3f5d9e0a01", "resource": claim},
        {"resource": first}, {"resource": second},
    ]}  # fmt: skip
    parsed = parse_fhir(fhir(bundle))
    assert [entry.kind for entry in parsed.entries] == ["claim", "order"]
    order = parsed.entries[1]
    assert order.event["order_id"] == "PCC-REQ-3377"
    assert [test["code"] for test in order.event["tests"]] == ["4548-4", "2093-3"]
    assert order.positions["tests[1].code"] == "Bundle.entry[2].resource.code.coding[0].code"
    records = decided([(entry.kind, entry.event) for entry in parsed.entries], table)
    answer = build_fhir_response(parsed, records, created_at=NOW)
    Bundle.model_validate(answer)
    assert [entry["resource"]["resourceType"] for entry in answer["entry"]] == ["ClaimResponse", "OperationOutcome"]
    expressions = [issue.get("expression") for issue in answer["entry"][1]["resource"]["issue"]]
    assert ["Bundle.entry[2].resource.code.coding[0].code"] in expressions  # 2093-3 ended 2024-12-31


# (why, the body, issue type, expression)
BROKEN_FHIR = [
    ("not JSON", b"{not json", "structure", None),
    ("JSON but no resource", b"[1, 2]", "structure", None),
    ("a resource of another type", b'{"resourceType": "Patient", "id": "p"}', "not-supported", "resourceType"),
    ("a Bundle without entries", b'{"resourceType": "Bundle", "type": "batch"}', "required", "Bundle.entry"),
    ("a Bundle of nothing to decide", b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": '
     b'{"resourceType": "Patient"}}]}', "not-supported", "Bundle.entry"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "raw", "code", "expression"), BROKEN_FHIR, ids=[case[0] for case in BROKEN_FHIR])
def test_a_fhir_body_that_cannot_be_read_gets_a_fatal_operation_outcome(why, raw, code, expression):
    parsed = parse_fhir(raw)
    assert parsed.entries == () and parsed.failure is not None
    answer = build_fhir_response(parsed, [], created_at=NOW)
    OperationOutcome.model_validate(answer)
    (issue,) = answer["issue"]
    assert (issue["severity"], issue["code"], issue.get("expression", [None])[0]) == ("fatal", code, expression)


def test_the_cost_measurement_runs_every_candidate_once():
    from processor.formats.measure import candidates

    found = candidates(FIXTURES)
    assert {reader.split()[0] for _, reader, _, run, _ in found if run} >= {"processor.formats.parse_837", "pyx12"}
    for _, _, events, run, _ in found:
        if run is not None and events == 1:
            run()


@pytest.mark.parametrize(
    ("name", "said"),
    [("837p-50-claims.x12", "an X12 interchange"), ("orm-o01.hl7", "an HL7 v2 message"),
     ("fhir-claim.json", "a FHIR resource")],
)  # fmt: skip
def test_a_standard_format_read_as_a_json_event_is_refused_with_what_to_do(small_table, name, said):
    """A document decided as a JSON event (``processor check --format json``) is refused with a reason that
    names its format and how to send it, never its content. (The worker reads documents: test_routing.py.)"""
    from processor.routing import Refused, decide_value

    result = decide_value(fixture(name), None, small_table, None, "2026-01-01T00:00:00Z", {"line": 1})
    assert isinstance(result, Refused)
    assert f"it is {said}" in result.error and "processor check" in result.error
    assert "MGF" not in result.error  # no content quoted (claim and order ids of the fixtures start MGF)
