"""The code table's Kafka I/O: following the compacted code-table topic, reading what it holds, publishing to it.

``CodeTableFollower`` guarantees:
- ``loaded`` is set only after every record up to the end offsets seen at start has been applied, and the
  table holds at least one code: nothing is decided against a partial or empty table.
- After that, new records are applied in topic order as they arrive. They are applied on the event
  loop, and the worker does not await while it decides an event, so each event sees one table, and a
  record published to the topic changes the decisions of the events taken after it arrives.
- ``table.version`` names the offsets read (``code-table@0:98213``): every decision records it.
- A record whose value is not a valid code-table record is counted and skipped; it never stops the follower.

``held_records`` and ``publish`` serve ``processor load``: loaders compare a release with what the topic holds
(``code_table.releases.merge_release``), so loading the same release twice publishes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.kafka.clients import client_options
from processor.kafka.reading import Records, read_to_end
from processor.kafka.topics import partitions_of

log = logging.getLogger(__name__)


class CodeTableFollower:
    """Reads the code-table topic from the beginning into ``table``, then keeps following it."""

    def __init__(
        self,
        settings: Settings,
        table: CodeTable | None = None,
        on_change: Callable[[CodeTable, int, float, int], None] | None = None,
    ) -> None:
        """``on_change(table, records read, newest record's time in s, invalid records skipped)`` is called on the
        event loop after each run of records applied."""
        self.settings = settings
        self.table = table if table is not None else CodeTable()
        self.loaded = asyncio.Event()
        self.invalid_records = 0
        self.updated_at = 0.0
        self._on_change = on_change
        self._offsets: dict[int, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def records_read(self) -> int:
        """Code-table records read so far (the sum of the partitions' positions)."""
        return sum(self._offsets.values())

    async def start(self) -> None:
        """Start reading in the background; await ``loaded.wait()`` before deciding anything."""
        self._consumer = AIOKafkaConsumer(
            **client_options(self.settings, "code-table"),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="code-table-follower")

    async def stop(self) -> None:
        """Stop following; the table keeps what it has."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        topic = self.settings.topics.code_table
        partitions = await partitions_of(consumer, topic)
        log.info("loading the code table from %s", topic)
        # The initial read builds objects that live as long as the table: the cyclic collector would walk
        # the growing table again and again (15 % of a 1.2M-record load); nothing read here makes cycles.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._read_up_to(await read_to_end(consumer, partitions, self._take))
        finally:
            if collecting:
                gc.enable()
        while True:
            if not self.loaded.is_set() and len(self.table):
                log.info("code table loaded: %d codes, version %s", len(self.table), self.table.version)
                self.loaded.set()
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for tp, records in batches.items():
                self._take(tp, records)
            if batches:
                self._read_up_to({tp: await consumer.position(tp) for tp in partitions})

    def _take(self, tp: TopicPartition, records: Records) -> None:
        apply = self._apply
        for record in records:
            apply(record.key, record.value)
        if records:  # when the table content last changed, by the broker's clock, not when we read it
            self.updated_at = max(self.updated_at, max(record.timestamp for record in records) / 1000)

    def _read_up_to(self, positions: dict[TopicPartition, int]) -> None:
        self._offsets.update({tp.partition: offset for tp, offset in positions.items()})
        self.table.version = "code-table@" + ",".join(f"{p}:{o}" for p, o in sorted(self._offsets.items()))
        if self._on_change is not None:
            self._on_change(self.table, self.records_read, self.updated_at, self.invalid_records)

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            if key is None:
                raise ValueError("record without a key")
            self.table.apply_json(key, value)
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as err:
            self.invalid_records += 1
            log.warning("skipped an invalid code-table record (key %r): %s", key, err)


async def held_records(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every record the code-table topic holds now, by key (the latest value of each key; none deleted)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, "loader"), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    held: dict[str, dict[str, Any]] = {}

    def take(tp: TopicPartition, records: Records) -> None:
        for record in records:
            if record.key is None:
                continue
            key = record.key.decode()
            if record.value is None:
                held.pop(key, None)
            else:
                held[key] = orjson.loads(record.value)

    await consumer.start()
    try:
        await read_to_end(consumer, await partitions_of(consumer, settings.topics.code_table), take)
    finally:
        await consumer.stop()
    return held


async def publish(
    settings: Settings,
    records: Iterable[tuple[str, dict[str, Any] | None]],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send ``(key, record)`` pairs (None is a tombstone) and wait until the broker has them all.

    Records of one key keep their order (one partition, idempotent producer). Returns how many were sent.
    """
    producer = AIOKafkaProducer(
        **client_options(settings, "loader"),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=1_048_576,
    )
    await producer.start()
    deliveries = []
    try:
        for key, record in records:
            value = None if record is None else orjson.dumps(record)
            deliveries.append(await producer.send(settings.topics.code_table, value, key=key.encode()))
            if progress is not None and len(deliveries) % 5000 == 0:
                progress(len(deliveries))
        await asyncio.gather(*deliveries)  # raises if the broker refused any record
    finally:
        await producer.stop()
    if progress is not None:
        progress(len(deliveries))
    return len(deliveries)
