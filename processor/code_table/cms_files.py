"""Parsers for the code files payers receive from CMS/CDC. Each turns a file into ``ReleaseCodes``
(normalized code -> ``ReleaseCode``); ``releases.release_records`` makes code-table records of them.

- ICD-10-CM tabular XML (``icd10cm-tabular-<year>.xml``): chapters, sections, nested ``diag`` elements. A
  code is billable when it has no children; 7th characters (``sevenChrDef``, inherited by the codes
  under it) extend every leaf under it, padded with the placeholder X to six characters (S52.521 ->
  S52.521A, S02.0 -> S02.0XXA). A ``codeFirst`` note that asks for the
  underlying condition first marks a code (and the codes under it) to be coded after it; with "(in
  other) diseases classified elsewhere" in its title it is a manifestation, which is never principal.
- ICD-10-CM order file (``icd10cm-order-<year>.txt``), fixed width: order number (5, zero filled), blank,
  code (7, no dot, blank filled), blank, 0 header / 1 valid for HIPAA transactions, blank, short
  description (60), blank, long description (to the end).
- HCPCS Level II annual file (``HCPC<year>_<MON>_ANWEB.txt``, 320-character contractor records): code
  (1-5), sequence number (6-10), record id (11: 3 first line of a code, 4 continuation, 7 and 8 the same
  for modifiers), long description (12-91, continued on record-id-4 lines), short description (92-119).
  Every code in the file is valid from the release's first day; a code a later release drops is ended by
  the release loader.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TextIO


class ReleaseCode(NamedTuple):
    """What one release says of one code."""

    billable: bool
    description: str
    attributes: dict[str, Any] | None = None


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


def read_order_file(source: Path | str | Iterable[str]) -> ReleaseCodes:
    """Every row of an ICD-10-CM order file; raises ValueError naming a line that is not a row."""
    if isinstance(source, Path | str):
        with open(source, encoding="latin-1") as handle:  # CMS publishes these files in Latin-1
            return read_order_file(handle)
    codes: ReleaseCodes = {}
    for number, raw in enumerate(source, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if len(line) < 17 or not line[:5].isdigit() or line[5] != " " or line[13] != " " or line[14] not in "01":
            raise ValueError(f"order file line {number}: not an order-file row")
        code = line[6:13].strip().upper()
        codes[code] = ReleaseCode(line[14] == "1", line[77:].strip() or line[16:76].strip())
    return codes


def read_hcpcs_file(source: Path | str | Iterable[str]) -> ReleaseCodes:
    """Every HCPCS Level II code of a CMS annual (or quarterly) contractor file, long descriptions joined."""
    if isinstance(source, Path | str):
        with open(source, encoding="latin-1") as handle:
            return read_hcpcs_file(handle)
    parts: dict[str, list[str]] = {}
    for number, raw in enumerate(source, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if len(line) < 12 or not line[5:10].isdigit() or line[10] not in "3478":
            raise ValueError(f"HCPCS file line {number}: not a contractor record")
        if line[10] in "78":  # modifiers: not codes a line can bill
            continue
        code = line[:5].strip().upper()
        parts.setdefault(code, []).append(line[11:91].strip())
    return {code: ReleaseCode(True, " ".join(p for p in texts if p)) for code, texts in parts.items()}


def order_file_lines(codes: Iterable[tuple[str, bool, str, str]]) -> Iterator[str]:
    """Order-file rows for ``(code, billable, short, long)``: the CMS layout, for tests and round trips."""
    for number, (code, billable, short, long) in enumerate(codes, start=1):
        yield f"{number:05d} {code:<7} {int(billable)} {short[:60]:<60} {long}"
