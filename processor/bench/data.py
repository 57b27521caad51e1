"""The events every variant sees: generated once, serialized once, then produced to fresh topics per run.

``BenchData`` holds three lists of ``(kind, key, value)`` with unique keys (the claim or order id, which
the worker, the ceiling loop and the Faust agent all use as the output key, so that the observer can count
distinct decisions and match each to its input without parsing it):

- ``warmup``: consumed first and not timed (connections, metadata, first batches, group joins);
- ``backlog``: the timed drain;
- ``latency``: produced at a fixed rate afterwards, for the latency phase (new events of the same mix).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from processor.config import Settings
from processor.kafka.clients import client_options
from processor.kafka.delivery import send_batched
from processor.samples import generate

Record = tuple[str, bytes, bytes]  # kind, key, value
ID_FIELD = {"claim": "claim_id", "order": "order_id"}


@dataclass
class BenchData:
    warmup: list[Record]
    backlog: list[Record]
    seed: int

    @classmethod
    def make(cls, events: int, warmup: int, seed: int = 7) -> BenchData:
        """``warmup + events`` realistic claims and orders (about 30 % orders, 20 % with a mistake)."""
        records = [_record(kind, event) for kind, event in generate(warmup + events, seed=seed)]
        return cls(warmup=records[:warmup], backlog=records[warmup:], seed=seed)

    def latency_events(self, count: int) -> list[Record]:
        """``count`` events for the latency phase: new ones of the same mix (the next seed), with ids no other
        record has. Not the backlog's events again under new ids: each of those claims repeats a backlog
        claim's content, a suspect duplicate that the duplicate window's member check decides a second time,
        so the phase measured a load of 100 % duplicates (its worker spent 2.4 x the CPU an event of the
        drain's, a fifth of it deciding duplicates again) and fell behind at half its drain rate."""
        out = []
        for i, (kind, event) in enumerate(generate(count, seed=self.seed + 1)):
            event[ID_FIELD[kind]] = f"LAT{i:010d}"
            out.append(_record(kind, event))
        return out

    def write_lines(self, path: Path) -> None:
        """Warm-up then backlog as lines ``KIND VALUE`` for the engine-alone process."""
        with path.open("wb") as out:
            for kind, _, value in [*self.warmup, *self.backlog]:
                out.write(kind.encode() + b" " + value + b"\n")


def _record(kind: str, event: dict[str, Any]) -> Record:
    return kind, event[ID_FIELD[kind]].encode(), orjson.dumps(event)


def topic_of(settings: Settings, kind: str) -> str:
    return settings.topics.claims if kind == "claim" else settings.topics.orders


async def produce(settings: Settings, records: Sequence[Record], progress: Callable[[int], None] | None = None) -> None:
    """Send records to the input topics as fast as the broker takes them (acks=all), and wait for all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="bench-loader",
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        max_batch_size=1_048_576,
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for n, (kind, key, value) in enumerate(records, start=1):
            pending.append(await producer.send(topic_of(settings, kind), value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress is not None:
                    progress(n)
        await asyncio.gather(*pending)
        if progress is not None:
            progress(len(records))
    finally:
        await producer.stop()


async def publish_batched(
    settings: Settings,
    topic: str,
    records: Iterable[tuple[bytes, bytes | None]],
    progress: Callable[[int], None] | None = None,
    client: str = "bench-loader",
) -> int:
    """Send ``(key, value)`` pairs to partition 0 of ``topic``, made as they are sent, and wait until the
    broker has them all; returns how many were sent.

    ``code_table_topic.publish`` (one ``send`` a record) took 51 s for the production-size table's 1.24M
    records; one record batch at a time (``delivery.send_batched``) takes 10 s, generating them included.
    The accumulator holds one batch per partition at a time, so memory stays bounded."""
    producer = AIOKafkaProducer(
        **client_options(settings, client),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    sent = 0
    try:
        pending: list[asyncio.Future[Any]] = []
        chunk: list[tuple[str, bytes, bytes | None, int]] = []
        for key, value in records:
            chunk.append((topic, key, value, 0))
            if len(chunk) == 20_000:
                pending += await send_batched(producer, chunk)
                sent += len(chunk)
                chunk = []
                if progress is not None:
                    progress(sent)
        pending += await send_batched(producer, chunk)
        sent += len(chunk)
        await asyncio.gather(*pending)  # raises if the broker refused any batch
    finally:
        await producer.stop()
    if progress is not None:
        progress(sent)
    return sent
