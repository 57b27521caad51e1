"""``processor demo``: the whole path on one machine, for a newcomer.

Starts a local Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names one), creates the topics, publishes
the default code table and the demo rows, starts a worker, feeds sample claims and orders (and a few
undecodable records, and some of the samples again as an X12 837P interchange and an HL7 v2 ORM message, as
doctors' offices and labs send them), reads every decision and answer back, prints a summary of outcomes,
top reasons and the answers, says where the metrics are, and runs until Ctrl-C, then stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from collections import Counter
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processor import samples
from processor.app.worker import Worker
from processor.code_table.coverage import describe, today
from processor.code_table.sources import table_records
from processor.config import Settings
from processor.formats.build import write_837p, write_orm
from processor.kafka.broker import LocalBroker
from processor.kafka.clients import client_options
from processor.kafka.code_table_topic import publish
from processor.kafka.topics import ensure_topics, partitions_of

GARBAGE = [b"\x00\x01 not json", b"[1, 2, 3]", b'{"claim_id": "CLM-TRUNCATED", "lines": [']
DOCUMENT_CLAIMS = 10  # professional sample claims sent again as one 837P interchange; and one order as an ORM


def say(text: str = "") -> None:
    print(text, flush=True)


class _SingleNodeRetries(logging.Filter):
    """Drops aiokafka's warning of a produce retried after ``NotEnoughReplicasError``. On the demo's one-node
    broker it is Kafka 4's transaction verification meeting the markers of the last commit (docs/benchmark.md,
    "Exactly-once latency"), two dozen harmless lines in a newcomer's first screen; on a real cluster it means
    the in-sync replicas fell short, so only the demo's own broker gets this filter."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NotEnoughReplicasError" not in record.getMessage()


def run_demo(settings: Settings, events: int, wait_for_ctrl_c: bool) -> int:
    """Run the demo; returns the exit code."""
    broker = None
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        say("Starting a local Apache Kafka broker (KRaft, from the official jars)...")
        broker = LocalBroker()
        broker.start()
        # The worker's duplicate-window stores go with this broker's topics (and are removed with it): a store
        # kept from another broker's run would only be found stale and rebuilt, with a warning per partition.
        state_dir = str(broker.workdir / "state") if "PROCESSOR_STATE_DIR" not in os.environ else settings.state_dir
        settings = dataclasses.replace(settings, bootstrap_servers=broker.bootstrap_servers, state_dir=state_dir)
        say(f"  broker ready at {broker.bootstrap_servers} (its log: {broker.log_file})")
        logging.getLogger("aiokafka.producer.sender").addFilter(_SingleNodeRetries())
    if not _port_free(settings.metrics_port):
        settings = dataclasses.replace(settings, metrics_port=0)
    try:
        return asyncio.run(_demo(settings, events, wait_for_ctrl_c))
    finally:
        if broker is not None:
            say("Stopping the broker...")
            broker.remove()
        say("Stopped.")


