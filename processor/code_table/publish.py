"""Publishing code-table records to the compacted code-table topic (``processor load``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from processor.config import Settings
from processor.kafka.clients import client_options


async def publish(
    settings: Settings,
    records: Iterable[tuple[str, dict[str, Any] | None]],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send ``(key, record)`` pairs (None is a tombstone) and wait until the broker has them all.

    Records of one key keep their order (one partition, idempotent producer). Returns how many were sent.
    """
    producer = AIOKafkaProducer(
        **client_options(settings, "loader"),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=1_048_576,
    )
    await producer.start()
    deliveries = []
    try:
        for key, record in records:
            value = None if record is None else orjson.dumps(record)
            deliveries.append(await producer.send(settings.topics.code_table, value, key=key.encode()))
            if progress is not None and len(deliveries) % 5000 == 0:
                progress(len(deliveries))
        await asyncio.gather(*deliveries)  # raises if the broker refused any record
    finally:
        await producer.stop()
    if progress is not None:
        progress(len(deliveries))
    return len(deliveries)
