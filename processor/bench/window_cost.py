"""The duplicate window's cost (issue 13): per event, and to restore a window of 10 million entries.

``measure`` runs three parts against the run's broker, each measured process started fresh:

- **restore from the checkpoint**: a store with ``entries`` entries is built (``build``, in a process of
  its own: ``build_s``), its checkpoint ``tail`` records before the end of a fresh changelog topic; then a
  real worker (``python -m processor run``, one claims partition, the run's code table) starts on it. Its
  log line gives the restore's seconds and the records it read; its memory is taken right after (``rss``,
  the high-water mark ``peak`` over start and restore, and the resident memory split into the process's own,
  ``anon``, and mapped files' pages, ``file``, the store's among them, which the kernel can drop at will).
  The peak is also taken per phase: ``peak_start`` up to the worker's consuming (the interpreter, the code
  table, the clients), then the high-water mark is reset (``/proc/PID/clear_refs``) and ``peak_restore`` is
  the one from there to the end of the restore (a restore under way before the reset counts partly in
  ``peak_start``; ``peak`` is the higher of the two either way, and the only one where the mark cannot be
  reset);
- **cost per event**: µs per claim for ``SeenClaims.check`` (the member and line hashes, lookups,
  remembering) and its share of a commit every 3,000 claims (``BATCH``, the worker's batch), in a process of
  its own (``cost``): in memory (a window that starts empty), and in that LMDB store holding ``entries``
  entries, as the worker keeps it; ``entry_us`` is making the entry alone (the hashes), which both pay;
- **cold restore**: the same worker on an empty state directory over a changelog of ``cold`` records (the
  window rebuilt from the changelog alone): its seconds, records per second and RSS, and the seconds that
  rate gives for 10 million.

The entries are generated: ``generated(n)`` has control number ``0-<n>``, claim id ``CLM<n>`` (13 characters), a
member hash and ``LINES`` lines with service and exact hashes drawn from ``n`` (the sample claims' three
lines), and submission times ``STEP`` apart so that ``entries`` of them span the 30-day window; the
changelog's records (after the checkpoint's anchor) and the claims of the cost part go on from there, so
every commit also drops as many entries from the front of the window as it adds, as a steady stream does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from processor import samples
from processor.app.window_store import Checkpoint, WindowStore, record_digest
from processor.app.windows import DAY_MS, DuplicateWindows
from processor.bench.data import publish_batched
from processor.bench.machine import memory_mb
from processor.bench.progress import Progress
from processor.bench.runner import settings_env
from processor.config import Settings, Topics
from processor.engine.duplicates import Change, Seen, SeenClaims, SeenLine, changelog_records, entry
from processor.kafka.topics import ensure_topics

ENTRIES = 10_000_000
LINES = 3  # lines an entry bills: the sample claims' three
QUICK_ENTRIES = 20_000
WINDOW_DAYS = 30
WINDOW_MS = WINDOW_DAYS * DAY_MS
BATCH = 3_000  # claims per commit in the cost part: the worker's batch (PROCESSOR_BATCH_MAX_RECORDS)
START_MS = 1_760_000_000_000  # 2025-10-09
RESTORED = re.compile(
    rb"duplicate window restored for \d+ claims partition\(s\) in ([\d.]+) s: (\d+) changelog records read"
)
# The worker's log line once it has loaded the code table and started its clients: its window restore follows.
CONSUMING = re.compile(rb"worker consuming ")
TIMEOUT_S = 600.0


def sizes(entries: int) -> dict[str, int]:
    """The sizes of a run with a window of ``entries``: the changelog's tail after the checkpoint, the cold
    restore's changelog and the cost part's claims."""
    full = entries >= 1_000_000
    return {
        "entries": entries,
        "tail": 100_000 if full else max(100, entries // 20),
        "cold": 1_000_000 if full else max(100, entries // 10),
        "cost_events": 60_000 if full else 3_000,
    }


def step_ms(entries: int) -> int:
    return max(1, WINDOW_MS // entries)


def generated(n: int, step: int) -> Seen:
    """The ``n``-th generated window entry."""
    hashes = [hashlib.blake2b(n.to_bytes(8, "big") + bytes([i]), digest_size=16).hexdigest() for i in range(7)]
    lines = tuple(SeenLine(i + 1, hashes[1 + 2 * i], hashes[2 + 2 * i]) for i in range(LINES))
    return Seen(f"0-{n}", f"CLM{n:010d}", START_MS + n * step, f"0:{n}", hashes[0], lines)


def generated_records(first: int, count: int, step: int) -> Iterable[tuple[bytes, bytes | None]]:
    for n in range(first, first + count):
        seen = generated(n, step)
        yield from changelog_records(None, seen)


def changes(entries: Iterable[Seen]) -> list[Change]:
    return [Change(seen.control_number, seen, seen.source) for seen in entries]


# --- in the measured processes -----------------------------------------------------------------------------


def build(path: Path, entries: int, changelog: str) -> dict[str, Any]:
    """A store of ``entries`` generated entries whose checkpoint names changelog record 0 (``generated(0)``) as
    its anchor and resumes at offset 1."""
    step = step_ms(entries)
    started = time.perf_counter()
    store = WindowStore.open(path, WINDOW_MS)
    chunk = 10_000  # entries a write: LMDB holds the pages a write changes in memory until it commits
    for first in range(0, entries, chunk):
        store.take(changes(generated(n, step) for n in range(first, min(entries, first + chunk))))
    ((key, value),) = changelog_records(None, generated(0, step))
    store.take((), Checkpoint(changelog, 0, 1, 0, record_digest(key, value)))
    held = len(store)
    store.close()
    seconds = time.perf_counter() - started
    disk = sum(f.stat().st_size for f in path.iterdir())
    return {"build_s": round(seconds, 1), "entries_held": held, "disk_mb": round(disk / 1e6),
            "disk_bytes_per_entry": round(disk / max(1, held)), **_memory("build_")}  # fmt: skip


def cost(path: Path, entries: int, events: int) -> dict[str, Any]:
    """µs per claim for check + remember + commit share, in memory and in the store at ``path``."""
    step = step_ms(entries)
    later = entries + sizes(entries)["tail"]  # after what the store and its changelog hold
    claims = []
    for n, (kind, event) in enumerate(samples.generate(int(events * 1.5), seed=13, bad_share=0.0)):
        if kind == "claim" and len(claims) < events:
            at = datetime.fromtimestamp((START_MS + (later + n) * step) / 1000, UTC)
            claims.append({**event, "submitted_at": at.isoformat(timespec="milliseconds")})
    _per_claim(SeenClaims(WINDOW_MS, staged=True), claims)  # warm-up: the interpreter's caches, the allocator
    started = time.perf_counter()
    for n, claim in enumerate(claims):
        entry(claim, "0:1", f"1-{n}")
    entry_us = (time.perf_counter() - started) / len(claims) * 1e6
    memory_us = _per_claim(SeenClaims(WINDOW_MS, staged=True), claims)
    store = WindowStore.open(path, WINDOW_MS)
    try:
        held = len(store)
        lmdb_us = _per_claim(SeenClaims(WINDOW_MS, store, staged=True), claims)
        memory = _memory()
    finally:
        store.close()
    return {"events": len(claims), "store_entries": held, "entry_us": round(entry_us, 2),
            "memory_us": round(memory_us, 2), "lmdb_us": round(lmdb_us, 2), **memory}  # fmt: skip


def _per_claim(window: SeenClaims, claims: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for n, claim in enumerate(claims, start=1):
        window.check(claim, f"1:{n}", f"1-{n}")
        if n % BATCH == 0:
            window.commit()
    window.commit()
    return (time.perf_counter() - started) / len(claims) * 1e6


def _memory(prefix: str = "") -> dict[str, float | None]:
    memory = memory_mb(os.getpid()) or {}
    return {f"{prefix}{name}_mb": memory.get(name) for name in ("rss", "peak", "anon", "file")}


# --- the run ------------------------------------------------------------------------------------------------


async def measure(settings: Settings, run_id: str, entries: int, work_dir: Path, progress: Progress) -> dict[str, Any]:
    """All three parts (see the module's docstring) on the run's broker and code-table topic; the topics are
    deleted and ``work_dir`` emptied at the end."""
    size = sizes(entries)
    step = step_ms(entries)
    result: dict[str, Any] = {"window_days": WINDOW_DAYS, **size}
    here = _settings(settings, f"bench-{run_id}-window.", work_dir / "state")
    cold = _settings(settings, f"bench-{run_id}-window-cold.", work_dir / "cold-state")
    try:
        await ensure_topics(here)
        changelog = DuplicateWindows(here).changelog  # the member check's, as the worker keeps it by default
        progress.phase(f"publishing the changelog's tail: {size['tail']:,} records after the checkpoint")
        await publish_batched(here, changelog, generated_records(0, 1, step))  # the anchor, offset 0
        await publish_batched(here, changelog, generated_records(entries, size["tail"], step))
        progress.phase(f"building a window store of {entries:,} entries")
        path = DuplicateWindows(here).path(0)
        result.update(await _child("build", str(path), str(entries), changelog))
        progress.phase("a worker restores it from its checkpoint")
        result["checkpoint"] = await _worker_restore(here, work_dir / "worker.log")
        progress.phase(f"cost per event: {size['cost_events']:,} claims, in memory and in the store")
        result["cost"] = await _child("cost", str(path), str(entries), str(size["cost_events"]))
        shutil.rmtree(work_dir / "state", ignore_errors=True)
        await ensure_topics(cold)
        progress.phase(f"publishing a changelog of {size['cold']:,} records")
        cold_changelog = DuplicateWindows(cold).changelog
        await publish_batched(cold, cold_changelog, generated_records(0, size["cold"], step_ms(size["cold"])))
        progress.phase("a worker with an empty state directory rebuilds the window from it")
        rebuilt = await _worker_restore(cold, work_dir / "cold-worker.log")
        per_s = rebuilt["records_read"] / rebuilt["restore_s"] if rebuilt.get("restore_s") else None
        rebuilt["records_per_s"] = round(per_s) if per_s else None
        rebuilt["restore_s_for_10m"] = round(ENTRIES / per_s, 1) if per_s else None
        result["cold"] = rebuilt
    finally:
        await _delete_topics(here, cold)
        shutil.rmtree(work_dir, ignore_errors=True)
    return result


def _settings(base: Settings, prefix: str, state_dir: Path) -> Settings:
    topics = replace(Topics().with_prefix(prefix), code_table=base.topics.code_table)
    return replace(base, topics=topics, group_id=prefix + "group", partitions=1, state_dir=str(state_dir),
                   duplicate_window_days=WINDOW_DAYS)  # fmt: skip


async def _child(*args: str) -> dict[str, Any]:
    """``python -m processor.bench.window_cost ARGS`` in a fresh process: its JSON."""
    command = [sys.executable, "-m", "processor.bench.window_cost", *args]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=TIMEOUT_S)
    if done.returncode:
        raise RuntimeError(f"window_cost {args[0]} exited with {done.returncode}: {done.stderr.decode()[-500:]}")
    return orjson.loads(done.stdout)


async def _worker_restore(settings: Settings, log: Path) -> dict[str, Any]:
    """A worker started on ``settings``: the seconds its window restore took (its log line), the records it
    read, and its memory right after, with its peak per phase (see the module's docstring); then it is
    stopped."""
    env = {**settings_env(settings), "PROCESSOR_STATE_DIR": settings.state_dir,
           "PROCESSOR_DUPLICATE_WINDOW_DAYS": str(settings.duplicate_window_days)}  # fmt: skip
    started = time.monotonic()
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "processor", "run", "--no-create-topics"], env=env,
                                  stdout=out, stderr=out)  # fmt: skip
    try:
        deadline = started + TIMEOUT_S
        start_peak: float | None = None
        while (found := RESTORED.search(written := log.read_bytes())) is None:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not restore its window: {log.read_text()[-800:]}")
            if start_peak is None and CONSUMING.search(written):
                start_peak = _peak_then_reset(worker.pid)
            await asyncio.sleep(0.05)
        process_s = time.monotonic() - started
        memory = memory_mb(worker.pid) or {}
    finally:
        worker.terminate()
        try:
            await asyncio.to_thread(worker.wait, 60)
        except subprocess.TimeoutExpired:
            worker.kill()
    restore_peak = memory.get("peak") if start_peak is not None else None
    return {
        "restore_s": float(found.group(1)),
        "records_read": int(found.group(2)),
        "process_s": round(process_s, 1),
        **{f"{name}_mb": memory.get(name) for name in ("rss", "anon", "file")},
        # Over start and restore: the higher of the two phases' peaks when the mark was reset between them.
        "peak_mb": max((p for p in (start_peak, memory.get("peak")) if p is not None), default=None),
        "peak_start_mb": start_peak,
        "peak_restore_mb": restore_peak,
    }


def _peak_then_reset(pid: int) -> float | None:
    """The high-water mark of ``pid``'s resident memory so far (MB), which is then reset to what it holds now
    (Linux); None, and the mark left as it is, where it cannot be reset."""
    peak = (memory_mb(pid) or {}).get("peak")
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return None
    return peak


async def _delete_topics(*runs: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=runs[0].bootstrap_servers, client_id="bench-admin")
    names = [
        name for s in runs for name in (*s.consumed(), *s.topics.outputs(), s.topics.seen_claims, s.topics.seen_members)
    ]
    with contextlib.suppress(Exception):
        await admin.start()
        existing = set(await admin.list_topics())
        await admin.delete_topics([name for name in names if name in existing])
    with contextlib.suppress(Exception):
        await admin.close()


if __name__ == "__main__":
    what, where, *rest = sys.argv[1:]
    if what == "build":
        out = build(Path(where), int(rest[0]), rest[1])
    elif what == "cost":
        out = cost(Path(where), int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"window_cost: build or cost, not {what}")
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
