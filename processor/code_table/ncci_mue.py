"""CMS's NCCI procedure-to-procedure (PTP) edits and Medically Unlikely Edits (MUEs), from the files CMS
publishes each quarter, as ``@ncci`` and ``@mue`` code-table records.

- PTP edits, one table for practitioners (``ccipra-v<version>r<revision>-f<part>.txt``) and one for hospital
  outpatient claims (``ccioph-...``), each split into four files by column-1 code range. Tab-delimited text,
  Latin-1: a copyright and disclaimer banner, a header that starts ``Column 1<TAB>Column 2`` (CMS wraps its
  cells over more lines: ``*=in existence prior to 1996``, ``Effective Date``, ``Deletion Date *=no data``,
  ``Modifier 0=not allowed 1=allowed 9=not applicable``, ``PTP Edit Rationale``), then one edit a line:
  column 1 code, column 2 code, ``*`` when the edit existed before 1996 (its effective date is then
  19960101), effective date YYYYMMDD, deletion date YYYYMMDD or ``*``, modifier indicator (0 the pair is
  never paid together, 1 an NCCI-associated modifier may allow it, 9 not applicable: CMS's mark on an edit
  deleted retroactively, with its deletion date equal to its effective date), rationale.
- MUE tables for practitioner, outpatient hospital (facility) and DME supplier services
  (``MCR_MUE_PractitionerServices_Eff_<date>.csv``...): CSV, Latin-1, a copyright preamble (one quoted cell
  over many lines), a header ``HCPCS/CPT Code``, ``<Setting> Services MUE Values``, ``MUE Adjudication
  Indicator``, ``MUE Rationale``, then one code a row; the indicator cell is the MAI with its text
  (``1 Line Edit``, ``2 Date of Service Edit: Policy``, ``3 Date of Service Edit: Clinical``).

Dates. A PTP edit is in effect from its effective date; CMS's deletion date is the first date of service it
is no longer in effect on (an edit deleted on the day it took effect never applied: CMS marks those 9), so a
record's ``valid_to`` is the day before the deletion date. MUE rows carry no dates: a table is in effect from
the release's first day, and a code's MUE goes on, release after release, until one changes or drops it.

Loading a release publishes only what differs from what the topic holds (``merge_ptp``, ``merge_mue``): the
records of the release's rows; and, for CMS rows an earlier release published that this one no longer has,
``valid_to`` the day before the release (a tombstone when they start inside it). Each release replaces its
whole table, so all four PTP files of a table go in one load. CMS-sourced records carry ``release``
``CMS NCCI PTP <table>`` or ``CMS MUE <table>`` (the same every quarter, so that an unchanged edit is not
published again); a payer's own ncci and mue rows (the CSV form, no such ``release``) are never ended by a
CMS load. Each load also publishes an ``@release`` record for ``NCCI-PTP-<TABLE>`` or ``MUE-<TABLE>`` with
the dates of service it covers.
"""

from __future__ import annotations

import csv
import math
import re
import sys
from calendar import monthrange
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, partial
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from processor.code_table.releases import Release, changed, release_record
from processor.code_table.table import MUE, MUE_TABLES, NCCI, PTP_TABLES, mue_subject, ncci_subject, policy_record

Record = tuple[str, dict[str, Any] | None]

KINDS = ("ncci-ptp", "mue")  # what ``processor load`` calls the two loaders
_CODE = re.compile(r"[0-9A-Z]{5}")  # a CPT or HCPCS code: every code of both files
_PART = re.compile(r"cci(pra|oph)-v(\d+)r(\d+)-f(\d+)", re.IGNORECASE)  # ccipra-v321r0-f1.txt
_PART_TABLES = {"pra": "practitioner", "oph": "hospital"}
_SETTINGS = (("practitioner", "practitioner"), ("outpatient", "outpatient"), ("facility", "outpatient"),
             ("dme", "dme"))  # fmt: skip


