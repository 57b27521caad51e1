"""What an X12 837 says of a payer's claim beyond its codes: the member (2010BA NM1*IL, SBR02 or the patient
level's PAT01, 2010BB NM1*PR), the charges (CLM02, SV102, SV203), where the services were given (CLM05-1,
SV105), which claim it replaces or voids (CLM05-3, REF*F8), the prior authorization (REF*G1) and the
rendering and referring providers (2310x, 2420x NM1*82 and NM1*DN): read from an 837P and an 837I with the
place of each value, answered in the 277CA with the payer claim control number (REF*1K) of the claims taken
in, and written by ``write_837p`` so that a claim reads back as itself.

The fixtures (``837p-claim-fields.x12``, ``837i-claim-fields.x12``, made-up people and practices) are
described in tests/fixtures/formats/README.md; the cases a fixture does not hold are made from it by changing
one segment. What the engine decides of these fields is its own tests' business: here, what the reader
produces.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from processor.code_table.table import CodeTable
from processor.engine import decide
from processor.formats import build_277ca, parse_837, position_of, validate_x12
from processor.formats.build import write_837p
from processor.formats.x12 import read_interchange
from tests.conftest import SMALL_POLICY, SMALL_TABLE, a_claim
from tests.unit.test_formats import FORMAT_CODES, fixture, recount, value_of, x12_element
from tests.unit.test_schemas import validator

NOW = datetime(2025, 11, 6, 15, 0, tzinfo=UTC)
DECIDED_AT = "2025-11-06T15:00:00.000Z"
P837 = fixture("837p-claim-fields.x12")
I837 = fixture("837i-claim-fields.x12")
FIXTURES = {"837P": P837, "837I": I837, "837I stays": fixture("837i-3-claims.x12")}


@pytest.fixture(scope="module")
def table() -> CodeTable:
    return CodeTable("x12-claim-fields").load([*SMALL_TABLE, *SMALL_POLICY, *FORMAT_CODES])


def claim_of(raw: bytes, claim_id: str):
    parsed = parse_837(raw)
    assert parsed.failure is None
    return next(claim for claim in parsed.claims if claim.event.get("claim_id") == claim_id)


def first_event(raw: bytes) -> dict[str, Any]:
    parsed = parse_837(raw)
    assert parsed.failure is None
    return parsed.claims[0].event


def test_the_fixtures_conform_to_their_implementation_guides():
    assert validate_x12(P837.decode()) == []
    assert validate_x12(I837.decode()) == []


# (837, claim, field, value in the event, its place in the 837, the element as the 837 writes it)
FIELD_CASES = [
    # 837P: a replacement from a patient who is the subscriber.
    ("837P", "PCC0311001", "member.id", "LHP512093377", "2010BA NM1-09 (segment 13)", "LHP512093377"),
    ("837P", "PCC0311001", "member.relationship", "self", "2000B SBR-02 (segment 12)", "18"),
    ("837P", "PCC0311001", "member.payer_id", "LHP0001", "2010BB NM1-09 (segment 17)", "LHP0001"),
    ("837P", "PCC0311001", "charge", "125.50", "2300 CLM-02 (segment 18)", "125.5"),
    ("837P", "PCC0311001", "place_of_service", "22", "2300 CLM-05-1 (segment 18)", "22"),
    ("837P", "PCC0311001", "frequency", "replacement", "2300 CLM-05-3 (segment 18)", "7"),
    ("837P", "PCC0311001", "prior_authorization", "PA2025110417", "2300 REF-02 (segment 19)", "PA2025110417"),
    ("837P", "PCC0311001", "replaces", "3-18234", "2300 REF-02 (segment 20)", "3-18234"),
    ("837P", "PCC0311001", "referring_provider.npi", "1672839408", "2310A NM1-09 (segment 22)", "1672839408"),
    ("837P", "PCC0311001", "rendering_provider.npi", "1493827160", "2310B NM1-09 (segment 23)", "1493827160"),
    ("837P", "PCC0311001", "lines[0].charge", "80.00", "2400 SV1-02 (segment 26)", "80"),
    ("837P", "PCC0311001", "lines[1].charge", "45.50", "2400 SV1-02 (segment 29)", "45.5"),
    ("837P", "PCC0311001", "lines[1].place_of_service", "11", "2400 SV1-05 (segment 29)", "11"),
    ("837P", "PCC0311001", "lines[1].rendering_provider.npi", "1817263548", "2420A NM1-09 (segment 31)",
     "1817263548"),
    # 837P: a void for a dependent child (patient level HL 23).
    ("837P", "PCC0311002", "member.id", "LHP640028815", "2010BA NM1-09 (segment 34)", "LHP640028815"),
    ("837P", "PCC0311002", "member.relationship", "child", "2000C PAT-01 (segment 37)", "19"),
    ("837P", "PCC0311002", "frequency", "void", "2300 CLM-05-3 (segment 42)", "8"),
    ("837P", "PCC0311002", "replaces", "3-18240-2", "2300 REF-02 (segment 43)", "3-18240-2"),
    ("837P", "PCC0311002", "patient.birth_date", "2015-06-09", "2010CA DMG-02 (segment 41)", "20150609"),
    ("837P", "PCC0311002", "lines[0].charge", "95.00", "2400 SV1-02 (segment 46)", "95"),
    # 837I: an outpatient replacement (type of bill 137) for the subscriber's life partner.
    ("837I", "MVH25110601", "member.id", "LHP587310042", "2010BA NM1-09 (segment 14)", "LHP587310042"),
    ("837I", "MVH25110601", "member.relationship", "life_partner", "2000C PAT-01 (segment 17)", "53"),
    ("837I", "MVH25110601", "member.payer_id", "LHP0001", "2010BB NM1-09 (segment 15)", "LHP0001"),
    ("837I", "MVH25110601", "charge", "692.00", "2300 CLM-02 (segment 22)", "692"),
    ("837I", "MVH25110601", "facility_type", "13", "2300 CLM-05-1 (segment 22)", "13"),
    ("837I", "MVH25110601", "frequency", "replacement", "2300 CLM-05-3 (segment 22)", "7"),
    ("837I", "MVH25110601", "prior_authorization", "PA7730419", "2300 REF-02 (segment 25)", "PA7730419"),
    ("837I", "MVH25110601", "replaces", "3-18240-1", "2300 REF-02 (segment 26)", "3-18240-1"),
    ("837I", "MVH25110601", "rendering_provider.npi", "1263548798", "2310D NM1-09 (segment 30)", "1263548798"),
    ("837I", "MVH25110601", "referring_provider.npi", "1817263548", "2310F NM1-09 (segment 31)", "1817263548"),
    ("837I", "MVH25110601", "lines[0].charge", "612.00", "2400 SV2-03 (segment 33)", "612"),
    ("837I", "MVH25110601", "lines[0].rendering_provider.npi", "1493827160", "2420C NM1-09 (segment 35)",
     "1493827160"),
    ("837I", "MVH25110601", "lines[2].charge", "15.00", "2400 SV2-03 (segment 40)", "15"),
    # 837I: an inpatient stay of the subscriber (SBR02 18) and one of the subscriber's spouse (PAT01 01).
    ("837I stays", "MVH25110401", "member.relationship", "self", "2000B SBR-02 (segment 13)", "18"),
    ("837I stays", "MVH25110401", "facility_type", "11", "2300 CLM-05-1 (segment 19)", "11"),
    ("837I stays", "MVH25110403", "member.id", "LHP733018245", "2010BA NM1-09 (segment 61)", "LHP733018245"),
    ("837I stays", "MVH25110403", "member.relationship", "spouse", "2000C PAT-01 (segment 67)", "01"),
]  # fmt: skip


@pytest.mark.parametrize(("variant", "claim_id", "field", "value", "where", "written"), FIELD_CASES,
                         ids=[f"{c[1]} {c[2]}" for c in FIELD_CASES])  # fmt: skip
def test_each_field_is_read_with_its_place(variant, claim_id, field, value, where, written):
    raw = FIXTURES[variant]
    claim = claim_of(raw, claim_id)
    validator("claim").validate(claim.event)
    assert value_of(claim.event, field) == value
    position = position_of(claim.positions, field)
    assert str(position) == where
    segments = read_interchange(raw).groups[0].transactions[0].segments
    assert x12_element(segments, position) == written


# (837, claim, field, why the event does not carry it)
NOT_READ = [
    ("837P", "PCC0311001", "lines[0].place_of_service", "SV105 is the claim's CLM05-1: the line says nothing more"),
    ("837P", "PCC0311001", "lines[0].rendering_provider", "the line has no 2420A"),
    ("837P", "PCC0311002", "rendering_provider", "no 2310B"),
    ("837P", "PCC0311002", "prior_authorization", "no REF*G1"),
    ("837I", "MVH25110601", "place_of_service", "an 837I's CLM05-1 is its facility type"),
    ("837I", "MVH25110601", "lines[1].rendering_provider", "the line has no 2420C"),
    ("837I stays", "MVH25110401", "frequency", "CLM05-3 is 1, an original claim: the default"),
    ("837I stays", "MVH25110401", "replaces", "an original replaces nothing"),
    ("837I stays", "MVH25110401", "charge", "two revenue lines have no HCPCS code: left out, so CLM02 is too"),
]  # fmt: skip


@pytest.mark.parametrize(("variant", "claim_id", "field", "why"), NOT_READ, ids=[c[3] for c in NOT_READ])
def test_what_the_837_does_not_say_is_not_in_the_event(variant, claim_id, field, why):
    event = claim_of(FIXTURES[variant], claim_id).event
    with pytest.raises((KeyError, IndexError)):
        value_of(event, field)


# Who the patient is.


def test_a_patient_level_gives_the_patients_birth_date_and_sex_not_the_subscribers():
    # The subscriber of PCC0311002 gets a DMG of their own in 2010BA: the claim is still the child's.
    raw = recount(P837.replace(b"MI*LHP640028815~\n", b"MI*LHP640028815~\nDMG*D8*19770321*M~\n"))
    assert validate_x12(raw.decode()) == []
    claim = claim_of(raw, "PCC0311002")
    assert claim.event["patient"] == {"birth_date": "2015-06-09", "sex": "F"}
    assert str(claim.positions["patient.sex"]) == "2010CA DMG-03 (segment 42)"
    assert claim.event["member"] == {"id": "LHP640028815", "relationship": "child", "payer_id": "LHP0001"}
    # The spouse of the 837I's third stay: her DMG, not her husband's (2010BA DMG*D8*19650522*M).
    stay = claim_of(FIXTURES["837I stays"], "MVH25110403")
    assert stay.event["patient"] == {"birth_date": "1967-08-11", "sex": "F"}
    assert str(stay.positions["patient.birth_date"]) == "2010CA DMG-02 (segment 71)"


# (PAT01 of the patient level, the relationship read)
RELATIONSHIPS = [("01", "spouse"), ("19", "child"), ("20", "employee"), ("53", "life_partner"),
                 ("21", "unknown"), ("G8", "other"), ("39", "other"), ("40", "other")]  # fmt: skip


@pytest.mark.parametrize(("code", "relationship"), RELATIONSHIPS)
def test_pat01_says_who_the_patient_is_to_the_subscriber(code, relationship):
    raw = P837.replace(b"PAT*19~", b"PAT*" + code.encode() + b"~")
    assert claim_of(raw, "PCC0311002").event["member"]["relationship"] == relationship


# What a claim replaces or voids: CLM05-3 and REF*F8.

# (CLM05 of PCC0311001, the frequency read: None when the event leaves it out)
FREQUENCIES = [
    ("22:B:7", "replacement"),
    ("22:B:8", "void"),
    ("22:B:1", None),  # an original: the default, left out
    ("22:B:5", "original"),  # a late charge claim is no replacement nor void
    ("22:B", None),  # no frequency given
]


@pytest.mark.parametrize(("clm05", "frequency"), FREQUENCIES, ids=[c[0] for c in FREQUENCIES])
def test_clm05_3_says_whether_a_claim_replaces_or_voids_another(clm05, frequency):
    event = first_event(P837.replace(b"***22:B:7*", b"***" + clm05.encode() + b"*"))
    assert event.get("frequency") == frequency
    assert event["replaces"] == "3-18234"  # REF*F8 is read whatever CLM05-3 says
    assert event["place_of_service"] == "22"


def test_a_replacement_without_ref_f8_names_no_claim(table):
    raw = recount(P837.replace(b"REF*F8*3-18234~\n", b""))
    claim = parse_837(raw).claims[0]
    assert claim.event["frequency"] == "replacement" and "replaces" not in claim.event
    assert validator("claim").is_valid(claim.event)  # the payer requires it, not the schema: the engine says so
    (reason,) = decide(claim.event, "claim", table).reasons
    assert (reason.id, reason.field) == ("claim.replaces_missing", "replaces")
    assert str(claim.positions["frequency"]) == "2300 CLM-05-3 (segment 18)"


# Charges.

# (CLM02 as written, the claim's charge read, whether the schema takes it)
CHARGES = [
    ("125.5", "125.50", True),
    ("80", "80.00", True),
    ("125.50", "125.50", True),
    (".5", "0.50", True),
    ("0125.5", "125.50", True),
    ("12.340", "12.34", True),  # the same amount: its third decimal is a zero
    ("12.345", "12.345", False),  # a fraction of a cent: as written, for the schema to name
    ("-5", "-5", False),
    ("12A", "12A", False),
    ("12345678901", "12345678901", False),  # more than the ten digits the schema takes
]  # fmt: skip


@pytest.mark.parametrize(("clm02", "charge", "valid"), CHARGES, ids=[c[0] for c in CHARGES])
def test_clm02_is_a_decimal_string_or_passed_on_as_written(clm02, charge, valid):
    event = first_event(P837.replace(b"CLM*PCC0311001*125.5*", b"CLM*PCC0311001*" + clm02.encode() + b"*"))
    assert event["charge"] == charge
    assert validator("claim").is_valid(event) is valid


# A claim whose member has no id.


def test_an_nm1_il_without_an_id_gives_a_claim_without_member():
    raw = P837.replace(b"NM1*IL*1*OYELARAN*TEMI****MI*LHP512093377", b"NM1*IL*1*OYELARAN*TEMI")
    parsed = parse_837(raw)
    assert parsed.failure is None and len(parsed.claims) == 2
    claim = parsed.claims[0]
    assert "member" not in claim.event
    assert claim.event["patient"] == {"birth_date": "1980-02-14", "sex": "F"}  # the rest is read as before
    assert str(claim.positions["member"]) == str(claim.positions["member.id"]) == "2010BA NM1-09 (segment 13)"
    assert parsed.claims[1].event["member"]["id"] == "LHP640028815"


def test_a_subscriber_level_without_nm1_il_gives_a_claim_without_member_at_its_hl():
    cut = b"NM1*IL*1*OYELARAN*TEMI****MI*LHP512093377~\nN3*9 BIRCH CT~\nN4*SPRINGFIELD*IL*627020000~\n"
    raw = recount(P837.replace(cut + b"DMG*D8*19800214*F~\n", b""))
    parsed = parse_837(raw)
    assert parsed.failure is None and len(parsed.claims) == 2  # not a reader error: the engine returns it
    claim = parsed.claims[0]
    assert "member" not in claim.event and claim.event["patient"] == {}
    assert str(claim.positions["member"]) == "2000B HL-03 (segment 11)"


def test_a_claim_without_member_is_returned_with_the_place_of_the_member_id(table):
    raw = P837.replace(b"NM1*IL*1*OYELARAN*TEMI****MI*LHP512093377", b"NM1*IL*1*OYELARAN*TEMI")
    parsed = parse_837(raw)
    records = decided(parsed, table)
    assert records[0]["outcome"] == "returned"
    assert [reason["field"].split(".")[0] for reason in records[0]["reasons"]] == ["member"]
    answer = build_277ca(parsed, records, control_number=3, created_at=NOW)
    assert validate_x12(answer) == []
    stcs = claim_segments(answer)["PCC0311001"]
    message = next(s for s in stcs if s[0] == "STC")[12]  # the component separator, ':', is left out
    assert message.startswith("2010BA NM1-09 (segment 13) member")


# The 277CA: the payer claim control number of each claim taken in.


def decided(parsed, table: CodeTable, offset: int | None = None) -> list[dict[str, Any]]:
    """The decision records of the 837's claims, each with its place in a Kafka record when ``offset`` is
    given (then the claims taken in get their claim control number), checked against the decision schema."""
    records = []
    for index, claim in enumerate(parsed.claims):
        source = None if offset is None else {"topic": "claims", "partition": 3, "offset": offset, "index": index}
        record = decide(claim.event, "claim", table).as_record(claim.event, DECIDED_AT, source)
        validator("decision").validate(record)
        records.append(record)
    return records


def claim_segments(answer: str) -> dict[str, list[list[str]]]:
    """The segments of each 2200D claim loop of a 277CA (TRN*2 to the next HL or SE), by patient control
    number."""
    claims: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    level = None
    for segment in (text.split("*") for text in answer.split("~\n") if text):
        if segment[0] in ("HL", "SE"):
            level, current = segment[3] if segment[0] == "HL" else None, None
        elif segment[0] == "TRN" and level == "PT" and current is None:  # 2200D under the patient's HL
            current = claims.setdefault(segment[2], [])
        if current is not None:
            current.append(segment)
    return claims


@pytest.mark.parametrize("name", ["837p-50-claims.x12", "837i-3-claims.x12", "837p-claim-fields.x12",
                                  "837i-claim-fields.x12"])  # fmt: skip
def test_the_277ca_gives_each_claim_taken_in_its_payer_claim_control_number(table, name):
    parsed = parse_837(fixture(name))
    records = decided(parsed, table, offset=18240)
    outcomes = {record["outcome"] for record in records}
    answer = build_277ca(parsed, records, control_number=41, created_at=NOW)
    assert validate_x12(answer) == []
    by_claim = claim_segments(answer)
    for index, (claim, record) in enumerate(zip(parsed.claims, records, strict=True)):
        segments = by_claim[claim.event["claim_id"]]
        ids = [s[0] if s[0] != "REF" else f"REF*{s[1]}" for s in segments]
        numbers = [s[2] for s in segments if s[:2] == ["REF", "1K"]]
        if record["outcome"] == "returned":
            assert numbers == [], claim.event["claim_id"]  # a claim returned is not taken in: no number
            continue
        assert numbers == [f"3-18240-{index}"] == [record["claim_control_number"]]
        # X214's order in 2200D: TRN, STC..., REF*1K, REF*D9, REF*BLT, DTP
        after = ids[ids.index("REF*1K") + 1 :]
        assert ids[ids.index("REF*1K") - 1] == "STC" and "STC" not in after and after[-1] == "DTP"
    if name == "837i-3-claims.x12":  # the stays: two taken in, the one with Z00.00 returned
        assert outcomes == {"accepted", "returned"}
        assert "REF*1K*3-18240-1~\nREF*BLT*131~\nDTP*472*D8*20251103~" in answer


def test_a_277ca_of_decisions_without_a_source_gives_no_control_number(table):
    parsed = parse_837(P837)
    answer = build_277ca(parsed, decided(parsed, table), control_number=42, created_at=NOW)
    assert "REF*1K" not in answer and validate_x12(answer) == []


# write_837p: what it writes reads back as the claim.

_PATIENT_CHILD = {"birth_date": "2016-02-29", "sex": "M"}
# (why, the claim's fields beyond a_claim's)
WRITTEN = [
    ("the subscriber is the patient", {"member": {"id": "W100000001", "relationship": "self", "payer_id": "LHP0001"}}),
    *[(f"a patient who is the subscriber's {relationship}",
       {"member": {"id": "W100000002", "relationship": relationship, "payer_id": "LHP0001"}, "patient": _PATIENT_CHILD})
      for relationship in ("spouse", "child", "employee", "life_partner", "unknown", "other")],
    ("a replacement", {"frequency": "replacement", "replaces": "3-18234"}),
    ("a void", {"frequency": "void", "replaces": "3-18240-2"}),
    ("a prior authorization", {"prior_authorization": "PA2025110417"}),
    ("rendering and referring providers", {"rendering_provider": {"npi": "1493827160"},
                                           "referring_provider": {"npi": "1672839408"}}),
    ("charges and places of service", {"charge": "125.50", "place_of_service": "22", "lines": [
        {"line_number": 1, "code": "99213", "system": "CPT", "modifiers": [], "units": 1,
         "service_date": "2025-11-03", "diagnosis_pointers": [1, 2], "charge": "80.00"},
        {"line_number": 2, "code": "36415", "system": "CPT", "modifiers": [], "units": 1,
         "service_date": "2025-11-03", "diagnosis_pointers": [1], "charge": "45.50", "place_of_service": "11",
         "rendering_provider": {"npi": "1817263548"}}]}),
]  # fmt: skip
_WRITTEN_DEFAULTS = {
    "member": {"id": "W100000001", "relationship": "self", "payer_id": "PAYER01"},
    "charge": "100.00", "place_of_service": "11",
    "lines": [{"line_number": 1, "code": "99213", "system": "CPT", "modifiers": [], "units": 1,
               "service_date": "2025-11-03", "diagnosis_pointers": [1, 2], "charge": "100.00"}],
}  # fmt: skip


def written_claim(changes: dict[str, Any]) -> dict[str, Any]:
    """``a_claim`` with what a payer's claim carries (a member, charges, a place of service) and ``changes``."""
    return copy.deepcopy(a_claim(**{**_WRITTEN_DEFAULTS, **changes}))


