"""Parsers for the code files payers receive from CMS/CDC. Each turns a file into ``ReleaseCodes``
(normalized code -> ``ReleaseCode``); ``releases.merge_release`` makes code-table records of them.

- ICD-10-CM tabular XML (``icd10cm-tabular-<year>.xml``): chapters, sections, nested ``diag`` elements. A
  code is billable when it has no children; 7th characters (``sevenChrDef``, inherited by the codes
  under it) extend every leaf under it, padded with the placeholder X to six characters (S52.521 ->
  S52.521A, S02.0 -> S02.0XXA). A ``codeFirst`` note that asks for the
  underlying condition first marks a code (and the codes under it) to be coded after it; with "(in
  other) diseases classified elsewhere" in its title it is a manifestation, which is never principal.
- ICD-10-CM and ICD-10-PCS order files (``icd10cm-order-<year>.txt``, ``icd10pcs_order_<year>.txt``), fixed
  width: order number (5, zero filled), blank, code (7, no dot, blank filled), blank, 0 header / 1 valid for
  HIPAA transactions, blank, short description (60), blank, long description (to the end).
- HCPCS Level II alpha-numeric file (``HCPC<year>_ANWEB_w_disclaimer.txt``, ``HCPC<year>_<MON>_ANWEB.txt``):
  see ``read_hcpcs_file``. Its codes carry their own dates (added, terminated), so a code CMS terminated
  years ago but still lists is valid only up to its termination date.

A ``ReleaseCode`` without dates is valid from the first day of the release that holds it; one with
``valid_from`` (and ``valid_to``) is valid on those dates, whatever the release's first day.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from processor.code_systems import ICD10CM, ICD10PCS, MODIFIER, is_well_formed, normalize

# HCPCS Level II modifiers (GA, LT, XS...) as a code system of their own; see ``read_hcpcs_file``.
HCPCS_MODIFIER = MODIFIER


class ReleaseCode(NamedTuple):
    """What one release says of one code; ``valid_from`` and ``valid_to`` only when the file gives the code
    dates of its own (HCPCS: the add and termination dates), ISO dates."""

    billable: bool
    description: str
    attributes: dict[str, Any] | None = None
    valid_from: str | None = None
    valid_to: str | None = None


ReleaseCodes = dict[str, ReleaseCode]


def read_tabular_xml(source: Path | str | TextIO) -> ReleaseCodes:
    """Every code of an ICD-10-CM tabular XML file, 7th-character extensions included."""
    root = ET.parse(source).getroot()
    codes: ReleaseCodes = {}
    for section in root.iter("section"):
        for diag in section.findall("diag"):
            _walk(diag, codes, [], False, False)
    return codes


def _walk(diag: ET.Element, codes: ReleaseCodes, seventh: list[tuple[str, str]], first: bool, manif: bool) -> None:
    code = (diag.findtext("name") or "").strip().replace(".", "").upper()
    description = " ".join((diag.findtext("desc") or "").split())
    own_seventh = diag.find("sevenChrDef")
    if own_seventh is not None:
        seventh = [(e.get("char", ""), " ".join((e.text or "").split())) for e in own_seventh.iter("extension")]
    # Only "code first the underlying condition" is the etiology/manifestation convention; other code-first
    # notes (Z23: "code first any routine childhood examination") are conditional and do not bar a code.
    notes = diag.find("codeFirst")
    code_first = first or (notes is not None and "underlying" in " ".join(notes.itertext()).lower())
    manifestation = manif or (code_first and "classified elsewhere" in description.lower())
    attributes = {"manifestation": True} if manifestation else {}
    if code_first:
        attributes["code_first"] = True
    children = diag.findall("diag")
    codes[code] = ReleaseCode(not children and not seventh, description, attributes or None)
    for child in children:
        _walk(child, codes, seventh, code_first, manifestation)
    if not children and seventh:
        for char, extension in seventh:
            if code.startswith("S06") and len(code) == 6 and code[5] in "78" and char != "A":
                continue  # the S06 note: 7th characters D and S do not apply to death-before-consciousness codes
            codes[code.ljust(6, "X") + char] = ReleaseCode(True, f"{description}, {extension}", attributes or None)


def read_order_file(source: Path | str | Iterable[str], system: str = ICD10CM) -> ReleaseCodes:
    """Every row of an ICD-10-CM (or, with ``system``, ICD-10-PCS) order file; raises ValueError naming a line
    that is not a row, or a row flagged valid whose code is not a well-formed code of ``system`` (the other
    system's file given by mistake)."""
    if isinstance(source, Path | str):
        with open(source, encoding="latin-1") as handle:  # CMS publishes these files in Latin-1
            return read_order_file(handle, system)
    codes: ReleaseCodes = {}
    for number, raw in enumerate(source, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if len(line) < 17 or not line[:5].isdigit() or line[5] != " " or line[13] != " " or line[14] not in "01":
            raise ValueError(f"order file line {number}: not an order-file row")
        code = line[6:13].strip().upper()
        if line[14] == "1" and not is_well_formed(system, normalize(system, code)):
            raise ValueError(f"order file line {number}: {code!r} is not an {system} code")
        codes[code] = ReleaseCode(line[14] == "1", line[77:].strip() or line[16:76].strip())
    return codes


def read_pcs_order_file(source: Path | str | Iterable[str]) -> ReleaseCodes:
    """Every row of a CMS ICD-10-PCS order file (``icd10pcs_order_<year>.txt``, one per fiscal year): the
    ICD-10-CM order file's layout; its headers are the three-character tables (``001``, flag 0)."""
    return read_order_file(source, ICD10PCS)


class HcpcsFile(NamedTuple):
    """What a CMS HCPCS Level II file holds: its procedure codes and its modifiers (``ReleaseCodes`` with each
    code's own dates), and the lines before its first record (a disclaimer, skipped)."""

    codes: ReleaseCodes
    modifiers: ReleaseCodes
    banner: tuple[str, ...]


# The 320-character record, in CMS's 1-based columns (here 0-based slices).
_FIRST_RECORD, _CONTINUATION = "37", "48"  # 3 and 4: procedure codes; 7 and 8: modifiers
_LONG = slice(11, 91)  # 12-91
_SHORT = slice(91, 119)  # 92-119
_COVERAGE = slice(229, 230)  # 230
_ADDED = slice(268, 276)  # 269-276
_ACTION_EFFECTIVE = slice(276, 284)  # 277-284
_TERMINATED = slice(284, 292)  # 285-292
_ACTION = slice(292, 293)  # 293


def read_hcpcs_file(source: Path | str | Iterable[str]) -> HcpcsFile:
    """Every HCPCS Level II procedure code and modifier of a CMS alpha-numeric file (annual or quarterly), as
    CMS publishes it; raises ValueError naming a line that is not a record once the records have begun.

    The file is Windows-1252 text of 320-character records: code (1-5; a modifier's two characters
    right-aligned), sequence number (6-10), record id (11: 3 a procedure code's first record, 4 its
    continuation; 7 and 8 the same for a modifier), long description (12-91, continued in the same columns
    of the continuation records), short description (92-119), coverage code (230: C carrier judgment, D
    special coverage instructions, I not payable by Medicare, M non-covered by Medicare, S non-covered by
    Medicare statute), add date (269-276), action effective date (277-284), termination date (285-292,
    YYYYMMDD, blank while the code is valid) and action code (293: A added, D discontinued, N no change...).
    The lines before the first record (CMS's 2020 file opens with a 9-line disclaimer) are kept in
    ``banner``, not read as records.

    A code is valid from its add date to its termination date. CMS keeps a terminated code in the file for
    some years (the 2020 file still lists 605 codes terminated 2014-06-30 to 2019-12-31): listed is not valid.
    Coverage code, action code, action effective date and the short description are kept as attributes.

    Modifiers (record ids 7 and 8) are codes of their own system, ``HCPCS_MODIFIER``, with their dates too.
    The file holds only the Level II modifiers (A1 to ZC in 2020: GA, LT, XS...); CPT's two-digit modifiers (25, 59...)
    are the AMA's and are not in it.
    """
    if isinstance(source, Path | str):
        try:
            text = Path(source).read_bytes().decode("cp1252")
        except UnicodeDecodeError as err:
            raise ValueError(f"HCPCS file: byte {err.start} is not Windows-1252 text") from None
        return read_hcpcs_file(text.split("\n"))
    banner: list[str] = []
    found: tuple[ReleaseCodes, ReleaseCodes] = ({}, {})  # procedure codes, modifiers (descriptions to come)
    texts: dict[tuple[int, str], list[str]] = {}
    for number, raw in enumerate(source, start=1):
        line = raw.rstrip("\r\n")
        if not _is_hcpcs_record(line):
            if not any(found):
                banner.append(line)  # the disclaimer before the first record
                continue
            if not line.strip():
                continue
            raise ValueError(f"HCPCS file line {number}: not a HCPCS record")
        code, record_id = line[:5].strip().upper(), line[10]
        kind = 0 if record_id in "34" else 1
        if record_id in _CONTINUATION and code not in found[kind]:
            raise ValueError(f"HCPCS file line {number}: a continuation of {code}, which has no first record")
        if record_id in _FIRST_RECORD:
            if code in found[kind]:
                raise ValueError(f"HCPCS file line {number}: a second first record of {code}")
            found[kind][code] = _hcpcs_code(line.ljust(320), number)
        texts.setdefault((kind, code), []).append(line[_LONG].strip())
    if not any(found):
        raise ValueError("HCPCS file: no HCPCS records (is it CMS's alpha-numeric file?)")
    procedures, modifiers = (
        {code: c._replace(description=" ".join(t for t in texts[kind, code] if t)) for code, c in codes.items()}
        for kind, codes in enumerate(found)
    )
    return HcpcsFile(procedures, modifiers, tuple(banner))


def _is_hcpcs_record(line: str) -> bool:
    return (
        len(line) > 11
        and line[10] in _FIRST_RECORD + _CONTINUATION
        and line[5:10].isdigit()
        and line[:5].strip().isalnum()
    )


def _hcpcs_code(record: str, number: int) -> ReleaseCode:
    """What a first record (padded to 320) says of its code, all but the long description."""
    added = _hcpcs_date(record[_ADDED], "add date", number)
    terminated = _hcpcs_date(record[_TERMINATED], "termination date", number)
    if added and terminated and terminated < added:
        raise ValueError(f"HCPCS file line {number}: terminated {terminated}, before it was added {added}")
    attributes = {
        "short_description": record[_SHORT].strip(),
        "coverage_code": record[_COVERAGE].strip(),
        "action_code": record[_ACTION].strip(),
        "action_effective": _hcpcs_date(record[_ACTION_EFFECTIVE], "action effective date", number),
    }
    return ReleaseCode(True, "", {k: v for k, v in attributes.items() if v} or None, added, terminated)


def _hcpcs_date(value: str, name: str, number: int) -> str | None:
    """A YYYYMMDD field as an ISO date; None when blank."""
    if not value.strip():
        return None
    try:
        if not value.isdigit():
            raise ValueError
        return date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        raise ValueError(f"HCPCS file line {number}: {name} {value!r} is not a date (YYYYMMDD)") from None


def order_file_lines(codes: Iterable[tuple[str, bool, str, str]]) -> Iterator[str]:
    """Order-file rows for ``(code, billable, short, long)``: the CMS layout, for tests and round trips."""
    for number, (code, billable, short, long) in enumerate(codes, start=1):
        yield f"{number:05d} {code:<7} {int(billable)} {short[:60]:<60} {long}"