async def _demo(settings: Settings, events: int, wait_for_ctrl_c: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    topics = settings.topics
    await ensure_topics(settings)
    records = table_records(default=True, demo=True)
    started = time.monotonic()
    sent = await publish(settings, records)
    say(f"Published the code table to '{topics.code_table}': {sent:,} records "
        f"(ICD-10-CM, ICD-10-PCS and CMS's MCE lists for FY2025 to FY2027, CMS's place of service codes, "
        f"demo CPT/HCPCS/LOINC rows) in "
        f"{time.monotonic() - started:.1f} s")  # fmt: skip

    worker = Worker(settings)
    worker_task = asyncio.create_task(worker.run(stop), name="worker")
    while not worker.is_ready():
        if worker_task.done():
            return await _failed(worker_task)
        await asyncio.sleep(0.1)  # polling the worker's readiness, not waiting on Kafka
    say(f"Worker ready: code table {worker.table.version}, {len(worker.table):,} code versions; "
        f"metrics at http://127.0.0.1:{worker.metrics_port}/metrics")  # fmt: skip
    say(f"The code table {describe(worker.table, today())}")

    outputs = [topics.accepted, topics.returned, topics.needs_review, topics.dead_letter, topics.responses]
    reader = AIOKafkaConsumer(**client_options(settings, "demo-reader"), isolation_level="read_committed")
    await reader.start()
    try:
        partitions = await partitions_of(reader, *outputs, timeout=30)
        reader.assign(partitions)
        for tp, offset in (await reader.end_offsets(partitions)).items():
            reader.seek(tp, offset)  # only this run's decisions
        fed, documents = await _feed(settings, events)
        say(f"Fed {fed - len(GARBAGE):,} sample claims and orders, {len(GARBAGE)} undecodable records, an X12 837P "
            f"interchange of {documents - 1} claims and an HL7 v2 ORM^O01 order; deciding...")  # fmt: skip
        summary = await _collect(reader, topics.responses, fed + documents, 3, stop)
    finally:
        await reader.stop()
    _print_summary(summary, settings, worker)
    if wait_for_ctrl_c and not stop.is_set():
        say("The worker keeps running; produce more events to the topics above. Ctrl-C stops it.")
        await stop.wait()
    stop.set()
    await worker_task
    return 0


async def _failed(task: asyncio.Task[None]) -> int:
    await task  # re-raises what stopped the worker
    return 1


async def _feed(settings: Settings, events: int) -> tuple[int, int]:
    """Send the sample events and the garbage (how many records: one decision or dead letter each), then some
    samples as an 837P interchange and an ORM message (how many events they hold)."""
    topics = settings.topics
    producer = AIOKafkaProducer(**client_options(settings, "demo-feed"), linger_ms=5, acks="all")
    await producer.start()
    try:
        deliveries = []
        sent = samples.generate(events, seed=int(time.time()))
        for kind, event in sent:
            topic, key = (topics.claims, event["claim_id"]) if kind == "claim" else (topics.orders, event["order_id"])
            deliveries.append(await producer.send(topic, orjson.dumps(event), key=key.encode()))
        for raw in GARBAGE:
            deliveries.append(await producer.send(topics.claims, raw))
        # What a doctor's office and a lab send: the decisions come out as for the JSON events, and the
        # answers their systems read (a 999 and a 277CA, an ACK) on the responses topic.
        more = samples.generate(4 * DOCUMENT_CLAIMS, seed=int(time.time()) + 1)
        claims = [e for k, e in more if k == "claim" and e.get("claim_type", "professional") == "professional"]
        claims = claims[:DOCUMENT_CLAIMS]
        order = next(e for k, e in more if k == "order")
        x12, hl7 = [("content-type", b"application/edi-x12")], [("content-type", b"x-application/hl7-v2+er7")]
        deliveries.append(await producer.send(topics.claims, write_837p(claims), key=b"demo-office", headers=x12))
        deliveries.append(await producer.send(topics.orders, write_orm(order), key=b"demo-lab", headers=hl7))
        await asyncio.gather(*deliveries)
        return len(deliveries) - 2, len(claims) + 1
    finally:
        await producer.stop()


async def _collect(
    reader: AIOKafkaConsumer, responses: str, expected: int, answers: int, stop: asyncio.Event
) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    stays: Counter[str] = Counter()  # the reasons given on inpatient stays (CMS's code editor)
    examples: dict[str, str] = {}
    answered: list[dict[str, Any]] = []
    seen = 0
    while (seen < expected or len(answered) < answers) and not stop.is_set():
        for records in (await reader.getmany(timeout_ms=500)).values():
            for record in records:
                value = orjson.loads(record.value)
                if record.topic == responses:
                    answered.append(value)
                    continue
                seen += 1
                if "outcome" not in value:
                    outcomes["dead-lettered"] += 1
                    continue
                outcomes[f"{value['kind']} {value['outcome']}"] += 1
                inpatient = value["event"].get("claim_type") == "inpatient"
                for reason in value["reasons"]:
                    reasons[reason["id"]] += 1
                    stays[reason["id"]] += inpatient
                    examples.setdefault(reason["id"], reason["message"])
    return {
        "outcomes": outcomes,
        "reasons": reasons,
        "stays": +stays,
        "examples": examples,
        "seen": seen,
        "answers": answered,
    }


def _print_summary(summary: dict[str, Any], settings: Settings, worker: Worker) -> None:
    topics = settings.topics
    say()
    say(f"Decided {summary['seen']:,} records:")
    for name, n in sorted(summary["outcomes"].items()):
        say(f"  {name:<22} {n:>7,}")
    say("Top reasons:")
    for reason_id, n in summary["reasons"].most_common(8):
        say(f"  {reason_id:<30} {n:>6,}  e.g. {summary['examples'][reason_id]}")
    say("Top reasons on inpatient stays (CMS's Medicare Code Editor, the discharge date's lists):")
    for reason_id, n in summary["stays"].most_common(5):
        say(f"  {reason_id:<34} {n:>6,}  e.g. {summary['examples'][reason_id]}")
    say(f"Answers on '{topics.responses}' (for the records in a submitter's format):")
    for answer in summary["answers"]:
        say(f"  {answer['type']:<6} control number {answer['control_number'] or '-':<10} answering "
            f"{answer['events']} {'claims' if answer['format'] == 'x12' else 'order(s)'} of "
            f"{answer['source']['topic']} offset {answer['source']['offset']}")  # fmt: skip
    say()
    say("Topics: in  " + f"{topics.claims}, {topics.orders}  (code table: {topics.code_table})")
    say("        out " + f"{topics.accepted}, {topics.returned}, {topics.needs_review}, {topics.dead_letter}, "
        f"{topics.responses}")  # fmt: skip
    port = worker.metrics_port
    say(f"Metrics: http://127.0.0.1:{port}/metrics   health: /healthz   readiness: /readyz")
    say(f"Kafka:   KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap_servers}")


def _port_free(port: int) -> bool:
    with socket.socket() as sock, contextlib.suppress(OSError):
        sock.bind(("0.0.0.0", port))
        return True
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run: processor demo")
