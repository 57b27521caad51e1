"""Integration fixtures: fresh topic names per test, a worker running in the test's event loop, and
polling helpers that wait on a condition until a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from processor.app.metrics import Metrics
from processor.app.worker import Worker
from processor.code_table.table import CodeTable
from processor.config import Settings, Topics
from processor.kafka.code_table_topic import CodeTableFollower, publish
from processor.kafka.topics import ensure_topics, partitions_of

pytestmark = pytest.mark.kafka


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings with topic and group names no other test uses, and a state directory of the test's own. The
    duplicate window is off: tests send the same claim content under many ids (the duplicate tests turn it
    on)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    return Settings(
        bootstrap_servers=kafka_bootstrap,
        group_id=prefix + "group",
        topics=Topics().with_prefix(prefix),
        metrics_host="127.0.0.1",
        metrics_port=0,
        partitions=2,
        batch_timeout_ms=100,
        duplicate_window_days=0,
        state_dir=str(tmp_path / "state"),
    )


async def eventually(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    interval = 0.05
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
        interval = min(interval * 2, 0.5)


@asynccontextmanager
async def running_worker(settings: Settings, wait_ready: bool = True) -> AsyncIterator[Worker]:
    """A worker running in the background for the body of the ``async with``; stopped cleanly after."""
    worker = Worker(settings, Metrics())
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        if wait_ready:
            await eventually(lambda: worker.is_ready() or task.done(), 60, "the worker to be ready")
            if task.done():
                await task  # raise what stopped it
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def scrape(worker: Worker) -> dict[tuple[str, tuple[str, ...]], float]:
    """The worker's /metrics as {(name, label values in label-name order): value}, histogram buckets left out."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(value for _, value in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if "le" not in s.labels
    }


async def counted(worker: Worker, timeout: float = 30.0, **consumed: int) -> None:
    """Wait until the worker's metrics count ``consumed`` records of each kind (``claim=6, order=2``).
    A worker counts a batch once its delivery has settled, which a read_committed reader can see a
    moment before the worker does; and the records may come in more than one batch."""

    def done() -> bool:
        samples = scrape(worker)
        return all(samples.get(("processor_events_consumed_total", (kind,))) == n for kind, n in consumed.items())

    await eventually(done, timeout, f"the worker to count {consumed}")


async def table_on_topic(settings: Settings) -> CodeTable:
    """The code table a follower reads from the test's code-table topic, once it has loaded it."""
    follower = CodeTableFollower(settings)
    await follower.start()
    try:
        await eventually(follower.loaded.is_set, what="the code table to load")
    finally:
        await follower.stop()
    return follower.table


async def load_table(settings: Settings, records: Iterable[tuple[str, dict | None]]) -> None:
    await ensure_topics(settings)
    await publish(settings, records)


async def produce(
    settings: Settings, topic: str, values: Iterable[Any], key: bytes | None = None, partition: int | None = None
) -> list[Any]:
    """Send values (dicts as JSON, bytes as they are), to ``partition`` if given, else by ``key``; returns each
    record's metadata (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, v if isinstance(v, bytes) else orjson.dumps(v), key=key, partition=partition)
            for v in values
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def read_all(
    settings: Settings, topics: Iterable[str], count: int, timeout: float = 60.0
) -> list[ConsumerRecord]:
    """Read ``topics`` from the beginning (read_committed) until ``count`` records have arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, isolation_level="read_committed",
                                enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(await partitions_of(consumer, *topics, timeout=30))
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while len(records) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out: {len(records)} of {count} records on {', '.join(topics)}")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def decisions(records: Iterable[ConsumerRecord]) -> dict[str, dict]:
    """Decision records by event id, with the topic each was read from under ``_topic``."""
    return {(v := orjson.loads(r.value))["event_id"]: {**v, "_topic": r.topic} for r in records}
