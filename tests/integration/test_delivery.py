"""Batched sends (``delivery.send_batched``) against a real broker: where records land, in what order, and
records larger than a batch."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaProducer

from processor.kafka.delivery import send_batched
from processor.kafka.topics import ensure_topics
from tests.integration.conftest import read_all


async def test_records_land_on_their_partition_number_in_order_even_past_a_full_batch(settings):
    await ensure_topics(settings)
    topic = settings.topics.accepted
    count = settings.partitions
    # Small batches: 300 records of 1 KiB fill several per partition. Numbers past the topic's partitions
    # wrap around (an output topic with fewer partitions than the inputs still takes every record).
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", max_batch_size=16_384)
    await producer.start()
    try:
        values = [f"{i:06d}".encode() + b"x" * 1018 for i in range(300)]
        messages = [(topic, f"CLM{i:06d}".encode(), value, i % (2 * count)) for i, value in enumerate(values)]
        futures = await send_batched(producer, messages)
        assert len(futures) > count  # more than one batch per partition
        await asyncio.gather(*futures)
        big = b"y" * 40_000  # larger than a whole batch
        await asyncio.gather(*await send_batched(producer, [(topic, b"big", big, 1), (topic, None, b"no key", 2)]))
    finally:
        await producer.stop()

    records = await read_all(settings, [topic], 302)
    assert len(records) == 302
    expected = {key: n % count for _, key, _, n in messages}
    by_partition = defaultdict(list)
    for record in records:
        if record.key not in (b"big", None):
            assert record.partition == expected[record.key], record.key
            by_partition[record.partition].append(record.value)
    assert len(by_partition) == count
    for values_read in by_partition.values():
        assert values_read == sorted(values_read)  # in the order sent
    assert sum(len(v) for v in by_partition.values()) == 300
    assert [(r.partition, r.value) for r in records if r.key == b"big"] == [(1, big)]
    assert [(r.partition, r.value) for r in records if r.key is None] == [(2 % count, b"no key")]
