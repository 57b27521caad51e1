"""``processor check``: the engine over a file of JSON lines, with no broker.

Each input line gives one output line: the decision record (as the worker would publish it, with
``source.line``), or, for a line the worker would dead-letter (longer than its ``max_record_bytes``, not a JSON
object or nested too deep, not recognisably a claim or an order), ``{"line": N, "outcome": "undecodable",
"error": ...}``. Lines are decided by ``routing.decide_value``, as the worker decides records, so no line can
stop the run. A UTF-8 byte order mark before the first line is skipped; ``read_lines`` reads a file without
ever holding a line longer than the limit.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson

from processor.code_table.table import CodeTable
from processor.config import Settings
from processor.engine import Policy
from processor.engine.duplicates import SeenClaims
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