def read_back(claim: dict[str, Any]) -> dict[str, Any]:
    """The claim as the 837P says it: professional, its ICD codes without their points."""
    diagnoses = [{**d, "code": d["code"].replace(".", "")} for d in claim["diagnoses"]]
    return {**claim, "claim_type": "professional", "diagnoses": diagnoses}


@pytest.mark.parametrize(("why", "changes"), WRITTEN, ids=[case[0] for case in WRITTEN])
def test_a_claim_written_as_an_837p_reads_back_as_itself(why, changes):
    claim = written_claim(changes)
    validator("claim").validate(claim)
    raw = write_837p([claim], control_number=7)
    assert validate_x12(raw.decode()) == []
    assert first_event(raw) == read_back(claim)


def test_claims_of_every_kind_in_one_837p_read_back_in_order():
    claims = [written_claim({**changes, "claim_id": f"CLM-{n}"}) for n, (_, changes) in enumerate(WRITTEN)]
    raw = write_837p(claims, control_number=8)
    assert validate_x12(raw.decode()) == []
    parsed = parse_837(raw)
    assert [claim.event for claim in parsed.claims] == [read_back(claim) for claim in claims]


# (why, the claim's fields, what the 837P makes of them: fields read back otherwise)
WRITTEN_AS_THE_FORMAT_SAYS = [
    ("an original is CLM05-3 1, the default", {"frequency": "original"}, {"frequency": None}),
    ("a line without a charge gets 100.00 and the claim their sum", {"charge": None, "lines": [
        {"line_number": 1, "code": "99213", "system": "CPT", "modifiers": [], "units": 1,
         "service_date": "2025-11-03", "diagnosis_pointers": [1]}]}, {"charge": "100.00", "lines[0].charge": "100.00"}),
    ("a claim without a place of service is at the office", {"place_of_service": None}, {"place_of_service": "11"}),
    ("a member without relationship is the subscriber", {"member": {"id": "W1", "payer_id": "P9"}},
     {"member": {"id": "W1", "relationship": "self", "payer_id": "P9"}}),
    ("a member without payer names the receiver", {"member": {"id": "W1", "relationship": "self"}},
     {"member": {"id": "W1", "relationship": "self", "payer_id": "PAYER01"}}),
    ("a line at the claim's place says nothing more", {"place_of_service": "22", "lines": [
        {"line_number": 1, "code": "99213", "system": "CPT", "modifiers": [], "units": 1,
         "service_date": "2025-11-03", "diagnosis_pointers": [1], "charge": "100.00", "place_of_service": "22"}]},
     {"lines[0].place_of_service": None}),
]  # fmt: skip


