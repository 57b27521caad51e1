"""The worker: one member of the consumer group that decides every claim and lab order.

Per batch: take up to ``batch_max_records`` records, decide all of them against the code table (no I/O;
the table may change between two events, never while one is decided), then hand the outgoing records
and the consumed offsets to the delivery (``processor.kafka.delivery``). The delivery runs while the next
batch is fetched and decided; that batch is delivered only once the one before it has settled (delivered,
or failed and rewound), and only the partitions that carry on exactly where the settled batch ended:

- exactly-once (default): per partition number (the group assigns a number's partitions of both inputs
  to one worker), decisions, dead letters and offsets commit in one Kafka transaction; readers of the
  outcome topics use ``isolation_level=read_committed``;
- at-least-once: offsets are committed after every send is acknowledged.

If a delivery fails (the broker went away, a transaction was aborted), the worker rewinds those partitions
to the batch's first offset and decides the records again; nothing is committed that was not delivered.

Every outgoing record goes to the partition with its input partition's number: the outputs keep the inputs'
partitioning and order (with inputs keyed by event id, as usual, that is also the key's partition).

Guarantees, whatever the guarantee setting:
- Nothing is decided before the code table is loaded; ``/readyz`` says so.
- A record never stops the worker: undecodable or oversized records, and events that make the engine
  fail, go to the dead-letter topic with their topic, partition, offset and the error (never the content).
- Rebalances: a partition is given up only after the in-flight batch has been delivered or aborted;
  batches fetched before a rebalance are dropped and read again from the committed offsets.
- Shutdown (``stop`` set, e.g. by SIGTERM): the current batch is finished and committed, then every client
  is closed. Logs and metric labels carry no event content.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from processor.code_table.follower import CodeTableFollower
from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.contracts import Undecodable, decode
from processor.engine import decide
from processor.engine.duplicates import SeenClaims
from processor.engine.policy import load_policy
from processor.engine.rules import Outcome
from processor.kafka.assignor import PartitionNumberAssignor
from processor.kafka.clients import KafkaAccessError, check_access, client_options
from processor.kafka.delivery import AtLeastOnce, DeliveryFailed, ExactlyOnce, Message, PartitionBatch
from processor.kafka.topics import ensure_topics
from processor.metrics import HealthServer, Metrics

log = logging.getLogger(__name__)

# Records decided between two turns of the event loop (a few milliseconds of work).
YIELD_EVERY = 200


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class _Tally:
    """What one partition's share of a batch decided, counted once the batch is delivered."""

    kind: str
    timestamps: list[int] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    dead: int = 0


