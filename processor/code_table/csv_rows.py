"""Code-table records from a CSV file: how CPT, LOINC, HCPCS and payer-internal codes are loaded.

Columns (a header row is required; order does not matter):

    system,code,description,billable,valid_from,valid_to

``billable`` is true/false (default true); ``valid_to`` may be empty (open-ended). Any other column
becomes an attribute of the record: ``maps_to`` and ``maps_to_system`` (a crosswalk), ``age_min``,
``age_max``, ``age_edit``, ``sex`` (a payer's age and sex edit table). Lines starting with ``#`` are
comments. CPT descriptions and the LOINC table are licensed: load your own copies.

Policy tables use the same file form with their own header (recognised by it):

    policy,system,code,diagnoses,valid_from,valid_to            coverage: a diagnosis (range) that supports
                                                                 a procedure or test, e.g. CPT,83036,E08-E13
    policy,column1,column2,modifier_indicator,valid_from,valid_to   NCCI pairs (0, 1 or 9)
    policy,code,max_units,valid_from,valid_to                    MUE: the most units of a code
    policy,system,release,valid_from,valid_to                    the dates a loaded release covers

with ``policy`` one of ``supports``, ``ncci``, ``mue``, ``release`` on every row. NCCI and MUE rows may add
``table`` (ncci: ``practitioner`` or ``hospital``; mue: ``practitioner``, ``outpatient`` or ``dme``; empty
means practitioner) and ``rationale``, and MUE rows ``mai`` (1 per line, the default; 2 or 3 per day). CMS's
own PTP and MUE files load with ``ncci_mue``.

Every value is checked for what it means before it becomes a record: dates are real dates as YYYY-MM-DD (a
US-style ``01/01/2030`` would compare as text and make a code valid years early), ages, units, indicators
and table names are ones the table reads, a code is printable ASCII, and a row has as many cells as the
header. A bad row is a ValueError naming the file, the row (the file's line number) and the column. The
file is UTF-8, with or without the byte order mark spreadsheets write; quoting is strict.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from processor.code_table.table import (
    MUE,
    MUE_TABLES,
    NCCI,
    PRACTITIONER,
    PTP_TABLES,
    RELEASE,
    SUPPORTS,
    mue_subject,
    ncci_subject,
    policy_record,
    record_key,
)

_COLUMNS = ("system", "code", "description", "billable", "valid_from", "valid_to")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_AGE = re.compile(r"[0-9]{1,3}")
_UNITS = re.compile(r"[0-9]+(\.[0-9]+)?")
_MAX_AGE = 150  # the table's limit on an age edit


class _Row:
    """One row's cells by column, and where it is, for errors that name the file, the row and the column."""

    __slots__ = ("cells", "where")

    def __init__(self, cells: dict[str, str], where: str) -> None:
        self.cells = cells
        self.where = where

    def error(self, column: str, problem: str) -> ValueError:
        return ValueError(f"{self.where}, column {column}: {problem}")

    def text(self, column: str, required: bool = True) -> str:
        """The cell, trimmed; raises for an empty one when ``required``."""
        value = (self.cells.get(column) or "").strip()
        if required and not value:
            raise self.error(column, "is required")
        return value

    def date(self, column: str) -> str:
        """A real calendar date as YYYY-MM-DD."""
        return self.optional_date(column, required=True) or ""

    def optional_date(self, column: str, required: bool = False) -> str | None:
        """A real calendar date as YYYY-MM-DD, or None for an empty cell."""
        value = self.text(column, required)
        if not value:
            return None
        if _DATE.fullmatch(value):
            try:
                date.fromisoformat(value)
                return value
            except ValueError:
                pass
        raise self.error(column, f"{value!r} is not a calendar date as YYYY-MM-DD (e.g. 2030-01-01)")

    def one_of(self, column: str, allowed: tuple[str, ...], required: bool = False) -> str:
        value = self.text(column, required)
        if value and value not in allowed:
            raise self.error(column, f"{value!r} is not one of {', '.join(allowed)}")
        return value


def read_csv(source: Path | TextIO) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(key, record)`` for every row; raises ValueError naming the file, row and column of a bad row."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            yield from _rows(_decoded(handle, str(source)), str(source))
        return
    yield from _rows(source, getattr(source, "name", None) or "CSV")


