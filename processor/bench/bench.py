"""The whole ``processor bench`` run: broker, data, code table, every variant, the report.

The broker: the one named by ``--bootstrap-servers`` or ``KAFKA_BOOTSTRAP_SERVERS``; when neither is given,
the project's ``LocalBroker`` (Kafka from the jars, on free loopback ports), which is stopped and deleted at
the end. Nothing else is started but the measured processes, each stopped when its variant is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from processor.bench import machine, phases, report, window_cost
from processor.bench.data import BenchData, publish_batched
from processor.bench.progress import Progress
from processor.bench.runner import CEILING, FAUST, Variant, processor_variant, run_variant, settings_env
from processor.code_table.sources import Record, table_records
from processor.config import Settings, Topics
from processor.kafka.topics import CODE_TABLE_CONFIG

VARIANT_NAMES = ("engine", "ceiling", "exactly_once", "at_least_once", "faust", "window")


@dataclass
class BenchOptions:
    events: int = 100_000
    warmup: int | None = None  # default: a tenth of ``events``, at least 200
    latency_seconds: float = 10.0
    latency_rate: float | None = None  # default: half of each variant's drain rate
    workers: list[int] = field(default_factory=lambda: [1, 2])
    only: set[str] = field(default_factory=lambda: set(VARIANT_NAMES))
    partitions: int = 6
    seed: int = 7
    results_dir: Path = Path("bench-results")
    json_path: Path | None = None
    chart: bool = True
    # The production-size code table (``production_table``): measured after the default one unless False;
    # ``production_scale`` shrinks its generated part (``production_table.QUICK_SCALE``, 1/50, for quick runs).
    production_table: bool = True
    production_scale: float = 1.0
    # The duplicate window's row (``window_cost``): the entries of the window restored; None: 10 million, or
    # ``window_cost.QUICK_ENTRIES`` when the production table is scaled down too (a quick run).
    window_entries: int | None = None

    @property
    def warmup_events(self) -> int:
        return self.warmup if self.warmup is not None else max(200, self.events // 10)

    @property
    def window_size(self) -> int:
        if self.window_entries is not None:
            return self.window_entries
        return window_cost.ENTRIES if self.production_scale >= 1 else window_cost.QUICK_ENTRIES


def run_bench(settings: Settings, options: BenchOptions, use_local_broker: bool) -> int:
    """Run everything; prints the report on stdout; returns 0 when every variant was measured."""

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every finally: measured processes and the broker stop

    signal.signal(signal.SIGTERM, interrupted)
    broker = None
    if use_local_broker:
        from processor.kafka.broker import LocalBroker

        print("starting a local Kafka broker (stopped at the end)", file=sys.stderr, flush=True)
        broker = LocalBroker()
        settings = replace(settings, bootstrap_servers=broker.start())
    try:
        # The workers' duplicate windows (and the window row's stores) live here for the run only.
        with tempfile.TemporaryDirectory(prefix="processor-bench-state-") as state_dir:
            settings = replace(settings, state_dir=state_dir)
            results = asyncio.run(_run(settings, options, "local" if broker else "given"))
    finally:
        if broker is not None:
            broker.remove()
    extra = (results.get("code_table_production") or {}, results.get("window") or {}, results.get("formats") or {})
    failed = [v for v in (*results["variants"].values(), *extra) if "error" in v]
    return 1 if failed else 0


def _broker_variants(options: BenchOptions) -> list[Variant]:
    variants = []
    if "ceiling" in options.only:
        variants.append(CEILING)
    if "exactly_once" in options.only:
        variants += [processor_variant("exactly_once", n) for n in options.workers]
    if "at_least_once" in options.only:
        variants.append(processor_variant("at_least_once", 1))
    if "faust" in options.only:
        variants.append(FAUST)
    return variants


async def _run(settings: Settings, options: BenchOptions, broker_kind: str) -> dict[str, Any]:
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    run_id = uuid.uuid4().hex[:8]
    settings = replace(
        settings,
        partitions=options.partitions,
        topics=replace(Topics(), code_table=f"bench-{run_id}.code-table"),
    )
    log_dir = options.results_dir / "logs" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    variants = _broker_variants(options)
    warm_broker = broker_kind == "local" and bool(variants)
    window = "window" in options.only
    progress = Progress(
        steps=3 + options.production_table + len(variants) + 2 * ("engine" in options.only) + warm_broker + window
    )
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine.describe(),
        "broker": {"kind": broker_kind, "bootstrap_servers": settings.bootstrap_servers},
        "sizes": {
            "events": options.events,
            "warmup_events": options.warmup_events,
            "latency_seconds": options.latency_seconds,
            "latency_rate": options.latency_rate,
            "partitions": options.partitions,
            "seed": options.seed,
            "batch_max_records": settings.batch_max_records,
            "linger_ms": settings.linger_ms,
            "production_table_scale": options.production_scale if options.production_table else None,
            "window_entries": options.window_size if "window" in options.only else None,
        },
        "variants": {},
    }

    progress.begin("data")
    progress.phase(f"generating {options.events + options.warmup_events:,} claims and orders")
    data = BenchData.make(options.events, options.warmup_events, options.seed)

    progress.begin("code table")
    progress.phase("reading the default ICD-10-CM, ICD-10-PCS and MCE releases")
    records = table_records(default=True, demo=True)
    results["code_table"] = await _code_table(settings, records, progress)
    try:
        if options.production_table:
            progress.begin("production-size code table")
            try:
                results["code_table_production"] = await _production_table(settings, records, options, run_id, progress)
            except Exception as err:  # like a variant's failure, it must not lose the figures that follow
                progress.note(f"failed: {err}")
                results["code_table_production"] = {"label": "production-size table", "error": str(err)}
        del records
        if "engine" in options.only:
            with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
                lines = Path(tmp) / "events.lines"
                data.write_lines(lines)
                progress.begin("engine alone")
                progress.phase("decode, decide, serialize with no broker")
                results["variants"]["engine"] = _engine_alone(lines, len(data.warmup))
                progress.begin("engine alone per input format")
                progress.phase("JSON, X12 837P and HL7 v2 ORM records through Router.route, no broker")
                try:
                    results["formats"] = _formats_alone(lines, len(data.warmup))
                except Exception as err:  # like a variant's failure, it must not lose the figures that follow
                    progress.note(f"failed: {err}")
                    results["formats"] = {"error": str(err)}
        if warm_broker:
            # A broker just started runs its first minute or so on a cold JVM (interpreted code, then
            # compiling): whatever ran first measured slower, the ceiling and exactly-once most (a fresh
            # broker once showed them p99 near 1 s). One untimed exactly-once round warms it for all.
            progress.begin("broker warm-up (not measured)")
            warmup = replace(processor_variant("exactly_once", 1), id="broker_warmup", label="broker warm-up")
            try:
                await run_variant(warmup, settings, run_id, data, 2.0, None, progress, log_dir)
                results["broker"]["warmed_up"] = "one untimed exactly-once round"
            except Exception as err:  # like a variant's failure, it must not lose the figures that follow
                progress.note(f"warm-up failed: {err}")
                results["broker"]["warmed_up"] = f"failed: {err}"
        for variant in variants:
            progress.begin(variant.label)
            try:
                results["variants"][variant.id] = await run_variant(
                    variant, settings, run_id, data, options.latency_seconds, options.latency_rate, progress, log_dir
                )
            except Exception as err:  # one variant failing must not lose the others' figures
                progress.note(f"failed: {err}")
                results["variants"][variant.id] = {"label": variant.label, "error": str(err)}
        if window:
            progress.begin("duplicate window")
            try:
                work_dir = Path(settings.state_dir) / "window-cost"
                results["window"] = await window_cost.measure(settings, run_id, options.window_size, work_dir, progress)
            except Exception as err:  # like a variant's failure, it must not lose the figures before it
                progress.note(f"failed: {err}")
                results["window"] = {"error": str(err)}
    finally:
        await _delete_topic(settings, settings.topics.code_table)

    progress.begin("report")
    ready = [v.get("rss_ready_mb") for k, v in results["variants"].items() if k.startswith("processor_")]
    results["code_table"]["worker_rss_ready_mb"] = max((r for r in ready if r), default=None)
    results["load_average_end"] = machine.load_average()
    results["ratios"] = report.ratios(results["variants"])
    results["goals"] = report.goals(results)
    json_path = options.results_dir / f"bench-{stamp}.json"
    if options.chart:
        chart_path = json_path.with_suffix(".png")
        report.chart(results, chart_path)
        results["chart"] = str(chart_path)
    report.write_json(results, json_path, *([options.json_path] if options.json_path else []))
    progress.finish()
    print(report.table(results))
    if where := phases.report(results["variants"]):
        print(where)
    print(f"\nJSON: {json_path}" + (f" and {options.json_path}" if options.json_path else ""))
    if options.chart:
        print(f"Chart: {results['chart']}")
    print(f"Logs of the measured processes: {log_dir}")
    return results


async def _code_table(settings: Settings, records: list[Record], progress: Progress) -> dict[str, Any]:
    """Publish the default table and the demo rows to the run's code-table topic; time a follower loading it."""
    from processor.kafka.code_table_topic import publish

    await _create_code_table_topic(settings, settings.topics.code_table)
    progress.phase(f"publishing {len(records):,} code-table records")
    started = time.monotonic()
    await publish(settings, records, lambda n: progress.update(n, len(records), "records"))
    publish_s = time.monotonic() - started
    progress.phase("a follower loads the table from the topic")
    return {"records": len(records), "publish_s": round(publish_s, 2), **await _follower_cost(settings)}


