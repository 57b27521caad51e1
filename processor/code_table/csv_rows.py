"""Code-table records from a CSV file: how CPT, LOINC, HCPCS and payer-internal codes are loaded.

Columns (a header row is required; order does not matter):

    system,code,description,billable,valid_from,valid_to

``billable`` is true/false (default true); ``valid_to`` may be empty (open-ended). Any other column
becomes an attribute of the record (for example ``maps_to`` for a crosswalk). Lines starting with ``#``
are comments. CPT descriptions and the LOINC table are licensed: load your own copies.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from processor.code_table.table import record_key

_COLUMNS = ("system", "code", "description", "billable", "valid_from", "valid_to")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def read_csv(source: Path | TextIO) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(key, record)`` for every row; raises ValueError naming the line of a bad row."""
    if isinstance(source, Path):
        with source.open(newline="", encoding="utf-8") as handle:
            yield from read_csv(handle)
        return
    lines = (line for line in source if not line.lstrip().startswith("#"))
    for number, row in enumerate(csv.DictReader(lines), start=2):
        yield _record(row, number)


def _record(row: dict[str, str], number: int) -> tuple[str, dict[str, Any]]:
    system, code, valid_from = (row.get(k, "").strip() for k in ("system", "code", "valid_from"))
    if not system or not code or not valid_from:
        raise ValueError(f"row {number}: system, code and valid_from are required")
    if "|" in system:
        raise ValueError(f"row {number}: a system name cannot contain '|'")
    flag = (row.get("billable") or "true").strip().lower()
    if flag not in _TRUE | _FALSE:
        raise ValueError(f"row {number}: billable must be true or false, not {flag!r}")
    record: dict[str, Any] = {
        "system": system,
        "code": code,
        "description": (row.get("description") or "").strip(),
        "billable": flag in _TRUE,
        "valid_from": valid_from,
        "valid_to": (row.get("valid_to") or "").strip() or None,
    }
    attributes = {k: v for k, v in row.items() if k and k not in _COLUMNS and v not in (None, "")}
    if attributes:
        record["attributes"] = attributes
    return record_key(system, code, valid_from), record
