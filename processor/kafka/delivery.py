"""Delivering a decided batch to Kafka: the decisions and dead letters, and the consumed offsets.

The worker decides a batch first (no I/O), then hands it to a delivery as one ``PartitionBatch`` per
input partition. Two deliveries, one contract each:

``ExactlyOnce`` (the default): per input partition, the outgoing records and the partition's next offset
commit in ONE Kafka transaction, or not at all. aiokafka's transactional offset commit carries no group
generation (no KIP-447), so zombies are fenced the way Kafka Streams' first exactly-once mode and faust
do it: one transactional producer per assigned input partition, with the transactional id
``<group>-<topic>-<partition>``, started on assignment (which fences any older producer of that id and
aborts its open transaction) and closed on revocation. A reader of the outcome topics with
``isolation_level=read_committed`` sees each decision exactly once.

``AtLeastOnce``: one idempotent producer; the offsets are committed through the consumer group after every
send of the batch is acknowledged (acks=all). Nothing is lost; a crash between the two decides a batch
again.

Both raise ``DeliveryFailed`` naming the partitions whose records were not delivered; the worker rewinds
them to their first offset and decides them again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, InvalidProducerEpoch, KafkaError, ProducerFenced
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from processor.config import Settings
from processor.kafka.clients import client_options

log = logging.getLogger(__name__)

# A decision or dead letter may be larger than a batch of small records; keep room for the largest.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class PartitionBatch:
    """What one input partition's records became: (topic, key, value, partition or None) to send, and the
    offsets consumed."""

    tp: TopicPartition
    first_offset: int
    next_offset: int
    messages: list[Message] = field(default_factory=list)


class DeliveryFailed(Exception):
    """Records of these partitions were not delivered; the worker rewinds and decides them again."""

    def __init__(self, batches: list[PartitionBatch], cause: BaseException) -> None:
        super().__init__(f"delivery failed for {len(batches)} partition(s): {type(cause).__name__}: {cause}")
        self.batches = batches


Message = tuple[str, bytes | None, bytes, int | None]  # topic, key, value, partition (None: by key)


async def send_batched(producer: AIOKafkaProducer, messages: Iterable[Message]) -> list[asyncio.Future[Any]]:
    """Queue ``messages`` on ``producer`` as one record batch per topic partition; the futures of the batches.

    aiokafka's ``send()`` waits on metadata, makes a future and walks the accumulator for every record
    (tens of microseconds each); building the batches ourselves (``create_batch``/``send_batch``) costs
    about two. A message without a partition goes where ``send()`` would put it: murmur2 of the key, like
    the Java client, so that one key always lands on one partition; a random one without a key.
    """
    builders: dict[tuple[str, int], BatchBuilder] = {}
    ready: list[tuple[str, int, BatchBuilder]] = []
    counts: dict[str, int] = {}
    for topic, key, value, partition in messages:
        if partition is None:
            count = counts.get(topic)
            if count is None:
                count = counts[topic] = len(await producer.partitions_for(topic))
            partition = (murmur2(key) & 0x7FFFFFFF) % count if key is not None else random.randrange(count)
        builder = builders.get((topic, partition))
        if builder is None:
            builder = builders[(topic, partition)] = producer.create_batch()
        if builder.append(key=key, value=value, timestamp=None) is None:  # full: queue it, start another
            ready.append((topic, partition, builder))
            builder = builders[(topic, partition)] = producer.create_batch()
            builder.append(key=key, value=value, timestamp=None)  # an empty batch takes any one record
    ready.extend((topic, partition, builder) for (topic, partition), builder in builders.items())
    for _, _, builder in ready:
        builder.close()  # complete: the sender takes a closed batch at once instead of lingering on it
    return [await producer.send_batch(builder, topic, partition=partition) for topic, partition, builder in ready]


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


class AtLeastOnce:
    """One idempotent producer; offsets committed through the group after every send is acknowledged."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer) -> None:
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
            await asyncio.gather(*await send_batched(self.producer, (m for b in batches for m in b.messages)))
        except KafkaError as err:
            raise DeliveryFailed(batches, err) from err
        try:
            await self.consumer.commit({b.tp: b.next_offset for b in batches})
        except CommitFailedError:
            # The group rebalanced while we decided: the new owner reads these again (at-least-once).
            log.warning("offset commit failed after a rebalance; %d partition(s) will be decided again", len(batches))