class PtpRow(NamedTuple):
    """One edit of a PTP file: dates as ISO dates; ``deletion`` is CMS's (the first day not in effect)."""

    column1: str
    column2: str
    prior_1996: bool
    effective: str
    deletion: str | None
    modifier_indicator: str
    rationale: str


class MueRow(NamedTuple):
    """One code of an MUE table."""

    code: str
    max_units: int | float
    mai: int
    rationale: str


@dataclass(frozen=True)
class PtpFile:
    """What a PTP file held: its edits, and how many lines of banner and header came before them."""

    name: str
    rows: list[PtpRow]
    banner_lines: int
    header_lines: int


@dataclass(frozen=True)
class MueFile:
    """What an MUE file held: its codes, the preamble rows before the header, the setting its header names
    (``practitioner``, ``outpatient``, ``dme``; None when it names none)."""

    name: str
    rows: list[MueRow]
    banner_rows: int
    setting: str | None


def read_ptp_file(source: Path | str | Iterable[str], name: str | None = None) -> PtpFile:
    """Every edit of a CMS PTP file; raises ValueError naming the file and line of anything that is not one.

    Lines before the ``Column 1<TAB>Column 2`` header are banner; after it, lines that do not start with a
    code, up to the first edit, are the header's continuation; blank lines are skipped."""
    if isinstance(source, Path | str):
        path = Path(source)
        with path.open(encoding="latin-1", newline="") as handle:
            return read_ptp_file(handle, name or path.name)
    name = name or "PTP file"
    rows: list[PtpRow] = []
    banner = header = 0
    for number, raw in enumerate(source, start=1):
        cells = [cell.strip() for cell in raw.rstrip("\r\n").split("\t")]
        if not header:
            if len(cells) > 1 and _words(cells[0]) == "column 1" and _words(cells[1]) == "column 2":
                header = 1
            else:
                banner += 1
            continue
        if not any(cells):
            continue
        if not rows and not _CODE.fullmatch(cells[0].upper()):
            header += 1  # the header's wrapped cells: "*=no data", "0=not allowed"...
            continue
        rows.append(_ptp_row(cells, f"{name} line {number}"))
    if not header:
        raise ValueError(f"{name}: no 'Column 1<TAB>Column 2' header line: not an NCCI PTP edit file")
    return PtpFile(name, rows, banner, header)


def _ptp_row(cells: list[str], where: str) -> PtpRow:
    if len(cells) < 6:
        raise ValueError(f"{where}: {len(cells)} tab-separated fields, an edit has 7")
    column1, column2, prior, effective, deletion, indicator = cells[:6]
    for label, code in (("column 1", column1), ("column 2", column2)):
        if not _CODE.fullmatch(code.upper()):
            raise ValueError(f"{where}: {label} {code!r} is not a HCPCS/CPT code")
    if prior not in ("", "*"):
        raise ValueError(f"{where}: the prior-1996 field is '*' or empty, not {prior!r}")
    if indicator not in ("0", "1", "9"):
        raise ValueError(f"{where}: modifier indicator {indicator!r} is not 0, 1 or 9")
    start = _day(effective, where, "effective date")
    end = None if deletion in ("*", "") else _day(deletion, where, "deletion date")
    rationale = sys.intern(" ".join(cell for cell in cells[6:] if cell))
    # A table's million rows share a few thousand codes, dates and rationales: one string object each.
    column1, column2 = sys.intern(column1.upper()), sys.intern(column2.upper())
    return PtpRow(column1, column2, prior == "*", start, end, sys.intern(indicator), rationale)


