"""Creating the processor's topics: inputs and outputs with the configured partitions, and the compacted
code-table topic. Topics that exist already are left as they are."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from processor.config import Settings
from processor.kafka.clients import client_options

log = logging.getLogger(__name__)

# The code table is a changelog: keep the last record per key forever, clean often.
CODE_TABLE_CONFIG = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "600000"}


async def ensure_topics(settings: Settings, replication_factor: int = 1) -> list[str]:
    """Create whichever of the processor's topics are missing; returns the names it created."""
    topics = settings.topics
    wanted = {name: settings.partitions for name in (topics.claims, topics.orders, *topics.outputs())}
    admin = AIOKafkaAdminClient(**client_options(settings, "admin"))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name, partitions, replication_factor)
            for name, partitions in wanted.items()
            if name not in existing
        ]
        if topics.code_table not in existing:
            new.append(NewTopic(topics.code_table, 1, replication_factor, topic_configs=CODE_TABLE_CONFIG))
        if topics.seen_claims not in existing:
            # Co-partitioned with the claims topic; entries older than the window age out by retention.
            retention_ms = (settings.duplicate_window_days + 7) * 86_400_000
            config = {"cleanup.policy": "compact,delete", "retention.ms": str(retention_ms)}
            new.append(NewTopic(topics.seen_claims, settings.partitions, replication_factor, topic_configs=config))
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker made them at the same moment
                await admin.create_topics(new)
            log.info("created topics: %s", ", ".join(t.name for t in new))
        return [t.name for t in new]
    finally:
        await admin.close()


async def partitions_of(consumer: AIOKafkaConsumer, *topics: str, timeout: float | None = None) -> list[TopicPartition]:
    """Every partition of ``topics``, waiting (with backoff) until the broker's metadata lists them all.

    A consumer without a subscription knows no partitions until its metadata is refreshed; aiokafka has
    no public call for that, hence the private client.
    """
    deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
    delay = 0.05
    while True:
        found = {topic: consumer.partitions_for_topic(topic) for topic in topics}
        if all(found.values()):
            return [TopicPartition(t, p) for t, parts in found.items() for p in sorted(parts or ())]
        if deadline is not None and asyncio.get_running_loop().time() > deadline:
            missing = ", ".join(t for t, parts in found.items() if not parts)
            raise TimeoutError(f"topics not found: {missing}")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
