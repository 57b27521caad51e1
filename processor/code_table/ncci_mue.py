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

Records. A PTP table's edits go on the topic grouped by column-1 code: one ``@ncci-set`` record holds every
version of every edit of one column-1 code of one table (``SET_SIZE`` at most; a code with more takes
parts 2, 3...), each as ``[column2, valid_from, valid_to, modifier_indicator, rationale]``. A million edits
make about 14,000 records: a worker reads and decodes them at start in a second or two, where a record per
edit took most of the ten seconds its table may take. A code's MUE is one ``@mue`` record.

Loading a release publishes only what differs from what the topic holds (``merge_ptp``, ``merge_mue``): the
release's rows; and, for CMS rows an earlier release published that this one no longer has, ``valid_to``
the day before the release (dropped when they start inside it); for PTP edits, the ``@ncci-set`` records
whose edits changed, and a tombstone for a part no longer needed. Each release replaces its whole table, so
all four PTP files of a table go in one load. CMS-sourced records carry ``release`` ``CMS NCCI PTP <table>``
or ``CMS MUE <table>`` (the same every quarter, so that an unchanged edit is not published again); a
payer's own ncci and mue rows (the CSV form, no such ``release``) are never ended by a CMS load. An earlier
version of this loader published one ``@ncci`` record per edit: a load reads those as the table's history,
and replaces them by ``@ncci-set`` records (tombstones for the old ones). Each load also publishes an
``@release`` record for ``NCCI-PTP-<TABLE>`` or ``MUE-<TABLE>`` with the dates of service it covers.
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
from processor.code_table.table import (
    MUE,
    MUE_TABLES,
    NCCI,
    NCCI_SET,
    PTP_TABLES,
    mue_subject,
    policy_record,
)

Record = tuple[str, dict[str, Any] | None]
SET_SIZE = 2_000  # the most edits an @ncci-set record holds: about 80 KB, well under Kafka's 1 MB default

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


class PtpEdit(NamedTuple):
    """One version of one edit as the topic holds it: in effect from ``valid_from`` to ``valid_to``."""

    column1: str
    column2: str
    valid_from: str
    valid_to: str | None
    modifier_indicator: str
    rationale: str
    prior_1996: bool = False

    @classmethod
    def of(cls, row: PtpRow) -> PtpEdit:
        """The edit of a file's row: CMS's deletion date is the first day it is not in effect."""
        valid_to = None if row.deletion is None else _day_before(row.deletion)
        return cls(row.column1, row.column2, row.effective, valid_to, row.modifier_indicator, row.rationale,
                   row.prior_1996)  # fmt: skip


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


def ptp_set_subject(table: str, column1: str) -> str:
    """The subject of an ``@ncci-set`` key: ``93000`` in the practitioner table, ``HOSPITAL:93000``."""
    return mue_subject(table, column1)


def ptp_set_records(table: str, edits: Iterable[PtpEdit]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``@ncci-set`` records of ``table`` (``practitioner`` or ``hospital``) that hold ``edits``: per
    column-1 code, its edits by column 2 and date, ``SET_SIZE`` a record."""
    by_code: dict[str, list[PtpEdit]] = {}
    for edit in edits:
        by_code.setdefault(edit.column1, []).append(edit)
    for column1 in sorted(by_code):
        yield from ptp_set_records_of(table, column1, by_code[column1])


def ptp_set_records_of(table: str, column1: str, edits: list[PtpEdit]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``@ncci-set`` records of one column-1 code of ``table`` (see ``ptp_set_records``)."""
    edits = sorted(edits, key=lambda e: (e.column2, e.valid_from))
    subject = ptp_set_subject(table, column1)
    for part, first in enumerate(range(0, len(edits), SET_SIZE), start=1):
        chunk = edits[first : first + SET_SIZE]
        rationales: dict[str, int] = {}
        rows = []
        for e in chunk:
            row = [e.column2, e.valid_from, e.valid_to, e.modifier_indicator,
                   rationales.setdefault(e.rationale, len(rationales))]  # fmt: skip
            if e.prior_1996:
                row.append(True)
            rows.append(row)
        ends = [e.valid_to for e in chunk]
        attributes = {"table": table, "column1": column1, "part": part, "rationales": list(rationales), "edits": rows}
        record = {
            "system": NCCI_SET,
            "code": subject,
            "valid_from": min(e.valid_from for e in chunk),
            "valid_to": None if None in ends else max(ends),  # type: ignore[type-var]
            "release": source_name(NCCI, table),
            "attributes": attributes,
        }
        yield f"{NCCI_SET}|{subject}|{part}", record


def held_ptp_edits(held: Mapping[str, dict[str, Any] | None], table: str) -> Iterator[tuple[str, PtpEdit]]:
    """The CMS edits of ``table`` the topic holds, with the key of the record each is in: from its
    ``@ncci-set`` records, and from the ``@ncci`` records an earlier version of this loader published."""
    source = source_name(NCCI, table)
    for key, record in held.items():
        if not record or record.get("release") != source:
            continue
        a = record.get("attributes") or {}
        if record.get("system") == NCCI_SET:
            rationales = a.get("rationales") or [""]
            for row in a.get("edits") or ():
                yield key, PtpEdit(a["column1"], row[0], row[1], row[2], row[3], rationales[row[4]],
                                   len(row) > 5 and bool(row[5]))  # fmt: skip
        elif record.get("system") == NCCI:
            indicator, rationale, prior = str(a["modifier_indicator"]), a.get("rationale") or "", a.get("prior_1996")
            yield key, PtpEdit(a["column1"], a["column2"], record["valid_from"], record.get("valid_to"), indicator,
                               rationale, bool(prior))  # fmt: skip


def ptp_rows(table: str, rows: Iterable[PtpRow]) -> dict[tuple[str, str, str], PtpEdit]:
    """A table's edits by (column 1, column 2, effective date). CMS lists some pairs twice with one effective
    date (an edit deleted retroactively, and the same edit kept); the row in effect longest is kept."""
    kept: dict[tuple[str, str, str], PtpRow] = {}
    for row in rows:
        key = (row.column1, row.column2, row.effective)
        held = kept.get(key)
        if held is None or _reach(row) > _reach(held):
            kept[key] = row
    return {key: PtpEdit.of(row) for key, row in kept.items()}


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
    its ``@release`` record; the table's ``@ncci-set`` records, of the release's edits and of the held ones
    it no longer lists (ended the day before it, dropped when they start inside it; those ended before it
    are kept as they are); tombstones for held records of the table no longer needed. Records equal to
    what is held are left out, so loading the same release again yields nothing."""
    wanted = ptp_rows(table, rows)
    first_day, day_before = release.first_day, _day_before(release.first_day)
    edits = dict(wanted)
    held_keys = set()
    for key, edit in held_ptp_edits(held, table):
        held_keys.add(key)
        place = (edit.column1, edit.column2, edit.valid_from)
        if place in wanted:
            continue
        if edit.valid_to is not None and edit.valid_to < first_day:
            edits[place] = edit  # ended before this release: history it does not speak of
        elif edit.valid_from < first_day:
            edits[place] = edit._replace(valid_to=day_before)
    records = dict(ptp_set_records(table, edits.values()))
    gone = ((key, None) for key in sorted(held_keys - records.keys()))
    return changed(chain([release_record(release)], gone, records.items()), held)


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


@cache
def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
