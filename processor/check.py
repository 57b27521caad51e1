"""``processor check``: the engine over a file of JSON lines, or one document in a submitter's format, with no
broker.

Each input line gives one output line: the decision record (as the worker would publish it, with
``source.line``), or, for a line the worker would dead-letter (longer than its ``max_record_bytes``, not a JSON
object or nested too deep, not recognisably a claim or an order), ``{"line": N, "outcome": "undecodable",
"error": ...}``. Lines are decided by ``routing.decide_value``, as the worker decides records, so no line can
stop the run. A UTF-8 byte order mark before the first line is skipped; ``read_lines`` reads a file without
ever holding a line longer than the limit.

A file in a submitter's format (``check_document``) is one document: an X12 837 interchange, an HL7 v2 message
or batch, a FHIR resource or Bundle. Its events are decided as lines are, one output line each (with
``source.file`` and ``source.index``), and the answers the submitter reads are built from their decision
records by ``formats.documents``, as the worker builds them for the responses topic: 999 and 277CA, ACK or
ORL^O22, ClaimResponse or OperationOutcome. ``sniff`` tells the formats apart.
"""

from __future__ import annotations

import codecs
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.engine import Policy
from processor.engine.duplicates import SeenClaims
from processor.formats import Format, detect
from processor.formats.documents import answer, echoed_control_numbers, read_document
from processor.routing import Refused, decide_value

# The worker's limit on a record's size, by default.
MAX_BYTES: int = Settings.max_record_bytes
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line longer than the limit, read past without being kept: only its length in bytes."""

    size: int


def read_lines(stream: BinaryIO, max_bytes: int = MAX_BYTES) -> Iterator[bytes | LongLine]:
    """The lines of ``stream`` with their line ends; a line of more than ``max_bytes`` (line end aside) comes as
    a ``LongLine``, read in pieces and dropped, so that memory stays bounded whatever the file holds."""
    while True:
        line = stream.readline(max_bytes + 2)  # the longest line kept, with a CR LF
        if not line:
            return
        if line.endswith(b"\n") or len(line) < max_bytes + 2:
            yield line
            continue
        size = len(line)
        while line and not line.endswith(b"\n"):
            line = stream.readline(_CHUNK)
            size += len(line)
        yield LongLine(size - 1 if line.endswith(b"\n") else size)


def check_lines(
    lines: Iterable[bytes | LongLine],
    table: CodeTable,
    decided_at: str,
    policy: Policy | None = None,
    duplicate_window_days: int = 30,
    max_bytes: int = MAX_BYTES,
) -> Iterator[tuple[str, bytes]]:
    """``(outcome, output line)`` for every input line (blank lines are skipped but keep their numbers);
    ``policy`` is the payer's rules file (None: the rules' defaults, as the worker uses without
    ``PROCESSOR_RULES_FILE``). Claims repeated within the file are duplicates, as the worker finds them within a
    claims partition. A line longer than ``max_bytes`` is undecodable, as the worker dead-letters a record over
    its ``max_record_bytes``."""
    window = SeenClaims(duplicate_window_days * 86_400_000) if duplicate_window_days > 0 else None
    for number, line in enumerate(lines, start=1):
        if isinstance(line, LongLine):
            error = f"record is {line.size} bytes; the limit is {max_bytes}"
            yield "undecodable", orjson.dumps({"line": number, "outcome": "undecodable", "error": error})
            continue
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        source = {"line": number}
        result = decide_value(line, None, table, policy, decided_at, source, max_bytes, window, f"line:{number}")
        if isinstance(result, Refused):
            yield "undecodable", orjson.dumps({"line": number, "outcome": "undecodable", "error": result.error})
        else:
            yield result.decision.outcome.value, result.value


def write_results(results: Iterable[tuple[str, bytes]], out: BinaryIO) -> Counter[str]:
    """Write the output lines to a binary stream; returns how many of each outcome."""
    counts: Counter[str] = Counter()
    for outcome, line in results:
        counts[outcome] += 1
        out.write(line + b"\n")
    out.flush()
    return counts


# Documents: an 837 interchange, an HL7 v2 message (or batch), a FHIR resource (or Bundle), decided event by event.

_SNIFF_BYTES = 1 << 16  # what auto-detection reads of the input before it decides its format


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    """What checking one document gives: ``(outcome, output line)`` for each event (and one undecodable line
    when (part of) the document could not be read), and the submitter's answer files, by file suffix."""

    results: list[tuple[str, bytes]]
    responses: dict[str, bytes]


def sniff(stream: BinaryIO) -> tuple[Format, BinaryIO]:
    """The format of a stream by its first bytes (``formats.detect``), and a stream that reads it all from the
    start again. A file the first bytes do not name (or an empty one) is JSON lines, as ``check`` always read."""
    head = stream.read(_SNIFF_BYTES)
    found = detect(None, head)
    return (Format.JSON if found is Format.UNKNOWN else found), io.BufferedReader(_Rejoined(head, stream))


class _Rejoined(io.RawIOBase):
    """``head`` and then the rest of ``stream``: a stream whose first bytes were already read."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size], self._head = self._head[:size], self._head[size:]
            return size
        chunk = self._stream.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def check_document(
    raw: bytes,
    form: Format,
    name: str,
    table: CodeTable,
    decided_at: str,
    policy: Policy | None = None,
    duplicate_window_days: int = 30,
    max_bytes: int = MAX_BYTES,
) -> DocumentCheck:
    """Decide every event of one document of ``form`` (X12, HL7V2 or FHIR) as ``check_lines`` decides a line:
    through ``routing.decide_value``, with one duplicate window for the document and ``source``
    ``{"file": name, "index": i}`` (the event's place among the document's events, from 0). What could not
    be read gives ``{"file": name, "outcome": "undecodable", "error": ...}`` (the parser's failure, which names
    segments and fields, never content) and still its rejection in the answers (``formats.documents.answer``):
    999 (or TA1) and 277CA for an 837, ACK or ORL^O22 for HL7 v2, ClaimResponse or OperationOutcome for FHIR.
    Control numbers come from the input (ISA13, MSH-10) or are 1; the answers' time is ``decided_at``: the same
    input gives the same files."""
    window = SeenClaims(duplicate_window_days * 86_400_000) if duplicate_window_days > 0 else None
    created_at = datetime.fromisoformat(decided_at.replace("Z", "+00:00"))
    document = read_document(raw, form)
    results: list[tuple[str, bytes]] = []
    if document.failure is not None:
        failure = {"file": name, "outcome": "undecodable", "error": document.failure}
        results.append(("undecodable", orjson.dumps(failure)))
    records: list[dict[str, Any] | None] = []
    for index, (kind, event) in enumerate(document.events):
        source = {"file": name, "index": index}
        result = decide_value(
            orjson.dumps(event), kind, table, policy, decided_at, source, max_bytes, window, f"{name}:{index}"
        )
        if isinstance(result, Refused):
            records.append(None)
            line = {"file": name, "index": index, "outcome": "undecodable", "error": result.error}
            results.append(("undecodable", orjson.dumps(line)))
        else:
            records.append(orjson.loads(result.value))
            results.append((result.decision.outcome.value, result.value))
    answers = answer(document, records, echoed_control_numbers(document), created_at)
    return DocumentCheck(results, {found.suffix: found.content for found in answers})