@pytest.mark.parametrize(("why", "changes", "read"), WRITTEN_AS_THE_FORMAT_SAYS,
                         ids=[case[0] for case in WRITTEN_AS_THE_FORMAT_SAYS])  # fmt: skip
def test_what_the_837p_cannot_say_reads_back_as_the_format_says(why, changes, read):
    claim = written_claim({key: value for key, value in changes.items() if value is not None})
    for key in [key for key, value in changes.items() if value is None]:
        del claim[key]
    raw = write_837p([claim], control_number=9)
    assert validate_x12(raw.decode()) == []
    event = first_event(raw)
    for field, value in read.items():
        if value is None:
            with pytest.raises((KeyError, IndexError)):
                value_of(event, field)
        else:
            assert value_of(event, field) == value


def test_a_claim_without_member_is_written_with_an_nm1_il_without_an_id():
    claim = written_claim({})
    del claim["member"]
    raw = write_837p([claim], control_number=10)
    # As a submitter's system that lost the member id writes it: the 2010BA's NM108 and NM109 are missing.
    problems = validate_x12(raw.decode())
    assert [(p.segment, p.ordinal, p.element, p.code) for p in problems] == [("NM1", 13, 8, "1"), ("NM1", 13, 9, "1")]
    event = first_event(raw)
    assert "member" not in event and event == read_back(claim)
