"""A three-broker cluster loses a broker, then another, while a worker decides a stream: nothing stops.

The cluster (``LocalCluster``: KRaft, each node broker and controller) is replicated like production:
``default.replication.factor`` 3, ``min.insync.replicas`` 2, the offsets and transaction state topics alike.
The processor's topics take the cluster's replication factor. A broker killed with SIGKILL hands nothing
over: its partitions are leaderless until the controller fences it and elects an in-sync replica, and the
group and transaction coordinators it held move. The worker process rides that out: it stays alive and
healthy, goes on deciding while the broker is down, and every event is decided exactly once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from processor.config import Settings, Topics
from processor.kafka.broker import LocalCluster, free_port
from tests.conftest import SMALL_TABLE
from tests.integration.conftest import eventually, load_table
from tests.integration.exactly_once import (
    assert_exactly_once,
    backlog,
    committed_records,
    outputs_by_source,
    start_worker,
    wait_for_log,
    wait_until_committed,
)

pytestmark = pytest.mark.kafka

RATE = 60  # events per second while brokers die: a steady stream, never a backlog


@pytest.fixture(scope="module")
def cluster():
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("kills brokers: needs the project's own Kafka nodes, not an existing cluster")
    cluster = LocalCluster(size=3)
    cluster.start()
    yield cluster
    cluster.remove()


def cluster_settings(cluster: LocalCluster) -> Settings:
    prefix = f"c{uuid.uuid4().hex[:10]}."
    return Settings(bootstrap_servers=cluster.bootstrap_servers, group_id=prefix + "group",
                    topics=Topics().with_prefix(prefix), partitions=3)  # fmt: skip


def topic_names(settings: Settings) -> list[str]:
    topics = settings.topics
    return [*topics.inputs(), *topics.outputs(), topics.code_table, topics.seen_claims]


async def replica_counts(settings: Settings) -> dict[str, set[int]]:
    """How many replicas the partitions of each of the processor's topics have, once all are known."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(topic_names(settings))
    finally:
        await admin.close()
    counts = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in described if t["partitions"]}
    return counts if len(counts) == len(topic_names(settings)) else {}


@pytest.mark.parametrize(("flags", "replicas"), [([], 3), (["--replication-factor", "2"], 2)])
async def test_processor_topics_takes_the_clusters_replication_factor_unless_told(cluster, flags, replicas):
    settings = cluster_settings(cluster)
    prefix = settings.topics.claims.removesuffix("claims")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers, "PROCESSOR_TOPIC_PREFIX": prefix}
    command = [sys.executable, "-m", "processor", "topics", "--partitions", "3", *flags]
    done = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"(replication factor {replicas})" in done.stderr
    counts = await eventually(lambda: replica_counts(settings), 30, "the new topics' metadata")
    assert counts == {name: {replicas} for name in topic_names(settings)}


@dataclass
class Feed:
    """Events produced at a steady rate by an idempotent producer (a retry after a lost leader never makes
    a second copy of an input), until stopped or the records run out."""

    settings: Settings
    records: list[tuple[str, bytes | None, bytes]]
    sent: int = 0
    inputs: set[tuple[str, int, int]] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        topics = {"claim": self.settings.topics.claims, "order": self.settings.topics.orders}
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, enable_idempotence=True,
                                    acks="all", linger_ms=5)  # fmt: skip
        await producer.start()
        try:
            started = time.monotonic()
            futures = []
            for kind, key, value in self.records:
                if self.stop.is_set():
                    break
                futures.append(await producer.send(topics[kind], value, key=key))
                self.sent += 1
                ahead = self.sent / RATE - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)  # pacing the stream, not waiting on Kafka
            self.inputs = {(m.topic, m.partition, m.offset) for m in await asyncio.gather(*futures)}
        finally:
            await producer.stop()