def _decoded(handle: BinaryIO, name: str) -> Iterator[str]:
    """The lines of a UTF-8 file (a byte order mark before the first is skipped), each decoded apart, so that
    a byte that is not UTF-8 is named by its line."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{name} row {number}: not UTF-8 text") from None


def _rows(source: Iterable[str], name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    line = 0  # the file line the reader is on: comment lines and quoted line breaks counted

    def lines() -> Iterator[str]:
        nonlocal line
        for line, text in enumerate(source, start=1):  # noqa: B007 - read by the rows below
            if not text.lstrip().startswith("#"):
                yield text

    reader = csv.reader(lines(), strict=True)
    try:
        header: list[str] | None = None
        for cells in reader:
            if header is None:
                header = [column.strip() for column in cells]
                continue
            if not any(cell.strip() for cell in cells):
                continue
            where = f"{name} row {line}"
            if len(cells) < len(header):
                raise ValueError(f"{where}, column {header[len(cells)]}: missing (the row has {len(cells)} cells, "
                                 f"the header {len(header)} columns)")  # fmt: skip
            if len(cells) > len(header):
                raise ValueError(f"{where}: {len(cells)} cells, but the header has {len(header)} columns")
            row = _Row(dict(zip(header, cells, strict=True)), where)
            yield _policy(row) if row.cells.get("policy") else _record(row)
    except csv.Error as err:
        raise ValueError(f"{name} row {line}: not CSV as quoted ({err})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name} row {line + 1}: not UTF-8 text") from None


def _policy(row: _Row) -> tuple[str, dict[str, Any]]:
    value = {k: (v or "").strip() for k, v in row.cells.items() if k}
    start, end = row.date("valid_from"), row.optional_date("valid_to")
    match value["policy"]:
        case "supports":
            for column in ("system", "code", "diagnoses"):
                row.text(column)
            subject = f"{value['system']}:{value['code']}>{value['diagnoses']}"
            return policy_record(SUPPORTS, subject, start, end, {k: value[k] for k in ("system", "code", "diagnoses")})
        case "ncci":
            for column in ("column1", "column2"):
                row.text(column)
            row.one_of("modifier_indicator", ("0", "1", "9"), required=True)
            _table_name(row, PTP_TABLES)
            pair = {k: value[k] for k in ("column1", "column2", "modifier_indicator")}
            pair |= _optional(value, "table", "rationale")
            subject = ncci_subject(pair.get("table", PRACTITIONER), pair["column1"], pair["column2"])
            return policy_record(NCCI, subject, start, end, pair)
        case "mue":
            row.text("code")
            if not _UNITS.fullmatch(row.text("max_units")):
                raise row.error("max_units", f"{value['max_units']!r} is not a number of units (e.g. 2)")
            row.one_of("mai", ("1", "2", "3"))
            _table_name(row, MUE_TABLES)
            units = {
                "code": value["code"],
                "max_units": value["max_units"],
                **_optional(value, "mai", "table", "rationale"),
            }
            return policy_record(MUE, mue_subject(units.get("table", PRACTITIONER), value["code"]), start, end, units)
        case "release":
            row.text("system")
            row.text("release")
            if end is None:
                raise row.error("valid_to", "is required: the last day the release covers")
            attributes = {"system": value["system"]}
            subject = f"{value['system']}:{value['release']}"
            return policy_record(RELEASE, subject, start, end, attributes, f"{value['system']} {value['release']}")
    raise row.error("policy", f"must be supports, ncci, mue or release, not {value['policy']!r}")


def _table_name(row: _Row, tables: tuple[str, ...]) -> None:
    name = row.text("table", required=False)
    if name and name.lower() not in tables:
        raise row.error("table", f"{name!r} is not one of {', '.join(tables)}")


def _optional(value: dict[str, str], *names: str) -> dict[str, Any]:
    """The optional columns given a value on this row (an old-form row makes the same record as before);
    ``table`` lower case and ``mai`` a number, as the CMS loaders write them."""
    given = {name: value[name] for name in names if value.get(name)}
    if "table" in given:
        given["table"] = given["table"].lower()
    if "mai" in given and given["mai"] in ("1", "2", "3"):
        given["mai"] = int(given["mai"])
    return given


def _record(row: _Row) -> tuple[str, dict[str, Any]]:
    system, code = row.text("system"), row.text("code")
    valid_from, valid_to = row.date("valid_from"), row.optional_date("valid_to")
    if "|" in system or system.startswith("@"):
        raise row.error("system", "a system name cannot contain '|' nor start with '@' (policy rows use 'policy')")
    if not (code.isascii() and code.isprintable()):
        raise row.error("code", f"{code!r} is not printable ASCII")
    flag = (row.cells.get("billable") or "true").strip().lower()
    if flag not in _TRUE | _FALSE:
        raise row.error("billable", f"must be true or false, not {flag!r}")
    for column in ("age_min", "age_max"):
        age = row.text(column, required=False)
        if age and not (_AGE.fullmatch(age) and int(age) <= _MAX_AGE):
            raise row.error(column, f"{age!r} is not an age in whole years, 0 to {_MAX_AGE}")
    if row.cells.get("sex") not in (None, "", "M", "F"):
        raise row.error("sex", f"{row.cells['sex']!r} is not M or F")
    record: dict[str, Any] = {
        "system": system,
        "code": code,
        "description": (row.cells.get("description") or "").strip(),
        "billable": flag in _TRUE,
        "valid_from": valid_from,
        "valid_to": valid_to,
    }
    attributes = {k: v for k, v in row.cells.items() if k and k not in _COLUMNS and v not in (None, "")}
    if attributes:
        record["attributes"] = attributes
    return record_key(system, code, valid_from), record