class ExactlyOnce:
    """A transactional producer per assigned input partition; records and offsets commit atomically."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        # Partitions whose producer was fenced: another worker owns them; never reopen (that would fence
        # the rightful owner) until the group assigns them to us again.
        self.fenced: set[TopicPartition] = set()

    def transactional_id(self, tp: TopicPartition) -> str:
        return f"{self.settings.group_id}-{tp.topic}-{tp.partition}"

    async def start(self) -> None:
        """Producers are made on assignment."""

    async def stop(self) -> None:
        await self.revoked(list(self.producers))

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        """Start a producer per new partition; starting one fences every older producer of its id."""
        self.fenced.difference_update(partitions)
        await asyncio.gather(*(self._open(tp) for tp in partitions if tp not in self.producers))

    async def _open(self, tp: TopicPartition) -> None:
        # A new transaction right after a commit often meets CONCURRENT_TRANSACTIONS while the broker writes
        # the previous commit markers; retrying after 10 ms instead of the default 100 ms cuts the wait.
        producer = _producer(self.settings, transactional_id=self.transactional_id(tp), retry_backoff_ms=10)
        await producer.start()
        self.producers[tp] = producer

    async def revoked(self, partitions: list[TopicPartition]) -> None:
        """Close the producers of partitions given up (the worker has finished its in-flight batch)."""
        closing = [self.producers.pop(tp) for tp in partitions if tp in self.producers]
        await asyncio.gather(*(_close(p) for p in closing))

    def owns(self, tp: TopicPartition) -> bool:
        return tp not in self.fenced

    async def deliver(self, batches: list[PartitionBatch]) -> None:
        results = await asyncio.gather(*(self._transact(b) for b in batches), return_exceptions=True)
        failed = [b for b, r in zip(batches, results, strict=True) if isinstance(r, BaseException)]
        if failed:
            cause = next(r for r in results if isinstance(r, BaseException))
            raise DeliveryFailed(failed, cause)

    async def _transact(self, batch: PartitionBatch) -> None:
        if batch.tp in self.fenced:
            return  # another worker owns the partition: it decides these records
        if batch.tp not in self.producers:
            await self._open(batch.tp)  # the last transaction failed and its producer was closed
        producer = self.producers[batch.tp]
        try:
            await producer.begin_transaction()
            # The offsets go into the transaction while the records are in flight (the transaction
            # coordinator's round trips overlap the produce); commit_transaction waits for the records.
            await send_batched(producer, batch.messages)
            await producer.send_offsets_to_transaction({batch.tp: batch.next_offset}, self.settings.group_id)
            await producer.commit_transaction()
            log.debug("committed %s offsets %d..%d", batch.tp, batch.first_offset, batch.next_offset - 1)
        except (ProducerFenced, InvalidProducerEpoch):
            # Another producer took over this transactional id (a new owner of the partition), or the
            # broker aborted a transaction that outlived transaction.timeout.ms. Either way only the group
            # can say who owns the partition now: rejoin, and reopen only if it is assigned to us again.
            log.warning("producer for %s was fenced; rejoining the group", batch.tp)
            self.fenced.add(batch.tp)
            self.producers.pop(batch.tp, None)
            await _close(producer)
            self.consumer._coordinator.request_rejoin()  # aiokafka has no public rejoin
        except BaseException:
            # Whatever state the transaction is in, the next producer of this id aborts it when it starts.
            self.producers.pop(batch.tp, None)
            await _close(producer)
            raise


async def _close(producer: AIOKafkaProducer, timeout: float = 10.0) -> None:
    """Stop a producer without waiting forever on a broker that is gone."""
    try:
        await asyncio.wait_for(producer.stop(), timeout)
    except (TimeoutError, KafkaError) as err:
        log.warning("producer did not stop cleanly: %s", type(err).__name__)
