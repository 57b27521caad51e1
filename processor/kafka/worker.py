"""The worker: a consumer group over the claims and lab-orders topics that decides every event.

Per batch: take up to ``batch_max_records`` records, decode and decide each one against the code table,
send each decision to the accepted, returned or needs-review topic (or the record to the dead-letter
topic), wait until the broker has acknowledged every send of the batch, and only then commit the batch's
offsets.

Guarantees (at-least-once):
- No event is lost: an offset is committed only after its decision (or dead letter) is acknowledged with
  acks=all. A crash between the two re-delivers the batch, so a decision can be published twice.
- Nothing is decided before the code table is loaded; ``/readyz`` says so.
- A record never stops the worker: undecodable bytes, and events that make the engine fail, go to the
  dead-letter topic with their topic, partition, offset and the error (which never quotes the record).
- Logs and metric labels carry no event content.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from processor.code_table.follower import CodeTableFollower
from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.contracts import Undecodable, decode
from processor.engine import decide
from processor.engine.rules import Outcome
from processor.kafka.topics import ensure_topics
from processor.metrics import HealthServer, Metrics

log = logging.getLogger(__name__)


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Worker:
    """One member of the processor's consumer group. ``await run(stop)`` until ``stop`` is set."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None, create_topics: bool = True) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.table = CodeTable()
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
        self._alive = False
        self._consuming = False

    def is_ready(self) -> bool:
        """True once the code table is loaded and the worker consumes."""
        return self._consuming and self.follower.loaded.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve metrics, load the code table, then consume, decide and publish until ``stop`` is set."""
        settings = self.settings
        self.metrics_port = self.health.start(settings.metrics_host, settings.metrics_port)
        self._alive = True
        consumer: AIOKafkaConsumer | None = None
        producer: AIOKafkaProducer | None = None
        try:
            if self.create_topics:
                await ensure_topics(settings)
            await self.follower.start()
            if not await _first(self.follower.loaded.wait(), stop.wait()):
                return
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.bootstrap_servers,
                client_id=settings.client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=settings.linger_ms,
                max_batch_size=settings.max_batch_bytes,
            )
            await producer.start()
            consumer = AIOKafkaConsumer(
                *self._kind_of,
                bootstrap_servers=settings.bootstrap_servers,
                client_id=settings.client_id,
                group_id=settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
            )
            await consumer.start()
            self._consuming = True
            self.metrics.ready.set(1)
            log.info("worker consuming %s as group %s", ", ".join(self._kind_of), settings.group_id)
            while not stop.is_set():
                batches = await consumer.getmany(
                    timeout_ms=settings.batch_timeout_ms, max_records=settings.batch_max_records
                )
                if batches:
                    await self._process(consumer, producer, batches)
        finally:
            self._consuming = False
            self.metrics.ready.set(0)
            if consumer is not None:
                await consumer.stop()
            if producer is not None:
                await producer.stop()
            await self.follower.stop()
            self._alive = False
            self.health.stop()

    async def _process(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Decide one batch, publish it, wait for every acknowledgement, then commit its offsets."""
        decided_at = now_iso()
        table = self.table  # updates arrive only while we await: the decide loop below sees one table
        deliveries: list[asyncio.Future[Any]] = []
        timestamps: list[int] = []
        decisions: Counter[tuple[str, str]] = Counter()
        reasons: Counter[tuple[str, str]] = Counter()
        dead: Counter[str] = Counter()
        offsets: dict[TopicPartition, int] = {}
        for tp, records in batches.items():
            kind = self._kind_of[tp.topic]
            for record in records:
                timestamps.append(record.timestamp)
                source = {"topic": tp.topic, "partition": tp.partition, "offset": record.offset}
                try:
                    event = decode(record.value)
                    decision = decide(event, kind, table)
                except Undecodable as err:
                    deliveries.append(await self._dead_letter(producer, record, str(err), decided_at))
                    dead[tp.topic] += 1
                    continue
                except Exception as err:  # a bug in the engine must not stop the worker: keep the record
                    log.exception("engine failed on %s[%d]@%d", tp.topic, tp.partition, record.offset)
                    error = f"internal error while deciding: {type(err).__name__}"
                    deliveries.append(await self._dead_letter(producer, record, error, decided_at))
                    dead[tp.topic] += 1
                    continue
                value = orjson.dumps(decision.as_record(event, decided_at, source))
                key = decision.event_id.encode() if decision.event_id else record.key
                deliveries.append(await producer.send(self._topic_of[decision.outcome], value, key=key))
                decisions[kind, decision.outcome.value] += 1
                for reason in decision.reasons:
                    reasons[kind, reason.id] += 1
            offsets[tp] = records[-1].offset + 1
            self.metrics.consumed.labels(kind).inc(len(records))
        await asyncio.gather(*deliveries)
        try:
            await consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced while we decided: the new owner re-reads these records (at-least-once).
            log.warning("offset commit failed after a rebalance; the batch will be decided again")
        self._observe(timestamps, decisions, reasons, dead)
        self._observe_lag(consumer, offsets)

    async def _dead_letter(
        self, producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes], error: str, at: str
    ) -> asyncio.Future[Any]:
        letter = {
            "source": {
                "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "timestamp": record.timestamp,
            },
            "error": error,
            "raw": None if record.value is None else base64.b64encode(record.value).decode(),
            "dead_lettered_at": at,
        }  # fmt: skip
        return await producer.send(self.settings.topics.dead_letter, orjson.dumps(letter), key=record.key)

    def _observe(
        self,
        timestamps: list[int],
        decisions: Counter[tuple[str, str]],
        reasons: Counter[tuple[str, str]],
        dead: Counter[str],
    ) -> None:
        m = self.metrics
        acknowledged_ms = time.time() * 1000
        for timestamp in timestamps:
            m.latency.observe(max(0.0, (acknowledged_ms - timestamp) / 1000))
        m.batch_size.observe(len(timestamps))
        for (kind, outcome), n in decisions.items():
            m.decisions.labels(kind, outcome).inc(n)
        for (kind, reason_id), n in reasons.items():
            m.reasons.labels(kind, reason_id).inc(n)
        for topic, n in dead.items():
            m.dead_letters.labels(topic).inc(n)

    def _observe_lag(self, consumer: AIOKafkaConsumer, committed: dict[TopicPartition, int]) -> None:
        for tp, offset in committed.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - offset))

    def _table_changed(self, table: CodeTable) -> None:
        m = self.metrics
        m.code_table_codes.set(len(table))
        m.code_table_offset.set(sum(self.follower._offsets.values()))
        m.code_table_updated.set(self.follower.updated_at)
        m.code_table_invalid.set(self.follower.invalid_records)


async def _first(*waits: Any) -> bool:
    """Wait for whichever finishes first; True when it was the first one given."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return tasks[0] in done
