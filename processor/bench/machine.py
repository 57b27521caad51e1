"""What the numbers were measured on, and how much memory and CPU time a process takes (from ``/proc``, Linux
only)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def describe() -> dict[str, Any]:
    """Cores, CPU model, memory, Python and the load average: printed and written with every report."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": memory_gib,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine shows up here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def memory_mb(pid: int) -> dict[str, float] | None:
    """Resident memory of a running process in MB: ``rss`` now and ``peak`` (VmHWM, the high-water mark), and
    ``rss`` split into ``anon`` (the process's own memory) and ``file`` (mapped files' pages, e.g. an LMDB
    store's, which the kernel may drop and read again)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[name] = int(rest.split()[0]) / 1024  # kB
    if "VmRSS" not in values:
        return None
    memory = {"rss": round(values["VmRSS"], 1), "peak": round(values.get("VmHWM", values["VmRSS"]), 1)}
    memory.update({key: round(values[name], 1) for key, name in (("anon", "RssAnon"), ("file", "RssFile"))
                   if name in values})  # fmt: skip
    return memory


def cpu_seconds(pid: int) -> float | None:
    """CPU time a process has used so far, user and system (``/proc/PID/stat`` fields 14 and 15), in seconds.

    What the bench divides by the events a process decided: unlike events/s, it does not fall when other
    work on the machine takes the cores, so runs on a busy machine still compare."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
