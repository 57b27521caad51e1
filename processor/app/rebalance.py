"""Handing partitions over safely when the consumer group rebalances.

aiokafka guarantees that every member runs ``on_partitions_revoked`` before any member runs
``on_partitions_assigned``, and that no records are fetched during either. On revocation we settle the batch
in flight (its transactions commit or abort), then close the partitions' producers and forget their offsets
and duplicate windows. On assignment we first open the producers (fencing any zombie that still holds the
transactional ids and aborting its open transaction), and only then read the committed offsets, which
nothing can change any more, seek to them, and rebuild the duplicate windows. Both hold the offset ledger's
lock, so no batch is decided or delivered meanwhile, and both bump its generation, so a batch fetched before
the rebalance is dropped and read again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from processor.app.ledger import OffsetLedger
from processor.app.sensor import Sensor
from processor.app.windows import DuplicateWindows
from processor.kafka.delivery import Delivery

log = logging.getLogger(__name__)


class Rebalance(ConsumerRebalanceListener):
    """The worker's rebalance listener; ``settle`` waits for the batch in flight (called with the lock held)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        delivery: Delivery,
        ledger: OffsetLedger,
        windows: DuplicateWindows,
        sensor: Sensor,
        settle: Callable[[], Awaitable[object]],
    ) -> None:
        self.consumer = consumer
        self.delivery = delivery
        self.ledger = ledger
        self.windows = windows
        self.sensor = sensor
        self.settle = settle

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        revoked = list(revoked)
        self.ledger.rebalanced()
        async with self.ledger.lock:
            await self.settle()
            await self.delivery.revoked(revoked)
            for tp in revoked:
                self.ledger.revoked(tp)
            self.windows.drop(revoked)
        self.sensor.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assigned = list(assigned)
        async with self.ledger.lock:
            self.ledger.rebalanced()  # records fetched before the seek below are dropped
            await self.delivery.assigned(assigned)
            for tp in assigned:
                committed = await self.consumer.committed(tp)
                if committed is None:
                    # An explicit offset, not seek_to_beginning: a pending reset would rewind the partition
                    # again after its first batch (seen as duplicates in the tests).
                    committed = (await self.consumer.beginning_offsets([tp]))[tp]
                self.consumer.seek(tp, committed)
                self.ledger.assigned(tp, committed)
            await self.windows.restore(assigned)
        log.info("assigned %d partition(s)", len(assigned))
