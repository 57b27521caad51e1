"""``processor load``: what the code-table topic holds, and only the records that change it.

``held_records`` reads the compacted topic to its end (keys and values, tombstones applied). Loaders
compare against it, so loading the same release twice publishes nothing, and a new release publishes
what it adds and the ``valid_to`` of what it ends (``releases.merge_release``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from processor.config import Settings
from processor.kafka.clients import client_options
from processor.kafka.topics import partitions_of


async def held_records(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every record the code-table topic holds now, by key (the latest value of each key; none deleted)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, "loader"),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    held: dict[str, dict[str, Any]] = {}
    try:
        partitions = await partitions_of(consumer, settings.topics.code_table)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500, max_records=20_000)).values():
                for record in records:
                    if record.key is None:
                        continue
                    key = record.key.decode()
                    if record.value is None:
                        held.pop(key, None)
                    else:
                        held[key] = orjson.loads(record.value)
    finally:
        await consumer.stop()
    return held


def progress_bar(label: str, total: int, width: int = 30) -> Callable[[int], None]:
    """A one-line progress bar on stderr: ``label [#####.....] 45,000/98,216``."""

    def show(done: int) -> None:
        filled = width * done // total if total else width
        bar = "#" * filled + "." * (width - filled)
        print(f"\r{label} [{bar}] {done:,}/{total:,}", end="", file=sys.stderr, flush=True)

    return show