def read_mue_file(source: Path | str | Iterable[str], name: str | None = None) -> MueFile:
    """Every code of a CMS MUE table (CSV); raises ValueError naming the file and line of a row that is not one.

    Rows before the header (``HCPCS/CPT Code``, ``... MUE Values``...) are the preamble; columns are found
    by their names; blank rows are skipped."""
    if isinstance(source, Path | str):
        path = Path(source)
        with path.open(encoding="latin-1", newline="") as handle:
            return read_mue_file(handle, name or path.name)
    name = name or "MUE file"
    reader = csv.reader(source)
    banner = 0
    columns: tuple[int, int, int, int] | None = None
    setting = None
    rows: list[MueRow] = []
    seen: dict[str, int] = {}
    for cells in reader:
        cells = [cell.strip() for cell in cells]
        where = f"{name} line {reader.line_num}"
        if columns is None:
            heads = [_words(cell).replace(" /", "/").replace("/ ", "/") for cell in cells]
            if heads and heads[0].startswith("hcpcs") and any("mue value" in h for h in heads):
                columns, setting = _mue_columns(heads, where)
            else:
                banner += 1
            continue
        if not any(cells):
            continue
        row = _mue_row(cells, columns, where)
        if row.code in seen:
            raise ValueError(f"{where}: {row.code} again (first on line {seen[row.code]})")
        seen[row.code] = reader.line_num
        rows.append(row)
    if columns is None:
        raise ValueError(f"{name}: no 'HCPCS/CPT Code, ... MUE Values' header row: not an MUE table")
    return MueFile(name, rows, banner, setting)


def _mue_columns(heads: list[str], where: str) -> tuple[tuple[int, int, int, int], str | None]:
    def column(label: str) -> int:
        found = [i for i, head in enumerate(heads) if label in head]
        if not found:
            raise ValueError(f"{where}: the header has no {label!r} column")
        return found[0]

    units = column("mue value")
    setting = next((name for word, name in _SETTINGS if word in heads[units]), None)
    return (0, units, column("adjudication indicator"), column("rationale")), setting


def _mue_row(cells: list[str], columns: tuple[int, int, int, int], where: str) -> MueRow:
    if len(cells) <= max(columns):
        raise ValueError(f"{where}: {len(cells)} fields, an MUE row has {max(columns) + 1}")
    code, units, indicator, rationale = (cells[i] for i in columns)
    if not _CODE.fullmatch(code.upper()):
        raise ValueError(f"{where}: {code!r} is not a HCPCS/CPT code")
    try:
        value = float(units)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{where}: MUE value {units!r} is not a number of units")
    mai = re.match(r"([123])(?!\d)", indicator)
    if mai is None:
        raise ValueError(f"{where}: MUE adjudication indicator {indicator!r} does not start with 1, 2 or 3")
    return MueRow(code.upper(), int(value) if value.is_integer() else value, int(mai.group(1)), rationale)


def source_name(kind: str, table: str) -> str:
    """The ``release`` of every record loaded from one CMS table: ``CMS NCCI PTP hospital``, ``CMS MUE dme``."""
    return f"CMS NCCI PTP {table}" if kind == NCCI else f"CMS MUE {table}"


def release_system(kind: str, table: str) -> str:
    """The system an ``@release`` record of a CMS table names: ``NCCI-PTP-PRACTITIONER``, ``MUE-DME``."""
    return f"NCCI-PTP-{table.upper()}" if kind == NCCI else f"MUE-{table.upper()}"


def ptp_record(table: str, row: PtpRow) -> tuple[str, dict[str, Any]]:
    """The ``@ncci`` record of one edit of ``table`` (``practitioner`` or ``hospital``)."""
    attributes: dict[str, Any] = {
        "column1": row.column1,
        "column2": row.column2,
        "modifier_indicator": row.modifier_indicator,
        "table": table,
        "rationale": row.rationale,
    }
    if row.prior_1996:
        attributes["prior_1996"] = True
    valid_to = None if row.deletion is None else _day_before(row.deletion)
    subject = ncci_subject(table, row.column1, row.column2)
    key, record = policy_record(NCCI, subject, row.effective, valid_to, attributes)
    record["release"] = source_name(NCCI, table)
    return key, record


