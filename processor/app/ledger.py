"""The offset ledger: where each assigned input partition stands, and the batch being delivered.

The worker decides a batch while the one before it is delivered; the ledger is what keeps that safe. Its
contract, which the worker (``app.worker``) and the rebalance listener (``app.rebalance``) rely on:

- ``next_offset(tp)`` is the offset of the next record of ``tp`` to decide once everything handed to the
  delivery has settled: the committed offset after an assignment, then the end of each delivered batch. The
  records decided are therefore always the contiguous run after the committed offset; a partition whose
  delivery failed is sought back to it and decided again.
- ``start_of(tp)`` is where a new batch of ``tp`` must start: the end of the batch in flight when it carries
  ``tp``, else ``next_offset(tp)``; None when ``tp`` is not assigned (its records are not ours to decide).
- ``generation`` is bumped at every revocation and every assignment. A batch fetched under an older
  generation is stale: it is dropped and its partitions read again from ``next_offset``.
- At most one batch is in flight: ``launch`` takes it, ``take_in_flight`` hands it over to be settled.
- ``lock`` is held while a batch is decided and delivered and while partitions change hands, so the
  listener never moves offsets under a batch being decided.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from processor.app.sensor import BatchTally, Sensor
from processor.kafka.delivery import PartitionBatch


@dataclass(slots=True)
class InFlight:
    """A batch handed to the delivery: its task, what each partition's share is, and what it decided."""

    task: asyncio.Task[None]
    parts: list[PartitionBatch]
    tallies: dict[TopicPartition, BatchTally]


class OffsetLedger:
    """Next offsets per assigned partition, the batch in flight, and the rebalance generation."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.generation = 0
        self._next: dict[TopicPartition, int] = {}
        self._in_flight: InFlight | None = None

    def rebalanced(self) -> None:
        """A rebalance began or ended: batches fetched before now are stale."""
        self.generation += 1

    def assigned(self, tp: TopicPartition, committed: int) -> None:
        """``tp`` is ours from its committed offset on."""
        self._next[tp] = committed

    def revoked(self, tp: TopicPartition) -> None:
        """``tp`` is no longer ours (its batch in flight has settled)."""
        self._next.pop(tp, None)

    def next_offset(self, tp: TopicPartition) -> int | None:
        """The next offset of ``tp`` to decide once the delivery has settled; None when not assigned."""
        return self._next.get(tp)

    def positions(self) -> list[tuple[TopicPartition, int]]:
        """Every assigned partition with its next offset to decide."""
        return list(self._next.items())

    def start_of(self, tp: TopicPartition) -> int | None:
        """Where a new batch of ``tp`` must start; None when ``tp`` is not assigned."""
        if self._in_flight is not None:
            for part in self._in_flight.parts:
                if part.tp == tp:
                    return part.next_offset
        return self._next.get(tp)

    @property
    def in_flight(self) -> InFlight | None:
        return self._in_flight

    def launch(self, flight: InFlight) -> None:
        """``flight`` is being delivered; the batch before it must have been taken."""
        assert self._in_flight is None, "a batch is already in flight"
        self._in_flight = flight

    def take_in_flight(self) -> InFlight | None:
        """The batch in flight, no longer the ledger's: the caller settles it with ``settled``."""
        flight, self._in_flight = self._in_flight, None
        return flight

    def settled(self, flight: InFlight, rewound: set[TopicPartition]) -> None:
        """``flight`` is over: its partitions but ``rewound`` (whose delivery failed) move on past it."""
        for part in flight.parts:
            if part.tp not in rewound and part.tp in self._next:
                self._next[part.tp] = part.next_offset


async def refresh_lag(ledger: OffsetLedger, consumer: AIOKafkaConsumer, sensor: Sensor, every: float = 5.0) -> None:
    """Keep the lag current between batches too: the fetcher goes on learning the high watermarks while a
    worker is stuck, so a stalled worker shows a growing lag, not a frozen one. Runs until cancelled."""
    while True:
        await asyncio.sleep(every)
        for tp, next_offset in ledger.positions():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                sensor.on_lag(tp, max(0, highwater - next_offset))
