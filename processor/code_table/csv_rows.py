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
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from processor.code_table.table import (
    MUE,
    NCCI,
    PRACTITIONER,
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


def read_csv(source: Path | TextIO) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(key, record)`` for every row; raises ValueError naming the line of a bad row."""
    if isinstance(source, Path):
        with source.open(newline="", encoding="utf-8") as handle:
            yield from read_csv(handle)
        return
    lines = (line for line in source if not line.lstrip().startswith("#"))
    for number, row in enumerate(csv.DictReader(lines), start=2):
        yield _policy(row, number) if row.get("policy") else _record(row, number)


def _policy(row: dict[str, str], number: int) -> tuple[str, dict[str, Any]]:
    value = {k: (v or "").strip() for k, v in row.items() if k}
    start, end = value.get("valid_from", ""), value.get("valid_to") or None
    if not start:
        raise ValueError(f"row {number}: valid_from is required")
    match value["policy"]:
        case "supports":
            subject = f"{value['system']}:{value['code']}>{value['diagnoses']}"
            return policy_record(SUPPORTS, subject, start, end, {k: value[k] for k in ("system", "code", "diagnoses")})
        case "ncci":
            pair = {k: value[k] for k in ("column1", "column2", "modifier_indicator")}
            pair |= _optional(value, "table", "rationale")
            subject = ncci_subject(pair.get("table", PRACTITIONER), pair["column1"], pair["column2"])
            return policy_record(NCCI, subject, start, end, pair)
        case "mue":
            units = {
                "code": value["code"],
                "max_units": value["max_units"],
                **_optional(value, "mai", "table", "rationale"),
            }
            return policy_record(MUE, mue_subject(units.get("table", PRACTITIONER), value["code"]), start, end, units)
        case "release":
            attributes = {"system": value["system"]}
            subject = f"{value['system']}:{value['release']}"
            return policy_record(RELEASE, subject, start, end, attributes, f"{value['system']} {value['release']}")
    raise ValueError(f"row {number}: policy must be supports, ncci, mue or release, not {value['policy']!r}")


def _optional(value: dict[str, str], *names: str) -> dict[str, Any]:
    """The optional columns given a value on this row (an old-form row makes the same record as before);
    ``table`` lower case and ``mai`` a number, as the CMS loaders write them."""
    given = {name: value[name] for name in names if value.get(name)}
    if "table" in given:
        given["table"] = given["table"].lower()
    if "mai" in given and given["mai"] in ("1", "2", "3"):
        given["mai"] = int(given["mai"])
    return given


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
