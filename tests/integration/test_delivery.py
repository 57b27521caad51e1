"""Batched sends (``delivery.send_batched``) against a real broker: where records land, in what order, and
records larger than a batch."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaProducer

from processor.kafka.delivery import send_batched
from processor.kafka.topics import ensure_topics
from tests.integration.conftest import read_all


async def test_records_land_where_send_puts_them_in_order_even_past_a_full_batch(settings):
    await ensure_topics(settings)
    topic = settings.topics.accepted
    # Small batches: 300 records of 1 KiB fill several per partition.
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", max_batch_size=16_384)
    await producer.start()
    try:
        keys = [f"CLM{i:06d}".encode() for i in range(300)]
        values = [f"{i:06d}".encode() + b"x" * 1018 for i in range(300)]
        futures = await send_batched(producer, [(topic, k, v, None) for k, v in zip(keys, values, strict=True)])
        assert len(futures) > settings.partitions  # more than one batch per partition
        await asyncio.gather(*futures)
        # The partition a plain send() picks for a key (murmur2, as the Java client does).
        expected = {k: (await (await producer.send(settings.topics.returned, b"-", key=k))).partition for k in keys}
        big = b"y" * 40_000  # larger than a whole batch
        await asyncio.gather(*await send_batched(producer, [(topic, b"big", big, 1), (topic, None, b"no key", None)]))
    finally:
        await producer.stop()

    records = await read_all(settings, [topic], 302)
    assert len(records) == 302
    by_partition = defaultdict(list)
    for record in records:
        if record.key not in (b"big", None):
            assert record.partition == expected[record.key], record.key
            by_partition[record.partition].append(record.value)
    for values_read in by_partition.values():
        assert values_read == sorted(values_read)  # in the order sent
    assert sum(len(v) for v in by_partition.values()) == 300
    assert [r.value for r in records if r.key == b"big"] == [big]
    assert [r.partition for r in records if r.key == b"big"] == [1]
    assert [r.value for r in records if r.key is None] == [b"no key"]
