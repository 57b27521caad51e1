"""Tools for the exactly-once tests: worker processes, a numbered backlog, and the exactly-once check."""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from processor import samples
from processor.config import Settings
from processor.kafka.topics import partitions_of

GARBAGE_EVERY = 1000  # one undecodable record per this many


def start_worker(settings: Settings, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """``processor run`` as its own process, logging to ``log``, with the settings' state directory (a
    restart on the same settings reopens the duplicate windows the last one kept)."""
    prefix = settings.topics.claims.removesuffix("claims")
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "PROCESSOR_TOPIC_PREFIX": prefix,
        "PROCESSOR_GROUP_ID": settings.group_id,
        "PROCESSOR_METRICS_PORT": "0",
        "PROCESSOR_PARTITIONS": str(settings.partitions),
        "PROCESSOR_STATE_DIR": settings.state_dir,
        "PROCESSOR_DUPLICATE_WINDOW_DAYS": str(settings.duplicate_window_days),
        "PROCESSOR_DUPLICATE_SCOPE": str(settings.duplicate_scope),
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "processor", "-v", "run"], env=environment, stdout=out, stderr=out
        )


def wait_for_log(log: Path, text: str, timeout: float = 90.0, after: int = 0) -> None:
    """Poll ``log`` (from byte ``after``) until ``text`` appears."""
    deadline = time.monotonic() + timeout
    interval = 0.05
    while text.encode() not in log.read_bytes()[after:]:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in {log} after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(interval)  # polling a log file for a condition, with a deadline
        interval = min(interval * 2, 0.5)


def backlog(count: int, seed: int = 3) -> list[tuple[str, bytes | None, bytes]]:
    """``count`` input records (topic kind, key, value): sample claims and orders with unique ids, and
    one undecodable record per ``GARBAGE_EVERY``."""
    templates = samples.generate(500, seed=seed, bad_share=0.3)
    records = []
    for i in range(count):
        if i % GARBAGE_EVERY == GARBAGE_EVERY - 1:
            records.append(("claim", None, b"\x00not json %d" % i))
            continue
        kind, template = templates[i % len(templates)]
        event = copy.copy(template)
        id_field = "claim_id" if kind == "claim" else "order_id"
        event[id_field] = f"{id_field[0].upper()}{i:08d}"
        records.append((kind, event[id_field].encode(), orjson.dumps(event)))
    return records


async def produce_backlog(settings: Settings, records: list[tuple[str, bytes | None, bytes]],
                          rate: float | None = None) -> set[tuple[str, int, int]]:  # fmt: skip
    """Produce the records (at about ``rate`` per second, or as fast as possible); their coordinates."""
    topics = {"claim": settings.topics.claims, "order": settings.topics.orders}
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=10,
                                max_batch_size=512 * 1024)  # fmt: skip
    await producer.start()
    try:
        started = time.monotonic()
        futures = []
        for i, (kind, key, value) in enumerate(records):
            futures.append(await producer.send(topics[kind], value, key=key))
            if rate and i % 500 == 0:
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)  # pacing the producer, not waiting on Kafka
        sent = await asyncio.gather(*futures)
        return {(m.topic, m.partition, m.offset) for m in sent}
    finally:
        await producer.stop()


async def committed_records(settings: Settings) -> int:
    """How many input records the group has committed so far, over all partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.group_id)
        return sum(max(0, meta.offset) for meta in committed.values())
    finally:
        await admin.close()


async def wait_until_committed_at_least(settings: Settings, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    interval = 0.1
    while await committed_records(settings) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"the group did not commit {count} records within {timeout} s")
        await asyncio.sleep(interval)
        interval = min(interval * 2, 1.0)


async def committed_everything(settings: Settings) -> bool:
    """True when the group's committed offsets reach the end of every partition it consumes (with the content
    check, the claims by content too)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    await admin.start()
    try:
        partitions = await partitions_of(consumer, *settings.consumed(), timeout=30)
        # Committed first, then the ends: a claim committed by then has its held record below the end read.
        committed = await admin.list_consumer_group_offsets(settings.group_id)
        end = await consumer.end_offsets(partitions)
        behind = {tp: committed[tp].offset if tp in committed else 0 for tp, offset in end.items() if offset}
        behind = {tp: offset for tp, offset in behind.items() if offset < end[tp]}
        # A topic the workers write in transactions (claims by content) ends with a commit marker, which is no
        # record: the group is through it when nothing committed is left to read after its offset.
        return not behind or await _nothing_committed_after(settings, behind, end)
    finally:
        await consumer.stop()
        await admin.close()