async def _production_table(
    settings: Settings, default: list[Record], options: BenchOptions, run_id: str, progress: Progress
) -> dict[str, Any]:
    """The production-size table (``production_table``) on a topic of its own, loaded by a follower in a fresh
    process; the topic is deleted at the end."""
    from processor.bench.production_table import ProductionTable

    table = ProductionTable.make(default, options.production_scale, options.seed)
    label = "production-size table" + (
        f" at 1/{1 / table.scale:.0f} of CMS's sizes" if table.scale < 1 else " (CMS's sizes)"
    )
    topic = f"bench-{run_id}.code-table-production"
    here = replace(settings, topics=replace(settings.topics, code_table=topic))
    await _create_code_table_topic(here, topic)
    try:
        progress.phase(f"generating and publishing {len(table):,} code-table records")
        started = time.monotonic()
        encoded = ((key.encode(), None if record is None else orjson.dumps(record)) for key, record in table.records())
        sent = await publish_batched(here, topic, encoded, lambda n: progress.update(n, len(table), "records"))
        publish_s = time.monotonic() - started
        progress.phase("a follower loads the table from the topic")
        started = time.monotonic()
        cost = await _follower_cost(here)
        process_s = time.monotonic() - started
    finally:
        await _delete_topic(settings, topic)
    return {
        "label": label,
        "scale": table.scale,
        "records": sent,
        "parts": table.sizes,
        "publish_s": round(publish_s, 2),
        **cost,
        "process_s": round(process_s, 2),
    }


