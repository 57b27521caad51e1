"""One broker variant, measured: fresh topics, the backlog held back, the processes, the drain, the latency.

For each variant (the same steps, the same data, the same sizes):

1. fresh input and output topics (``bench-<run>-<variant>.*``; the code-table topic is shared by the run);
2. the warm-up events are produced and committed; the backlog is produced inside a Kafka transaction that is
   left open, so that a read_committed consumer cannot see it yet (the "gate");
3. the variant's processes start (``python -m ...``, each with its own log file); we wait until every
   warm-up decision is visible and the consumer group is Stable with all its members: startup, table
   loading, group joins and first batches are not timed;
4. the transaction commits (the gate opens: the whole backlog is there at once) and we time until every
   backlog decision is visible to a read_committed consumer. Drain rate = decisions made visible after the
   gate / time from the gate to the last one. Every variant reads committed records only (the Faust agent
   is set to), so none can start on the backlog before the gate; should one do so anyway, only what it
   decides after the gate is counted, over the time after the gate.
5. latency: events produced at half the measured drain rate (or at ``latency_rate``) for ``latency_seconds``,
   each timed from the producer's send to its decision being visible (read_committed); for the processor,
   where the worker's time went meanwhile (its ``processor_batch_phase_seconds`` histograms, ``bench.phases``);
   The CPU time the processes spent over the drain (``/proc``), per 100,000 backlog events, is the figure
   a busy machine does not distort: events/s falls when other work takes the cores, CPU seconds do not.
6. peak RSS (VmHWM) of each process, then SIGTERM (SIGKILL after 30 s) and the run's topics are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from processor.bench.data import BenchData, Record, produce, topic_of
from processor.bench.machine import cpu_seconds, memory_mb
from processor.bench.observe import Observer, group_members, percentiles
from processor.bench.phases import difference, free_port, scrape
from processor.bench.progress import Progress
from processor.config import Settings, Topics
from processor.kafka.delivery import send_batched
from processor.kafka.topics import ensure_topics
from processor.routing import Message

STARTUP_TIMEOUT = 240.0  # process start, table load, group join and warm-up, on a loaded 2-core machine


@dataclass(frozen=True)
class Variant:
    """A way of doing the work, started as ``processes`` copies of ``argv`` (``python`` + argv)."""

    id: str
    label: str
    argv: tuple[str, ...]
    processes: int = 1
    env: dict[str, str] = field(default_factory=dict)


def processor_variant(guarantee: str, workers: int) -> Variant:
    name = guarantee.replace("_", "-")
    return Variant(
        id=f"processor_{guarantee}" + (f"_{workers}_workers" if workers > 1 else ""),
        label=f"processor {name}" + (f" x{workers}" if workers > 1 else ""),
        argv=("-m", "processor", "run", "--no-create-topics"),
        processes=workers,
        env={"PROCESSOR_PROCESSING_GUARANTEE": guarantee},
    )


CEILING = Variant("ceiling", "ceiling (aiokafka, no decision)", ("-m", "processor.bench.ceiling"))
FAUST = Variant("faust", "faust-streaming agent", ("-m", "processor.bench.faust_agent"))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a ``python -m processor ...`` child exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_TOPIC_")}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "PROCESSOR_GROUP_ID": settings.group_id,
            "PROCESSOR_PARTITIONS": str(settings.partitions),
            "PROCESSOR_METRICS_HOST": "127.0.0.1",
            "PROCESSOR_METRICS_PORT": "0",
            "PROCESSOR_STATE_DIR": settings.state_dir,
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, topic in vars(settings.topics).items():
        env[f"PROCESSOR_TOPIC_{name.upper()}"] = topic
    return env


def run_settings(base: Settings, run_id: str, variant: Variant) -> Settings:
    prefix = f"bench-{run_id}-{variant.id}."
    topics = replace(Topics().with_prefix(prefix), code_table=base.topics.code_table)
    return replace(base, topics=topics, group_id=prefix + "group")


async def run_variant(
    variant: Variant,
    base: Settings,
    run_id: str,
    data: BenchData,
    latency_seconds: float,
    latency_rate: float | None,
    progress: Progress,
    log_dir: Path,
) -> dict[str, Any]:
    """Measure one variant; returns its figures (or raises, with the log files named in the message)."""
    settings = run_settings(base, run_id, variant)
    await ensure_topics(settings)
    progress.phase("producing the warm-up and the backlog")
    total = len(data.warmup) + len(data.backlog)
    await produce(settings, data.warmup)
    gate = await _open_gate(settings, data.backlog, lambda n: progress.update(len(data.warmup) + n, total))
    observer = Observer(settings)
    await observer.start()
    processes: list[subprocess.Popen[bytes]] = []
    logs = [log_dir / f"{variant.id}-{i + 1}.log" for i in range(variant.processes)]
    try:
        env = {**settings_env(settings), **variant.env}
        # The processor's workers serve their metrics on a port each, read around the latency phase.
        ports = [free_port() for _ in logs] if variant.id.startswith("processor_") else []
        for i, log_path in enumerate(logs):
            own = {**env, "PROCESSOR_METRICS_PORT": str(ports[i])} if ports else env
            with log_path.open("wb") as log_file:
                processes.append(
                    subprocess.Popen([sys.executable, *variant.argv], env=own, stdout=log_file, stderr=log_file)
                )
        progress.phase(f"starting {variant.processes} process(es), warming up")
        warmup_keys = [key for _, key, _ in data.warmup]
        backlog_keys = [key for _, key, _ in data.backlog]
        observer.track("warmup", warmup_keys)
        observer.track("backlog", backlog_keys)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            _alive(processes, logs)
            observer.check()
            done = observer.counts["warmup"]
            progress.update(done, len(warmup_keys))
            members = await group_members(settings, settings.group_id) if done == len(warmup_keys) else None
            if members == variant.processes:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{variant.label}: not warmed up within {STARTUP_TIMEOUT:.0f} s ({done} of {len(warmup_keys)} "
                    f"warm-up decisions, {observer.records} records seen, group members {members}); see {logs[0]}"
                )
            await asyncio.sleep(0.05)
        ready_memory = [memory_mb(p.pid) for p in processes]

        progress.phase("draining the backlog")
        cpu_before = [cpu_seconds(p.pid) for p in processes]
        await gate.commit_transaction()
        opened = time.monotonic()
        before_gate = observer.counts["backlog"]
        deadline = opened + max(300.0, len(backlog_keys) / 200)
        while (done := observer.counts["backlog"]) < len(backlog_keys):
            _alive(processes, logs)
            observer.check()
            progress.update(done, len(backlog_keys))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{variant.label}: {done} of {len(backlog_keys)} decisions after the deadline")
            await asyncio.sleep(0.02)
        drain = _drain_rate([observer.seen[key] for key in backlog_keys], opened)
        drain["cpu_s_per_100k"] = _cpu_per_100k(
            cpu_before, [cpu_seconds(p.pid) for p in processes], len(backlog_keys) - before_gate
        )
        if before_gate:
            drain["decided_before_gate"] = before_gate

        rate = latency_rate or drain["events_per_s"] / 2
        before = await scrape(ports) if ports else None
        latency = await _latency(settings, data, observer, rate, latency_seconds, processes, logs, progress)
        phases = difference(before, await scrape(ports) if ports else None)
        if phases is not None:
            latency["phases_ms"] = phases
        final_memory = [memory_mb(p.pid) for p in processes]
    finally:
        await gate.stop()
        await observer.stop()
        _stop(processes)
        await _delete_topics(settings)
    peaks = [m["peak"] for m in final_memory if m]
    return {
        "label": variant.label,
        "processes": variant.processes,
        **drain,
        "latency_ms": latency,
        "peak_rss_mb": max(peaks) if peaks else None,
        "peak_rss_mb_total": round(sum(peaks), 1) if peaks else None,
        "rss_ready_mb": max((m["rss"] for m in ready_memory if m), default=None),
        "duplicates_seen": observer.records - len(observer.seen),
        "logs": [str(p) for p in logs],
    }


def _cpu_per_100k(before: list[float | None], after: list[float | None], events: int) -> float | None:
    """CPU seconds the measured processes (all of them, for x2) spent per 100,000 events while they drained
    the backlog: from just before the gate opens to the last decision seen (the idle polls at either end
    are in it, and are small against a drain of seconds)."""
    if events <= 0 or None in before or None in after:
        return None
    spent = sum(b - a for a, b in zip(before, after, strict=True))  # type: ignore[operator]
    return round(spent / events * 100_000, 3)


def _drain_rate(visible_at: list[float], opened: float) -> dict[str, Any]:
    """Decisions per second from the first backlog decisions visible after the gate to the last one.

    Starting at the first visible decision, not at the commit, leaves out how long the consumers' pending
    fetches take to notice the gate (up to their fetch wait): that is an artefact of the gate, not of the
    work. The decisions of that first batch are not counted, since their work was done before the window.
    """
    after = sorted(t for t in visible_at if t > opened)
    if not after:
        return {"events_per_s": 0.0, "measured_events": 0, "seconds": 0.0, "window": "none"}
    first, last = after[0], after[-1]
    measured = sum(1 for t in after if t > first)
    window = "first to last decision"
    if measured < len(after) / 2:  # a backlog so small that most of it became visible at once
        first, measured, window = opened, len(after), "gate to last decision"
    seconds = last - first
    return {
        "events_per_s": round(measured / seconds, 1) if seconds > 0 else 0.0,
        "measured_events": measured,
        "seconds": round(seconds, 3),
        "window": window,
        "gate_to_first_s": round(after[0] - opened, 3),
    }


async def _open_gate(settings: Settings, backlog: Sequence[Record], progress: Any) -> AIOKafkaProducer:
    """Produce ``backlog`` in a transaction and leave it open: read_committed consumers see none of it yet."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="bench-gate",
        transactional_id=f"{settings.group_id}.gate",
        enable_idempotence=True,
        acks="all",
        linger_ms=10,
        max_batch_size=1_048_576,
        transaction_timeout_ms=600_000,
    )
    await producer.start()
    await producer.begin_transaction()
    pending = []
    for n, (kind, key, value) in enumerate(backlog, start=1):
        pending.append(await producer.send(topic_of(settings, kind), value, key=key))
        if len(pending) >= 20_000:
            await asyncio.gather(*pending)
            pending.clear()
            progress(n)
    await asyncio.gather(*pending)
    progress(len(backlog))
    return producer


