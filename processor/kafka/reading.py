"""Reading a topic to its end: how the code-table follower, ``processor load`` and the duplicate-window
restore learn what a topic holds before they act on it.

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
) -> dict[TopicPartition, int]:
    """Assign ``partitions`` to ``consumer`` (no group), read each from its beginning to the end offsets taken
    now, handing every fetched run of records to ``on_records`` in offset order; returns the positions reached.
    """
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    end = await consumer.end_offsets(partitions)
    positions = {tp: await consumer.position(tp) for tp in partitions}
    while any(positions[tp] < end[tp] for tp in partitions):
        for tp, records in (await consumer.getmany(timeout_ms=500, max_records=max_records)).items():
            on_records(tp, records)
        positions = {tp: await consumer.position(tp) for tp in partitions}
    return positions
