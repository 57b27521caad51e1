"""Reading the decisions as a downstream consumer would: read_committed, from the outcome topics.

The ``Observer`` notes when each output key first becomes visible (keys are unique event ids, so a decision
published twice by an at-least-once retry counts once), without parsing values. From that:

- drain rate: decisions of the backlog made visible after the gate opened, over the time from the gate to
  the last one;
- latency: the time a decision became visible minus the time its event was handed to the producer, both
  read on this process's monotonic clock (no clock skew between processes to worry about).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from processor.config import Settings
from processor.kafka.topics import partitions_of


class Observer:
    """Follows the outcome topics in the background; ``seen`` maps key -> first time visible (monotonic)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: dict[bytes, float] = {}
        self.records = 0
        self._tags: dict[bytes, str] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            client_id="bench-observer",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=100,
        )
        await self._consumer.start()
        partitions = await partitions_of(self._consumer, *self.settings.topics.outputs(), timeout=30)
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run(), name="bench-observer")

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        seen, tags, counts, last = self.seen, self._tags, self.counts, self.last
        clock = time.monotonic
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            now = clock()
            for records in batches.values():
                self.records += len(records)
                for record in records:
                    key = record.key
                    if key not in seen:
                        seen[key] = now
                        tag = tags.get(key)
                        if tag is not None:
                            counts[tag] += 1
                            last[tag] = now

    def track(self, tag: str, keys: Iterable[bytes]) -> None:
        """Count the keys of one set (warm-up, backlog, latency) as they become visible: ``counts[tag]``."""
        self.counts.setdefault(tag, 0)
        for key in keys:
            self._tags[key] = tag
            if key in self.seen:
                self.counts[tag] += 1
                self.last[tag] = max(self.last.get(tag, 0.0), self.seen[key])

    def check(self) -> None:
        """Raise what stopped the background reader, if it stopped."""
        if self._task is not None and self._task.done():
            self._task.result()
            raise RuntimeError("the observer stopped")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


async def group_members(settings: Settings, group_id: str) -> int | None:
    """How many members the group has when it is Stable; None while it is (re)balancing or empty."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="bench-admin")
    await admin.start()
    try:
        for response in await admin.describe_consumer_groups([group_id]):
            for group in response.groups:
                _error, gid, state, _protocol_type, _protocol, members, *_ = group
                if gid == group_id and state == "Stable" and members:
                    return len(members)
        return None
    except Exception:
        return None
    finally:
        await admin.close()


def percentiles(values: list[float]) -> dict[str, Any]:
    """p50, p99 and max of ``values`` in milliseconds (nearest rank)."""
    if not values:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return round(ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] * 1000, 2)

    return {"p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1] * 1000, 2), "count": n}
