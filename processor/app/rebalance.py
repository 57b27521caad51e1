"""Handing partitions over safely when the consumer group rebalances.

aiokafka guarantees that every member runs ``on_partitions_revoked`` before any member runs
``on_partitions_assigned``, and that no records are fetched during either. On revocation we settle the batch
in flight (its transactions commit or abort), then close the partitions' producers, forget their offsets and
close their duplicate windows (their stores stay on disk). On assignment we first open the producers (fencing
any zombie that still holds the transactional ids and aborting its open transaction), and only then read the
committed offsets, which nothing can change any more, seek to them, and restore the duplicate windows (from
their local checkpoints and the changelog's tail). Both hold the offset ledger's lock, so no batch is decided
or delivered meanwhile, and both bump its generation, so a batch fetched before the rebalance is dropped and
read again.

The offset look-ups ride out a lost broker: they are retried with backoff until a deadline; a partition still
without an offset then is left undecided while the worker rejoins the group to be assigned it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError

from processor.app.ledger import OffsetLedger
from processor.app.sensor import Sensor
from processor.app.windows import DuplicateWindows
from processor.kafka.delivery import Delivery

log = logging.getLogger(__name__)

# How long the offset look-ups of an assignment keep trying while the cluster recovers from a lost broker
# (the controller fences it after broker.session.timeout.ms, 9 s by default, and moves its leaderships).
LOOKUP_DEADLINE_S = 60.0


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
            deadline = asyncio.get_running_loop().time() + LOOKUP_DEADLINE_S
            for tp in assigned:
                try:
                    committed = await self._start_offset(tp, deadline)
                except KafkaError as err:
                    if not _passing(err):
                        raise
                    # Left out of the ledger, its records are not decided; the next assignment tries again.
                    log.error("no offset for %s within %.0f s (%s); rejoining the group", tp, LOOKUP_DEADLINE_S, err)
                    self.consumer._coordinator.request_rejoin()  # aiokafka has no public rejoin
                    continue
                self.consumer.seek(tp, committed)
                self.ledger.assigned(tp, committed)
            await self.windows.restore(assigned)
        log.info("assigned %d partition(s)", len(assigned))

    async def _start_offset(self, tp: TopicPartition, deadline: float) -> int:
        """Where ``tp`` starts: its committed offset, or its first one when none is committed.

        While a broker is lost the look-ups fail (the group coordinator moves; a partition it led has no
        leader until the controller fences the broker, ``broker.session.timeout.ms``, and elects another
        in-sync replica), so they are retried with backoff until ``deadline``, then the error is raised.
        """
        loop = asyncio.get_running_loop()
        delay = 0.1
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    committed = await self.consumer.committed(tp)
                    if committed is None:
                        # An explicit offset, not seek_to_beginning: a pending reset would rewind the partition
                        # again after its first batch (seen as duplicates in the tests).
                        committed = (await self.consumer.beginning_offsets([tp]))[tp]
                    return committed
            except TimeoutError:
                raise KafkaTimeoutError(f"offset look-up for {tp} did not finish in time") from None
            except KafkaError as err:
                if not _passing(err) or loop.time() + delay > deadline:
                    raise
                log.warning("offset look-up for %s failed (%s: %s); retrying", tp, type(err).__name__, err)
            await asyncio.sleep(delay)  # backoff while the cluster elects a new leader or coordinator
            delay = min(delay * 2, 2.0)


def _passing(error: KafkaError) -> bool:
    """True for an error that a lost broker causes and that passes once the cluster has moved on."""
    return error.retriable or isinstance(error, KafkaTimeoutError)
