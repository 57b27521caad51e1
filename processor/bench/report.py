"""The report: a table and the ratios on stdout, the JSON for comparing runs, and a PNG chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson

# The goals of issue 5, issue 12 (the production-size table) and issue 14 (the hot path), on a 2-core machine
# with the broker on the same box; issue 14 asks the throughput ratios in events/s and in CPU seconds. The 3 s
# goal was set when the default table was ICD-10-CM alone (98,000 records); it now also holds ICD-10-PCS and
# the MCE lists (about 200,000): the goal is unchanged, its row says what it now loads.
GOALS = {
    "exactly_once_vs_ceiling": ("processor exactly-once / ceiling", ">=", 0.8),
    "exactly_once_vs_faust": ("processor exactly-once / faust", ">=", 10.0),
    "exactly_once_vs_ceiling_cpu": ("processor exactly-once / ceiling, by CPU s per event", ">=", 0.8),
    "exactly_once_vs_faust_cpu": ("processor exactly-once / faust, by CPU s per event", ">=", 10.0),
    "engine_events_per_s": ("engine alone (events/s)", ">=", 100_000.0),
    "exactly_once_p99_ms": ("p99 latency at half the maximum rate (ms)", "<=", 100.0),
    "code_table_bootstrap_s": ("full default table loaded (s)", "<=", 3.0),
    "worker_peak_rss_mb": ("worker peak RSS (MB)", "<=", 200.0),
    "production_table_ready_s": ("production table ready (s)", "<=", 10.0),
    "production_table_rss_mb": ("production table RSS (MB)", "<=", 400.0),
    # Issue 13: a duplicate window of 10 million entries, restored from its local checkpoint by a real worker.
    "window_restore_s": ("10M-entry window restored from its checkpoint (s)", "<=", 30.0),
    "window_worker_rss_mb": ("worker RSS with a 10M-entry window (MB)", "<=", 300.0),
}


def ratios(variants: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Throughput ratios between variants (None where a variant is missing or failed)."""

    def rate(name: str) -> float | None:
        value = variants.get(name, {}).get("events_per_s")
        return value if value else None

    def ratio(a: str, b: str) -> float | None:
        x, y = rate(a), rate(b)
        return round(x / y, 3) if x and y else None

    def cpu_ratio(a: str, b: str) -> float | None:
        """How many times ``b``'s CPU seconds per event ``a`` needs fewer of: a ratio of rates, per core."""
        x, y = (variants.get(name, {}).get("cpu_s_per_100k") for name in (a, b))
        return round(y / x, 3) if x and y else None

    out = {
        "exactly_once_vs_ceiling_cpu": cpu_ratio("processor_exactly_once", "ceiling"),
        "exactly_once_vs_faust_cpu": cpu_ratio("processor_exactly_once", "faust"),
        "exactly_once_vs_ceiling": ratio("processor_exactly_once", "ceiling"),
        "exactly_once_vs_faust": ratio("processor_exactly_once", "faust"),
        "at_least_once_vs_ceiling": ratio("processor_at_least_once", "ceiling"),
        "at_least_once_vs_faust": ratio("processor_at_least_once", "faust"),
        "exactly_once_vs_engine": ratio("processor_exactly_once", "engine"),
    }
    for name in variants:
        if name.startswith("processor_exactly_once_") and name.endswith("_workers"):
            workers = name.removeprefix("processor_exactly_once_").removesuffix("_workers")
            out[f"exactly_once_{workers}_workers_vs_1"] = ratio(name, "processor_exactly_once")
            # Scale-out against the single-process rows (the goals stay on one worker).
            out[f"exactly_once_{workers}_workers_vs_ceiling"] = ratio(name, "ceiling")
            out[f"exactly_once_{workers}_workers_vs_faust"] = ratio(name, "faust")
    return out


