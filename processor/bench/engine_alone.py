"""The engine alone, with no broker: decode, decide and serialize the decision, one event after another.

This is the most any worker process could reach on one core with this engine; the processor's distance
from it is what Kafka I/O costs. The same events as the broker variants (a file of ``KIND VALUE`` lines),
the same table (default ICD-10-CM releases plus the demo rows). The first ``--warmup`` events are not timed.
Latency here is the time to handle one event.

Run as ``python -m processor.bench.engine_alone FILE --warmup N``; prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import orjson

from processor.bench.machine import memory_mb
from processor.code_table.sources import build_table
from processor.routing import Decided, decide_value

SOURCE = {"topic": "bench", "partition": 0, "offset": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args()
    with open(args.file, "rb") as lines:
        events = [(kind.decode(), value) for kind, _, value in (line.rstrip(b"\n").partition(b" ") for line in lines)]
    table = build_table(demo=True)
    decided_at = "2026-01-01T00:00:00.000Z"

    def handle(kind: str, raw: bytes) -> bytes:
        result = decide_value(raw, kind, table, None, decided_at, SOURCE)
        assert isinstance(result, Decided), result
        return result.value

    for kind, raw in events[: args.warmup]:
        handle(kind, raw)
    timed = events[args.warmup :]
    durations = []
    clock = time.perf_counter
    started, cpu_started = clock(), time.process_time()
    for kind, raw in timed:
        t = clock()
        handle(kind, raw)
        durations.append(clock() - t)
    elapsed, cpu = clock() - started, time.process_time() - cpu_started
    durations.sort()
    n = len(durations)
    memory = memory_mb(os.getpid()) or {}
    result = {
        "events": n,
        "seconds": round(elapsed, 3),
        "events_per_s": round(n / elapsed, 1) if elapsed else 0.0,
        "cpu_s_per_100k": round(cpu / n * 100_000, 3) if n else None,
        "latency_ms": {
            "p50": round(durations[n // 2] * 1000, 4) if n else None,
            "p99": round(durations[min(n - 1, int(n * 0.99))] * 1000, 4) if n else None,
            "max": round(durations[-1] * 1000, 4) if n else None,
            "count": n,
            "what": "time to decode, decide and serialize one event",
        },
        "rss_mb": memory.get("rss"),
        "peak_rss_mb": memory.get("peak"),
    }
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
