"""Code-table cost: how long a follower takes to load the whole table from its topic, and what it holds.

Runs in a process of its own (``python -m processor.bench.code_table_cost`` with the processor's settings in
the environment) so that its memory is the table's and the interpreter's only. Prints one JSON object:
``bootstrap_s`` from starting the follower to ``loaded`` (connect, read the compacted topic to its end,
build the table), ``bootstrap_cpu_s`` the CPU time this process spent on it (what a busy machine does not
inflate), the codes loaded, and resident memory before and after.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time

import orjson

from processor.bench.machine import memory_mb
from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.kafka.code_table_topic import CodeTableFollower


async def measure(settings: Settings) -> dict[str, float | int | None]:
    gc.collect()
    before = memory_mb(os.getpid()) or {}
    follower = CodeTableFollower(settings, CodeTable())
    started, cpu_started = time.perf_counter(), time.process_time()
    await follower.start()
    try:
        await asyncio.wait_for(follower.loaded.wait(), 300)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await follower.stop()
    gc.collect()
    after = memory_mb(os.getpid()) or {}
    return {
        "bootstrap_s": round(elapsed, 3),
        "bootstrap_cpu_s": round(cpu, 3),
        "codes": len(follower.table),
        "rss_before_mb": before.get("rss"),
        "rss_loaded_mb": after.get("rss"),
        "peak_rss_mb": after.get("peak"),
    }


if __name__ == "__main__":
    result = asyncio.run(measure(Settings.from_env()))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
