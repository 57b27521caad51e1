"""Which records make a code table: the default releases, the demo rows, a user's CSV files.

Every command that builds or publishes a table takes its records from here: ``processor check`` and the
benchmark build a ``CodeTable`` in memory with ``build_table``; ``processor demo``, ``processor load`` and
the benchmark publish ``table_records`` to the code-table topic, where the worker's follower reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from processor.code_table.csv_rows import read_csv
from processor.code_table.releases import default_records
from processor.code_table.table import CodeTable

# A few CPT, HCPCS and LOINC rows (codes only, no licensed descriptions) and policy rows, for the demo and tests.
DEMO_CODES = Path(__file__).parent / "demo-codes.csv"
DEFAULT_NAME = "ICD-10-CM FY2025+FY2026+FY2027"

Record = tuple[str, dict[str, Any]]


def demo_records() -> list[Record]:
    """The demo rows as code-table records."""
    return list(read_csv(DEMO_CODES))


def table_records(default: bool = True, demo: bool = False, csv_files: Iterable[Path] = ()) -> list[Record]:
    """The records of a table: the default releases (ICD-10-CM, ICD-10-PCS and the MCE lists, and CMS's place of
    service codes), then the demo rows, then each CSV file, in order."""
    records = default_records() if default else []
    if demo:
        records += demo_records()
    for path in csv_files:
        records += read_csv(path)
    return records


def build_table(csv_files: Iterable[Path] = (), default: bool = True, demo: bool = False) -> CodeTable:
    """An in-memory table of those records, named after them
    (``file:ICD-10-CM FY2025+FY2026+FY2027+demo-codes.csv``)."""
    csv_files = [*([DEMO_CODES] if demo else []), *csv_files]
    names = ([DEFAULT_NAME] if default else []) + [path.name for path in csv_files]
    return CodeTable(version="file:" + "+".join(names)).load(table_records(default, False, csv_files))