async def _nothing_committed_after(settings: Settings, start: dict, end: dict) -> bool:
    """Whether a read_committed reader finds no record from ``start`` to ``end`` on each of those partitions."""
    reader = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, isolation_level="read_committed",
                              enable_auto_commit=False)  # fmt: skip
    await reader.start()
    try:
        reader.assign(list(start))
        for tp, offset in start.items():
            reader.seek(tp, offset)
        deadline = time.monotonic() + 10
        while any([await reader.position(tp) < end[tp] for tp in start]):
            if any((await reader.getmany(timeout_ms=200)).values()) or time.monotonic() > deadline:
                return False
        return True
    finally:
        await reader.stop()


async def wait_until_committed(settings: Settings, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    interval = 0.2
    while not await committed_everything(settings):
        if time.monotonic() > deadline:
            raise AssertionError(f"the group did not commit every input record within {timeout} s")
        await asyncio.sleep(interval)
        interval = min(interval * 2, 2.0)


async def outputs_by_source(settings: Settings) -> list[tuple[tuple[str, int, int], str | None]]:
    """Every committed record on the outcome and dead-letter topics, read to their end with read_committed,
    as (source coordinates, event id). Each must sit on its input partition's number (one writer per output
    partition, whichever worker owned the input partition then)."""
    topics = settings.topics
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, isolation_level="read_committed",
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topics.accepted, topics.returned, topics.needs_review,
                                         topics.dead_letter, timeout=30)  # fmt: skip
        consumer.assign(partitions)
        end = await _settled_end_offsets(settings, partitions)
        found = []
        while [tp for tp, offset in end.items() if await consumer.position(tp) < offset]:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    value = orjson.loads(record.value)
                    source = value["source"]
                    assert record.partition == source["partition"], (record.topic, record.partition, source)
                    found.append(((source["topic"], source["partition"], source["offset"]), value.get("event_id")))
        return found
    finally:
        await consumer.stop()


async def _settled_end_offsets(settings: Settings, partitions: list, timeout: float = 60.0) -> dict:
    """End offsets once no transaction is open on ``partitions`` (last stable offset = high watermark).

    A transaction's offsets can be visible in the group before the coordinator has written its commit
    markers to every output partition; reading before that would miss committed records.
    """
    committed = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, isolation_level="read_committed")
    uncommitted = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await committed.start()
    await uncommitted.start()
    try:
        deadline = time.monotonic() + timeout
        interval = 0.1
        while True:
            stable = await committed.end_offsets(partitions)
            if stable == await uncommitted.end_offsets(partitions):
                return stable
            if time.monotonic() > deadline:
                raise AssertionError("transactions still open on the output topics")
            await asyncio.sleep(interval)
            interval = min(interval * 2, 1.0)
    finally:
        await committed.stop()
        await uncommitted.stop()


async def finish_and_check(
    settings: Settings,
    log: Path,
    inputs: set[tuple[str, int, int]],
    records: list[tuple[str, bytes | None, bytes]],
    timeout: float,
    **env: str,
) -> None:
    """Run one more worker until the group has committed every input record, then check exactly-once."""
    worker = start_worker(settings, log, **env)
    try:
        await wait_until_committed(settings, timeout=timeout)
    finally:
        worker.terminate()
        worker.wait(60)
    assert_exactly_once(await outputs_by_source(settings), inputs, records)


def assert_exactly_once(found: list[tuple[tuple[str, int, int], str | None]], inputs: set[tuple[str, int, int]],
                        records: list[tuple[str, bytes | None, bytes]]) -> None:  # fmt: skip
    """One output per input record: none lost, none twice (by coordinates and by event id)."""
    sources = [source for source, _ in found]
    duplicates = len(sources) - len(set(sources))
    lost = inputs - set(sources)
    assert not duplicates and not lost, f"{duplicates} duplicated, {len(lost)} lost of {len(inputs)}: {_ranges(lost)}"
    assert len(found) == len(records)
    ids = [event_id for _, event_id in found if event_id is not None]
    expected = {key.decode() for _, key, _ in records if key is not None}
    assert len(ids) == len(set(ids)) and set(ids) == expected


def _ranges(coordinates: set[tuple[str, int, int]]) -> str:
    """Lost records as offset ranges per partition, to see which batches went missing."""
    by_partition: dict[tuple[str, int], list[int]] = {}
    for topic, partition, offset in coordinates:
        by_partition.setdefault((topic, partition), []).append(offset)
    return "; ".join(f"{t}[{p}] {min(o)}..{max(o)} ({len(o)})" for (t, p), o in sorted(by_partition.items()))