async def _latency(
    settings: Settings,
    data: BenchData,
    observer: Observer,
    rate: float,
    seconds: float,
    processes: list[subprocess.Popen[bytes]],
    logs: list[Path],
    progress: Progress,
) -> dict[str, Any]:
    """Produce at ``rate`` events/s for ``seconds``; the time from send to visible decision, per event."""
    rate = max(rate, 20.0)  # a failed drain must not stall the phase
    count = max(50, int(rate * seconds))
    events = data.latency_events(count)
    progress.phase(f"latency at {rate:,.0f} events/s")
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, client_id="bench-latency", acks="all", enable_idempotence=True
    )
    await producer.start()
    # Each event goes where send() would put it (murmur2 of the key, as the Java client does), worked out
    # before the clock starts; the due events then leave as one record batch per partition, so producing
    # costs this process a few microseconds an event and leaves the cores to what is measured.
    topics = {topic_of(settings, kind) for kind, _, _ in events}
    counts = {topic: len(await producer.partitions_for(topic)) for topic in topics}
    messages: list[Message] = []
    for kind, key, value in events:
        topic = topic_of(settings, kind)
        messages.append((topic, key, value, (murmur2(key) & 0x7FFFFFFF) % counts[topic]))
    sent: dict[bytes, float] = {}
    observer.track("latency", [key for _, key, _ in events])
    try:
        pending: list[asyncio.Future[Any]] = []
        start = time.monotonic()
        n = 0
        while n < count:
            due = min(count, int((time.monotonic() - start) * rate) + 1)
            if due > n:
                now, batch = time.monotonic(), messages[n:due]
                for _, key, _, _ in batch:
                    sent[key] = now
                pending += await send_batched(producer, batch)
                n = due
            progress.update(observer.counts["latency"], count)
            await asyncio.sleep(0.002)
        produced_in = time.monotonic() - start
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    deadline = time.monotonic() + 120
    while (done := observer.counts["latency"]) < count:
        _alive(processes, logs)
        observer.check()
        progress.update(done, count)
        if time.monotonic() > deadline:
            raise TimeoutError(f"latency phase: {done} of {count} decisions after the deadline")
        await asyncio.sleep(0.02)
    latencies = [observer.seen[key] - at for key, at in sent.items()]  # in send order
    result = percentiles(latencies)
    # A variant that cannot keep up at this rate shows it as latency growing from the first to the last quarter.
    quarter = max(1, len(latencies) // 4)
    result["p50_first_quarter"] = percentiles(latencies[:quarter])["p50"]
    result["p50_last_quarter"] = percentiles(latencies[-quarter:])["p50"]
    result["rate_per_s"] = round(count / produced_in, 1) if produced_in else None
    result["target_rate_per_s"] = round(rate, 1)
    return result


def _alive(processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    for process, log in zip(processes, logs, strict=True):
        if process.poll() is not None:
            raise RuntimeError(f"a measured process exited with {process.returncode}; see {log}")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _delete_topics(settings: Settings) -> None:
    """Remove the run's input and output topics (the shared code-table topic stays until the end)."""
    topics = settings.topics
    names = [topics.claims, topics.orders, *topics.outputs()]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="bench-admin")
    with contextlib.suppress(Exception):
        await admin.start()
        await admin.delete_topics(names)
    with contextlib.suppress(Exception):
        await admin.close()
