"""The worker: one member of the consumer group that decides every claim and lab order.

Per batch: take up to ``batch_max_records`` records, decide each (``routing.Router``: no I/O; the code table
may change between two events, never while one is decided), then hand the outgoing records and the consumed
offsets to the delivery (``kafka.delivery``: exactly-once transactions by default, or at-least-once). The
delivery runs while the next batch is fetched and decided; that batch is delivered only once the one before
it has settled (delivered, or failed and rewound to be decided again), and only for the partitions that carry
on exactly where the settled batch ended (``app.ledger`` states the contract; ``app.rebalance`` the hand-over).

Guarantees, whatever the guarantee setting:
- Nothing is decided before the code table is loaded; ``/readyz`` says so.
- A record never stops the worker: undecodable or oversized records, and events that make the engine
  fail, go to the dead-letter topic with their topic, partition, offset and the error (never the content).
- Nothing is committed that was not delivered; every outgoing record goes to its input's partition number.
- Shutdown (``stop`` set, e.g. by SIGTERM): the current batch is finished and committed, then every client
  is closed. Logs and metric labels carry no event content; what is counted goes to the ``Sensor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from processor.app.coverage import watch_coverage
from processor.app.health import HealthServer
from processor.app.ledger import InFlight, OffsetLedger, refresh_lag
from processor.app.metrics import Metrics
from processor.app.pacing import Batches, Pacing, Turns
from processor.app.rebalance import Rebalance
from processor.app.sensor import BatchTally
from processor.app.windows import DuplicateWindows
from processor.code_table.table import CodeTable
from processor.config import Guarantee, Settings
from processor.engine.policy import load_policy
from processor.engine.rules import Outcome
from processor.kafka.assignor import PartitionNumberAssignor
from processor.kafka.clients import check_access, client_options
from processor.kafka.code_table_topic import CodeTableFollower
from processor.kafka.delivery import AtLeastOnce, Delivery, DeliveryFailed, ExactlyOnce, PartitionBatch
from processor.kafka.topics import ensure_topics
from processor.routing import Router, now_iso

log = logging.getLogger(__name__)

# What the consumer fetches ahead per input partition (aiokafka's default is 1 MiB). It prefetches for every
# partition it reads (18 by default, with the member check's); A/B drains, two pairs: 512 KiB held the peak
# RSS at 175-179 MB against 197-199 at the default, within the noise in rate; 256 KiB cost a third of it.
# Never below the largest record the worker decides (a larger batch comes whole anyway: Kafka's KIP-74).
FETCH_PARTITION_BYTES = 512 * 1024


class Worker:
    """One member of the processor's consumer group. ``await run(stop)`` until ``stop`` is set."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None, create_topics: bool = True) -> None:
        self.settings = settings
        self.sensor = metrics if metrics is not None else Metrics()
        self.table = CodeTable()
        policy = load_policy(settings.rules_file) if settings.rules_file else None
        self.router = Router(settings.topics, self.table, policy, settings.max_record_bytes, settings.member_check)
        self.follower = CodeTableFollower(settings, self.table, on_change=self.sensor.on_table_changed)
        self.health = HealthServer(self.sensor.registry, is_alive=lambda: self._alive, is_ready=self.is_ready)
        self.metrics_port: int | None = None
        self.create_topics = create_topics
        self.ledger = OffsetLedger()
        self.windows = DuplicateWindows(settings)
        self.pacing = Pacing(settings, self.sensor)
        self.sensor.on_inputs(settings.consumed())
        self._alive = False
        self._consuming = False
        self._consumer: AIOKafkaConsumer | None = None

    def is_ready(self) -> bool:
        """True once the code table is loaded and the worker consumes."""
        return self._consuming and self.follower.loaded.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve metrics, load the code table, then consume, decide and deliver until ``stop`` is set."""
        settings = self.settings
        self.metrics_port = self.health.start(settings.metrics_host, settings.metrics_port)
        self._alive = True
        delivery: Delivery | None = None
        lag_refresh: asyncio.Task[None] | None = None
        coverage_watch: asyncio.Task[None] | None = None
        try:
            await check_access(settings)
            if self.create_topics:
                await ensure_topics(settings)
            await self.follower.start()
            if not await first(self.follower.loaded.wait(), stop.wait()):
                return
            # The code table lives as long as the worker: out of the collector's sight, or every full
            # collection walks it (40 ms with the default table).
            gc.collect()
            gc.freeze()
            consumer = self._consumer = AIOKafkaConsumer(
                **client_options(settings),
                group_id=settings.group_id,
                group_instance_id=settings.group_instance_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                max_partition_fetch_bytes=max(FETCH_PARTITION_BYTES, settings.max_record_bytes),
                partition_assignment_strategy=(PartitionNumberAssignor,),
            )
            exactly_once = settings.processing_guarantee is Guarantee.EXACTLY_ONCE
            delivery = (ExactlyOnce if exactly_once else AtLeastOnce)(settings, consumer, self.sensor.on_phase)
            await delivery.start()
            await self.windows.start()
            await consumer.start()
            listener = Rebalance(consumer, delivery, self.ledger, self.windows, self.sensor, self.settle)
            consumer.subscribe(settings.consumed(), listener=listener)
            self._consuming = True
            self.sensor.on_ready(True)
            lag_refresh = asyncio.create_task(refresh_lag(self.ledger, consumer, self.sensor), name="lag-refresh")
            coverage_watch = asyncio.create_task(watch_coverage(self.table), name="coverage-watch")
            log.info("worker consuming %s as group %s (%s)", ", ".join(settings.consumed()), settings.group_id,
                     settings.processing_guarantee)  # fmt: skip
            while not stop.is_set():
                generation = self.ledger.generation
                batches = await self.pacing.fetch(consumer, settings.batch_timeout_ms)
                async with self.ledger.lock:
                    if batches:
                        await self._handle(delivery, batches, generation)
                    elif self.ledger.in_flight is not None:  # nothing new: count the last batch once it is in
                        await self.settle()
        finally:
            self._consuming = False
            self.sensor.on_ready(False)
            for task in (lag_refresh, coverage_watch):
                if task is not None:
                    task.cancel()
            if self._consumer is not None:
                async with self.ledger.lock:
                    await self.settle()  # the last batch is delivered (or rewound) before we leave
                await self._consumer.stop()
            if delivery is not None:
                await delivery.stop()
            await self.windows.stop()
            await self.follower.stop()
            self._alive = False

    async def _handle(self, delivery: Delivery, batches: Batches, generation: int) -> None:
        """Decide a fetched batch, settle the one before it, then start delivering this one."""
        ledger = self.ledger
        if generation != ledger.generation:
            self._drop(list(batches))  # fetched before a rebalance
            return
        with self.pacing.deciding() as turns:
            parts, tallies = await self._decide(delivery, batches, turns)
        batches.clear()  # decided: let the records go while the last batch settles
        rewound = await self.settle()
        if generation != ledger.generation:  # a rebalance began while we waited
            self._drop([part.tp for part in parts])
            return
        # Not the partitions whose delivery failed: they were rewound, and these records (which follow the
        # failed ones) are decided again when they are read again.
        carried_on = [part for part in parts if part.tp not in rewound]
        self._drop([part.tp for part in parts if part.tp in rewound])
        if carried_on:
            task = asyncio.create_task(self.pacing.timed("deliver", delivery.deliver(carried_on)), name="deliver")
            ledger.launch(InFlight(task, carried_on, {part.tp: tallies[part.tp] for part in carried_on}))

    def _drop(self, partitions: list[TopicPartition]) -> None:
        """Forget records fetched for ``partitions``: read them again from the next offset to decide."""
        assert self._consumer is not None
        for tp in partitions:
            offset = self.ledger.next_offset(tp)
            if offset is not None:
                self._consumer.seek(tp, offset)

    async def settle(self) -> set[TopicPartition]:
        """Wait for the batch in flight: on success its partitions move on; on failure they are rewound to
        decide those records again (returned). Then report what was delivered. Called with the lock held."""
        flight = self.ledger.take_in_flight()
        if flight is None or self._consumer is None:
            return set()
        rewound = set()
        try:
            await self.pacing.timed("settle_wait", flight.task)
        except DeliveryFailed as failure:
            log.warning("%s; rewinding to decide them again", failure)
            for part in failure.batches:
                flight.tallies.pop(part.tp, None)
                self._consumer.seek(part.tp, part.first_offset)
                rewound.add(part.tp)
        self.ledger.settled(flight, rewound)
        with self.pacing.phase("window_commit"):  # a window keeps what was delivered, forgets the rest
            self.windows.settled(flight.parts, rewound)
        self.sensor.on_batch_delivered(flight.tallies, time.time() * 1000)
        for part in flight.parts:
            highwater = self._consumer.highwater(part.tp)
            if part.tp in flight.tallies and highwater is not None:
                self.sensor.on_lag(part.tp, max(0, highwater - part.next_offset))
        return rewound

    async def _decide(
        self, delivery: Delivery, batches: Batches, turns: Turns
    ) -> tuple[list[PartitionBatch], dict[TopicPartition, BatchTally]]:
        """What each partition's records become. The event loop gets a turn every ``pacing.TURN_S`` of work,
        so that the batch in flight goes on through its transaction's round trips meanwhile; the code
        table may change at such a turn, never while one event is decided."""
        decided_at = now_iso()
        router = self.router
        parts: list[PartitionBatch] = []
        tallies: dict[TopicPartition, BatchTally] = {}
        for tp, records in batches.items():
            start = self.ledger.start_of(tp)
            if start is None or not delivery.owns(tp) or records[-1].offset < start:
                continue
            if records[0].offset < start:
                # Already decided: aiokafka can hand out a fetch that was in flight when we sought.
                records = [record for record in records if record.offset >= start]
            part = PartitionBatch(tp, records[0].offset, records[-1].offset + 1)
            tally = tallies[tp] = BatchTally(router.kind_of(tp.topic))
            window = self.windows.get(tp)
            # A claim is consumed (and its latency taken) once, as it comes in: not again at its member check.
            timestamps = tally.timestamps if tp.topic != self.settings.topics.claims_by_member else []
            for record in records:
                timestamps.append(record.timestamp)
                for decision in router.route(record, decided_at, part.messages, window):  # one per event
                    if decision is None:
                        tally.dead += 1
                        continue
                    tally.outcomes[decision.outcome] += 1
                    for reason in decision.reasons:
                        tally.reasons[reason.id] += 1
                        if reason.outcome is Outcome.DENIED:
                            tally.denied[reason.id] += 1
                if turns.due():
                    await turns.give()
            parts.append(part)
        return parts, tallies


async def first(*waits: object) -> bool:
    """Wait for whichever finishes first, cancelling the others; True when it was the first one given."""
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[arg-type]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return tasks[0] in done
