"""Creating the processor's topics: inputs and outputs with the configured partitions, the compacted
code-table topic, and the duplicate window's internal topics. Topics that exist already are left as they are.

Replication is the cluster's: unless ``replication_factor`` is set, every topic gets the brokers'
``default.replication.factor``, so that on a production cluster (3, with ``min.insync.replicas`` 2) the
loss of one broker moves its partitions' leadership to a replica instead of taking them offline.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from processor.config import Settings
from processor.kafka.clients import client_options

log = logging.getLogger(__name__)

# The code table is a changelog: keep the last record per key forever, clean often.
CODE_TABLE_CONFIG = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "600000"}

DEFAULT_REPLICATION = "default.replication.factor"


async def ensure_topics(settings: Settings, timeout: float = 60.0) -> list[str]:
    """Create whichever of the processor's topics are missing; returns the names it created.

    Retriable errors are retried with backoff for up to ``timeout`` seconds: the admin client asks a random
    broker of its metadata, which may be one that was just lost. The broker's error for a topic it refuses
    (e.g. ``InvalidReplicationFactorError``: fewer brokers up than the replication factor) is raised; a topic
    that another worker created meanwhile is no error.
    """
    topics = settings.topics
    # The duplicate window's changelog: compacted (the newest entry per claim id) and aged out by retention, not
    # by tombstones. The window drops an entry once it is a window behind the newest claim; the topic drops
    # its record once the record's segment is older than the window and a week (segments roll daily, so the
    # topic holds at most the window and 8 days of decisions). Tombstones would double the records written
    # for about the same bound. Retention goes by when a claim was decided, the window by its submitted_at.
    seen_claims_config = {
        "cleanup.policy": "compact,delete",
        "retention.ms": str((settings.duplicate_window_days + 7) * 86_400_000),
        "segment.ms": str(86_400_000),
    }
    specs = {
        **{name: (settings.partitions, {}) for name in (topics.claims, topics.orders, *topics.outputs())},
        topics.code_table: (1, CODE_TABLE_CONFIG),
        # Co-partitioned with the claims topic; entries older than the window age out by retention.
        topics.seen_claims: (settings.partitions, seen_claims_config),
    }
    if settings.member_check:  # claims' decisions by member, and the member check's window changelog
        specs[topics.claims_by_member] = (settings.partitions, {})
        specs[topics.seen_members] = (settings.partitions, seen_claims_config)
    admin = AIOKafkaAdminClient(**client_options(settings, "admin"))
    await admin.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.1
        while True:
            try:
                return await _create_missing(admin, settings, specs)
            except KafkaError as err:
                if not err.retriable or loop.time() + delay > deadline:
                    raise
                log.warning("creating topics: %s: %s; retrying", type(err).__name__, err)
            await asyncio.sleep(delay)  # backoff while the cluster drops a lost broker from its metadata
            delay = min(delay * 2, 2.0)
    finally:
        await admin.close()


async def _create_missing(
    admin: AIOKafkaAdminClient, settings: Settings, specs: dict[str, tuple[int, dict[str, str]]]
) -> list[str]:
    """Create the topics of ``specs`` (name: partitions, configs) that the cluster does not have."""
    existing = set(await admin.list_topics())
    missing = {name: spec for name, spec in specs.items() if name not in existing}
    if not missing:
        return []
    replication_factor = settings.replication_factor or await default_replication_factor(admin)
    new = [
        NewTopic(name, partitions, replication_factor, topic_configs=config)
        for name, (partitions, config) in missing.items()
    ]
    response = await admin.create_topics(new)
    for name, code, *message in response.topic_errors:
        error = for_code(code)
        if code and error is not TopicAlreadyExistsError:  # already there: another worker made it just now
            raise error(f"creating topic {name}: {message[0] if message else error.description}")
    log.info("created topics: %s (replication factor %d)", ", ".join(t.name for t in new), replication_factor)
    return [t.name for t in new]


async def default_replication_factor(admin: AIOKafkaAdminClient) -> int:
    """The cluster's ``default.replication.factor``, as one of its brokers reports it.

    KIP-464 lets a client ask for the broker's default with replication factor -1, but only from
    CreateTopics version 4 on; aiokafka sends versions 0 to 3 and its ``NewTopic`` refuses -1, so the
    value is read from a broker's configuration instead (DescribeConfigs, any Kafka version).
    """
    broker = str((await admin.describe_cluster())["brokers"][0]["node_id"])
    resource = ConfigResource(ConfigResourceType.BROKER, broker, {DEFAULT_REPLICATION: None})
    for response in await admin.describe_configs([resource]):
        for code, message, _, _, entries in response.resources:
            if code:
                raise for_code(code)(f"reading {DEFAULT_REPLICATION} of broker {broker}: {message}")
            for name, value, *_ in entries:
                if name == DEFAULT_REPLICATION:
                    return int(value)
    raise KafkaError(f"broker {broker} did not report {DEFAULT_REPLICATION}")


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
