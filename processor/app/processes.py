"""Running workers until they are told to stop: one in this process (``run_until_stopped``), or ``--workers`` N
worker processes of one consumer group on this machine (``run_processes``)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys

from aiokafka.errors import KafkaError

from processor.app.worker import Worker, first
from processor.config import Settings
from processor.kafka.clients import KafkaAccessError

log = logging.getLogger(__name__)


async def run_until_stopped(settings: Settings, stop: asyncio.Event, create_topics: bool = True) -> int:
    """Run a worker until ``stop`` is set, then give it ``shutdown_timeout_s`` to finish; the exit code.

    0 after a clean stop; 1 when the worker failed or did not stop in time (the failure is logged
    without event content).
    """
    worker = Worker(settings, create_topics=create_topics)
    task = asyncio.create_task(worker.run(stop), name="worker")
    await first(stop.wait(), asyncio.shield(task))
    try:
        await asyncio.wait_for(task, settings.shutdown_timeout_s)
    except TimeoutError:
        log.error("the worker did not stop within %d s", settings.shutdown_timeout_s)
        return 1
    except KafkaAccessError as err:
        log.error("%s", err)
        return 1
    except KafkaError as err:
        log.error("Kafka at %s: %s: %s", settings.bootstrap_servers, type(err).__name__, err)
        return 1
    log.info("worker stopped")
    return 0


def run_processes(count: int, settings: Settings) -> int:
    """Run ``count`` worker processes (``python -m processor run``) in one consumer group; SIGTERM or Ctrl-C
    stops them all. The exit code is the worst of theirs."""
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    children = []
    for i in range(count):
        env = {**os.environ, "PROCESSOR_METRICS_PORT": str(settings.metrics_port + i if settings.metrics_port else 0)}
        if settings.group_instance_id:
            env["PROCESSOR_GROUP_INSTANCE_ID"] = f"{settings.group_instance_id}-{i}"
        env["KAFKA_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "processor", "run"],
                env=env,
                preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals),
            )
        )
    log.info("started %d worker processes: %s", count, ", ".join(str(c.pid) for c in children))
    signal.sigwait(stop_signals)
    for child in children:
        child.send_signal(signal.SIGTERM)
    return max(child.wait() for child in children)
