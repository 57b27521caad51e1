"""Reading a topic to its end: how the code-table follower, ``processor load`` and the duplicate-window
restore learn what a topic holds before they act on it (the restore from a checkpoint on, after looking up
the record its checkpoint names with ``record_at``).

The end is the end offsets taken when the read starts: records written after that are not waited for
(the follower goes on reading them as they come). Positions, not last offsets + 1, tell when a partition
is done: compaction and transaction markers leave gaps in the offsets.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

Records = list[ConsumerRecord[bytes, bytes]]


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    on_records: Callable[[TopicPartition, Records], None],
    max_records: int = 20_000,
    start: dict[TopicPartition, int] | None = None,
) -> dict[TopicPartition, int]:
    """Assign ``partitions`` to ``consumer`` (no group), read each from ``start[tp]`` (its beginning when not
    given; an offset below the partition's first one reads as the consumer's ``auto_offset_reset`` says) to
    the end offsets taken now, handing every fetched run of records to ``on_records`` in offset order; returns
    the positions reached.
    """
    start = start or {}
    consumer.assign(partitions)
    from_beginning = [tp for tp in partitions if tp not in start]
    if from_beginning:
        await consumer.seek_to_beginning(*from_beginning)
    for tp in partitions:
        if tp in start:
            consumer.seek(tp, start[tp])
    end = await consumer.end_offsets(partitions)
    positions = {tp: await consumer.position(tp) for tp in partitions}
    while any(positions[tp] < end[tp] for tp in partitions):
        for tp, records in (await consumer.getmany(timeout_ms=500, max_records=max_records)).items():
            on_records(tp, records)
        positions = {tp: await consumer.position(tp) for tp in partitions}
    return positions


async def record_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes] | None:
    """The first record of ``tp`` at ``offset`` or after it, up to the end offset taken now (None when there is
    none): the record at ``offset`` itself unless compaction, a transaction marker or an aborted transaction
    left a gap there. Assigns ``tp`` alone to ``consumer`` (no group)."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    end = (await consumer.end_offsets([tp]))[tp]
    while await consumer.position(tp) < end:
        records = (await consumer.getmany(tp, timeout_ms=500, max_records=1)).get(tp)
        if records:
            return records[0]
    return None
