"""Where a measured worker's time goes: its ``processor_batch_phase_seconds`` histograms, read from its metrics
endpoint before and after a phase of the bench, as the difference of the two.

For each phase of the worker's loop (``processor.app.sensor.PHASES``): how many times it was timed, the mean,
and p50 / p99 estimated from the histogram's buckets the way Prometheus' ``histogram_quantile`` does (linear
within a bucket), in milliseconds; plus the mean records per batch. Several processes (x2) are summed.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

PHASE_METRIC = "processor_batch_phase_seconds"
BATCH_METRIC = "processor_batch_records"

# phase -> {"count": n, "sum": s, "buckets": {upper bound: cumulative count}}
Snapshot = dict[str, dict[str, Any]]


def free_port() -> int:
    """A loopback port free right now, for a measured process's metrics endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse(text: str) -> Snapshot:
    """The phase histograms (and the batch sizes, as phase ``records``) of one metrics page."""
    snapshot: Snapshot = defaultdict(lambda: {"count": 0.0, "sum": 0.0, "buckets": defaultdict(float)})
    for family in text_string_to_metric_families(text):
        if family.name not in (PHASE_METRIC, BATCH_METRIC):
            continue
        for sample in family.samples:
            phase = sample.labels.get("phase", "records")
            entry = snapshot[phase]
            if sample.name.endswith("_bucket"):
                entry["buckets"][float(sample.labels["le"])] += sample.value
            elif sample.name.endswith("_count"):
                entry["count"] += sample.value
            elif sample.name.endswith("_sum"):
                entry["sum"] += sample.value
    return dict(snapshot)


async def scrape(ports: list[int]) -> Snapshot | None:
    """The phase histograms of the processes serving metrics on ``ports``, summed; None if one cannot be read."""
    pages = []
    for port in ports:
        try:
            pages.append(await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics"))
        except OSError:
            return None
    total: Snapshot = {}
    for page in pages:
        for phase, entry in parse(page).items():
            into = total.setdefault(phase, {"count": 0.0, "sum": 0.0, "buckets": defaultdict(float)})
            into["count"] += entry["count"]
            into["sum"] += entry["sum"]
            for bound, n in entry["buckets"].items():
                into["buckets"][bound] += n
    return total


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def difference(before: Snapshot | None, after: Snapshot | None) -> dict[str, Any] | None:
    """What was timed between two snapshots: per phase its count, mean, p50 and p99 (ms); ``records_per_batch``."""
    if before is None or after is None:
        return None
    result: dict[str, Any] = {}
    for phase, entry in after.items():
        was = before.get(phase, {"count": 0.0, "sum": 0.0, "buckets": {}})
        count = entry["count"] - was["count"]
        total = entry["sum"] - was["sum"]
        if phase == "records":
            result["records_per_batch"] = round(total / count, 1) if count else None
            continue
        buckets = sorted((bound, n - was["buckets"].get(bound, 0.0)) for bound, n in entry["buckets"].items())
        result[phase] = {
            "count": int(count),
            "mean": round(total / count * 1000, 2) if count else None,
            "p50": _quantile(0.5, buckets, count),
            "p99": _quantile(0.99, buckets, count),
        }
    return result


def _quantile(q: float, buckets: list[tuple[float, float]], count: float) -> float | None:
    """The q-quantile in ms from cumulative (upper bound, count) buckets, linear within its bucket."""
    if count <= 0:
        return None
    rank = q * count
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return round(lower * 1000, 2)  # beyond the last bound: its lower edge is all we know
            inside = cumulative - below
            share = (rank - below) / inside if inside else 1.0
            return round((lower + (bound - lower) * share) * 1000, 2)
        lower, below = bound, cumulative
    return None


def report(variants: dict[str, dict[str, Any]]) -> str:
    """Where each processor variant's time went in its latency phase, one line per phase (empty: none)."""
    lines = []
    for variant in variants.values():
        latency = variant.get("latency_ms") or {}
        phases = latency.get("phases_ms")
        if not phases:
            continue
        lines.append(
            f"\nWhere the time went, {variant['label']} at {_number(latency.get('target_rate_per_s'))} events/s "
            f"({_number(phases.get('records_per_batch'))} records a batch; ms; txn_ per transaction):"
        )
        lines.append(f"  {'phase':<16}{'count':>8}{'mean':>9}{'p50':>9}{'p99':>9}")
        for phase, figures in phases.items():
            if phase == "records_per_batch" or not figures.get("count"):
                continue
            cells = "".join(f"{_number(figures[q], 1):>9}" for q in ("mean", "p50", "p99"))
            lines.append(f"  {phase:<16}{figures['count']:>8}{cells}")
    return "\n".join(lines)


def _number(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