def ptp_rows(table: str, rows: Iterable[PtpRow]) -> dict[str, PtpRow]:
    """A table's edits by the key of their record. CMS lists some pairs twice with one effective date (an edit
    deleted retroactively, and the same edit kept); the row in effect longest is kept."""
    kept: dict[str, PtpRow] = {}
    for row in rows:
        key = f"{NCCI}|{ncci_subject(table, row.column1, row.column2)}|{row.effective}"
        held = kept.get(key)
        if held is None or _reach(row) > _reach(held):
            kept[key] = row
    return kept


def _reach(row: PtpRow) -> tuple[bool, str, bool]:
    return row.deletion is None, row.deletion or "", row.modifier_indicator != "9"


def mue_record(table: str, row: MueRow, valid_from: str) -> tuple[str, dict[str, Any]]:
    """The ``@mue`` record of one code of ``table`` (``practitioner``, ``outpatient``, ``dme``) from ``valid_from``."""
    attributes = {"code": row.code, "max_units": row.max_units, "mai": row.mai, "table": table,
                  "rationale": row.rationale}  # fmt: skip
    key, record = policy_record(MUE, mue_subject(table, row.code), valid_from, None, attributes)
    record["release"] = source_name(MUE, table)
    return key, record


def merge_ptp(
    held: Mapping[str, dict[str, Any] | None], release: Release, table: str, rows: Iterable[PtpRow]
) -> Iterator[Record]:
    """The records that load a PTP release of ``table`` on top of ``held`` (what the topic holds, by key):
    its ``@release`` record and its edits, and the end of the CMS edits of the table it no longer lists;
    records equal to what is held are left out, so loading the same release again yields nothing. A record
    is made only when it is compared: a table's million rows are held as rows, not as records."""
    wanted = ptp_rows(table, rows)
    edits = (ptp_record(table, row) for row in wanted.values())
    return changed(chain([release_record(release)], _ended(held, NCCI, table, release.first_day, wanted), edits), held)


def merge_mue(
    held: Mapping[str, dict[str, Any] | None], release: Release, table: str, rows: Iterable[MueRow]
) -> Iterator[Record]:
    """The records that load an MUE release of ``table`` on top of ``held``: its ``@release`` record; a new
    version from the release's first day for a code that is new or changed; the end (the day before) of the
    open CMS version of a code the release changes or drops. Unchanged codes go on in their version, so
    loading the same release again yields nothing."""
    source = source_name(MUE, table)
    current: dict[str, str] = {}  # code -> key of its open CMS version
    for key, record in held.items():
        if record and record.get("release") == source and record.get("system") == MUE and not record.get("valid_to"):
            current[(record.get("attributes") or {}).get("code", "")] = key
    out: dict[str, dict[str, Any] | None] = dict([release_record(release)])
    keep: set[str] = set()
    new: dict[str, dict[str, Any]] = {}
    for row in rows:
        key, record = mue_record(table, row, release.first_day)
        open_key = current.get(row.code)
        held_record = held.get(open_key) if open_key else None
        if held_record is not None and held_record.get("attributes") == record["attributes"]:
            keep.add(open_key)  # type: ignore[arg-type]
        else:
            new[key] = record
    out.update(_ended(held, MUE, table, release.first_day, keep | set(new)))
    out.update(new)
    return changed(out.items(), held)


def _ended(
    held: Mapping[str, dict[str, Any] | None], kind: str, table: str, first_day: str, kept: Container[str]
) -> Iterator[Record]:
    """The held CMS records of a table, in effect on or after ``first_day`` and not ``kept``, ended the day
    before it (deleted when they start on or after it)."""
    source = source_name(kind, table)
    day_before = _day_before(first_day)
    for key, record in held.items():
        if not record or key in kept or record.get("system") != kind or record.get("release") != source:
            continue
        end = record.get("valid_to")
        if end is not None and end < first_day:
            continue  # ended before this release: history it does not speak of
        yield key, (None if record["valid_from"] >= first_day else {**record, "valid_to": day_before})


@dataclass(frozen=True)
class Load:
    """A release read and checked, ready to merge with what the topic holds: ``records(held)``."""

    records: Callable[[Mapping[str, dict[str, Any] | None]], Iterator[Record]]
    summary: str