def goals(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each goal of the issue with the value reached and whether it is met (None: not measured)."""
    variants = results["variants"]
    eos = variants.get("processor_exactly_once", {})
    # The latency goal is at half the maximum rate: a run at a fixed --latency-rate does not measure it.
    p99 = None if results["sizes"].get("latency_rate") else (eos.get("latency_ms") or {}).get("p99")
    # The production goals are for CMS's sizes: a table scaled down (a quick run) does not measure them. RSS is
    # the loading process's peak (VmHWM), what a memory limit meets, not what it holds once loaded.
    production = results.get("code_table_production") or {}
    full_size = production.get("scale") == 1
    default_table = results.get("code_table") or {}
    # The window goals are for 10 million entries: a smaller window (a quick run) does not measure them.
    window = results.get("window") or {}
    restored = (window.get("checkpoint") or {}) if window.get("entries") == 10_000_000 else {}
    values = {
        "exactly_once_vs_ceiling": results["ratios"].get("exactly_once_vs_ceiling"),
        "exactly_once_vs_faust": results["ratios"].get("exactly_once_vs_faust"),
        "exactly_once_vs_ceiling_cpu": results["ratios"].get("exactly_once_vs_ceiling_cpu"),
        "exactly_once_vs_faust_cpu": results["ratios"].get("exactly_once_vs_faust_cpu"),
        "engine_events_per_s": variants.get("engine", {}).get("events_per_s"),
        "exactly_once_p99_ms": p99,
        "code_table_bootstrap_s": default_table.get("bootstrap_s"),
        "worker_peak_rss_mb": eos.get("peak_rss_mb"),
        "production_table_ready_s": production.get("bootstrap_s") if full_size else None,
        "production_table_rss_mb": production.get("peak_rss_mb") if full_size else None,
        "window_restore_s": restored.get("restore_s"),
        "window_worker_rss_mb": restored.get("rss_mb"),
    }
    out = {}
    for name, (what, op, target) in GOALS.items():
        value = values[name]
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        out[name] = {"what": what, "target": f"{op} {target:g}", "value": value, "met": met}
    goal = out["code_table_bootstrap_s"]
    if default_table.get("records"):
        goal["what"] = f"full default table loaded (s), {default_table['records'] / 1000:.0f}k records"
    if goal["met"] is False:
        goal["note"] = "the goal was set for ICD-10-CM alone (98k records); the table now adds ICD-10-PCS and MCE"
    return out


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _latency_rate(sizes: dict[str, Any]) -> str:
    rate = sizes.get("latency_rate")
    return f"{rate:,.0f} events/s" if rate else "half of each variant's rate"


def table(results: dict[str, Any]) -> str:
    """The printed report."""
    m = results["machine"]
    s = results["sizes"]
    lines = [
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gib']} GiB, Python {m['python']}; "
        f"load average {m['load_average']} at start, {results.get('load_average_end')} at end",
        f"Broker: {results['broker']['kind']} at {results['broker']['bootstrap_servers']}; "
        f"{s['events']:,} events timed after {s['warmup_events']:,} warm-up, {s['partitions']} partitions, "
        f"latency at {_latency_rate(s)} for {s['latency_seconds']:g} s",
        "",
        f"{'variant':<34}{'events/s':>11}{'CPU s/100k':>12}{'p50 ms':>9}{'p99 ms':>9}{'peak RSS MB':>13}",
    ]
    for name, v in results["variants"].items():
        label = v.get("label", name)
        if "error" in v:
            lines.append(f"{label:<34}  failed: {v['error']}")
            continue
        lat = v.get("latency_ms") or {}
        rss = v.get("peak_rss_mb")
        rss_text = _fmt(rss) + (f" (x{v['processes']})" if v.get("processes", 1) > 1 else "")
        lines.append(
            f"{label:<34}{_fmt(v.get('events_per_s')):>11}{_fmt(v.get('cpu_s_per_100k'), 2):>12}"
            f"{_fmt(lat.get('p50'), 1):>9}"
            f"{_fmt(lat.get('p99'), 1):>9}{rss_text:>13}"
        )
    lines += _formats_lines(results.get("formats") or {})
    ct = results.get("code_table") or {}
    if ct:
        lines += [
            "",
            f"Code table: {_fmt(ct.get('codes'))} code versions; published in {_fmt(ct.get('publish_s'), 1)} s; "
            f"a follower loads it in {_fmt(ct.get('bootstrap_s'), 2)} s and holds "
            f"{_fmt(ct.get('rss_loaded_mb'))} MB ({_fmt(ct.get('rss_before_mb'))} MB before loading); "
            f"a ready worker: {_fmt(ct.get('worker_rss_ready_mb'))} MB",
        ]
    production = results.get("code_table_production") or {}
    if "error" in production:
        lines.append(f"{production['label']}: failed: {production['error']}")
    elif production:
        parts = production.get("parts") or {}
        lines.append(
            f"{production['label'][:1].upper()}{production['label'][1:]}: {_fmt(production.get('records'))} records "
            f"({', '.join(f'{name} {_fmt(count)}' for name, count in parts.items())}), "
            f"{_fmt(production.get('codes'))} code versions; published in {_fmt(production.get('publish_s'), 1)} s; "
            f"a follower loads it in {_fmt(production.get('bootstrap_s'), 2)} s "
            f"({_fmt(production.get('bootstrap_cpu_s'), 2)} s of CPU; "
            f"{_fmt(production.get('process_s'), 1)} s with the process's start) and holds "
            f"{_fmt(production.get('rss_loaded_mb'))} MB, peak {_fmt(production.get('peak_rss_mb'))} MB"
        )
    lines += _window_lines(results.get("window") or {})
    lines += ["", "Ratios (throughput):"]
    for name, value in results["ratios"].items():
        lines.append(f"  {name:<36}{_fmt(value, 2):>8}")
    lines += ["", "Goals (issues 5, 12, 13 and 14):"]
    for g in results["goals"].values():
        verdict = {True: "met", False: "missed", None: "not measured"}[g["met"]]
        value = g["value"]
        lines.append(f"  {g['what']:<50}{_fmt(value, 2):>10}  {g['target']:<8} {verdict}")
        if g.get("note"):
            lines.append(f"    ({g['note']})")
    return "\n".join(lines)


def _formats_lines(formats: dict[str, Any]) -> list[str]:
    """The engine alone per input format (``formats_alone``): a row per format, and what the formats cost over
    the same events as JSON."""
    if not formats:
        return []
    if "error" in formats:
        return ["", f"Engine alone per input format: failed: {formats['error']}"]
    rows = formats.get("rows") or {}
    lines = [
        "",
        "Engine alone per input format (Router.route, no broker: reading, deciding, serializing, answers)",
        f"  {'input format':<44}{'events/s':>10}{'CPU s/100k':>12}{'µs/event':>10}",
    ]
    for row in rows.values():
        lines.append(
            f"  {row['label']:<44}{_fmt(row.get('events_per_s')):>10}{_fmt(row.get('cpu_s_per_100k'), 2):>12}"
            f"{_fmt(row.get('us_per_event'), 1):>10}"
        )
    json_row = rows.get("json") or {}
    same = []
    for name, part, what in (("x12_837p", "claims", "837P"), ("hl7v2_orm", "orders", "ORM")):
        mine, base = (rows.get(name) or {}).get("cpu_s_per_100k"), (json_row.get(part) or {}).get("cpu_s_per_100k")
        if mine and base:
            same.append(f"the {what} {mine / base:.1f}x the CPU of its {part} as JSON ({_fmt(base, 2)} s/100k)")
    if same:
        lines.append(f"  ({'; '.join(same)})")
    check = formats.get("check") or {}
    if check.get("events"):
        lines.append(
            f"  {check['events'] - check.get('differ', 0):,} of {check['events']:,} warm-up events decided alike "
            "as JSON and in their format"
        )
    return lines


def _window_lines(window: dict[str, Any]) -> list[str]:
    """The duplicate window's figures (``window_cost``): cost per claim, restore, cold restore."""
    if not window:
        return []
    if "error" in window:
        return ["", f"Duplicate window: failed: {window['error']}"]
    cost, restored, cold = window.get("cost") or {}, window.get("checkpoint") or {}, window.get("cold") or {}
    return [
        "",
        f"Duplicate window ({window['window_days']} days): a claim costs {_fmt(cost.get('memory_us'), 1)} µs in "
        f"memory, {_fmt(cost.get('lmdb_us'), 1)} µs in the LMDB store of {_fmt(cost.get('store_entries'))} entries "
        f"(the member and line hashes alone {_fmt(cost.get('entry_us'), 1)} µs)",
        f"  {_fmt(window.get('entries'))} entries: built in {_fmt(window.get('build_s'), 1)} s, "
        f"{_fmt(window.get('disk_mb'))} MB on disk; a worker restores them from the checkpoint and "
        f"{_fmt(restored.get('records_read'))} changelog records in {_fmt(restored.get('restore_s'), 2)} s "
        f"({_fmt(restored.get('process_s'), 1)} s from its start), RSS {_fmt(restored.get('rss_mb'))} MB "
        f"({_fmt(restored.get('anon_mb'))} its own, {_fmt(restored.get('file_mb'))} mapped), peak "
        f"{_fmt(restored.get('peak_mb'))} MB",
        f"  cold, from the changelog alone: {_fmt(cold.get('records_read'))} records in "
        f"{_fmt(cold.get('restore_s'), 1)} s ({_fmt(cold.get('records_per_s'))}/s: "
        f"{_fmt(cold.get('restore_s_for_10m'))} s for 10 million), peak RSS {_fmt(cold.get('peak_mb'))} MB",
    ]


def write_json(results: dict[str, Any], *paths: Path) -> None:
    data = orjson.dumps(results, option=orjson.OPT_INDENT_2)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data + b"\n")


