"""Validation of an X12 interchange against its implementation guide, by pyx12, off the hot path.

pyx12 ships the maps of the 837P (005010X222A1), 837I (005010X223A2, its map file says A1), 277CA
(005010X214) and 999 (005010X231A1) and checks every segment, element, code and loop against them; the
tests run it on the 999s and 277CAs the processor writes. It costs 5 to 8 ms a claim (an 837P of 50 claims
in 270 to 660 ms; their 999 in about 50 ms, their 277CA in about 150 ms), about 100 times the hot path's
own reader (``x12_837.py``, 60 to 75 µs a claim): one core validates under 200 claims a second, so the
stream reads with its own reader and runs this where a full check is worth its time (``processor check``, an
audit job, a sample of the topic).

pyx12's own code lists trail X12's: its claim status code list (508) lacks 772 and 796, which
``diagnosis.header`` and ``procedure.not_valid_on_date`` answer with, so it flags those STC01s of a 277CA
as invalid code values though X12's current list holds them (``STALE_STATUS_CODES``).

pyx12 logs each error it finds with the value in error, which may be protected health information: its
logger is silenced while it runs, and the problems come back as values.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from typing import Any

# Claim status codes (X12 code list 508) that the engine's rules answer with and pyx12 4.0's codes.xml lacks.
STALE_STATUS_CODES = frozenset({"772", "796"})


@dataclass(frozen=True, slots=True)
class X12Problem:
    """One error pyx12 found: where (interchange, group, transaction or a segment with its ordinal in the
    transaction set and line in the file, and the element) and its error code and text. ``text`` may quote
    the value in error: show it to the submitter, never log it."""

    level: str
    code: str
    text: str = field(repr=False)
    segment: str | None = None
    ordinal: int | None = None
    line: int | None = None
    element: int | None = None
    value: str | None = field(default=None, repr=False)


def validate_x12(text: str) -> list[X12Problem]:
    """Every problem pyx12 finds in the interchange ``text`` against the implementation guide its GS08
    names (empty: it conforms). An interchange pyx12 cannot read at all is one problem at the interchange."""
    import pyx12.error_handler  # pyx12 loads its maps on use: imported here, off the hot path
    import pyx12.params
    import pyx12.x12n_document

    found = io.StringIO()
    pyx12_log = logging.getLogger("pyx12")
    level = pyx12_log.level
    pyx12_log.setLevel(logging.CRITICAL + 1)
    try:
        pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(), src_file=io.StringIO(text), fd_997=None, fd_html=None, fd_json=found
        )
    except Exception as error:  # pyx12 raises for what it cannot map (an unknown GS08, a broken ISA)
        return [X12Problem("interchange", "pyx12", f"pyx12 could not read the interchange: {type(error).__name__}")]
    finally:
        pyx12_log.setLevel(level)
    if not found.getvalue():
        return [X12Problem("interchange", "pyx12", "pyx12 could not read the interchange")]
    return list(_problems(json.loads(found.getvalue())))


def _problems(document: dict[str, Any]) -> Any:
    for interchange in document.get("interchanges", ()):
        for error in interchange.get("errors", ()):
            yield X12Problem("interchange", error["err_cde"], error["err_str"], line=interchange.get("cur_line"))
        for group in interchange.get("groups", ()):
            for error in group.get("errors", ()):
                yield X12Problem("group", error["err_cde"], error["err_str"], line=group.get("cur_line"))
            for transaction in group.get("transactions", ()):
                for error in transaction.get("errors", ()):
                    yield X12Problem(
                        "transaction", error["err_cde"], error["err_str"], line=transaction.get("cur_line")
                    )
                for segment in transaction.get("segments", ()):
                    where = {"segment": segment["seg_id"], "ordinal": segment["seg_count"],
                             "line": segment["cur_line"]}  # fmt: skip
                    for error in segment.get("errors", ()):
                        yield X12Problem("segment", error["err_cde"], error["err_str"], value=error.get("err_val"),
                                         **where)  # fmt: skip
                    for element in segment.get("elements", ()):
                        for error in element.get("errors", ()):
                            yield X12Problem("element", error["err_cde"], error["err_str"], element=element["ele_pos"],
                                             value=error.get("err_val"), **where)  # fmt: skip
