"""The payer's fields of a claim (member, frequency and the claim replaced, charges, place of service, rendering
and referring providers, prior authorization, facility type) and an order's member, as the FHIR R4 and HL7 v2
readers take them, each with the place it came from: a FHIRPath, or a segment, field and repetition.

Each case changes the fixtures of tests/fixtures/formats/ (made-up people and plans) the way a submitter's
system would and reads the result. Events that should be valid are checked against their JSON Schema; events
that should not are refused by it at the field whose position says where to fix it. Amounts are decimal
strings read from the JSON text as written, never through a float's binary expansion."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.servicerequest import ServiceRequest

from processor.contracts import schema_problems
from processor.engine import decide
from processor.formats import build_fhir_response, parse_fhir, parse_hl7, position_of
from processor.formats.fhir import CLAIM_CONTROL_NUMBER_SYSTEM
from tests.unit.test_formats import DECIDED_AT, FHIR_CLAIM, FHIR_REQUEST, NOW, fixture, table  # noqa: F401
from tests.unit.test_schemas import validator

NPI = "http://hl7.org/fhir/sid/us-npi"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CARE_TEAM_ROLE = "http://terminology.hl7.org/CodeSystem/claimcareteamrole"
CARIN_ROLE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole"


def read_claim(claim: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    (entry,) = parse_fhir(json.dumps(claim).encode()).entries
    return entry.event, entry.positions


def coverage(claim: dict[str, Any]) -> dict[str, Any]:
    return next(item for item in claim["contained"] if item["resourceType"] == "Coverage")


def typed(kind: str, value: str, system: str = "urn:oid:2.16.840.1.113883.3.9999.5") -> dict[str, Any]:
    return {"type": {"coding": [{"system": V2_0203, "code": kind}]}, "system": system, "value": value}


def member_of_care_team(sequence: int, npi: str | None, role: str, system: str = CARE_TEAM_ROLE, **more) -> dict:
    provider = {"identifier": {"system": NPI, "value": npi}} if npi else {"display": "Dr. Okafor"}
    return {"sequence": sequence, "provider": provider, "role": {"coding": [{"system": system, "code": role}]}, **more}


def place(code: str, system: str = POS) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


# Changes to the fixture's Claim, each a function of a copy of it.


def no_subscriber_id(claim):
    del coverage(claim)["subscriberId"]


def member_id_on_coverage_identifier(claim):  # CARIN's Coverage.identifier:memberid
    no_subscriber_id(claim)
    coverage(claim)["identifier"] = [typed("MB", "LHP584402299")]


def member_id_on_patient(claim):
    no_subscriber_id(claim)
    claim["contained"][0]["identifier"].append(typed("MB", "LHP584402288"))


def second_insurance_focal(claim):
    other = {**copy.deepcopy(coverage(claim)), "id": "secondary", "subscriberId": "SEC00017"}
    claim["contained"].append(other)
    claim["insurance"] = [{"sequence": 1, "focal": False, "coverage": {"reference": "#coverage"}},
                          {"sequence": 2, "focal": True, "coverage": {"reference": "#secondary"},
                           "preAuthRef": ["PA-2025-0042"]}]  # fmt: skip


def payer_only_on_insurer(claim):
    coverage(claim)["payor"] = [{"display": "Lakeshore Health Plan"}]


def related(relationship: str | None, identifier: str | None = "3-18234", status: str | None = None):
    def change(claim):
        item: dict[str, Any] = {"claim": {"identifier": {"value": identifier}} if identifier else {"display": "x"}}
        if relationship:
            item["relationship"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/related-claim-"
                                                "relationship", "code": relationship}]}  # fmt: skip
        claim["related"] = [item]
        if status:
            claim["status"] = status

    return change


def cancelled(claim):
    claim["status"] = "cancelled"


def institutional(bill: str):
    def change(claim):
        claim["type"]["coding"][0]["code"] = "institutional"
        claim["supportingInfo"] = [{"sequence": 1, "category": {"coding": [{"code": "typeofbill"}]},
                                    "code": {"coding": [{"code": bill}]}}]  # fmt: skip

    return change


def both(*changes):
    def change(claim):
        for one in changes:
            one(claim)

    return change


def care_team(*members: dict, item_sequences: list[int] | None = None):
    def change(claim):
        claim["careTeam"] = list(members)
        if item_sequences is not None:
            claim["item"][1]["careTeamSequence"] = item_sequences

    return change


def referral_request(claim):
    claim["contained"].append({
        "resourceType": "ServiceRequest", "id": "referral", "status": "active", "intent": "order",
        "subject": {"reference": "#patient"}, "requester": {"reference": "#referrer"},
    })  # fmt: skip
    claim["contained"].append({"resourceType": "Practitioner", "id": "referrer",
                               "identifier": [{"system": NPI, "value": "1987654328"}]})  # fmt: skip
    claim["referral"] = {"reference": "#referral"}


def places(*codes: dict | None):
    def change(claim):
        for item, concept in zip(claim["item"], codes, strict=True):
            if concept is not None:
                item["locationCodeableConcept"] = concept

    return change


def unit_price(price: float, quantity: float | None = None, factor: float | None = None):
    def change(claim):
        item = claim["item"][1]
        del item["net"]
        item["unitPrice"] = {"value": price, "currency": "USD"}
        if quantity is None:
            del item["quantity"]
        else:
            item["quantity"] = {"value": quantity}
        if factor is not None:
            item["factor"] = factor

    return change


def unchanged(claim):
    pass


# (why, change, {event field: (value, FHIRPath)}); a value of None: the event has no such field.
CLAIM_CASES = [
    ("the fixture: the focal Coverage's subscriberId, relationship and payor", unchanged, {
        "member.id": ("LHP584402216", "Claim.insurance[0].coverage.resolve().subscriberId"),
        "member.relationship": ("self", "Claim.insurance[0].coverage.resolve().relationship.coding[0].code"),
        "member.payer_id": ("LHP0001", "Claim.insurance[0].coverage.resolve().payor[0].identifier.value"),
        "charge": ("176.00", "Claim.total.value"),
        "lines[0].charge": ("140.00", "Claim.item[0].net.value"),
        "lines[1].charge": ("36.00", "Claim.item[1].net.value"),
        "frequency": (None, None), "replaces": (None, None), "place_of_service": (None, None),
        "rendering_provider": (None, None), "referring_provider": (None, None), "prior_authorization": (None, None),
    }),
    ("no subscriberId: the Coverage's identifier of type MB (CARIN's memberid)", member_id_on_coverage_identifier,
     {"member.id": ("LHP584402299", "Claim.insurance[0].coverage.resolve().identifier[0].value")}),
    ("no subscriberId: the patient's identifier of type MB", member_id_on_patient,
     {"member.id": ("LHP584402288", "Claim.patient.resolve().identifier[1].value")}),
    ("the focal insurance, not the first, and its preAuthRef", second_insurance_focal, {
        "member.id": ("SEC00017", "Claim.insurance[1].coverage.resolve().subscriberId"),
        "prior_authorization": ("PA-2025-0042", "Claim.insurance[1].preAuthRef[0]"),
    }),
    ("a payor without an identifier: the Claim's insurer names the payer", payer_only_on_insurer,
     {"member.payer_id": ("LHP0001", "Claim.insurer.identifier.value")}),
    ("a prior claim related: a replacement of its control number", related("prior"), {
        "frequency": ("replacement", "Claim.related[0].relationship"),
        "replaces": ("3-18234", "Claim.related[0].claim.identifier.value"),
    }),
    ("a related claim with an identifier and no relationship is the one replaced", related(None), {
        "frequency": ("replacement", "Claim.related[0]"),
        "replaces": ("3-18234", "Claim.related[0].claim.identifier.value"),
    }),
    ("an associated claim is not replaced", related("associated"),
     {"frequency": (None, None), "replaces": (None, None)}),
    ("cancelled, naming the prior claim: a void of it", related("prior", status="cancelled"), {
        "frequency": ("void", "Claim.status"), "replaces": ("3-18234", "Claim.related[0].claim.identifier.value"),
    }),
    ("type of bill 0138 and the prior claim: facility type 13, a void of it", both(institutional("0138"),
                                                                                  related("prior")), {
        "facility_type": ("13", "Claim.supportingInfo[0].code.coding[0].code"),
        "frequency": ("void", "Claim.supportingInfo[0].code.coding[0].code"),
        "replaces": ("3-18234", "Claim.related[0].claim.identifier.value"),
        "claim_type": ("outpatient", "Claim.supportingInfo[0].code.coding[0].code"),
    }),
    ("type of bill 131: an original outpatient claim", institutional("131"),
     {"facility_type": ("13", "Claim.supportingInfo[0].code.coding[0].code"), "frequency": (None, None)}),
    ("every item in the office: the claim's place of service", places(place("11"), place("11")), {
        "place_of_service": ("11", "Claim.item[0].locationCodeableConcept.coding[0].code"),
        "lines[0].place_of_service": (None, None), "lines[1].place_of_service": (None, None),
    }),
    ("items in different places: each its own", places(place("11"), place("81")), {
        "place_of_service": (None, None),
        "lines[0].place_of_service": ("11", "Claim.item[0].locationCodeableConcept.coding[0].code"),
        "lines[1].place_of_service": ("81", "Claim.item[1].locationCodeableConcept.coding[0].code"),
    }),
    ("one item names none: no claim-level place", places(place("11"), None), {
        "place_of_service": (None, None),
        "lines[0].place_of_service": ("11", "Claim.item[0].locationCodeableConcept.coding[0].code"),
        "lines[1].place_of_service": (None, None),
    }),
    ("CARIN's earlier POS URI (http, .html) is the same code system; a SNOMED location is not a POS",
     places({"coding": [{"system": "http://snomed.info/sct", "code": "264362003"},
                        {"system": "http://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_"
                                   "Set.html", "code": "12"}]}, place("264362003", "http://snomed.info/sct")),
     {"place_of_service": (None, None),
      "lines[0].place_of_service": ("12", "Claim.item[0].locationCodeableConcept.coding[1].code"),
      "lines[1].place_of_service": (None, None)}),
    ("careTeam role primary renders; CARIN's role referring refers",
     care_team(member_of_care_team(1, "1234567893", "primary"),
               member_of_care_team(2, "1987654328", "referring", CARIN_ROLE)), {
        "rendering_provider.npi": ("1234567893", "Claim.careTeam[0].provider.identifier.value"),
        "referring_provider.npi": ("1987654328", "Claim.careTeam[1].provider.identifier.value"),
        "lines[1].rendering_provider": (None, None),
    }),
    ("CARIN's role rendering; an item naming another renderer gets its own",
     care_team(member_of_care_team(1, "1234567893", "rendering", CARIN_ROLE),
               member_of_care_team(2, "1453627188", "rendering", CARIN_ROLE), item_sequences=[2]), {
        "rendering_provider.npi": ("1234567893", "Claim.careTeam[0].provider.identifier.value"),
        "lines[0].rendering_provider": (None, None),
        "lines[1].rendering_provider.npi": ("1453627188", "Claim.careTeam[1].provider.identifier.value"),
    }),
    ("no rendering role: the member marked responsible",
     care_team(member_of_care_team(1, "1453627188", "supervisor"),
               member_of_care_team(2, "1234567893", "assist", responsible=True)),
     {"rendering_provider.npi": ("1234567893", "Claim.careTeam[1].provider.identifier.value")}),
    ("Claim.referral: its ServiceRequest's requester refers", referral_request,
     {"referring_provider.npi": ("1987654328", "Claim.referral.resolve().requester.resolve().identifier[0].value")}),
    ("unitPrice x quantity when net is absent: 0.1 x 3 is 0.30, not a float's 0.30000000000000004",
     unit_price(0.1, 3), {"lines[1].charge": ("0.30", "Claim.item[1].unitPrice.value")}),
    ("unitPrice x quantity x factor", unit_price(125.5, 2, 0.5),
     {"lines[1].charge": ("125.50", "Claim.item[1].unitPrice.value")}),
    ("unitPrice alone: a quantity of 1", unit_price(12.5),
     {"lines[1].charge": ("12.50", "Claim.item[1].unitPrice.value")}),
]  # fmt: skip


def value_at(event: dict[str, Any], field: str) -> Any:
    value: Any = event
    for step in field.replace("[", ".").replace("]", "").split("."):
        if isinstance(value, list):
            value = value[int(step)] if int(step) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(step)
        else:
            return None
    return value


@pytest.mark.parametrize(("why", "change", "expected"), CLAIM_CASES, ids=[case[0] for case in CLAIM_CASES])
def test_a_fhir_claim_gives_each_payer_field_with_its_fhirpath(why, change, expected):
    claim = copy.deepcopy(FHIR_CLAIM)
    change(claim)
    Claim.model_validate(claim)  # the submitter's Claim is valid FHIR R4B
    event, positions = read_claim(claim)
    validator("claim").validate(event)
    for field, (value, where) in expected.items():
        assert value_at(event, field) == value, field
        if value is not None:
            assert position_of(positions, field) == where, field


RELATIONSHIP_CASES = [
    ("self", RELATIONSHIP, "self"), ("spouse", RELATIONSHIP, "spouse"), ("child", RELATIONSHIP, "child"),
    ("common", RELATIONSHIP, "life_partner"), ("parent", RELATIONSHIP, "other"), ("injured", RELATIONSHIP, "other"),
    ("other", RELATIONSHIP, "other"), ("19", "https://x12.org/codes/individual-relationship", "child"),
    ("53", "https://x12.org/codes/individual-relationship", "life_partner"), ("stepchild", RELATIONSHIP, "unknown"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "system", "expected"), RELATIONSHIP_CASES)
def test_the_subscriber_relationship_maps_to_the_contracts(code, system, expected):
    claim = copy.deepcopy(FHIR_CLAIM)
    coverage(claim)["relationship"] = {"coding": [{"system": system, "code": code}]}
    event, _ = read_claim(claim)
    assert event["member"]["relationship"] == expected


# Amounts as written in the JSON text: (Claim.total as written, the claim's charge, whether the schema takes it).
AMOUNT_CASES = [
    ("176.0", "176.00", True), ("0.1", "0.10", True), ("125.50", "125.50", True), ("125.5", "125.50", True),
    ("1e2", "100.00", True), ("1E+2", "100.00", True), ("12.34E1", "123.40", True), ("125", "125.00", True),
    ("0.07", "0.07", True), ("9999999999.99", "9999999999.99", True), ("1234567.89", "1234567.89", True),
    ("0", "0.00", True),
    ("0.125", "0.125", False),  # three decimals: kept, not rounded, for the schema to refuse
    ("1.005", "1.005", False),  # a float would make it 1.00499999999999989...
    ("-5", "-5.00", False), ("12345678901", "12345678901.00", False), ('"176.00"', "176.00", True),
]  # fmt: skip


@pytest.mark.parametrize(("written", "charge", "valid"), AMOUNT_CASES)
def test_amounts_are_read_exactly_as_written(written, charge, valid):
    assert b'"total": {"value": 176.0,' in fixture("fhir-claim.json")
    raw = fixture("fhir-claim.json").replace(b'"total": {"value": 176.0,', f'"total": {{"value": {written},'.encode())
    (entry,) = parse_fhir(raw).entries
    assert entry.event["charge"] == charge
    problems = [problem.field for problem in schema_problems(entry.event, "claim")]
    assert problems == ([] if valid else ["charge"])
    if not valid:
        assert position_of(entry.positions, problems[0]) == "Claim.total.value"
    if valid and not written.startswith('"'):
        assert Decimal(charge) == Decimal(written)


# What the payer refuses is named where the submitter fixes it: by the schema, or by the engine's rules of the
# payer's claim (a member id, the claim a replacement or void names).
REFUSED_CASES = [
    ("a void naming no prior claim", cancelled, "claim.replaces_missing", "replaces", "Claim.related"),
    ("a type of bill of a replacement (0137) naming no prior claim", institutional("0137"), "claim.replaces_missing",
     "replaces", "Claim.related"),
    ("a prior claim without an identifier", related("prior", identifier=None), "claim.replaces_missing", "replaces",
     "Claim.related[0].claim.identifier.value"),
    ("no Coverage and no member id", lambda claim: claim.pop("insurance"), "member.missing", "member.id",
     "Claim.insurance"),
    ("a rendering member without an NPI", care_team(member_of_care_team(1, None, "primary")),
     "event.missing_field", "rendering_provider.npi", "Claim.careTeam[0].provider"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "change", "rule_id", "field", "where"), REFUSED_CASES,
                         ids=[case[0] for case in REFUSED_CASES])  # fmt: skip
def test_what_the_payer_refuses_is_located(table, why, change, rule_id, field, where):  # noqa: F811
    claim = copy.deepcopy(FHIR_CLAIM)
    change(claim)
    event, positions = read_claim(claim)
    decision = decide(event, "claim", table)
    assert decision.outcome == "returned" and rule_id in [r.id for r in decision.reasons]
    (reason,) = [r for r in decision.reasons if r.id == rule_id]
    assert reason.field == field
    assert position_of(positions, field) == where


def test_a_coverage_in_the_bundle_is_found_by_its_reference():
    claim = copy.deepcopy(FHIR_CLAIM)
    found = coverage(claim)
    claim["contained"].remove(found)
    found = {**found, "id": "cov-1", "beneficiary": {"reference": "Patient/pat-1"}}
    claim["insurance"][0]["coverage"] = {"reference": "Coverage/cov-1"}
    patient = {**FHIR_CLAIM["contained"][0], "id": "pat-1"}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": "urn:uuid:7d0f8f36-9d7b-4b8e-8d2c-5c0b7f3a1e01", "resource": claim},
        {"fullUrl": "urn:uuid:7d0f8f36-9d7b-4b8e-8d2c-5c0b7f3a1e02", "resource": found},
        {"fullUrl": "urn:uuid:7d0f8f36-9d7b-4b8e-8d2c-5c0b7f3a1e03", "resource": patient},
    ]}  # fmt: skip
    Bundle.model_validate(bundle)
    (entry,) = parse_fhir(json.dumps(bundle).encode()).entries
    assert entry.event["member"] == {"id": "LHP584402216", "relationship": "self", "payer_id": "LHP0001"}
    assert entry.positions["member.id"] == "Claim.insurance[0].coverage.resolve().subscriberId"


# A ServiceRequest's member: (why, change to the fixture, member, FHIRPath of its id).


def request_without_insurance(request):
    del request["insurance"]


def subject_member_id(kind: str):
    def change(request):
        del request["insurance"]
        request["contained"][0]["identifier"].append(typed(kind, "PMI66091577"))

    return change


REQUEST_CASES = [
    ("the fixture: its Coverage", lambda request: None,
     {"id": "PMI66091544", "relationship": "self", "payer_id": "PMI0042"},
     "ServiceRequest.insurance[0].resolve().subscriberId"),
    ("no insurance: the subject's identifier of type MB", subject_member_id("MB"), {"id": "PMI66091577"},
     "ServiceRequest.subject.resolve().identifier[1].value"),
    ("no insurance: the subject's identifier of type MI", subject_member_id("MI"), {"id": "PMI66091577"},
     "ServiceRequest.subject.resolve().identifier[1].value"),
    ("neither: an order has no member (it is optional)", request_without_insurance, None, None),
]  # fmt: skip


@pytest.mark.parametrize(("why", "change", "member", "where"), REQUEST_CASES, ids=[case[0] for case in REQUEST_CASES])
def test_a_service_request_gives_its_member(why, change, member, where):
    request = copy.deepcopy(FHIR_REQUEST)
    change(request)
    ServiceRequest.model_validate(request)
    (entry,) = parse_fhir(json.dumps(request).encode()).entries
    validator("order").validate(entry.event)
    assert entry.event.get("member") == member
    assert entry.positions.get("member.id") == where


# The ClaimResponse names the claim control number of a claim taken in.


def test_the_claim_response_carries_the_claim_control_number(table):  # noqa: F811
    claim = copy.deepcopy(FHIR_CLAIM)
    claim["diagnosis"][1]["diagnosisCodeableConcept"]["coding"][0]["code"] = "E11.9"
    claim["item"][1]["quantity"]["value"] = 1
    parsed = parse_fhir(json.dumps(claim).encode())
    source = {"topic": "claims", "partition": 3, "offset": 18234, "index": 0}
    record = decide(parsed.entries[0].event, "claim", table).as_record(parsed.entries[0].event, DECIDED_AT, source)
    assert (record["outcome"], record["claim_control_number"]) == ("accepted", "3-18234-0")
    response = build_fhir_response(parsed, [record], created_at=NOW)
    ClaimResponse.model_validate(response)
    assert response["identifier"] == [{"system": CLAIM_CONTROL_NUMBER_SYSTEM, "value": "3-18234-0"}]


def test_a_returned_claim_has_no_control_number_to_carry(table):  # noqa: F811
    parsed = parse_fhir(fixture("fhir-claim.json"))  # E11, a header, returns it
    source = {"topic": "claims", "partition": 3, "offset": 18235, "index": 0}
    record = decide(parsed.entries[0].event, "claim", table).as_record(parsed.entries[0].event, DECIDED_AT, source)
    assert record["outcome"] == "returned" and "claim_control_number" not in record
    response = build_fhir_response(parsed, [record], created_at=NOW)
    ClaimResponse.model_validate(response)
    assert "identifier" not in response


# HL7 v2: the member id from PID-3 of type MB or MI, else IN1-36; the payer from IN1-3.

ORM = fixture("orm-o01.hl7")
OML = fixture("oml-o21.hl7")
IN1 = b"IN1|1|PPO-GOLD^Prairie Mutual PPO Gold^99PMI|PMI0042^^^PMI^NIIP|Prairie Mutual Insurance" + b"|" * 32
IN1 += b"PMI66038127\r"
PID_MB = b"MRN448812^^^MAPLEGROVE^MR~LHP771204953^^^LHP^MB"
# (why, message, member, position of its id, its ERR-2, position of the payer id)
HL7_CASES = [
    ("ORM: PID-3's second repetition is of type MB", ORM, {"id": "LHP771204953"},
     "PID-3(2).1 (segment 2)", "PID^1^3^2^1", None),
    ("OML: no MB on PID-3, the IN1's policy number and insurer", OML, {"id": "PMI66038127", "payer_id": "PMI0042"},
     "IN1-36 (segment 4)", "IN1^1^36", "IN1-3.1 (segment 4)"),
    ("PID-3 of type MB over IN1-36; the payer still from IN1-3",
     ORM.replace(b"PV1|1|O\r", b"PV1|1|O\r" + IN1), {"id": "LHP771204953", "payer_id": "PMI0042"},
     "PID-3(2).1 (segment 2)", "PID^1^3^2^1", "IN1-3.1 (segment 4)"),
    ("type MI in PID-3's first repetition", ORM.replace(PID_MB, b"LHP771204953^^^LHP^MI~MRN448812^^^MAPLEGROVE^MR"),
     {"id": "LHP771204953"}, "PID-3.1 (segment 2)", "PID^1^3^1^1", None),
    ("an escaped member id is read unescaped", ORM.replace(b"LHP771204953^^^LHP^MB", b"LHP\\T\\7712^^^LHP^MB"),
     {"id": "LHP&7712"}, "PID-3(2).1 (segment 2)", "PID^1^3^2^1", None),
    ("an MR only, no IN1: no member", ORM.replace(PID_MB, b"MRN448812^^^MAPLEGROVE^MR"), None, None, None, None),
    ("an insurer without a policy number is no member", OML.replace(b"|PMI66038127", b"|"), None, None, None, None),
]  # fmt: skip


@pytest.mark.parametrize(("why", "raw", "member", "where", "erl", "payer_at"), HL7_CASES,
                         ids=[case[0] for case in HL7_CASES])  # fmt: skip
def test_an_hl7_order_gives_its_member_with_its_location(why, raw, member, where, erl, payer_at):
    parsed = parse_hl7(raw)
    assert parsed.failure is None and len(parsed.orders) == 2
    for order in parsed.orders:
        validator("order").validate(order.event)
        assert order.event.get("member") == member
        position = position_of(order.positions, "member.id")
        assert (str(position) if position else None, position.erl if position else None) == (where, erl)
        payer = order.positions.get("member.payer_id")
        assert (str(payer) if payer else None) == payer_at


def test_the_acknowledgments_still_echo_the_pid_as_received(table):  # noqa: F811
    """The ORL^O22 repeats PID as received, its MB repetition included; the IN1 is read, not echoed."""
    from processor.formats import build_hl7_response

    parsed = parse_hl7(OML)
    records = [decide(order.event, "order", table).as_record(order.event, DECIDED_AT) for order in parsed.orders]
    orl = build_hl7_response(parsed, records, control_id="LAB-ORL-9", created_at=NOW).split("\r")
    assert orl[4].startswith("PID|1||MRN902211^^^PRAIRIECC^MR|") and not any(s.startswith("IN1") for s in orl)
    parsed = parse_hl7(ORM)
    records = [decide(order.event, "order", table).as_record(order.event, DECIDED_AT) for order in parsed.orders]
    ack = build_hl7_response(parsed, records, control_id="LAB-ACK-9", created_at=NOW)
    assert ack.split("\r")[2].startswith("ERR||OBR^2^4^1^1|")  # the planted mistake, located as before


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Claim", "item": 5},
        {"resourceType": "Claim", "diagnosis": 9},
        {"resourceType": "ServiceRequest", "contained": 3},
        {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Claim", "item": 1}}]},
    ],
    ids=["item a number", "diagnosis a number", "contained a number", "in a Bundle"],
)
def test_a_field_of_another_shape_than_fhirs_is_an_error_not_an_exception(body):
    parsed = parse_fhir(json.dumps(body).encode())
    assert parsed.entries == () and parsed.error is not None and parsed.error.code == "structure"
