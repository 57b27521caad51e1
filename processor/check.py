"""``processor check``: the engine over a file of JSON lines, with no broker.

Each input line gives one output line: the decision record (as the worker would publish it, with
``source.line``), or, for a line that is not a JSON object or not recognisably a claim or an order,
``{"line": N, "outcome": "undecodable", "error": ...}`` (the worker would dead-letter it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from processor.code_table.csv_rows import read_csv
from processor.code_table.releases import default_records
from processor.code_table.table import CodeTable
from processor.contracts import Undecodable, decode, infer_kind
from processor.engine import Policy, decide
from processor.engine.duplicates import SeenClaims

DEMO_CODES = Path(__file__).parent / "code_table" / "demo-codes.csv"


def build_table(csv_files: Iterable[Path] = (), default: bool = True) -> CodeTable:
    """The code table for checking files: the default ICD-10-CM releases plus any CSV files given."""
    csv_files = list(csv_files)
    names = (["ICD-10-CM FY2025+FY2026"] if default else []) + [p.name for p in csv_files]
    table = CodeTable(version="file:" + "+".join(names))
    if default:
        table.load(default_records())
    for path in csv_files:
        table.load(read_csv(path))
    return table


def check_lines(
    lines: Iterable[bytes],
    table: CodeTable,
    decided_at: str,
    policy: Policy | None = None,
    duplicate_window_days: int = 30,
) -> Iterator[dict[str, Any]]:
    """One output record per input line (blank lines are skipped but keep their numbers); ``policy`` is the
    payer's rules file (None: the rules' defaults, as the worker uses without ``PROCESSOR_RULES_FILE``).
    Claims repeated within the file are duplicates, as the worker finds them within a claims partition."""
    seen = SeenClaims(duplicate_window_days * 86_400_000) if duplicate_window_days > 0 else None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = decode(line)
            kind = infer_kind(event)
            if kind is None:
                raise Undecodable("neither a claim (claim_id) nor a lab order (order_id)")
        except Undecodable as err:
            yield {"line": number, "outcome": "undecodable", "error": str(err)}
            continue
        duplicate = seen.check(event, f"line:{number}")[0] if seen is not None and kind == "claim" else None
        yield decide(event, kind, table, policy, duplicate).as_record(event, decided_at, {"line": number})


def write_results(results: Iterable[dict[str, Any]], out: Any) -> Counter[str]:
    """Write records as JSON lines to a binary stream; returns how many of each outcome."""
    counts: Counter[str] = Counter()
    for record in results:
        counts[record["outcome"]] += 1
        out.write(orjson.dumps(record) + b"\n")
    out.flush()
    return counts
