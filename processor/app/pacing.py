"""The worker loop's clock: where a batch's time goes, how large a batch may grow in time, and when deciding
gives the event loop a turn.

``Pacing`` reports each phase of the loop to the sensor (``app.sensor.PHASES``) and bounds a batch by time as
well as by size: a batch takes at most what the worker decides in ``commit_interval_ms`` (its own deciding
time per record, measured as it runs) and at most ``batch_max_records``, never fewer than ``MIN_BATCH``; so
under a backlog a transaction commits about every interval. Below the maximum rate batches are smaller than
that anyway: there the latency is set by how long a batch's delivery takes, and ``Turns`` lets that delivery
go on while the next batch is decided.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from processor.app.sensor import Sensor
from processor.config import Settings

T = TypeVar("T")
Batches = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]

# The decide rate is a moving average over about this many batches: it follows the machine's load in a few
# seconds, and one slow batch (a collection, a table change) does not halve the next batch.
RATE_BATCHES = 8
# A batch of fewer records than this says little of the rate: its fixed costs dominate.
RATE_MIN_RECORDS = 100
# Never fewer records a batch than this, however slow deciding is: each batch costs a transaction per partition
# number, so on a busy machine (300-500 us of deciding a record: 100 ms held 200-300 records) batches that
# small drained a backlog at half the rate, and the worker fell behind at the rate it was measured to hold.
MIN_BATCH = 1000
# Work done between two turns of the event loop while a batch is decided. A transaction's round trips each
# need a turn or two to go on: a count of records (200 were 5 ms on a free core) grew to 50 ms and more on a
# busy machine, and the batch in flight stood still while the next one was decided.
TURN_S = 0.002


class Turns:
    """When deciding should give the event loop a turn (``due()``: once every ``TURN_S`` of work), and how much
    of the time was the deciding's own (``worked_s``), without the work of others done at its turns."""

    __slots__ = ("_next", "_resumed", "_worked")

    def __init__(self) -> None:
        self._worked = 0.0
        self._resume()

    def _resume(self) -> None:
        self._resumed = time.perf_counter()
        self._next = self._resumed + TURN_S

    def due(self) -> bool:
        return time.perf_counter() >= self._next

    async def give(self) -> None:
        """Let the event loop run what is ready (the batch in flight's responses, the fetcher), then go on."""
        self._worked += time.perf_counter() - self._resumed
        await asyncio.sleep(0)
        self._resume()

    def worked_s(self) -> float:
        return self._worked + time.perf_counter() - self._resumed


class Pacing:
    """The loop's phases, timed for the sensor; the number of records the next batch may take."""

    def __init__(self, settings: Settings, sensor: Sensor) -> None:
        self.sensor = sensor
        self.interval_s = settings.commit_interval_ms / 1000
        self.batch_max_records = settings.batch_max_records
        self._per_record_s: float | None = None  # decide time per record, averaged over recent batches
        self._fetched = 0  # records in the batch last fetched

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` (whether it returns or raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.sensor.on_phase(name, time.perf_counter() - started)

    async def timed(self, name: str, work: Awaitable[T]) -> T:
        """Await ``work``, timed as phase ``name`` (for a task, e.g. a batch's delivery)."""
        with self.phase(name):
            return await work

    def max_records(self) -> int:
        """How many records the next batch may take: what is decided in one commit interval at the measured
        rate, within ``MIN_BATCH`` and ``batch_max_records``."""
        if self._per_record_s is None or self._per_record_s <= 0:
            return self.batch_max_records
        fits = int(self.interval_s / self._per_record_s)
        return max(min(MIN_BATCH, self.batch_max_records), min(self.batch_max_records, fits))

    async def fetch(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> Batches:
        """The next batch (``getmany``, at most ``max_records``), its wait and its oldest record's age reported."""
        with self.phase("fetch_wait"):
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_records())
        self._fetched = sum(len(records) for records in batches.values())
        oldest = min((records[0].timestamp for records in batches.values() if records), default=None)
        if oldest is not None and oldest > 0:  # its Kafka timestamp to now: in Kafka, fetched, the batch before
            self.sensor.on_phase("queued", max(0.0, time.time() - oldest / 1000))
        return batches

    @contextmanager
    def deciding(self) -> Iterator[Turns]:
        """Time the deciding of the batch last fetched, which gives the event loop its ``Turns``; the time of
        its own work per record sizes the next batches."""
        started, turns = time.perf_counter(), Turns()
        yield turns
        self.sensor.on_phase("decide", time.perf_counter() - started)
        self.decided(self._fetched, turns.worked_s())

    def decided(self, records: int, seconds: float) -> None:
        """``records`` took ``seconds`` of the deciding's own work: report it and update the decide rate.

        Own work only: the turns given to the batch in flight and the fetcher are not the batch's cost, and
        counting them made a slow transaction shrink the next batches, which then cost more transactions."""
        self.sensor.on_phase("decide_work", seconds)
        if records < RATE_MIN_RECORDS:  # too few to tell the rate (fixed costs dominate)
            return
        per_record = seconds / records
        if self._per_record_s is None:
            self._per_record_s = per_record
        else:
            self._per_record_s += (per_record - self._per_record_s) / RATE_BATCHES
