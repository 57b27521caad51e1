"""Whether a code table covers today's dates of service, said for people: what ``processor check``, the demo
and the worker's log print. The metric is ``processor_code_table_covered_until_seconds`` (``app.metrics``).

A date of service that no loaded release of a system covers is never judged: its codes go to review
(``diagnosis.date_not_covered`` and the like). Code sets change on fixed days (ICD-10 each October 1,
sometimes April 1; HCPCS each quarter), so a table that covers today still runs out on a known day, and
the day to load the next release is before it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from processor.code_table.table import CodeTable


def today() -> str:
    """Today's date in UTC, ISO: the day the coverage is measured against."""
    return datetime.now(UTC).date().isoformat()


def days_left(last_day: str, day: str) -> int:
    """Days from ``day`` to the last covered day ``last_day`` (0: ``day`` is the last one; negative: past it)."""
    return (date.fromisoformat(last_day) - date.fromisoformat(day)).days


def lapsed(table: CodeTable, day: str) -> list[str]:
    """The systems whose loaded releases all end before ``day``."""
    return [system for system, last in table.covered_until().items() if last < day]


def newly_lapsed(table: CodeTable, day: str, said: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(system, last day)`` of each system that ``lapsed`` on ``day`` and is not in ``said`` yet, which it
    joins: a system is told of once for each last day (again when a later load moves it and that passes)."""
    covered = table.covered_until()
    new = [(system, covered[system]) for system in lapsed(table, day) if (system, covered[system]) not in said]
    said.update(new)
    return new


def describe(table: CodeTable, day: str) -> str:
    """One line: the last date of service each system's releases cover, and how far that is from ``day``:
    ``covers dates of service to 2027-03-31 (ICD-10-CM, ICD-10-PCS, MCE: 114 days after 2026-12-07)``."""
    by_last: dict[str, list[str]] = {}
    for system, last in table.covered_until().items():
        by_last.setdefault(last, []).append(system)
    if not by_last:
        return "declares no release: no date of service is known to be covered"
    parts = []
    for last, systems in sorted(by_last.items()):
        left = days_left(last, day)
        when = f"{left} days after {day}" if left >= 0 else f"ENDED {-left} days before {day}: load a newer release"
        parts.append(f"to {last} ({', '.join(systems)}: {when})")
    return "covers dates of service " + "; ".join(parts)