def chart(results: dict[str, Any], path: Path) -> None:
    """Two panels: throughput (events/s) and latency (p50 and p99, ms, log scale), one bar per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = {k: v for k, v in results["variants"].items() if "error" not in v}
    labels = [v.get("label", k) for k, v in variants.items()]
    rates = [v.get("events_per_s") or 0 for v in variants.values()]
    p50 = [(v.get("latency_ms") or {}).get("p50") or float("nan") for v in variants.values()]
    p99 = [(v.get("latency_ms") or {}).get("p99") or float("nan") for v in variants.values()]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.6 * len(labels) + 2.2))
    y = range(len(labels))
    bars = left.barh(list(y), rates, color="#3b6ea8")
    left.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], padding=3, fontsize=8)
    left.set_yticks(list(y), labels)
    left.invert_yaxis()
    left.set_xlabel("events per second (drain of a backlog)")
    left.set_title("Throughput")
    left.margins(x=0.18)
    height = 0.4
    right.barh([i - height / 2 for i in y], p50, height, label="p50", color="#7fb069")
    right.barh([i + height / 2 for i in y], p99, height, label="p99", color="#d1495b")
    right.set_yticks(list(y), [""] * len(labels))
    right.invert_yaxis()
    right.set_xscale("log")
    right.set_xlabel("ms from produce to decision visible (read_committed), at half of each rate")
    right.set_title("Latency")
    right.legend(loc="upper right", fontsize=8)
    m = results["machine"]
    fig.suptitle(
        f"processor bench {results['started_at']} · {m['cores']} cores, {m['cpu_model']} · "
        f"{results['sizes']['events']:,} events · load avg {m['load_average']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
