"""``processor check``: the engine over a file of JSON lines, with no broker.

Each input line gives one output line: the decision record (as the worker would publish it, with
``source.line``), or, for a line that is not a JSON object or not recognisably a claim or an order,
``{"line": N, "outcome": "undecodable", "error": ...}`` (the worker would dead-letter it). Lines are decided
by ``routing.decide_value``, as the worker decides records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import orjson

from processor.code_table.table import CodeTable
from processor.engine import Policy
from processor.engine.duplicates import SeenClaims
from processor.routing import Refused, decide_value


def check_lines(
    lines: Iterable[bytes],
    table: CodeTable,
    decided_at: str,
    policy: Policy | None = None,
    duplicate_window_days: int = 30,
) -> Iterator[tuple[str, bytes]]:
    """``(outcome, output line)`` for every input line (blank lines are skipped but keep their numbers);
    ``policy`` is the payer's rules file (None: the rules' defaults, as the worker uses without
    ``PROCESSOR_RULES_FILE``). Claims repeated within the file are duplicates, as the worker finds them within a
    claims partition."""
    window = SeenClaims(duplicate_window_days * 86_400_000) if duplicate_window_days > 0 else None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        result = decide_value(line, None, table, policy, decided_at, {"line": number}, None, window, f"line:{number}")
        if isinstance(result, Refused):
            yield "undecodable", orjson.dumps({"line": number, "outcome": "undecodable", "error": result.error})
        else:
            yield result.decision.outcome.value, result.value


def write_results(results: Iterable[tuple[str, bytes]], out: BinaryIO) -> Counter[str]:
    """Write the output lines to a binary stream; returns how many of each outcome."""
    counts: Counter[str] = Counter()
    for outcome, line in results:
        counts[outcome] += 1
        out.write(line + b"\n")
    out.flush()
    return counts
