"""What the worker publishes for one input record (``Router.route``), whatever its format: a JSON event as
always; an X12 837, HL7 v2 message or FHIR resource as one decision per claim or order, its answers on the
responses topic, all keyed and partitioned as the record, and the same bytes when the record is replayed.
No broker: the messages are what the worker hands its producer (tests/integration/test_formats_worker.py
sends them through Kafka)."""

from __future__ import annotations

import base64

import orjson
import pytest

from processor.config import Settings
from processor.engine.duplicates import SeenClaims
from processor.routing import Received, Router
from tests.unit import test_formats
from tests.unit.test_formats import fixture
from tests.unit.test_schemas import validator

codes = test_formats.table  # the formats tests' table: the small table and the fixtures' real codes
TOPICS = Settings().topics
DECIDED_AT = "2025-11-05T15:00:01.000Z"
DAY_MS = 86_400_000
OUTCOMES = {TOPICS.accepted, TOPICS.returned, TOPICS.needs_review}


def routed(table, value: bytes, topic: str = TOPICS.claims, headers=(), offset: int = 1207, max_bytes=None,
           window=None) -> tuple[list, list]:  # fmt: skip
    record = Received(topic, 3, offset, 1_762_354_800_000, b"submitter-key", value, headers)
    out: list = []
    decisions = Router(TOPICS, table, None, max_bytes).route(record, DECIDED_AT, out, window)
    return decisions, out


def on(topic: str, out: list) -> list:
    return [message for message in out if message[0] == topic]


def test_a_json_event_is_decided_as_always_and_gets_no_response(small_table):
    from tests.conftest import a_claim

    decisions, out = routed(small_table, orjson.dumps(a_claim()))
    assert len(decisions) == 1 and decisions[0] is not None
    assert [m[0] for m in out] == [TOPICS.accepted] and out[0][3] == 3
    assert orjson.loads(out[0][2])["source"] == {"topic": TOPICS.claims, "partition": 3, "offset": 1207}


def test_an_837_record_is_a_decision_per_claim_and_its_999_and_277ca_on_the_responses_topic(codes):
    decisions, out = routed(codes, fixture("837p-50-claims.x12"))
    assert len(decisions) == 50 and all(decisions)
    published = [m for m in out if m[0] in OUTCOMES]
    assert len(published) == 50 and {m[3] for m in out} == {3}  # the record's partition, every message
    records = [orjson.loads(m[2]) for m in published]
    assert [r["source"]["index"] for r in records] == list(range(50))
    assert all(m[1] == r["event_id"].encode() for m, r in zip(published, records, strict=True))
    responses = [orjson.loads(m[2]) for m in on(TOPICS.responses, out)]
    assert [r["type"] for r in responses] == ["999", "277CA"]
    assert {m[1] for m in on(TOPICS.responses, out)} == {f"{TOPICS.claims}:3:1207".encode()}
    check = validator("response")
    for response in responses:
        check.validate(response)
        assert response["source"]["offset"] == 1207 and response["events"] == 50
    returned = sum(r["outcome"] == "returned" for r in records)
    assert responses[1]["text"].count("STC*A7") + responses[1]["text"].count("STC*A3") >= returned
    # Replayed (the transaction was aborted), the record publishes the same bytes.
    assert routed(codes, fixture("837p-50-claims.x12"))[1] == out


def test_the_claims_of_an_837_enter_the_duplicate_window_by_their_place_in_the_record(codes):
    window = SeenClaims(30 * DAY_MS)
    decisions, out = routed(codes, fixture("837p-50-claims.x12"), window=window)
    seen = on(TOPICS.seen_claims, out)
    taken = [d for d in decisions if d.outcome != "returned"]  # a returned claim is not taken in, nor kept
    assert len(decisions) == 50 and len(seen) == len(taken) == 44 and {m[3] for m in seen} == {3}
    assert [orjson.loads(m[2])["source"] for m in seen[:2]] == ["3:1207:0", "3:1207:1"]
    assert [m[1] for m in seen[:2]] == [b"3-1207-0", b"3-1207-1"]  # keyed by the claims' control numbers


def test_an_hl7_order_message_on_the_orders_topic_gets_its_decisions_and_an_ack(codes):
    decisions, out = routed(codes, fixture("orm-o01.hl7"), topic=TOPICS.orders)
    assert len(decisions) == 2 and all(decisions)
    (ack,) = [orjson.loads(m[2]) for m in on(TOPICS.responses, out)]
    assert ack["type"] == "ACK" and ack["control_number"] == "3-1207"


def test_the_content_type_header_decides_the_format(codes):
    raw = fixture("fhir-claim.json")
    decisions, out = routed(codes, raw, headers=[("Content-Type", b"application/fhir+json")])
    assert len(decisions) == 1 and [orjson.loads(m[2])["type"] for m in on(TOPICS.responses, out)] == [
        "ClaimResponse"]  # fmt: skip


def test_a_garbled_interchange_is_rejected_to_the_submitter_and_dead_lettered(codes):
    raw = fixture("837p-50-claims.x12")[:300]  # cut inside the first claim: no IEA, no SE
    decisions, out = routed(codes, raw)
    letters = [orjson.loads(m[2]) for m in on(TOPICS.dead_letter, out)]
    assert decisions and not any(on(topic, out) for topic in OUTCOMES) and len(letters) == 1
    assert base64.b64decode(letters[0]["raw"]) == raw and letters[0]["source"]["offset"] == 1207
    assert [orjson.loads(m[2])["type"] for m in on(TOPICS.responses, out)] in (["999"], ["TA1"], ["999", "277CA"])


def test_an_interchange_over_the_size_limit_is_dead_lettered_unread(codes):
    raw = fixture("837p-50-claims.x12")
    decisions, out = routed(codes, raw, max_bytes=len(raw) - 1)
    assert decisions == [None] and [m[0] for m in out] == [TOPICS.dead_letter]
    assert "bytes; the limit is" in orjson.loads(out[0][2])["error"]


@pytest.mark.parametrize("cut", [120, 400, 2_000])
def test_any_cut_of_an_interchange_is_answered_never_raised(codes, cut):
    decisions, out = routed(codes, fixture("837p-50-claims.x12")[:cut])
    assert decisions and on(TOPICS.responses, out)
