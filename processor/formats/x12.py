"""X12 (005010) at the level of the envelope: the separators an interchange declares, its segments, and the
ISA / GS / ST envelopes; a writer for the interchanges the processor answers with.

An interchange declares its own separators in its fixed-width ISA segment (106 characters): the element
separator after ``ISA``, the repetition separator in ISA11, the component separator in ISA16 and the
segment terminator right after it. ``read_interchange`` splits the text on them once (str.split in C: about
a microsecond per segment) and checks the envelope the way a 999 / TA1 reports it: ISA13 = IEA02, the group
and transaction counts, GS06 = GE02, ST02 = SE02, SE01 = the number of segments. What a transaction says is
for its reader (``x12_837.py``). X12 has no escape character: ``clean_text`` keeps free text out of the
separators.

A position in a transaction is the segment's ordinal counted from ST (ST is 1), as a 999 IK302 gives it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from processor.formats.detect import decode_text

ISA_LENGTH = 106
_ENVELOPE = frozenset({"ST", "GS", "GE", "IEA", "ISA"})
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")


@dataclass(frozen=True, slots=True)
class Separators:
    """The four delimiters of an interchange."""

    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"


DEFAULT_SEPARATORS = Separators()


class X12Position(NamedTuple):
    """Where a value sits in an X12 transaction: its loop, segment and element (and component of a
    composite), and the segment's ordinal from ST (ST = 1), which a 999 IK3 reports. ``data_element`` is the
    X12 data element reference number a 999 IK4 reports, where known."""

    loop: str | None
    segment: str
    ordinal: int
    element: int
    component: int | None = None
    data_element: str | None = None

    def __str__(self) -> str:
        """``2400 SV1-01-2 (segment 41)``: loop, segment-element[-component], ordinal."""
        where = f"{self.segment}-{self.element:02d}" + (f"-{self.component}" if self.component else "")
        return f"{self.loop + ' ' if self.loop else ''}{where} (segment {self.ordinal})"


# A position made without NamedTuple's keyword handling: a parser makes dozens per claim.
position = functools.partial(tuple.__new__, X12Position)


@dataclass(frozen=True, slots=True)
class InterchangeHeader:
    """What the ISA says: who sent the interchange to whom, its control number, date and usage."""

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str  # YYMMDD
    time: str  # HHMM
    version: str  # ISA12
    control_number: str  # ISA13
    usage: str  # ISA15: P production, T test
    separators: Separators


@dataclass(frozen=True, slots=True)
class EnvelopeError:
    """A problem that breaks the structure, coded as the acknowledgment reports it: ``level`` interchange
    (TA105 note code), group (AK905), transaction (IK502) or segment (IK304, which rejects its transaction
    set); ``segment`` and ``ordinal`` where it was found. The message names segments and counts only, never
    the content."""

    level: str
    code: str
    message: str
    segment: str | None = None
    ordinal: int | None = None


@dataclass(slots=True)
class RawTransaction:
    """An ST..SE transaction set: its segments as lists of elements (``segments[i][0]`` is the id of the
    segment of ordinal ``i + 1``: ST first), control number and what is wrong with its envelope."""

    control_number: str
    identifier: str  # ST01
    implementation: str  # ST03
    segments: list[list[str]]
    errors: list[EnvelopeError] = field(default_factory=list)


@dataclass(slots=True)
class RawGroup:
    """A GS..GE functional group and its transactions."""

    functional_id: str
    sender: str
    receiver: str
    date: str
    time: str
    control_number: str
    version: str
    transactions: list[RawTransaction] = field(default_factory=list)
    errors: list[EnvelopeError] = field(default_factory=list)


@dataclass(slots=True)
class RawInterchange:
    """An ISA..IEA interchange as read: ``header`` is None when the ISA could not be read at all."""

    header: InterchangeHeader | None
    groups: list[RawGroup] = field(default_factory=list)
    errors: list[EnvelopeError] = field(default_factory=list)

    @property
    def separators(self) -> Separators:
        return self.header.separators if self.header else DEFAULT_SEPARATORS


@functools.lru_cache(maxsize=4096)  # the same few dates of service and birth dates, claim after claim
def is_date(value: str) -> bool:
    """Whether ``value`` is an X12 date (DT, CCYYMMDD) on the calendar."""
    if len(value) != 8 or not value.isdigit():
        return False
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def read_interchange(raw: bytes) -> RawInterchange:
    """Split an interchange into groups, transactions and segments and check its envelopes. Never raises:
    what is wrong is in the ``errors`` of the interchange, group or transaction it breaks."""
    text = decode_text(raw).lstrip()
    if len(text) < ISA_LENGTH or not text.startswith("ISA"):
        return RawInterchange(None, errors=[_isa_error("022", "no ISA segment of 106 characters at the start")])
    element, repetition, component, terminator = text[3], text[82], text[104], text[105]
    if len({element, component, terminator}) < 3 or terminator.isalnum() or element.isalnum():
        return RawInterchange(None, errors=[_isa_error("004", "the ISA declares no usable separators")])
    isa = text[:ISA_LENGTH - 1].split(element)  # fmt: skip
    if len(isa) != 17:
        return RawInterchange(None, errors=[_isa_error("022", f"the ISA has {len(isa) - 1} elements, not 16")])
    separators = Separators(element, component, repetition, terminator)
    header = InterchangeHeader(
        sender_qualifier=isa[5], sender_id=isa[6].strip(), receiver_qualifier=isa[7], receiver_id=isa[8].strip(),
        date=isa[9], time=isa[10], version=isa[12], control_number=isa[13], usage=isa[15], separators=separators,
    )  # fmt: skip
    interchange = RawInterchange(header)
    if header.version != "00501":
        interchange.errors.append(_isa_error("003", f"interchange version {header.version!r} is not 00501"))
        return interchange
    if not header.control_number.isdigit():
        interchange.errors.append(_isa_error("018", "ISA13 is not a 9-digit control number"))
    body = text[ISA_LENGTH:]
    pieces = body.split(terminator)
    if pieces and pieces[-1].strip():
        # Text after the last terminator: the final segment (the IEA, if any) was never terminated.
        interchange.errors.append(_isa_error("023", "the last segment has no segment terminator"))
    _read_groups(interchange, [piece.strip() for piece in pieces[:-1]], element)
    return interchange


def _isa_error(code: str, message: str) -> EnvelopeError:
    return EnvelopeError("interchange", code, message, "ISA", None)


def _read_groups(interchange: RawInterchange, pieces: list[str], element: str) -> None:
    group: RawGroup | None = None
    transaction: RawTransaction | None = None
    groups_closed = False
    well_formed: set[str] = set()  # segment ids already checked: a transaction repeats a few dozen
    for number, piece in enumerate(pieces, start=2):  # the ISA is the interchange's first segment
        if not piece:
            continue
        elements = piece.split(element)
        segment_id = elements[0]
        if transaction is not None:
            segments = transaction.segments
            if segment_id == "SE":
                segments.append(elements)
                _close_transaction(transaction, elements)
                transaction = None
                continue
            if segment_id not in _ENVELOPE:
                if segment_id in well_formed:
                    pass
                elif _SEGMENT_ID.fullmatch(segment_id):
                    well_formed.add(segment_id)
                else:
                    transaction.errors.append(EnvelopeError(
                        "segment", "1", f"unrecognized segment id at segment {len(segments) + 1}", segment_id[:3],
                        len(segments) + 1,
                    ))  # fmt: skip
                segments.append(elements)
                continue
            transaction.errors.append(EnvelopeError(
                "transaction", "2", f"transaction {transaction.control_number} has no SE before {segment_id}",
                segment_id, len(segments) + 1,
            ))  # fmt: skip
            transaction = None
        if segment_id == "GS":
            if group is not None:
                group.errors.append(EnvelopeError("group", "3", f"group {group.control_number} has no GE", "GS"))
            gs = _padded(elements, 9)  # GS07 is the responsible agency, X
            group = RawGroup(gs[1], gs[2], gs[3], gs[4], gs[5], gs[6], gs[8])
            interchange.groups.append(group)
        elif segment_id == "ST":
            if group is None:
                interchange.errors.append(_isa_error("024", f"ST outside a functional group (segment {number})"))
                continue
            st = _padded(elements, 4)
            transaction = RawTransaction(st[2], st[1], st[3] or group.version, [elements])
            group.transactions.append(transaction)
        elif segment_id == "GE":
            if group is None:
                interchange.errors.append(_isa_error("024", f"GE without a GS (segment {number})"))
                continue
            ge = _padded(elements, 3)
            if ge[2] != group.control_number:
                group.errors.append(EnvelopeError("group", "4", "GE02 does not match GS06", "GE"))
            if ge[1] != str(len(group.transactions)):
                group.errors.append(EnvelopeError(
                    "group", "5", f"GE01 says {ge[1] or 'nothing'}, the group holds {len(group.transactions)} "
                    "transaction sets", "GE",
                ))  # fmt: skip
            group = None
        elif segment_id == "IEA":
            iea = _padded(elements, 3)
            header = interchange.header
            if header is not None and iea[2] != header.control_number:
                interchange.errors.append(_isa_error("001", "IEA02 does not match ISA13"))
            if iea[1] != str(len(interchange.groups)):
                interchange.errors.append(_isa_error(
                    "021", f"IEA01 says {iea[1] or 'nothing'}, the interchange holds {len(interchange.groups)} groups"
                ))  # fmt: skip
            groups_closed = True
        else:
            interchange.errors.append(_isa_error("024", f"segment {segment_id[:3]!r} outside a transaction set"))
    if transaction is not None:
        transaction.errors.append(EnvelopeError(
            "transaction", "2", f"transaction {transaction.control_number} has no SE", None, None
        ))  # fmt: skip
    if group is not None:
        group.errors.append(EnvelopeError("group", "3", f"group {group.control_number} has no GE", None))
    if not groups_closed and not any(error.code == "023" for error in interchange.errors):
        interchange.errors.append(_isa_error("023", "the interchange has no IEA"))


def _close_transaction(transaction: RawTransaction, se: list[str]) -> None:
    count, control = _padded(se, 3)[1:3]
    ordinal = len(transaction.segments)
    if control != transaction.control_number:
        transaction.errors.append(EnvelopeError("transaction", "3", "SE02 does not match ST02", "SE", ordinal))
    if count != str(ordinal):
        transaction.errors.append(EnvelopeError(
            "transaction", "4", f"SE01 says {count or 'nothing'}, the transaction set holds {ordinal} segments",
            "SE", ordinal,
        ))  # fmt: skip


def _padded(elements: list[str], length: int) -> list[str]:
    return elements + [""] * (length - len(elements))


# Writing.

Element = str | Sequence[str]  # a simple element, or a composite's components


def clean_text(text: str, separators: Separators, limit: int) -> str:
    """Free text fit for an element: no separator characters (X12 has no escape), printable ASCII (anything
    else a ``?``), at most ``limit`` characters."""
    text = text.translate(_unprintable(separators))
    if not text.isascii():
        text = text.encode("ascii", "replace").decode("ascii")
    return " ".join(text.split())[:limit].rstrip()


@functools.lru_cache(maxsize=8)
def _unprintable(separators: Separators) -> dict[int, str]:
    """A str.translate table: the separators and the control characters as spaces."""
    banned = {separators.element, separators.component, separators.repetition, separators.segment}
    return {ord(char): " " for char in banned} | {code: " " for code in (*range(32), 127)}


class SegmentWriter:
    """Writes segments with an interchange's separators and counts the segments of the transaction set being
    written (ST to SE)."""

    def __init__(self, separators: Separators = DEFAULT_SEPARATORS, newline: bool = True) -> None:
        self.separators = separators
        self._end = separators.segment + ("\n" if newline else "")
        self._parts: list[str] = []
        self._transaction_start: int | None = None

    def segment(self, segment_id: str, *elements: Element) -> int:
        """Write one segment; trailing empty elements are dropped, as X12 requires. Returns its ordinal in the
        current transaction set (0 outside one)."""
        component = self.separators.component
        values = [segment_id, *(element if element.__class__ is str else component.join(element).rstrip(component)
                                for element in elements)]  # fmt: skip
        while len(values) > 1 and not values[-1]:
            values.pop()
        if segment_id == "ST":
            self._transaction_start = len(self._parts)
        self._parts.append(self.separators.element.join(values) + self._end)
        return 0 if self._transaction_start is None else len(self._parts) - self._transaction_start

    def close_transaction(self, control_number: str) -> None:
        """Write the SE with the count of the transaction set's segments."""
        if self._transaction_start is None:
            raise ValueError("no transaction set is open")
        count = len(self._parts) - self._transaction_start + 1
        self.segment("SE", str(count), control_number)
        self._transaction_start = None

    def text(self) -> str:
        return "".join(self._parts)


