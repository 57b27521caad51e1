"""Following the compacted code-table topic into an in-memory ``CodeTable``.

Guarantees:
- ``loaded`` is set only after every record up to the end offsets seen at start has been applied, and the
  table holds at least one code: nothing is decided against a partial or empty table.
- After that, new records are applied in topic order as they arrive. They are applied on the event
  loop, and the worker does not await while it decides a batch, so each batch sees one table, and a
  record published to the topic changes the decisions of the batches taken after it arrives.
- ``table.version`` names the offsets read (``code-table@0:98213``): every decision records it.
- A record whose value is not a valid code-table record is counted and skipped; it never stops the follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.kafka.clients import client_options
from processor.kafka.topics import partitions_of

log = logging.getLogger(__name__)


class CodeTableFollower:
    """Reads the code-table topic from the beginning, then keeps following it."""

    def __init__(
        self, settings: Settings, table: CodeTable | None = None, on_change: Callable[[CodeTable], None] | None = None
    ) -> None:
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
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        log.info("loading the code table from %s", topic)
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=20_000)
            for records in batches.values():
                for record in records:
                    self._apply(record.key, record.value)
                    # When the table content last changed, by the broker's clock, not when we read it.
                    self.updated_at = max(self.updated_at, record.timestamp / 1000)
            for tp in partitions:
                # The position, not the last offset + 1: compaction and transaction markers leave gaps.
                self._offsets[tp.partition] = await consumer.position(tp)
            if batches:
                self.table.version = self._version()
                if self._on_change is not None:
                    self._on_change(self.table)
            if not self.loaded.is_set() and len(self.table) and self._reached(end):
                log.info("code table loaded: %d codes, version %s", len(self.table), self.table.version)
                self.loaded.set()

    def _reached(self, end: dict[TopicPartition, int]) -> bool:
        return all(self._offsets.get(tp.partition, 0) >= offset for tp, offset in end.items())

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            if key is None:
                raise ValueError("record without a key")
            self.table.apply(key.decode(), None if value is None else orjson.loads(value))
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as err:
            self.invalid_records += 1
            log.warning("skipped an invalid code-table record (key %r): %s", key, err)

    def _version(self) -> str:
        return "code-table@" + ",".join(f"{p}:{o}" for p, o in sorted(self._offsets.items()))
