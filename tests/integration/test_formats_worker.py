"""Submitters' own formats through the worker and a real broker: an X12 837 interchange and an HL7 v2 order
message, each one Kafka record, come out as one decision per claim or order and the answers their senders'
systems read (999 and 277CA, ACK) on the responses topic, committed with the decisions (read_committed)."""

from __future__ import annotations

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from processor.formats import control_numbers, validate_x12
from tests.conftest import SMALL_POLICY, SMALL_TABLE
from tests.integration.conftest import decisions, load_table, read_all, running_worker
from tests.unit.test_formats import FORMAT_CODES, RETURNED_837P, fixture
from tests.unit.test_schemas import validator

pytestmark = pytest.mark.kafka


async def send(settings, topic: str, value: bytes, headers=()) -> object:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        return await (await producer.send(topic, value, key=b"submitter-1", headers=list(headers)))
    finally:
        await producer.stop()


async def test_an_837_and_an_hl7_message_are_decided_event_by_event_and_answered(settings):
    t = settings.topics
    await load_table(settings, [*SMALL_TABLE, *SMALL_POLICY, *FORMAT_CODES])
    async with running_worker(settings):
        x12 = await send(settings, t.claims, fixture("837p-50-claims.x12"), [("content-type", b"application/edi-x12")])
        hl7 = await send(settings, t.orders, fixture("orm-o01.hl7"))  # no header: its first bytes say
        found = decisions(await read_all(settings, [t.accepted, t.returned, t.needs_review], 52))
        responses = await read_all(settings, [t.responses], 3)
    claims = [d for d in found.values() if d["source"]["topic"] == t.claims]
    orders = [d for d in found.values() if d["source"]["topic"] == t.orders]
    assert len(claims) == 50 and len(orders) == 2
    assert sorted(d["source"]["index"] for d in claims) == list(range(50))
    assert {(d["source"]["partition"], d["source"]["offset"]) for d in claims} == {(x12.partition, x12.offset)}
    answers = {orjson.loads(r.value)["type"]: (r, orjson.loads(r.value)) for r in responses}
    assert set(answers) == {"999", "277CA", "ACK"}
    check = validator("response")
    for record, response in answers.values():
        check.validate(response)
        source = response["source"]
        assert record.key == f"{source['topic']}:{source['partition']}:{source['offset']}".encode()
        assert record.partition == source["partition"]
    # Control numbers from the record's place: a retried transaction would publish the same bytes.
    numbers = control_numbers(x12.partition, x12.offset)
    assert answers["999"][1]["control_number"] == f"{numbers.interchange:09d}"
    assert answers["ACK"][1]["control_number"] == f"{hl7.partition}-{hl7.offset}"
    # The claims the engine returned are the 837 fixture's rejected ones, and the 277CA rejects each by name.
    returned = {d["event_id"] for d in claims if d["outcome"] == "returned"}
    assert returned == RETURNED_837P
    rejected, claim = set(), None
    for segment in (s.split("*") for s in answers["277CA"][1]["text"].split("~\n") if s):
        if segment[0] == "TRN" and segment[1] == "2":
            claim = segment[2]
        elif segment[0] in ("HL", "SE"):
            claim = None
        elif segment[0] == "STC" and claim in found and segment[3] == "U":
            rejected.add(claim)
    assert rejected == returned
    # pyx12 reads both answers against their implementation guides (999 X231A1, 277CA X214).
    assert validate_x12(answers["999"][1]["text"]) == [] and validate_x12(answers["277CA"][1]["text"]) == []
    # The ACK says what became of the orders: AR when one is returned, AE when one needs review, with an ERR
    # segment per reason.
    segments = [segment.split("|") for segment in answers["ACK"][1]["text"].split("\r") if segment]
    (msa,) = [segment for segment in segments if segment[0] == "MSA"]
    outcomes = {d["outcome"] for d in orders}
    assert msa[1] == ("AR" if "returned" in outcomes else "AE" if "needs_review" in outcomes else "AA")
    errors = [segment for segment in segments if segment[0] == "ERR"]
    assert len(errors) == sum(len(d["reasons"]) for d in orders) and (msa[1] == "AA") == (not errors)


async def test_an_oml_message_and_fhir_resources_get_an_orl_a_claim_response_and_an_operation_outcome(settings):
    t = settings.topics
    await load_table(settings, [*SMALL_TABLE, *SMALL_POLICY, *FORMAT_CODES])
    async with running_worker(settings):
        await send(settings, t.orders, fixture("oml-o21.hl7"), [("content-type", b"x-application/hl7-v2+er7")])
        await send(settings, t.claims, fixture("fhir-claim.json"), [("content-type", b"application/fhir+json")])
        await send(settings, t.orders, fixture("fhir-service-request.json"))  # no header: resourceType says
        responses = [orjson.loads(r.value) for r in await read_all(settings, [t.responses], 3)]
        found = decisions(await read_all(settings, [t.accepted, t.returned, t.needs_review], 4))
    assert sorted((r["format"], r["type"]) for r in responses) == [
        ("fhir", "ClaimResponse"), ("fhir", "OperationOutcome"), ("hl7v2", "ORL^O22")]  # fmt: skip
    check = validator("response")
    for response in responses:
        check.validate(response)
    (orl,) = [r for r in responses if r["type"] == "ORL^O22"]
    assert orl["events"] == 2 and "MSA|" in orl["text"]
    assert len(found) == 4 and all("index" in d["source"] for d in found.values())