def write_interchange(
    header: InterchangeHeader | None,
    control_number: int,
    created_at: datetime,
    group: tuple[str, str, Iterable[tuple[str, Iterable[tuple[str, list[Element]]]]]] | None,
    prefix: Iterable[tuple[str, list[Element]]] = (),
) -> str:
    """An interchange answering ``header``'s sender (ISA with sender and receiver swapped, its separators):
    ``prefix`` segments (a TA1) after the ISA, then, unless ``group`` is None, one functional group
    ``(functional id, version, transactions)`` whose transactions are (control number, segments from ST on;
    the SE is written here with the count); then IEA. ``control_number`` is the ISA13 and the GS06."""
    seps = header.separators if header else DEFAULT_SEPARATORS
    writer = SegmentWriter(seps)
    # The answer goes back to whoever sent the interchange; without a readable ISA, to nobody in particular.
    sender_q, sender = (header.receiver_qualifier, header.receiver_id) if header else ("ZZ", "UNKNOWN")
    receiver_q, receiver = (header.sender_qualifier, header.sender_id) if header else ("ZZ", "UNKNOWN")
    isa13 = f"{control_number % 1_000_000_000:09d}"
    usage = header.usage if header and header.usage in ("P", "T") else "P"
    writer.segment(
        "ISA", "00", " " * 10, "00", " " * 10, sender_q, f"{sender:<15.15}", receiver_q, f"{receiver:<15.15}",
        created_at.strftime("%y%m%d"), created_at.strftime("%H%M"), seps.repetition, "00501", isa13, "0", usage,
        seps.component,
    )  # fmt: skip
    for segment_id, elements in prefix:
        writer.segment(segment_id, *elements)
    if group is not None:
        functional_id, version, transactions = group
        group_control = str(control_number % 1_000_000_000)
        writer.segment("GS", functional_id, sender, receiver, created_at.strftime("%Y%m%d"),
                       created_at.strftime("%H%M"), group_control, "X", version)  # fmt: skip
        count = 0
        for st_control, segments in transactions:
            count += 1
            for segment_id, elements in segments:
                writer.segment(segment_id, *elements)
            writer.close_transaction(st_control)
        writer.segment("GE", str(count), group_control)
    writer.segment("IEA", "1" if group is not None else "0", isa13)
    return writer.text()
