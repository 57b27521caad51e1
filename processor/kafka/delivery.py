"""Delivering a decided batch to Kafka: the decisions and dead letters, and the consumed offsets.

The worker decides a batch first (no I/O), then hands it to a delivery as one ``PartitionBatch`` per
input partition. Every outgoing record goes to the partition with the number of its input partition (modulo
the output topic's partition count), so the outputs keep the inputs' partitioning and order. Two
deliveries, one contract each:

``ExactlyOnce`` (the default): per partition number, the outgoing records of the input partitions with that
number and their next offsets commit in ONE Kafka transaction, or not at all. aiokafka's transactional offset
commit carries no group generation (no KIP-447), so zombies are fenced the way Kafka Streams' first
exactly-once mode does it: one transactional producer per partition number, with the transactional id
``<group>-<number>``, started on assignment (which fences any older producer of that id and aborts its open
transaction) and closed on revocation. The group's assignor (``processor.kafka.assignor``) gives every
partition with one number to one member, so one producer is the only writer of its output partitions: a
decision is visible to ``isolation_level=read_committed`` readers as soon as its own transaction commits, and
they see each decision exactly once.

``AtLeastOnce``: one idempotent producer; the offsets are committed through the consumer group after every
send of the batch is acknowledged (acks=all). Nothing is lost; a crash between the two decides a batch
again.

Both raise ``DeliveryFailed`` naming the partitions whose records were not delivered; the worker rewinds
them to their first offset and decides them again. A delivered batch says where its records landed
(``PartitionBatch.written``: the last offset per output partition), which the duplicate window's
checkpoint needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, InvalidProducerEpoch, KafkaError, ProducerFenced
from aiokafka.producer.message_accumulator import BatchBuilder

from processor.config import Settings
from processor.kafka.clients import client_options
from processor.routing import Message

log = logging.getLogger(__name__)

# A decision or dead letter may be larger than a batch of small records; keep room for the largest.
MAX_REQUEST_BYTES = 4 * 1024 * 1024

# Told how long each step of a transaction took: (phase, seconds). The worker passes its sensor's ``on_phase``.
PhaseTimer = Callable[[str, float], None]


def _ignore(phase: str, seconds: float) -> None:
    """The default phase timer: times nothing."""


@dataclass(slots=True)
class PartitionBatch:
    """What one input partition's records became: (topic, key, value, partition) to send, and the offsets
    consumed."""

    tp: TopicPartition
    first_offset: int
    next_offset: int
    messages: list[Message] = field(default_factory=list)
    # Once delivered: the offset of the last record written to each (topic, partition) by the delivery that
    # carried this batch (its transaction, shared with the other input partitions of its number; at least
    # once, the batch's whole send). What the duplicate window checkpoints its changelog with.
    written: dict[tuple[str, int], int] = field(default_factory=dict)


class DeliveryFailed(Exception):
    """Records of these partitions were not delivered; the worker rewinds and decides them again."""

    def __init__(self, batches: list[PartitionBatch], cause: BaseException) -> None:
        super().__init__(f"delivery failed for {len(batches)} partition(s): {type(cause).__name__}: {cause}")
        self.batches = batches


class Delivery(Protocol):
    """How a decided batch reaches Kafka. The worker calls these from one task at a time, never two at once,
    and never ``deliver`` while ``assigned`` or ``revoked`` runs (the offset ledger's lock)."""

    async def start(self) -> None:
        """Open what every partition shares; called once, before the first assignment."""

    async def stop(self) -> None:
        """Close everything; called once, after the last batch has settled."""

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        """``partitions`` are now ours. Returns once a batch of theirs can be delivered, and once nobody else
        can still deliver one (exactly-once: their producers are open, which fences any older owner)."""

    async def revoked(self, partitions: list[TopicPartition]) -> None:
        """``partitions`` are given up; the worker has settled their batch in flight before calling this."""

    def owns(self, tp: TopicPartition) -> bool:
        """False when ``tp`` was found to belong to another member (fenced): its records are not decided."""

    async def deliver(self, batches: list[PartitionBatch]) -> None:
        """Publish every message of ``batches`` and commit their next offsets, all or nothing per partition;
        raises ``DeliveryFailed`` naming the partitions that were not delivered (the worker rewinds them)."""


async def send_batched(producer: AIOKafkaProducer, messages: Iterable[Message]) -> list[asyncio.Future[Any]]:
    """Queue ``messages`` on ``producer`` as one record batch per topic partition; the futures of the batches
    (``send_counted`` says how many records each holds)."""
    return [future for future, _ in await send_counted(producer, messages)]


def last_offsets(sent: list[tuple[asyncio.Future[Any], int]]) -> dict[tuple[str, int], int]:
    """The offset of the last record written to each (topic, partition), from ``send_counted``'s batches once
    every one of them is acknowledged (a batch's future gives its first offset)."""
    last: dict[tuple[str, int], int] = {}
    for future, count in sent:
        metadata = future.result()
        where = (metadata.topic, metadata.partition)
        last[where] = max(last.get(where, -1), metadata.offset + count - 1)
    return last


async def send_counted(
    producer: AIOKafkaProducer, messages: Iterable[Message]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Queue ``messages`` on ``producer`` as one record batch per topic partition; each batch's future with the
    number of records in it.

    A message's partition is taken modulo the topic's partition count, so an output topic with fewer
    partitions than the inputs still takes every record. aiokafka's ``send()`` waits on metadata, makes a
    future and walks the accumulator for every record (tens of microseconds each); building the batches
    ourselves (``create_batch``/``send_batch``) costs about two.
    """
    builders: dict[tuple[str, int], BatchBuilder] = {}
    ready: list[tuple[str, int, BatchBuilder]] = []
    counts: dict[str, int] = {}
    for topic, key, value, number in messages:
        count = counts.get(topic)
        if count is None:
            count = counts[topic] = len(await producer.partitions_for(topic))
        partition = number % count
        builder = builders.get((topic, partition))
        if builder is None:
            builder = builders[(topic, partition)] = producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is None:  # full: queue it, start another
            ready.append((topic, partition, builder))
            builder = builders[(topic, partition)] = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None)  # an empty batch takes any one record
    ready.extend((topic, partition, builder) for (topic, partition), builder in builders.items())
    sizes = [builder.record_count() for _, _, builder in ready]
    for _, _, builder in ready:
        builder.close()  # complete: the sender takes a closed batch at once instead of lingering on it
    futures = [await producer.send_batch(builder, topic, partition=partition) for topic, partition, builder in ready]
    return list(zip(futures, sizes, strict=True))


def _release(batches: list[PartitionBatch]) -> None:
    """Drop the decided records once they are in the producer's record batches: a copy less held while
    the batch is in flight. A failed delivery decides the records again; it never resends these."""
    for batch in batches:
        batch.messages = []


def _producer(settings: Settings, **extra: object) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_bytes,
        max_request_size=MAX_REQUEST_BYTES,
        **extra,
    )


class AtLeastOnce(Delivery):
    """One idempotent producer; offsets committed through the group after every send is acknowledged."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, on_phase: PhaseTimer = _ignore) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = _producer(settings)

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        """Nothing to prepare: one producer serves every partition."""

    async def revoked(self, partitions: list[TopicPartition]) -> None:
        """Nothing to close: the worker finishes the in-flight batch before partitions are given up."""

    def owns(self, tp: TopicPartition) -> bool:
        return True

    async def deliver(self, batches: list[PartitionBatch]) -> None:
        try:
            sent = await send_counted(self.producer, (m for b in batches for m in b.messages))
            _release(batches)
            await asyncio.gather(*(future for future, _ in sent))
        except KafkaError as err:
            raise DeliveryFailed(batches, err) from err
        written = last_offsets(sent)
        for batch in batches:
            batch.written = written
        try:
            await self.consumer.commit({b.tp: b.next_offset for b in batches})
        except CommitFailedError:
            # The group rebalanced while we decided: the new owner reads these again (at-least-once).
            log.warning("offset commit failed after a rebalance; %d partition(s) will be decided again", len(batches))


class ExactlyOnce(Delivery):
    """A transactional producer per assigned partition number; records and offsets commit atomically."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, on_phase: PhaseTimer = _ignore) -> None:
        self.settings = settings
        self.consumer = consumer
        self.on_phase = on_phase
        self.producers: dict[int, AIOKafkaProducer] = {}
        # Partition numbers whose producer was fenced: another worker owns them; never reopen (that would
        # fence the rightful owner) until the group assigns them to us again.
        self.fenced: set[int] = set()

    def transactional_id(self, number: int) -> str:
        return f"{self.settings.group_id}-{number}"

    async def start(self) -> None:
        """Producers are made on assignment."""

    async def stop(self) -> None:
        await _close_all([self.producers.pop(number) for number in list(self.producers)])

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        """Start a producer per new partition number; starting one fences every older producer of its id."""
        numbers = {tp.partition for tp in partitions}
        self.fenced -= numbers
        await asyncio.gather(*(self._open(number) for number in numbers if number not in self.producers))

    async def _open(self, number: int) -> None:
        # A new transaction right after a commit often meets CONCURRENT_TRANSACTIONS while the broker writes
        # the previous commit markers; retrying after 10 ms instead of the default 100 ms cuts the wait.
        producer = _producer(self.settings, transactional_id=self.transactional_id(number), retry_backoff_ms=10)
        await producer.start()
        self.producers[number] = producer

    async def revoked(self, partitions: list[TopicPartition]) -> None:
        """Close the producers of the partitions given up (the worker has finished its in-flight batch)."""
        numbers = {tp.partition for tp in partitions}
        await _close_all([self.producers.pop(n) for n in numbers if n in self.producers])

    def owns(self, tp: TopicPartition) -> bool:
        return tp.partition not in self.fenced

    async def deliver(self, batches: list[PartitionBatch]) -> None:
        by_number: dict[int, list[PartitionBatch]] = defaultdict(list)
        for batch in batches:
            by_number[batch.tp.partition].append(batch)
        groups = list(by_number.items())
        results = await asyncio.gather(*(self._transact(n, group) for n, group in groups), return_exceptions=True)
        failed = [
            batch
            for (_, group), result in zip(groups, results, strict=True)
            if isinstance(result, BaseException)
            for batch in group
        ]
        if failed:
            cause = next(r for r in results if isinstance(r, BaseException))
            raise DeliveryFailed(failed, cause)

    async def _transact(self, number: int, batches: list[PartitionBatch]) -> None:
        if number in self.fenced:
            return  # another worker owns the partitions: it decides these records
        if number not in self.producers:
            await self._open(number)  # the last transaction failed and its producer was closed
        producer = self.producers[number]
        clock, on_phase = time.perf_counter, self.on_phase
        try:
            began = clock()
            await producer.begin_transaction()
            # The offsets go into the transaction while the records are in flight (the transaction
            # coordinator's round trips overlap the produce); commit_transaction waits for the records.
            sent = await send_counted(producer, (m for b in batches for m in b.messages))
            _release(batches)
            offsets = {b.tp: b.next_offset for b in batches}
            queued = clock()
            on_phase("txn_begin_send", queued - began)
            await producer.send_offsets_to_transaction(offsets, self.settings.group_id)
            in_transaction = clock()
            on_phase("txn_offsets", in_transaction - queued)
            await producer.commit_transaction()
            on_phase("txn_commit", clock() - in_transaction)
            log.debug("committed partition %d offsets %s", number, offsets)
            written = last_offsets(sent)
            for batch in batches:
                batch.written = written
        except (ProducerFenced, InvalidProducerEpoch):
            # Another producer took over this transactional id (a new owner of the partitions), or the
            # broker aborted a transaction that outlived transaction.timeout.ms. Either way only the group
            # can say who owns the partitions now: rejoin, and reopen only if they are assigned to us again.
            log.warning("producer for partition %d was fenced; rejoining the group", number)
            self.fenced.add(number)
            self.producers.pop(number, None)
            await _close(producer)
            self.consumer._coordinator.request_rejoin()  # aiokafka has no public rejoin
        except BaseException:
            # Whatever state the transaction is in, the next producer of this id aborts it when it starts.
            self.producers.pop(number, None)
            await _close(producer)
            raise


async def _close_all(producers: list[AIOKafkaProducer]) -> None:
    await asyncio.gather(*(_close(p) for p in producers))


async def _close(producer: AIOKafkaProducer, timeout: float = 10.0) -> None:
    """Stop a producer without waiting forever on a broker that is gone."""
    try:
        await asyncio.wait_for(producer.stop(), timeout)
    except (TimeoutError, KafkaError) as err:
        log.warning("producer did not stop cleanly: %s", type(err).__name__)