async def _create_code_table_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="bench-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=CODE_TABLE_CONFIG)])
    finally:
        await admin.close()


async def _follower_cost(settings: Settings) -> dict[str, Any]:
    """``code_table_cost`` in a fresh process reading the settings' code-table topic: its figures."""
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "processor.bench.code_table_cost"],
        env=settings_env(settings),
        capture_output=True,
    )
    if out.returncode:
        raise RuntimeError(f"code_table_cost exited with {out.returncode}: {out.stderr.decode()[-500:]}")
    return orjson.loads(out.stdout)


def _engine_alone(lines: Path, warmup: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "processor.bench.engine_alone", str(lines), "--warmup", str(warmup)],
        capture_output=True,
        check=True,
    )
    result = orjson.loads(out.stdout)
    return {"label": "engine alone (no broker)", "processes": 1, **result}


def _formats_alone(lines: Path, warmup: int) -> dict[str, Any]:
    """``formats_alone`` in a fresh process on the engine row's events: a row per input format."""
    out = subprocess.run(
        [sys.executable, "-m", "processor.bench.formats_alone", str(lines), "--warmup", str(warmup)],
        capture_output=True,
    )
    if out.returncode:
        raise RuntimeError(f"formats_alone exited with {out.returncode}: {out.stderr.decode()[-500:]}")
    return orjson.loads(out.stdout)


async def _delete_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="bench-admin")
    with contextlib.suppress(Exception):
        await admin.start()
        await admin.delete_topics([topic])
    with contextlib.suppress(Exception):
        await admin.close()