def prepare_load(
    what: str, paths: list[Path], table: str | None, first_day: str | None, last_day: str | None, name: str | None
) -> Load:
    """Read and check the files of a ``processor load ncci-ptp`` or ``processor load mue`` before anything is
    published; raises ValueError saying what is wrong. ``last_day`` defaults to the end of the quarter."""
    kind, tables = (NCCI, PTP_TABLES) if what == "ncci-ptp" else (MUE, MUE_TABLES)
    if table not in tables:
        raise ValueError(f"give --table: {' or '.join(tables)}")
    if not first_day:
        raise ValueError("give --first-day (the first date of service the release covers)")
    try:
        last_day = last_day or quarter_last_day(first_day)
        days = date.fromisoformat(first_day), date.fromisoformat(last_day)
    except ValueError:
        raise ValueError("--first-day and --last-day are dates: YYYY-MM-DD") from None
    if days[1] < days[0]:
        raise ValueError(f"--last-day {last_day} is before --first-day {first_day}")
    system = release_system(kind, table)
    release = Release(f"{system} {name or first_day}", first_day, last_day, system)
    if kind == NCCI:
        check_ptp_parts(paths, table)
        files = [read_ptp_file(path) for path in paths]
        rows = [row for file in files for row in file.rows]
        summary = "; ".join(f"{f.name}: {len(f.rows):,} edits after {f.banner_lines} banner and {f.header_lines} "
                            "header lines" for f in files)  # fmt: skip
        return Load(partial(merge_ptp, release=release, table=table, rows=rows), summary)
    if len(paths) != 1:
        raise ValueError("give one MUE table a load")
    mue = read_mue_file(paths[0])
    if mue.setting is not None and mue.setting != table:
        raise ValueError(f"{mue.name} is the {mue.setting} table (its header says so), not {table}")
    summary = f"{mue.name}: {len(mue.rows):,} codes after {mue.banner_rows} preamble rows"
    return Load(partial(merge_mue, release=release, table=table, rows=mue.rows), summary)


def check_ptp_parts(paths: list[Path], table: str) -> None:
    """Refuse a partial release when the files carry CMS's names: all parts (f1 to f4) of one version of the
    table's files, since edits a release does not list are ended."""
    parts = [match for match in (_PART.search(path.name) for path in paths) if match]
    if not parts:
        return
    for match in parts:
        if _PART_TABLES[match.group(1).lower()] != table:
            raise ValueError(f"{match.group(0)} is a {_PART_TABLES[match.group(1).lower()]} file, not {table}")
    versions = {(m.group(2), m.group(3)) for m in parts}
    if len(versions) > 1:
        raise ValueError("the files are of different versions: " + ", ".join(sorted(m.group(0) for m in parts)))
    numbers = sorted(int(m.group(4)) for m in parts)
    if len(parts) != len(paths) or numbers != list(range(1, max(4, numbers[-1]) + 1)):
        raise ValueError("give all four files of the release (f1 to f4) in one load: edits a release does not "
                         "list are ended")  # fmt: skip


def quarter_last_day(first_day: str) -> str:
    """The day before the same day three months on: 2026-01-01 -> 2026-03-31."""
    first = date.fromisoformat(first_day)
    year, month = divmod(first.year * 12 + first.month + 2, 12)
    return (date(year, month + 1, min(first.day, monthrange(year, month + 1)[1])) - timedelta(days=1)).isoformat()


def _words(text: str) -> str:
    return " ".join(text.lower().split())


def _day(text: str, where: str, label: str) -> str:
    try:
        return _iso_day(text)
    except ValueError:
        raise ValueError(f"{where}: {label} {text!r} is not a YYYYMMDD date") from None


@cache
def _iso_day(text: str) -> str:
    """YYYYMMDD as an ISO date, one string object per date (a release has a few hundred)."""
    if len(text) != 8 or not text.isdigit():
        raise ValueError(text)
    return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