class Worker:
    """One member of the processor's consumer group. ``await run(stop)`` until ``stop`` is set."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None, create_topics: bool = True) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.table = CodeTable()
        self.policy = load_policy(settings.rules_file) if settings.rules_file else None
        self.follower = CodeTableFollower(settings, self.table, on_change=self._table_changed)
        self.health = HealthServer(self.metrics, is_alive=lambda: self._alive, is_ready=self.is_ready)
        self.metrics_port: int | None = None
        self.create_topics = create_topics
        topics = settings.topics
        self._kind_of = {topics.claims: "claim", topics.orders: "order"}
        self._topic_of = {
            Outcome.ACCEPTED: topics.accepted,
            Outcome.RETURNED: topics.returned,
            Outcome.NEEDS_REVIEW: topics.needs_review,
        }
        for topic in topics.inputs():  # a dead-letter series from the start, so increase() sees the first one
            self.metrics.dead_letters.labels(topic)
        self._alive = False
        self._consuming = False
        self._lock = asyncio.Lock()  # held while a batch is decided and delivered
        self._generation = 0  # bumped on every rebalance: batches fetched before it are stale
        # Per assigned partition, the offset of the next record to decide: the committed offset after an
        # assignment, then the end of each delivered batch. A stale batch is dropped and the partition
        # rewound here, so the records decided are always the contiguous run after the committed offset.
        self._next: dict[TopicPartition, int] = {}
        # The duplicate window per claims partition, rebuilt from the changelog on assignment.
        self._seen: dict[int, SeenClaims] = {}
        self._changelog: AIOKafkaConsumer | None = None
        # The batch being delivered while the next one is fetched and decided, with its tallies.
        self._in_flight: asyncio.Task[None] | None = None
        self._in_flight_parts: tuple[list[PartitionBatch], dict[TopicPartition, _Tally]] = ([], {})

    def is_ready(self) -> bool:
        """True once the code table is loaded and the worker consumes."""
        return self._consuming and self.follower.loaded.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve metrics, load the code table, then consume, decide and deliver until ``stop`` is set."""
        settings = self.settings
        self.metrics_port = self.health.start(settings.metrics_host, settings.metrics_port)
        self._alive = True
        consumer: AIOKafkaConsumer | None = None
        delivery: AtLeastOnce | ExactlyOnce | None = None
        lag_refresh: asyncio.Task[None] | None = None
        try:
            await check_access(settings)
            if self.create_topics:
                await ensure_topics(settings)
            await self.follower.start()
            if not await _first(self.follower.loaded.wait(), stop.wait()):
                return
            _freeze_long_lived()
            consumer = AIOKafkaConsumer(
                **client_options(settings),
                group_id=settings.group_id,
                group_instance_id=settings.group_instance_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                partition_assignment_strategy=(PartitionNumberAssignor,),
            )
            exactly_once = settings.processing_guarantee == "exactly_once"
            delivery = (ExactlyOnce if exactly_once else AtLeastOnce)(settings, consumer)
            await delivery.start()
            if settings.duplicate_window_days > 0:
                self._changelog = AIOKafkaConsumer(
                    **client_options(settings, "seen-claims"),
                    group_id=None,
                    isolation_level="read_committed",
                    enable_auto_commit=False,
                )
                await self._changelog.start()
            await consumer.start()
            consumer.subscribe(settings.topics.inputs(), listener=_Rebalance(self, consumer, delivery))
            self._consuming = True
            self.metrics.ready.set(1)
            lag_refresh = asyncio.create_task(self._refresh_lag(consumer), name="lag-refresh")
            log.info("worker consuming %s as group %s (%s)", ", ".join(self._kind_of), settings.group_id,
                     settings.processing_guarantee)  # fmt: skip
            while not stop.is_set():
                generation = self._generation
                batches = await consumer.getmany(
                    timeout_ms=settings.batch_timeout_ms, max_records=settings.batch_max_records
                )
                async with self._lock:
                    if batches:
                        await self._handle(consumer, delivery, batches, generation)
                    elif self._in_flight is not None:  # nothing new: count the last batch once it is in
                        await self.settle(consumer)
        finally:
            self._consuming = False
            self.metrics.ready.set(0)
            if lag_refresh is not None:
                lag_refresh.cancel()
            if consumer is not None:
                async with self._lock:
                    await self.settle(consumer)  # the last batch is delivered (or rewound) before we leave
                await consumer.stop()
            if delivery is not None:
                await delivery.stop()
            if self._changelog is not None:
                await self._changelog.stop()
            await self.follower.stop()
            self._alive = False
            self.health.stop()

    async def _handle(
        self,
        consumer: AIOKafkaConsumer,
        delivery: AtLeastOnce | ExactlyOnce,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        generation: int,
    ) -> None:
        """Decide one batch while the previous one is delivered; once that has settled, start delivering
        this one. Called with ``_lock`` held."""
        if generation != self._generation:
            self._drop(consumer, list(batches))  # fetched before a rebalance
            return
        parts, tallies = await self._decide(delivery, batches)
        batches.clear()  # decided: let the records go while the last batch settles
        rewound = await self.settle(consumer)
        if generation != self._generation:  # a rebalance began while we waited
            self._drop(consumer, [part.tp for part in parts])
            return
        # Not the partitions whose delivery failed: they were rewound, and these records (which follow the
        # failed ones) are decided again when they are read again.
        carried_on = [part for part in parts if part.tp not in rewound]
        if len(carried_on) < len(parts):
            self._drop(consumer, [part.tp for part in parts if part.tp in rewound])
        if carried_on:
            self._in_flight_parts = (carried_on, {part.tp: tallies[part.tp] for part in carried_on})
            self._in_flight = asyncio.create_task(delivery.deliver(carried_on), name="deliver")

    def _drop(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Forget records fetched for ``partitions``: read them again from the next offset to decide."""
        for tp in partitions:
            if tp in self._next:
                consumer.seek(tp, self._next[tp])

    async def settle(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """Wait for the batch in flight: on success its partitions move on; on failure they are rewound to
        decide those records again (returned). Then count what was delivered. Called with ``_lock`` held."""
        task, self._in_flight = self._in_flight, None
        if task is None:
            return set()
        parts, tallies = self._in_flight_parts
        self._in_flight_parts = ([], {})
        rewound = set()
        try:
            await task
        except DeliveryFailed as failure:
            log.warning("%s; rewinding to decide them again", failure)
            for part in failure.batches:
                tallies.pop(part.tp, None)
                consumer.seek(part.tp, part.first_offset)
                rewound.add(part.tp)
        for part in parts:
            if part.tp in tallies and part.tp in self._next:
                self._next[part.tp] = part.next_offset
        self._count(consumer, parts, tallies)
        return rewound

    async def _decide(
        self, delivery: AtLeastOnce | ExactlyOnce, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> tuple[list[PartitionBatch], dict[TopicPartition, _Tally]]:
        """What each partition's records become. Every ``YIELD_EVERY`` records the event loop gets a turn,
        so that the batch in flight goes on through its transaction's round trips meanwhile; the code
        table may change at such a turn, never while one event is decided."""
        decided_at = now_iso()
        table = self.table
        parts: list[PartitionBatch] = []
        tallies: dict[TopicPartition, _Tally] = {}
        for tp, records in batches.items():
            # The next offset to decide: where the batch in flight ends, else the last settled one.
            start = next((p.next_offset for p in self._in_flight_parts[0] if p.tp == tp), self._next.get(tp))
            if start is None or not delivery.owns(tp) or records[-1].offset < start:
                continue
            if records[0].offset < start:
                # Already decided: aiokafka can hand out a fetch that was in flight when we sought.
                records = [record for record in records if record.offset >= start]
            part = PartitionBatch(tp, records[0].offset, records[-1].offset + 1)
            tally = tallies[tp] = _Tally(self._kind_of[tp.topic])
            for n, record in enumerate(records, start=1):
                self._outcome(record, tally, table, decided_at, part.messages)
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            parts.append(part)
        return parts, tallies

    def _outcome(
        self,
        record: ConsumerRecord[bytes, bytes],
        tally: _Tally,
        table: CodeTable,
        decided_at: str,
        out: list[Message],
    ) -> None:
        """Append what one input record becomes: its decision (and, for a claim, its changelog entry in
        the duplicate window), or a dead letter."""
        tally.timestamps.append(record.timestamp)
        size = len(record.value) if record.value is not None else 0
        if size > self.settings.max_record_bytes:
            error = f"record is {size} bytes; the limit is {self.settings.max_record_bytes}"
            out.append(self._dead_letter(record, tally, error, decided_at))
            return
        seen = None
        try:
            event = decode(record.value)
            duplicate = None
            store = self._seen.get(record.partition) if tally.kind == "claim" else None
            if store is not None:
                duplicate, seen = store.check(event, f"{record.partition}:{record.offset}")
            decision = decide(event, tally.kind, table, self.policy, duplicate)
            source = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
            value = orjson.dumps(decision.as_record(event, decided_at, source))
        except Undecodable as err:
            out.append(self._dead_letter(record, tally, str(err), decided_at))
            return
        except orjson.JSONEncodeError:
            out.append(self._dead_letter(record, tally, "event is nested too deeply to re-encode", decided_at))
            return
        except Exception as err:  # a bug must not stop the worker: keep the record, log where, not what
            frames = "".join(traceback.format_tb(err.__traceback__))
            log.error("engine failed on %s[%d]@%d: %s\n%s", record.topic, record.partition, record.offset,
                      type(err).__name__, frames)  # fmt: skip
            error = f"internal error while deciding: {type(err).__name__}"
            out.append(self._dead_letter(record, tally, error, decided_at))
            return
        tally.outcomes[decision.outcome] += 1
        for reason in decision.reasons:
            tally.reasons[reason.id] += 1
        key = decision.event_id.encode() if decision.event_id else record.key
        out.append((self._topic_of[decision.outcome], key, value, record.partition))
        if seen is not None:
            out.append((self.settings.topics.seen_claims, seen.claim_id.encode(), seen.as_record(), record.partition))

    def _dead_letter(self, record: ConsumerRecord[bytes, bytes], tally: _Tally, error: str, at: str) -> Message:
        tally.dead += 1
        letter = {
            "source": {
                "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "timestamp": record.timestamp,
            },
            "error": error,
            "raw": None if record.value is None else base64.b64encode(record.value).decode(),
            "dead_lettered_at": at,
        }  # fmt: skip
        return self.settings.topics.dead_letter, record.key, orjson.dumps(letter), record.partition

    async def _load_seen(self, partitions: list[TopicPartition]) -> None:
        """Rebuild the duplicate window of newly assigned claims partitions from their changelog."""
        reader = self._changelog
        if reader is None:
            return
        topic = self.settings.topics.seen_claims
        wanted = [TopicPartition(topic, tp.partition) for tp in partitions if tp.topic == self.settings.topics.claims]
        if not wanted:
            return
        stores = {tp.partition: SeenClaims(self.settings.duplicate_window_days * 86_400_000) for tp in wanted}
        reader.assign(wanted)
        await reader.seek_to_beginning(*wanted)
        end = await reader.end_offsets(wanted)
        while [tp for tp in wanted if await reader.position(tp) < end[tp]]:
            for tp, records in (await reader.getmany(timeout_ms=500, max_records=10_000)).items():
                for entry in records:
                    stores[tp.partition].apply_record(entry.value)
        self._seen.update(stores)
        log.info("duplicate window rebuilt for %d claims partition(s): %d claims", len(stores),
                 sum(len(s) for s in stores.values()))  # fmt: skip

    def _count(
        self, consumer: AIOKafkaConsumer, parts: list[PartitionBatch], tallies: dict[TopicPartition, _Tally]
    ) -> None:
        m = self.metrics
        delivered_ms = time.time() * 1000
        records = 0
        for tp, tally in tallies.items():
            m.consumed.labels(tally.kind).inc(len(tally.timestamps))
            records += len(tally.timestamps)
            for timestamp in tally.timestamps:
                m.latency.observe(max(0.0, (delivered_ms - timestamp) / 1000))
            for outcome, n in tally.outcomes.items():
                m.decisions.labels(tally.kind, outcome).inc(n)
            for reason_id, n in tally.reasons.items():
                m.reasons.labels(tally.kind, reason_id).inc(n)
            if tally.dead:
                m.dead_letters.labels(tp.topic).inc(tally.dead)
        m.batch_size.observe(records)
        for part in parts:
            highwater = consumer.highwater(part.tp)
            if part.tp in tallies and highwater is not None:
                m.lag.labels(part.tp.topic, str(part.tp.partition)).set(max(0, highwater - part.next_offset))

    async def _refresh_lag(self, consumer: AIOKafkaConsumer, every: float = 5.0) -> None:
        """Keep the lag metric current between batches too: the fetcher goes on learning the high
        watermarks while a worker is stuck, so a stalled worker shows a growing lag, not a frozen one."""
        while True:
            await asyncio.sleep(every)
            for tp, next_offset in list(self._next.items()):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - next_offset))

    def _table_changed(self, table: CodeTable) -> None:
        m = self.metrics
        m.code_table_codes.set(len(table))
        m.code_table_offset.set(self.follower.records_read)
        m.code_table_updated.set(self.follower.updated_at)
        m.code_table_invalid.set(self.follower.invalid_records)


class _Rebalance(ConsumerRebalanceListener):
    """Hands partitions over safely.

    aiokafka guarantees that every member runs ``on_partitions_revoked`` before any member runs
    ``on_partitions_assigned``, and that no records are fetched during either. On revocation we wait for
    the in-flight batch (its transactions commit or abort), then close the partitions' producers. On
    assignment we first open the producers (fencing any zombie that still holds the transactional ids and
    aborting its open transaction), and only then read the committed offsets, which nothing can change
    any more, and seek to them.
    """

    def __init__(self, worker: Worker, consumer: AIOKafkaConsumer, delivery: AtLeastOnce | ExactlyOnce) -> None:
        self.worker = worker
        self.consumer = consumer
        self.delivery = delivery

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.worker._generation += 1  # the listener is part of the worker
        async with self.worker._lock:
            await self.worker.settle(self.consumer)
            await self.delivery.revoked(list(revoked))
            for tp in revoked:
                self.worker._next.pop(tp, None)
                if tp.topic == self.worker.settings.topics.claims:
                    self.worker._seen.pop(tp.partition, None)
        for tp in revoked:
            with contextlib.suppress(KeyError):
                self.worker.metrics.lag.remove(tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assigned = list(assigned)
        worker = self.worker
        async with worker._lock:  # no batch is decided or delivered while producers open and offsets move
            worker._generation += 1  # records fetched before the seek below are dropped
            await self.delivery.assigned(assigned)
            for tp in assigned:
                committed = await self.consumer.committed(tp)
                if committed is None:
                    # An explicit offset, not seek_to_beginning: a pending reset would rewind the partition
                    # again after its first batch (seen as duplicates in the tests).
                    committed = (await self.consumer.beginning_offsets([tp]))[tp]
                self.consumer.seek(tp, committed)
                worker._next[tp] = committed
            await worker._load_seen(assigned)
        log.info("assigned %d partition(s)", len(assigned))


def _freeze_long_lived() -> None:
    """Take what exists now (mostly the code table) out of the garbage collector's sight.

    Those objects live as long as the worker. Left in the oldest generation, every full collection walks
    them all: 40 ms with the default table (about 217,000 tracked objects), a pause that full collections
    bring back as the duplicate window grows. Frozen, a full collection walks only what was made since
    (codes published later, the duplicate window, remembered answers): under a millisecond at start.
    """
    gc.collect()
    gc.freeze()


async def run_until_stopped(settings: Settings, stop: asyncio.Event, create_topics: bool = True) -> int:
    """Run a worker until ``stop`` is set, then give it ``shutdown_timeout_s`` to finish; the exit code.

    0 after a clean stop; 1 when the worker failed or did not stop in time (the failure is logged
    without event content).
    """
    worker = Worker(settings, create_topics=create_topics)
    task = asyncio.create_task(worker.run(stop), name="worker")
    await _first(stop.wait(), asyncio.shield(task))
    try:
        await asyncio.wait_for(task, settings.shutdown_timeout_s)
    except TimeoutError:
        log.error("the worker did not stop within %d s", settings.shutdown_timeout_s)
        return 1
    except KafkaAccessError as err:
        log.error("%s", err)
        return 1
    except KafkaError as err:
        log.error("Kafka at %s: %s: %s", settings.bootstrap_servers, type(err).__name__, err)
        return 1
    log.info("worker stopped")
    return 0


async def _first(*waits: Any) -> bool:
    """Wait for whichever finishes first; True when it was the first one given."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return tasks[0] in done
