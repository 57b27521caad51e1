"""The worker's watch over the dates its code table covers: said in the log at start, and again the day a
code system's releases stop covering today (``code_table.coverage``; the metric is ``app.metrics``')."""

from __future__ import annotations

import asyncio
import logging

from processor.code_table.coverage import describe, newly_lapsed, today
from processor.code_table.table import CodeTable

log = logging.getLogger(__name__)


async def watch_coverage(table: CodeTable, every: float = 60.0) -> None:
    """Say in the log which dates of service the loaded table covers, then, checking every ``every`` seconds,
    warn once on the first day past the last one a system's releases cover (``coverage.newly_lapsed``).
    Reads the table the follower keeps current; runs until cancelled."""
    log.info("code table %s", describe(table, today()))
    said: set[tuple[str, str]] = set()
    while True:
        for system, last_day in newly_lapsed(table, today(), said):
            log.warning("the code table's %s releases cover dates of service to %s only: codes of %s on later "
                        "dates go to review until a newer release is loaded", system, last_day, system)  # fmt: skip
        await asyncio.sleep(every)
