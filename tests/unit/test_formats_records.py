"""A Kafka record in a submitter's format, as the worker will take it, with no broker: its events (one per claim
or order, each with the record's place and its index in the record) and the records of the responses topic
built from their decisions, with control numbers from the record's partition and offset, so a replay gives
the same bytes. The worker's part is played here by ``routing.decide_value``, as it decides every event."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import orjson
import pytest

from processor.contracts import load_schema
from processor.engine.duplicates import SeenClaims
from processor.formats import Format, ReadRecord, answer, control_numbers, read_record, validate_x12
from processor.formats.documents import echoed_control_numbers
from processor.formats.records import Correlation, ResponseRecord, ResponseSource, content_type
from processor.routing import Refused, decide_value
from tests.unit import test_formats
from tests.unit.test_formats import FHIR_CLAIM, FHIR_REQUEST, RETURNED_837P, fixture
from tests.unit.test_schemas import validator

TIMESTAMP = 1_762_354_800_000  # 2025-11-05T15:00:00Z, the record's time: the answers carry it
X12 = [("content-type", b"application/edi-x12")]
codes = test_formats.table  # the formats tests' table (a fixture): the small table and the fixtures' real codes


def decisions_of(read: ReadRecord, table, decided_at="2025-11-05T15:00:01.000Z", max_bytes=None) -> list:
    """Decide each event as the worker does (one duplicate window for the partition); the published bytes,
    None for an event refused (the worker dead-letters it). Every decision record matches its schema."""
    window = SeenClaims(30 * 86_400_000)
    found: list[bytes | None] = []
    for event in read.events:
        result = decide_value(
            event.value, event.kind, table, None, decided_at, event.source, max_bytes, window, event.seen_at
        )
        if isinstance(result, Refused):
            found.append(None)
            continue
        validator("decision").validate(orjson.loads(result.value))
        found.append(result.value)
    return found


def responses_of(read: ReadRecord, decisions: list) -> list[dict]:
    """The response records as published, each checked against ``schemas/response.schema.json``."""
    published = [orjson.loads(response.encode()) for response in read.responses(decisions)]
    for record in published:
        validator("response").validate(record)
    return published


def segments(x12: str) -> list[list[str]]:
    return [segment.split("*") for segment in x12.split("~\n") if segment]


# An 837 interchange: a claim event each, a 999 and a 277CA.


@pytest.fixture(scope="module")
def interchange(codes):
    read = read_record(fixture("837p-50-claims.x12"), X12, "claims", 3, 1207, TIMESTAMP)
    return read, decisions_of(read, codes)


def test_an_837_record_gives_a_claim_event_per_claim_with_its_place(interchange):
    read, decisions = interchange
    assert read.format is Format.X12 and read.failure is None
    assert len(read.events) == 50 and all(event.kind == "claim" for event in read.events)
    assert [event.source for event in read.events] == [
        {"topic": "claims", "partition": 3, "offset": 1207, "index": index} for index in range(50)
    ]
    assert [event.seen_at for event in read.events][:2] == ["3:1207:0", "3:1207:1"]
    records = [orjson.loads(value) for value in decisions]
    assert records[0]["source"] == {"topic": "claims", "partition": 3, "offset": 1207, "index": 0}
    assert {record["event_id"] for record in records if record["outcome"] == "returned"} >= RETURNED_837P


def test_an_837_record_is_answered_by_a_999_and_a_277ca_numbered_by_its_place(interchange):
    read, decisions = interchange
    syntax, claims = responses_of(read, decisions)
    numbers = control_numbers(3, 1207)
    assert (syntax["type"], claims["type"]) == ("999", "277CA")
    assert syntax["control_number"] == f"{numbers.interchange:09d}" == segments(syntax["text"])[0][13]
    assert claims["control_number"] == f"{numbers.claim_acknowledgment:09d}" == segments(claims["text"])[0][13]
    assert syntax["control_number"] != claims["control_number"]
    assert syntax["source"] == {"topic": "claims", "partition": 3, "offset": 1207, "timestamp": TIMESTAMP}
    assert syntax["correlation"] == {"sender": "RBS00417", "receiver": "LHP0001", "control_number": "000004711"}
    assert syntax["events"] == 50 and syntax["created_at"] == "2025-11-05T15:00:00.000Z"
    assert "AK9*E*1*1*1~" in syntax["text"]  # accepted, the date off the calendar noted
    assert read.key == b"claims:3:1207"
    stc: dict[str, str] = {}
    claim = None
    for segment in segments(claims["text"]):
        if segment[0] == "TRN" and segment[1] == "2":
            claim = segment[2]
        elif segment[0] == "STC" and claim is not None:
            stc.setdefault(claim, segment[3])
    assert all(stc[claim_id] == "U" for claim_id in RETURNED_837P)  # every returned claim, named by its CLM01
    assert validate_x12(syntax["text"]) == []


def test_control_numbers_depend_only_on_partition_and_offset(interchange):
    read, decisions = interchange
    elsewhere = read_record(fixture("837p-50-claims.x12"), None, "claims-eu", 3, 1207, TIMESTAMP + 86_400_000)
    again = [response.control_number for response in elsewhere.responses(decisions)]
    assert again == [response.control_number for response in read.responses(decisions)]
    places = [(partition, offset) for partition in (0, 1, 2, 1023) for offset in (0, 1, 2, 1207, 10**12)]
    numbers = [control_numbers(partition, offset) for partition, offset in places]
    x12 = [n.interchange for n in numbers] + [n.claim_acknowledgment for n in numbers]
    assert len(set(x12)) == len(x12) and all(1 <= n <= 999_999_999 for n in x12)
    assert len({n.message for n in numbers}) == len(numbers)
    assert control_numbers(0, 0).message == "0-0" and control_numbers(1023, 10**12).message == "1023-1000000000000"


def test_a_replay_gives_byte_identical_responses(codes, interchange):
    read, decisions = interchange
    replayed = read_record(fixture("837p-50-claims.x12"), X12, "claims", 3, 1207, TIMESTAMP)
    # decided again later, as after a crash: the decision records' time differs, the answers do not
    again = decisions_of(replayed, codes, decided_at="2025-11-05T16:30:00.000Z")
    assert [r.encode() for r in replayed.responses(again)] == [r.encode() for r in read.responses(decisions)]


def test_a_claim_that_could_not_be_decided_is_left_out_of_the_277ca(interchange):
    read, decisions = interchange
    kept = [None, *decisions[1:]]
    _, claims = responses_of(read, kept)
    first, second = (orjson.loads(value)["event_id"] for value in decisions[:2])
    assert f"TRN*2*{first}~" not in claims["text"] and f"TRN*2*{second}~" in claims["text"]


# HL7 v2: an order event per ORC group, an ACK or ORL^O22.


def test_an_orm_record_gives_its_orders_and_an_ack(codes):
    read = read_record(fixture("orm-o01.hl7"), None, "lab-orders", 0, 42, TIMESTAMP)
    assert read.format is Format.HL7V2 and [event.kind for event in read.events] == ["order", "order"]
    assert [event.source["index"] for event in read.events] == [0, 1]
    [ack] = responses_of(read, decisions_of(read, codes))
    assert (ack["type"], ack["content_type"], ack["control_number"]) == ("ACK", "x-application/hl7-v2+er7", "0-42")
    lines = ack["text"].split("\r")
    assert "|20251105150000||ACK^O01^ACK|0-42|P|2.5.1" in lines[0]
    assert lines[1] == "MSA|AR|MGF-ORM-000123" and lines[2].startswith("ERR||OBR^2^4^1^1|102^")
    assert ack["correlation"] == {
        "sender": "MAPLEGROVE^2.16.840.1.113883.3.9999.10^ISO", "receiver": "PRL^2.16.840.1.113883.3.9999.1^ISO",
        "control_number": "MGF-ORM-000123",
    }  # fmt: skip


def test_an_oml_record_is_answered_by_an_orl_o22(codes):
    read = read_record(fixture("oml-o21.hl7"), [("Content-Type", b"application/hl7-v2")], "lab-orders", 1, 7)
    [orl] = responses_of(read, decisions_of(read, codes))
    assert orl["type"] == "ORL^O22" and "|ORL^O22^ORL_O22|1-7|" in orl["text"]


def test_an_order_too_large_to_decide_rejects_its_message(codes):
    read = read_record(fixture("orm-o01.hl7"), None, "lab-orders", 0, 43, TIMESTAMP)
    decisions = decisions_of(read, codes, max_bytes=10)
    assert decisions == [None, None]  # the worker dead-letters them
    [ack] = responses_of(read, decisions)
    assert ack["text"].split("\r")[1] == "MSA|AR|MGF-ORM-000123" and "207^Application internal error" in ack["text"]


# FHIR: a Bundle of a Claim and a ServiceRequest.


def test_a_fhir_bundle_record_gives_a_claim_and_an_order_and_a_bundle_of_answers(codes):
    entries = [{"resource": copy.deepcopy(FHIR_CLAIM)}, {"resource": copy.deepcopy(FHIR_REQUEST)}]
    bundle = {"resourceType": "Bundle", "id": "pcc-20251105-1", "type": "batch", "entry": entries}
    read = read_record(orjson.dumps(bundle), [("content-type", b"application/fhir+json")], "claims", 2, 9, TIMESTAMP)
    assert read.format is Format.FHIR and [event.kind for event in read.events] == ["claim", "order"]
    [response] = responses_of(read, decisions_of(read, codes))
    assert (response["type"], response["control_number"]) == ("Bundle", None)
    assert response["correlation"] == {"sender": None, "receiver": None, "control_number": "Bundle/pcc-20251105-1"}
    body = orjson.loads(response["text"])
    assert [entry["resource"]["resourceType"] for entry in body["entry"]] == ["ClaimResponse", "OperationOutcome"]
    assert body["timestamp"] == "2025-11-05T15:00:00Z"


# The content-type header over the first bytes.

HEADER_CASES = [
    ("no header: the first bytes say X12", None, fixture("837i-3-claims.x12"), Format.X12),
    ("no header: the first bytes say FHIR", None, orjson.dumps(FHIR_REQUEST), Format.FHIR),
    ("a header in any case, with parameters", [("Content-Type", b"application/fhir+json; charset=utf-8")],
     orjson.dumps(FHIR_CLAIM), Format.FHIR),
    ("a type no format claims falls back to the first bytes", [("content-type", b"text/plain")],
     fixture("orm-o01.hl7"), Format.HL7V2),
    ("the header says JSON: an 837 is then the project's JSON, which the worker dead-letters",
     [("content-type", b"application/json")], fixture("837i-3-claims.x12"), Format.JSON),
    ("the header says HL7 v2: a FHIR body is then an HL7 message that cannot be read",
     [("content-type", b"x-application/hl7-v2+er7")], orjson.dumps(FHIR_CLAIM), Format.HL7V2),
    ("the last of two headers counts", [("content-type", b"application/json"), ("content-type", b"application/x12")],
     fixture("837i-3-claims.x12"), Format.X12),
]  # fmt: skip


@pytest.mark.parametrize(("why", "headers", "raw", "expected"), HEADER_CASES, ids=[case[0] for case in HEADER_CASES])
def test_the_content_type_header_overrides_the_first_bytes(why, headers, raw, expected):
    assert read_record(raw, headers, "claims", 0, 5).format is expected


def test_a_json_record_is_one_event_decided_as_before_and_answered_by_the_decision_topics(small_table):
    raw = fixture("837i-3-claims.x12")
    read = read_record(raw, [("content-type", b"application/json")], "claims", 0, 5)
    [event] = read.events
    assert (event.kind, event.value, event.source, event.seen_at) == (
        None, raw, {"topic": "claims", "partition": 0, "offset": 5}, "0:5"
    )  # fmt: skip
    assert isinstance(decide_value(event.value, "claim", small_table, None, "", event.source), Refused)
    assert read.responses([None]) == []


def test_the_header_that_names_a_wrong_format_gets_that_formats_rejection():
    read = read_record(orjson.dumps(FHIR_CLAIM), [("content-type", b"x-application/hl7-v2+er7")], "lab-orders", 0, 6)
    assert read.events == () and read.failure is not None and "HL7 message" in read.failure
    [ack] = responses_of(read, [])
    assert ack["type"] == "ACK" and ack["text"].split("\r")[1].startswith("MSA|AR|")


def test_content_type_reads_kafka_headers():
    assert content_type(None) is None and content_type([]) is None
    assert content_type([("traceparent", b"00-ab"), ("CONTENT-TYPE", b"application/edi-x12")]) == "application/edi-x12"
    assert content_type([("content-type", None)]) is None


# What cannot be read: a rejection, no events, never an exception.

P837 = fixture("837p-50-claims.x12")
GARBLED = [
    ("an ISA cut short", P837[:60], "TA1", "TA1*000000000*"),
    ("noise after an ISA", b"ISA*00*\x00\xff garbage ~~~", "TA1", "TA1*000000000*"),
    ("an IEA that does not repeat the ISA13", P837.replace(b"IEA*1*000004711", b"IEA*1*000004712"), "TA1",
     "TA1*000004711*251105*1432*R*001"),
    ("a transaction set miscounted", P837.replace(b"SE*918*", b"SE*917*"), "999", "IK5*R*4"),
    ("an empty value under an X12 header", b"", "TA1", "TA1*000000000*"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "raw", "kind", "segment"), GARBLED, ids=[case[0] for case in GARBLED])
def test_a_garbled_interchange_gets_a_rejection_and_no_events(why, raw, kind, segment):
    read = read_record(raw, X12, "claims", 4, 88, TIMESTAMP)
    assert read.events == () and read.failure is not None
    assert "FITZGERALD" not in read.failure  # names segments and counts, never content
    [rejection] = responses_of(read, [])
    assert rejection["type"] == kind and rejection["control_number"] == f"{control_numbers(4, 88).interchange:09d}"
    assert segment in rejection["text"]
    assert validate_x12(rejection["text"]) == []


@pytest.mark.parametrize("cut", [3, 105, 106, 200, 900, 5_000, 20_000, len(P837) - 3])
def test_an_interchange_cut_anywhere_is_answered_never_raised(cut, codes):
    read = read_record(P837[:cut], None if cut > 3 else X12, "claims", 0, cut, TIMESTAMP)
    assert read.format is Format.X12 and read.failure is not None
    responses = responses_of(read, decisions_of(read, codes))
    assert responses and responses[0]["type"] in ("999", "TA1")


def test_the_check_command_and_the_worker_build_the_same_answers(interchange):
    """Only the control numbers and the time differ: ``processor check`` echoes the input's, a topic's come
    from the record's place."""
    read, decisions = interchange
    assert read.document is not None
    moment = datetime.fromtimestamp(TIMESTAMP / 1000, UTC)
    records = [orjson.loads(value) for value in decisions]
    echoed = answer(read.document, records, echoed_control_numbers(read.document), moment)
    assert [found.control_number for found in echoed] == ["000004711", "000004712"]
    placed = answer(read.document, records, control_numbers(3, 1207), moment)
    assert [found.content for found in placed] == [response.text.encode() for response in read.responses(decisions)]


# The record of the responses topic and its schema.


def test_the_response_record_has_the_schemas_fields_in_its_order():
    schema = load_schema("response")
    assert list(ResponseRecord.__struct_fields__) == schema["required"] == list(schema["properties"])
    assert list(ResponseSource.__struct_fields__) == schema["properties"]["source"]["required"]
    assert list(Correlation.__struct_fields__) == schema["properties"]["correlation"]["required"]


@pytest.mark.parametrize(
    ("why", "change"),
    [
        ("an X12 answer of an HL7 type", {"type": "ACK"}),
        ("an ISA13 that is not nine digits", {"control_number": "4711"}),
        ("a field the schema does not know", {"patient": "WHITAKER"}),
    ],
)
def test_the_schema_refuses_a_response_that_does_not_hold_together(why, change, interchange):
    read, decisions = interchange
    record = orjson.loads(read.responses(decisions)[0].encode()) | change
    assert not validator("response").is_valid(record), why
