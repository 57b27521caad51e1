"""The peer: a faust-streaming app doing the processor's job the way a Faust user would write it.

Two agents (``@app.agent``), one over the claims topic and one over the lab-orders topic, iterate their
stream (``stream.events()``, to know each record's topic, partition and offset); each event is decoded,
decided by the same engine against the same table (default ICD-10-CM releases plus the demo rows, built in
memory before the worker starts) and its decision record sent to the accepted, returned or needs-review
topic with ``topic.send`` (undecodable records go to the dead-letter topic), as ``routing.Router`` says,
the worker's own per-record path. Faust acknowledges each event after the agent has handled it and commits
acknowledged offsets on its own schedule: at-least-once, Faust's default guarantee.

Settings are Faust's defaults except where the processor has an equivalent, which it gets: the same
consumer group size of poll (``broker_max_poll_records`` = batch_max_records), the same producer linger and
batch size, acks=all, raw key and value serializers (the engine does its own JSON), in-memory store, no web
server. Run as ``python -m processor.bench.faust_agent`` with the processor's settings in the environment;
SIGTERM stops it.

One change to how Faust reads: its consumer reads committed records only (``read_committed``), like the
processor's. Faust reads uncommitted records unless it runs its own transactions; the benchmark holds the
backlog back in an open transaction (the "gate") and times from the moment it commits, so a Faust that read
uncommitted records could finish a small backlog before the clock starts and show no rate at all.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from processor.code_table.sources import build_table
from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.routing import Message, Received, Router, now_iso


def make_app(settings: Settings, table: CodeTable, datadir: str) -> faust.App:
    """A Faust app with one agent per input topic, deciding with ``table``; Faust keeps its files in ``datadir``."""
    topics = settings.topics
    app = faust.App(
        settings.group_id,
        broker="kafka://" + settings.bootstrap_servers.replace(",", ";"),
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        web_enabled=False,
        datadir=datadir,
        topic_partitions=settings.partitions,
        broker_max_poll_records=settings.batch_max_records,
        producer_linger=settings.linger_ms / 1000,
        producer_max_batch_size=settings.max_batch_bytes,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
    )
    router = Router(topics, table, None, settings.max_record_bytes)
    outputs = {name: app.topic(name) for name in topics.outputs()}

    def agent_for(kind: str) -> Callable[[Any], Any]:
        async def decide_events(stream: faust.StreamT) -> None:
            async for event in stream.events():
                m = event.message
                record = Received(m.topic, m.partition, m.offset, int(m.timestamp * 1000), event.key, event.value)
                out: list[Message] = []
                router.route(record, now_iso(), out)
                for topic, key, value, _ in out:
                    await outputs[topic].send(key=key, value=value)

        decide_events.__name__ = f"decide_{kind}s"
        return decide_events

    app.agent(app.topic(topics.claims), name="decide_claims")(agent_for("claim"))
    app.agent(app.topic(topics.orders), name="decide_orders")(agent_for("order"))
    return app


def read_committed_only() -> None:
    """Make Faust's worker consumers read committed records only (see the module's docstring)."""
    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer

    def create_read_committed(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        if not hasattr(consumer, "_isolation_level"):  # aiokafka changed: fail loudly rather than measure wrongly
            raise RuntimeError("cannot set Faust's consumer to read_committed with this aiokafka version")
        consumer._isolation_level = "read_committed"  # read by AIOKafkaConsumer.start() when it makes its fetcher
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create_read_committed  # type: ignore[method-assign]


def main() -> None:
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    settings = Settings.from_env()
    read_committed_only()
    datadir = tempfile.mkdtemp(prefix="bench-faust-")
    atexit.register(shutil.rmtree, datadir, ignore_errors=True)  # Faust leaves it; the bench stops us with SIGTERM
    app = make_app(settings, build_table(demo=True), datadir)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
