"""The ceiling: what aiokafka and orjson alone move on this machine, deciding nothing.

A consumer group over the claims and lab-orders topics, with the worker's own client settings (read_committed,
acks=all, idempotent producer, the same batch size, batch timeout and linger): per batch it parses every
value (orjson), serializes it again, sends them to the accepted topic the way the worker sends
(``delivery.send_batched``: one record batch per partition, on the input partition's number), waits for
every acknowledgement, then commits the batch's offsets. No schema check, no code table, no decision: the
difference between this and the processor is the cost of deciding.

Run as ``python -m processor.bench.ceiling`` with the processor's settings in the environment; SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import signal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processor.config import Settings
from processor.kafka.delivery import send_batched
from processor.routing import Message


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Consume, parse, serialize, send in batches and commit until ``stop`` is set."""
    topics = settings.topics
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="bench-ceiling",
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_bytes,
    )
    consumer = AIOKafkaConsumer(
        topics.claims,
        topics.orders,
        bootstrap_servers=settings.bootstrap_servers,
        client_id="bench-ceiling",
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=settings.batch_timeout_ms, max_records=settings.batch_max_records
            )
            if not batches:
                continue
            messages: list[Message] = []
            offsets = {}
            for tp, records in batches.items():
                for record in records:
                    value = orjson.dumps(orjson.loads(record.value))
                    messages.append((topics.accepted, record.key, value, tp.partition))
                offsets[tp] = records[-1].offset + 1
            await asyncio.gather(*await send_batched(producer, messages))
            await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await producer.stop()


async def _main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(Settings.from_env(), stop)


if __name__ == "__main__":
    asyncio.run(_main())
