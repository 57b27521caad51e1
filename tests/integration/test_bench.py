"""Smoke test of ``processor bench``: with tiny sizes against the session's broker, every variant runs and
the JSON report has its figures. Not a timed test: no number is compared with a goal here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.kafka

VARIANTS = {
    "engine",
    "ceiling",
    "processor_exactly_once",
    "processor_exactly_once_2_workers",
    "processor_at_least_once",
    "faust",
}


def test_bench_measures_every_variant_and_writes_json_and_chart(kafka_bootstrap: str, tmp_path: Path) -> None:
    json_path = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "processor", "bench", "--quick", "--events", "1000", "--latency-seconds", "1",
        "--json", str(json_path), "--results-dir", str(tmp_path / "results"),
    ]  # fmt: skip
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"

    results = orjson.loads(json_path.read_bytes())
    assert {"machine", "broker", "sizes", "variants", "ratios", "goals", "code_table"} <= set(results)
    assert results["broker"]["bootstrap_servers"] == kafka_bootstrap  # used the broker it was given
    assert results["machine"]["cores"] >= 1
    assert set(results["variants"]) == VARIANTS
    for name, variant in results["variants"].items():
        assert "error" not in variant, f"{name}: {variant.get('error')}"
        assert variant["events_per_s"] > 0, name
        assert "decided_before_gate" not in variant, f"{name} started on the backlog before it was committed"
        latency = variant["latency_ms"]
        assert latency["count"] > 0, name
        assert 0 <= latency["p50"] <= latency["p99"] <= latency["max"], name
        assert variant["peak_rss_mb"] > 0, name
        assert variant["cpu_s_per_100k"] > 0, name  # CPU time per event, from /proc, beside events/s
    assert results["variants"]["processor_exactly_once_2_workers"]["processes"] == 2
    for ratio in ("exactly_once_vs_ceiling", "exactly_once_vs_faust", "at_least_once_vs_ceiling",
                  "exactly_once_2_workers_vs_faust", "exactly_once_vs_ceiling_cpu",
                  "exactly_once_vs_faust_cpu"):  # fmt: skip
        assert results["ratios"][ratio] > 0, ratio

    table = results["code_table"]
    assert table["codes"] > 90_000  # the full default ICD-10-CM table
    assert table["bootstrap_s"] > 0
    assert table["rss_loaded_mb"] > table["rss_before_mb"]

    # The production-size table (CMS's sizes, or 1/50 of them on a quick run): the default table, HCPCS, NCCI
    # PTP and MUE records, all published to a topic of its own and loaded by a follower in a fresh process.
    production = results["code_table_production"]
    assert "error" not in production, production.get("error")
    parts = production["parts"]
    assert parts["default"] == table["records"]
    assert parts["ncci"] >= 5_000 and parts["mue"] >= 600 and parts["hcpcs"] >= 140  # @ncci-set records
    assert production["records"] == sum(parts.values())
    assert production["codes"] > table["codes"]  # its HCPCS codes on top of the default table's
    assert production["bootstrap_s"] > 0
    assert production["peak_rss_mb"] >= production["rss_loaded_mb"] > production["rss_before_mb"]
    measured = production["scale"] == 1  # a scaled-down table does not measure the production goals
    for goal in ("production_table_ready_s", "production_table_rss_mb"):
        assert (results["goals"][goal]["value"] is not None) == measured, goal
    assert "Production-size table" in done.stdout

    chart = Path(results["chart"])
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Ratios" in done.stdout and "processor exactly-once" in done.stdout
    # the timestamped copy in --results-dir holds the same figures
    assert list((tmp_path / "results").glob("bench-*.json"))