@dataclass
class HealthWatch:
    """Samples the worker's /healthz and /readyz a few times a second; what each answered, counted."""

    port: int
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)

    def ask(self, path: str) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return str(response.status)
        except urllib.error.HTTPError as err:
            return str(err.code)
        except OSError as err:
            return type(err).__name__

    async def run(self) -> None:
        while True:
            for path in ("/healthz", "/readyz"):
                self.answers[(path, await asyncio.to_thread(self.ask, path))] += 1
            await asyncio.sleep(0.25)  # the sampling interval, not a wait on Kafka


async def committed_now(settings: Settings) -> int | None:
    """How many input records the group has committed; None while its coordinator is moving."""
    try:
        return await asyncio.wait_for(committed_records(settings), 10)
    except (KafkaError, TimeoutError):
        return None


async def committed_at_least(settings: Settings, count: int, timeout: float) -> int:
    """Wait until the group has committed at least ``count`` input records; how many it has."""

    async def enough() -> int | None:
        committed = await committed_now(settings)
        return committed if committed is not None and committed >= count else None

    return await eventually(enough, timeout, f"{count} input records committed")


async def coordinators(settings: Settings) -> list[int]:
    """The brokers now acting as the group's coordinator and as the transaction coordinators of its
    transactional ids (one per partition number), in that order."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        group = await admin.find_coordinator(settings.group_id, 0)
        ids = [f"{settings.group_id}-{n}" for n in range(settings.partitions)]
        return [group, *[await admin.find_coordinator(i, 1) for i in ids]]
    finally:
        await admin.close()


async def test_workers_ride_out_losing_one_broker_then_another(cluster, tmp_path):
    """One broker is SIGKILLed mid-stream and restarted, then another, and a second worker joins the group
    while that one is down (its assignment looks offsets up on partitions without a leader). Neither worker
    ever stops, and every event is decided exactly once."""
    settings = replace(cluster_settings(cluster), state_dir=str(tmp_path / "state"))
    await load_table(settings, SMALL_TABLE)
    feed = Feed(settings, backlog(10_000, seed=5))  # about half is sent by the time the test ends
    health = HealthWatch(free_port())
    logs = [tmp_path / "worker.log", tmp_path / "joiner.log"]
    workers = [start_worker(settings, logs[0], PROCESSOR_METRICS_PORT=str(health.port))]
    tasks = []

    def all_running() -> bool:
        return all(worker.poll() is None for worker in workers)

    def tails() -> str:
        return "\n".join(f"{log.name}:\n{log.read_text()[-3000:]}" for log in logs if log.exists())

    try:
        wait_for_log(logs[0], "assigned")
        tasks = [asyncio.create_task(feed.run()), asyncio.create_task(health.run())]
        await committed_at_least(settings, 300, timeout=60)
        lost: list[int] = []
        for _ in range(2):
            # Each time a broker that coordinates the group or its transactions: the worst one to lose.
            victim = next(node for node in await coordinators(settings) if node not in lost)
            lost.append(victim)
            committed = await eventually(lambda: committed_now(settings), 30, "the committed offsets")
            await asyncio.to_thread(cluster.node(victim).kill)
            if len(lost) == 2:
                workers.append(start_worker(settings, logs[1]))  # a rebalance while partitions lack a leader
            # Decisions go on while the broker is down: its leaderships and coordinators move.
            await committed_at_least(settings, committed + 10 * RATE, timeout=90)
            assert all_running(), f"a worker stopped:\n{tails()}"
            await asyncio.to_thread(cluster.node(victim).start)
            await asyncio.to_thread(cluster.wait_in_sync)
        wait_for_log(logs[1], "assigned", timeout=30)
        await committed_at_least(settings, feed.sent + 2 * RATE, timeout=60)  # decided with all brokers back
        feed.stop.set()
        await tasks[0]
        await wait_until_committed(settings, timeout=60)
        assert all_running(), f"a worker stopped:\n{tails()}"
    finally:
        for task in tasks:
            task.cancel()
        for worker in workers:
            worker.terminate()
            worker.wait(60)
    answered = {answer for (_, answer) in health.answers}
    assert answered == {"200"} and health.answers[("/healthz", "200")] > 40, health.answers
    assert_exactly_once(await outputs_by_source(settings), feed.inputs, feed.records[: feed.sent])
