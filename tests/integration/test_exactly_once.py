"""Exactly-once through the real broker, under faults: workers killed, a broker restart, rebalances, SIGTERM.

Every test produces a numbered backlog, runs ``processor run`` processes, and finally reads the outcome and
dead-letter topics with read_committed: exactly one record per input record, by coordinates and by id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import signal
import time

import pytest

from processor.kafka.broker import LocalBroker
from tests.conftest import SMALL_TABLE
from tests.integration.conftest import load_table
from tests.integration.exactly_once import (
    assert_exactly_once,
    backlog,
    finish_and_check,
    outputs_by_source,
    produce_backlog,
    start_worker,
    wait_for_log,
    wait_until_committed,
    wait_until_committed_at_least,
)

pytestmark = pytest.mark.kafka
READY = "assigned"  # the worker's log line once it holds partitions


async def test_crash_three_sigkills_lose_nothing_and_duplicate_nothing(settings, tmp_path):
    """200,000 events; the worker is killed with SIGKILL three times at random moments and restarted. With
    the duplicate window and its member check: every claim goes through two transactions."""
    settings = dataclasses.replace(settings, partitions=4, duplicate_window_days=30)
    await load_table(settings, SMALL_TABLE)
    records = backlog(200_000)
    inputs = await produce_backlog(settings, records)
    log = tmp_path / "worker.log"
    rng = random.Random()
    static = {"PROCESSOR_GROUP_INSTANCE_ID": "crash-test-worker"}  # a restart rejoins without waiting
    for _ in range(3):
        mark = log.stat().st_size if log.exists() else 0
        worker = start_worker(settings, log, **static)
        wait_for_log(log, READY, after=mark)
        await asyncio.sleep(rng.uniform(0.5, 4.0))  # a random moment mid-stream, not a wait for Kafka
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    await finish_and_check(settings, log, inputs, records, timeout=600, **static)


async def test_broker_restart_mid_stream(tmp_path):
    """The broker stops and starts again while the worker runs; the worker recovers by itself."""
    from processor.config import Settings, Topics

    broker = LocalBroker()
    await asyncio.to_thread(broker.start)  # start() waits for the broker with its own event loop
    try:
        settings = Settings(bootstrap_servers=broker.bootstrap_servers, group_id="restart.group",
                            topics=Topics().with_prefix("restart."), partitions=3,
                            state_dir=str(tmp_path / "state"))  # fmt: skip
        await load_table(settings, SMALL_TABLE)
        records = backlog(30_000)
        inputs = await produce_backlog(settings, records[:15_000])
        log = tmp_path / "worker.log"
        worker = start_worker(settings, log)
        try:
            wait_for_log(log, READY)
            await asyncio.to_thread(broker.restart)
            inputs |= await produce_backlog(settings, records[15_000:])
            await wait_until_committed(settings, timeout=300)
        finally:
            worker.terminate()
            worker.wait(60)
        assert_exactly_once(await outputs_by_source(settings), inputs, records)
    finally:
        broker.remove()


async def test_rebalance_one_joins_one_leaves(settings, tmp_path):
    """Two workers share the group; a third joins mid-stream and one of the first leaves."""
    settings = dataclasses.replace(settings, partitions=6)
    await load_table(settings, SMALL_TABLE)
    records = backlog(60_000)
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    first, second = start_worker(settings, logs[0]), start_worker(settings, logs[1])
    workers = [first, second]
    try:
        wait_for_log(logs[0], READY)
        feed = asyncio.create_task(produce_backlog(settings, records, rate=6000))
        await wait_until_committed_at_least(settings, 10_000)  # mid-stream: the group is deciding
        workers.append(start_worker(settings, logs[2]))
        wait_for_log(logs[2], READY)
        await wait_until_committed_at_least(settings, 25_000)
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
        inputs = await feed
        await wait_until_committed(settings, timeout=300)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(60)
    assert_exactly_once(await outputs_by_source(settings), inputs, records)


async def test_sigterm_stops_within_the_bound_and_loses_nothing(settings, tmp_path):
    await load_table(settings, SMALL_TABLE)
    records = backlog(40_000)
    inputs = await produce_backlog(settings, records)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log, PROCESSOR_SHUTDOWN_TIMEOUT_S="20")
    wait_for_log(log, READY)
    worker.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert worker.wait(30) == 0
    assert time.monotonic() - started < 20
    assert b"worker stopped" in log.read_bytes()
    await finish_and_check(settings, log, inputs, records, timeout=300)
