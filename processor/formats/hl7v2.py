r"""HL7 v2 lab orders in (ORM^O01, OML^O21; v2.3 to v2.6, written for 2.5.1) and their acknowledgments out
(ACK for an ORM, ORL^O22 for an OML; v2.5.1).

``parse_hl7(raw)`` reads one message or a batch (FHS/BHS ... BTS/FTS) of them and gives, per order, an order
event in the order schema and the position of every value it took (``tests[1].code`` → ``OBR-4.1 (segment
9)``), so a reason names the segment and field the ordering system must fix. What maps where:

- ``order_id``: ORC-2 (placer order number), else OBR-2. Consecutive ORC groups of one message with the same
  placer order number are one order with several tests; each other ORC group is an order of its own.
- ``lab_id``: MSH-6 (receiving facility); ``ordering_provider.npi``: ORC-12, else OBR-16 (the repetition
  whose identifier type, XCN-13, or assigning authority, XCN-9, says NPI, or says nothing).
- ``patient``: PID-7 (birth date) and PID-8 (sex: M, F, anything else U); an empty field is left out, so the
  engine answers "required field missing" (HL7 101) at it.
- ``member`` (optional): ``id`` the first PID-3 repetition whose identifier type (CX-5) is MB or MI, else
  IN1-36 (policy number) of the first IN1; ``payer_id`` IN1-3.1 (insurance company id). No member id, no
  member. Its position names the repetition: ``PID-3(2).1``, ERR-2 ``PID^1^3^2^1``.
- ``collection_date``: OBR-7 of the order's first OBR, else SPM-17 (OML's specimen), else TQ1-7.
- ``tests``: OBR-4 (code, coding system: LN LOINC, C4 CPT, HCPCS), one per OBR; ``diagnoses``: DG1-3 of the
  order's OBRs (I10C / I10 ICD-10-CM, I9C ICD-9-CM).

Errors are values: a message that cannot be read (no MSH, a type other than ORM^O01 / OML^O21, a version it
does not know, an OBR before any ORC) carries an ``error`` with its HL7 condition code (table 0357: 100
segment sequence error, 200 unsupported message type, 201 unsupported event, 203 unsupported version) and
no orders; its acknowledgment is an AR, and the record a dead letter.

The acknowledgment of a message takes each order's decision record: MSA-1 the worst (AR over AE over AA),
one ERR per reason with ERR-2 the exact location of the field in the message (its segment occurrence, from
the positions; the location ``engine/answers.py`` gives by the field's name when the message has none), ERR-3
the condition code and ERR-4 the severity from the reason, ERR-5 the rule id and ERR-8 its message. ORL^O22
adds, per order group, the ORC with order control OK (accepted; order status HD when held for review) or UA
(unable to accept) and the OBR it answers.

The reader is this module's own: 70 to 110 µs for the two-order ORM^O01 of the fixtures (about 50 µs an
order), against 0.6 to 1 ms for python-hl7's parse (segments only) and 17 to 24 ms for hl7apy's parser with
its message structures (``python -m processor.formats.measure``). The tests use hl7apy, off the hot path, to
check the ACK and ORL^O22 written against the v2.5.1 structures; it cannot check the inputs, since it takes
ORM^O01's OBR/RQD/RQ1/RXO/ODS/ODT choice for a sequence of all six and groups an OML^O21's second ORC into
the previous order's PRIOR_RESULT. The acknowledgments echo MSH-3 to MSH-6, ORC-2, OBR-4 and PID as received,
in the message's own escaping: a message with delimiters other than ``|^~\&`` is answered with the standard
ones around those echoes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from processor.code_systems import CPT, HCPCS, ICD10CM, LOINC
from processor.formats.detect import decode_text
from processor.formats.positions import position_of

ICD9CM = "ICD-9-CM"
SUPPORTED_MESSAGES = {("ORM", "O01"), ("OML", "O21")}
SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6"})
# PID-3 identifier types (CX-5, table 0203) of a member id: MB member number, MI member identification.
MEMBER_ID_TYPES = frozenset({"MB", "MI"})
RESPONSE_VERSION = "2.5.1"
# HL7 table 0396 coding systems, as the project names them.
CODING_SYSTEMS = {
    "LN": LOINC, "C4": CPT, "C5": CPT, "CPT": CPT, "HCPCS": HCPCS, "HPC": HCPCS,
    "I10C": ICD10CM, "I10": ICD10CM, "ICD10CM": ICD10CM, "ICD-10-CM": ICD10CM, "I9C": ICD9CM, "I9": ICD9CM,
}  # fmt: skip
# HL7 table 0357 texts of the conditions a reason or a reading error gives.
CONDITIONS = {
    "100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
    "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
    "203": "Unsupported version id", "207": "Application internal error",
}  # fmt: skip
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_SEVERITY = {"AA": 0, "AE": 1, "AR": 2}


class Hl7Position(NamedTuple):
    """Where a value sits in an HL7 v2 message: the segment, which occurrence of it (``sequence``, 1 for the
    first OBR), the field, the component, the segment's ordinal in the message (MSH = 1), and which repetition
    of the field (1 for the first: PID-3 repeats, one identifier each)."""

    segment: str
    sequence: int
    field: int
    component: int | None
    ordinal: int
    repetition: int = 1

    def __str__(self) -> str:
        """``OBR-4.1 (segment 5)``; ``PID-3(2).1 (segment 2)`` for a field's second repetition."""
        component = f".{self.component}" if self.component else ""
        repetition = f"({self.repetition})" if self.repetition > 1 else ""
        return f"{self.segment}-{self.field}{repetition}{component} (segment {self.ordinal})"

    @property
    def erl(self) -> str:
        """The ERR-2 error location (ERL): ``OBR^2^4``, for a component ``OBR^2^4^1^1``, for a repetition of a
        field ``PID^1^3^2^1``."""
        base = f"{self.segment}^{self.sequence}^{self.field}"
        if self.component:
            return f"{base}^{self.repetition}^{self.component}"
        return f"{base}^{self.repetition}" if self.repetition > 1 else base


# A position made without NamedTuple's keyword handling: a message makes a few dozen.
_at = functools.partial(tuple.__new__, Hl7Position)


def _position(segment: str, sequence: int, field: int, component: int | None, ordinal: int,
              repetition: int = 1) -> Hl7Position:  # fmt: skip
    return _at((segment, sequence, field, component, ordinal, repetition))


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters a message declares in MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


STANDARD_ENCODING = Encoding()


@dataclass(frozen=True, slots=True)
class Hl7Error:
    """Why a message could not be read: its HL7 condition (table 0357), a message that names segments and
    fields only, and where, if anywhere."""

    condition: str
    message: str
    location: Hl7Position | None = None


@dataclass(frozen=True, slots=True)
class OrderGroup:
    """An ORC group as received, for the ORL^O22 to answer: ORC-2, and the OBR's set id, OBR-2 and OBR-4."""

    placer: str
    obr_set_id: str
    obr_placer: str
    service: str


@dataclass(frozen=True, slots=True)
class Hl7Order:
    """One lab order of a message: its event (order schema), the position of each field, and the ORC groups
    it was read from."""

    event: dict[str, Any] = field(repr=False)
    positions: dict[str, Hl7Position] = field(repr=False)
    groups: tuple[OrderGroup, ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Hl7Message:
    """One message as read: MSH-9 (``ORM^O01``), MSH-10, MSH-12, the applications and facilities that an
    acknowledgment swaps, its orders, and the error that stopped it (then it has no orders). ``pid`` is the
    PID segment as received (protected health information, kept out of ``repr``), which ORL^O22 repeats."""

    message_type: str
    control_id: str
    version: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    processing_id: str
    orders: tuple[Hl7Order, ...] = ()
    error: Hl7Error | None = None
    pid: str | None = field(default=None, repr=False)

    @property
    def response_type(self) -> str:
        """ORL^O22 answers an OML^O21; ACK answers anything else."""
        return "ORL^O22" if self.message_type.startswith("OML") else "ACK"


@dataclass(frozen=True, slots=True)
class ParsedHl7:
    """What ``parse_hl7`` read: the messages, and the batch header (BHS, or FHS) when they came in a batch."""

    messages: tuple[Hl7Message, ...]
    batch: bool = False

    @property
    def orders(self) -> list[Hl7Order]:
        return [order for message in self.messages for order in message.orders]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [order.event for order in self.orders]

    @property
    def failure(self) -> str | None:
        """Why a message could not be read, for a dead letter (names segments and fields, never content)."""
        for message in self.messages:
            if message.error is not None:
                where = f" at {message.error.location}" if message.error.location else ""
                return (f"HL7 message {message.control_id or '(no MSH-10)'} rejected (condition "
                        f"{message.error.condition}){where}: {message.error.message}")  # fmt: skip
        return None


def parse_hl7(raw: bytes) -> ParsedHl7:
    """Read an HL7 v2 message, or a batch of them, into order events with their positions. Never raises."""
    lines = [line for line in re.split(r"\r\n|\r|\n", decode_text(raw)) if line.strip()]
    batch = bool(lines) and lines[0][:3] in ("FHS", "BHS")
    messages: list[list[str]] = []
    for line in lines:
        if line.startswith("MSH"):
            messages.append([line])
        elif line[:3] in ("FHS", "BHS", "BTS", "FTS"):
            continue
        elif messages:
            messages[-1].append(line)
        else:
            messages.append([line])  # content before any MSH: a message without its header
    if not messages:
        return ParsedHl7((_unreadable("100", "no MSH segment"),), batch)
    return ParsedHl7(tuple(_read_message(segments) for segments in messages), batch)


def _unreadable(condition: str, message: str, location: Hl7Position | None = None) -> Hl7Message:
    return Hl7Message("", "", "", "", "", "", "", "", (), Hl7Error(condition, message, location))


def _read_message(segments: list[str]) -> Hl7Message:
    msh = segments[0]
    if not msh.startswith("MSH") or len(msh) < 8:
        return _unreadable("100", "the message does not start with an MSH segment", Hl7Position("MSH", 1, 1, None, 1))
    separator = msh[3]
    encoding_chars = msh[4:].split(separator, 1)[0]
    if separator.isalnum() or len(encoding_chars) < 4 or separator in encoding_chars:
        return _unreadable("102", "MSH-1 and MSH-2 declare no usable delimiters", Hl7Position("MSH", 1, 2, None, 1))
    encoding = Encoding(separator, encoding_chars[0], encoding_chars[1], encoding_chars[2], encoding_chars[3])
    fields = ["", *msh.split(separator)]  # MSH-1 is the separator itself: MSH-n is fields[n]
    fields[1] = separator

    def msh_field(n: int) -> str:
        return fields[n] if n < len(fields) else ""

    message_type = msh_field(9).split(encoding.component)
    code, event = message_type[0], message_type[1] if len(message_type) > 1 else ""
    version = msh_field(12).split(encoding.component)[0]
    header = {
        "message_type": f"{code}^{event}" if event else code, "control_id": msh_field(10), "version": version,
        "sending_application": msh_field(3), "sending_facility": msh_field(4),
        "receiving_application": msh_field(5), "receiving_facility": msh_field(6), "processing_id": msh_field(11),
    }  # fmt: skip
    error = None
    if code not in ("ORM", "OML"):
        error = Hl7Error("200", f"message type {code[:3]!r} is not ORM or OML", Hl7Position("MSH", 1, 9, 1, 1))
    elif (code, event) not in SUPPORTED_MESSAGES:
        error = Hl7Error("201", f"event {event[:3]!r} is not {'O01' if code == 'ORM' else 'O21'}",
                         Hl7Position("MSH", 1, 9, 2, 1))  # fmt: skip
    elif version not in SUPPORTED_VERSIONS:
        error = Hl7Error("203", f"version {version[:8]!r} is not one of 2.3 to 2.6", Hl7Position("MSH", 1, 12, 1, 1))
    if error is not None:
        return Hl7Message(**header, error=error)
    reader = _Reader(encoding, msh_field(6))
    reader.read(segments)
    if reader.error is not None:
        return Hl7Message(**header, error=reader.error)
    return Hl7Message(**header, orders=tuple(reader.orders()), pid=reader.pid)


@dataclass(slots=True)
class _Group:
    """An ORC group being read: its placer number, tests, diagnoses and dates, with their positions."""

    placer: str
    placer_field: str  # ORC-2 (else OBR-2) as received, which an ORL repeats
    placer_at: Hl7Position
    provider: tuple[str, Hl7Position] | None
    tests: list[tuple[dict[str, str], Hl7Position, Hl7Position]] = field(default_factory=list)
    diagnoses: list[tuple[dict[str, str], Hl7Position, Hl7Position]] = field(default_factory=list)
    collection: tuple[str, Hl7Position] | None = None
    fallback_collection: tuple[str, Hl7Position] | None = None
    answered: list[OrderGroup] = field(default_factory=list)


class _Reader:
    """Walks one message's segments after the MSH, keeping the current ORC group."""

    def __init__(self, encoding: Encoding, receiving_facility: str) -> None:
        self.encoding = encoding
        self.lab = receiving_facility.split(encoding.component)
        self.error: Hl7Error | None = None
        self.pid: str | None = None
        self.patient: dict[str, str] = {}
        self.patient_positions: dict[str, Hl7Position] = {}
        self.member_id: tuple[str, Hl7Position] | None = None  # PID-3 of type MB or MI
        self.policy: tuple[str, Hl7Position] | None = None  # IN1-36
        self.payer: tuple[str, Hl7Position] | None = None  # IN1-3
        self.groups: list[_Group] = []
        self.counts: dict[str, int] = {"MSH": 1}

    def read(self, segments: list[str]) -> None:
        separator, counts, well_formed = self.encoding.field, self.counts, set()
        handlers = {"PID": self._pid, "ORC": self._orc, "OBR": self._obr, "DG1": self._dg1, "SPM": self._spm,
                    "TQ1": self._tq1, "IN1": self._in1}  # fmt: skip
        for ordinal, segment in enumerate(segments[1:], start=2):
            segment_id = segment[:3]
            if segment_id not in well_formed:
                if not _SEGMENT_ID.fullmatch(segment_id) or (len(segment) > 3 and segment[3] != separator):
                    self.error = Hl7Error(
                        "100", f"segment {ordinal} has no segment id", _position("MSH", 1, 1, None, 1)
                    )
                    return
                well_formed.add(segment_id)
            sequence = counts[segment_id] = counts.get(segment_id, 0) + 1
            handler = handlers.get(segment_id)
            if handler is not None:
                handler(segment.split(separator), sequence, ordinal, segment)
                if self.error is not None:
                    return

    def _value(self, value: str) -> str:
        return _unescape(value, self.encoding) if self.encoding.escape in value else value

    def _components(self, fields: list[str], n: int) -> list[str]:
        """The components of field ``n``'s first repetition, unescaped."""
        value = fields[n] if n < len(fields) else ""
        parts = value.split(self.encoding.repetition, 1)[0].split(self.encoding.component)
        return [self._value(part) for part in parts] if self.encoding.escape in value else parts

    def _pid(self, fields: list[str], sequence: int, ordinal: int, segment: str) -> None:
        if sequence > 1:
            return
        self.pid = segment
        birth = self._components(fields, 7)[0][:8]
        sex = self._components(fields, 8)[0].upper()
        self.patient_positions["patient.birth_date"] = _position("PID", sequence, 7, None, ordinal)
        self.patient_positions["patient.sex"] = _position("PID", sequence, 8, None, ordinal)
        self.patient_positions["patient"] = _position("PID", sequence, 3, None, ordinal)
        if birth:
            self.patient["birth_date"] = _date(birth)
        if sex:
            self.patient["sex"] = sex if sex in ("M", "F") else "U"
        identifiers = fields[3] if len(fields) > 3 else ""
        for repetition, text in enumerate(identifiers.split(self.encoding.repetition), start=1):
            parts = text.split(self.encoding.component)
            kind = parts[4].split(self.encoding.subcomponent)[0].upper() if len(parts) > 4 else ""
            if parts[0] and kind in MEMBER_ID_TYPES:
                self.member_id = (self._value(parts[0]), _position("PID", sequence, 3, 1, ordinal, repetition))
                break

    def _in1(self, fields: list[str], sequence: int, ordinal: int, segment: str) -> None:
        if sequence > 1:
            return  # the first insurance (IN1-1 set id 1) is the one billed first
        insurer = self._components(fields, 3)[0]
        policy = self._components(fields, 36)[0]
        if insurer:
            self.payer = (insurer, _position("IN1", sequence, 3, 1, ordinal))
        if policy:
            self.policy = (policy, _position("IN1", sequence, 36, None, ordinal))

    def member(self, positions: dict[str, Hl7Position]) -> dict[str, str] | None:
        """The patient's member id (PID-3 of type MB/MI, else IN1-36) and payer (IN1-3); None without an id."""
        found = self.member_id or self.policy
        if found is None:
            return None
        member = {"id": found[0]}
        positions["member"] = positions["member.id"] = found[1]
        if self.payer is not None:
            member["payer_id"], positions["member.payer_id"] = self.payer
        return member

    def _orc(self, fields: list[str], sequence: int, ordinal: int, segment: str) -> None:
        placer = self._components(fields, 2)[0]
        provider = self._provider(fields, 12, "ORC", sequence, ordinal)
        placer_field = fields[2] if len(fields) > 2 else ""
        self.groups.append(_Group(placer, placer_field, _position("ORC", sequence, 2, 1, ordinal), provider))

    def _obr(self, fields: list[str], sequence: int, ordinal: int, segment: str) -> None:
        if not self.groups:
            self.error = Hl7Error("100", "an OBR before any ORC", _position("OBR", sequence, 1, None, ordinal))
            return
        group = self.groups[-1]
        service = self._components(fields, 4)
        code = service[0]
        system = service[2] if len(service) > 2 else ""
        test = {"code": code, "system": CODING_SYSTEMS.get(system.upper(), system)}
        group.tests.append((test, _position("OBR", sequence, 4, 1, ordinal), _position("OBR", sequence, 4, 3,
                                                                                            ordinal)))  # fmt: skip
        raw = fields + [""] * 5
        if not group.placer:
            group.placer, group.placer_field = self._components(fields, 2)[0], raw[2]
            group.placer_at = _position("OBR", sequence, 2, 1, ordinal)
        if group.provider is None:
            group.provider = self._provider(fields, 16, "OBR", sequence, ordinal)
        if group.collection is None:
            observed = self._components(fields, 7)[0][:8]
            at = _position("OBR", sequence, 7, 1, ordinal)
            group.collection = (observed, at) if observed else None
            group.fallback_collection = group.fallback_collection or ("", at)
        group.answered.append(OrderGroup(group.placer_field, raw[1], raw[2], raw[4]))

    def _dg1(self, fields: list[str], sequence: int, ordinal: int, segment: str) -> None:
        if not self.groups:
            return  # a DG1 of the patient, before any order: no order to attach it to
        coded = self._components(fields, 3)
        system = coded[2] if len(coded) > 2 else ""
        diagnosis = {"code": coded[0], "system": CODING_SYSTEMS.get(system.upper(), system)}
        self.groups[-1].diagnoses.append((diagnosis, _position("DG1", sequence, 3, 1, ordinal),
                                          _position("DG1", sequence, 3, 3, ordinal)))  # fmt: skip

    def _spm(self, fields: list[str], sequence: int, ordinal: int, segment: str) -> None:
        if self.groups and self.groups[-1].collection is None:
            collected = self._components(fields, 17)[0][:8]
            if collected:
                self.groups[-1].collection = (collected, _position("SPM", sequence, 17, 1, ordinal))

    def _tq1(self, fields: list[str], sequence: int, ordinal: int, segment: str) -> None:
        if self.groups and self.groups[-1].collection is None:
            start = self._components(fields, 7)[0][:8]
            if start:
                self.groups[-1].fallback_collection = (start, _position("TQ1", sequence, 7, 1, ordinal))

    def _provider(self, fields: list[str], n: int, segment: str, sequence: int, ordinal: int) -> Any:
        """The NPI in an XCN field: the repetition whose identifier type (XCN-13) or assigning authority
        (XCN-9) is NPI, or that names none."""
        value = fields[n] if n < len(fields) else ""
        for text in value.split(self.encoding.repetition):
            parts = text.split(self.encoding.component)
            kind = (parts[12] if len(parts) > 12 else "") or (parts[8] if len(parts) > 8 else "")
            if parts[0] and kind.split(self.encoding.subcomponent)[0].upper() in ("NPI", ""):
                return (self._value(parts[0]), _position(segment, sequence, n, 1, ordinal))
        return None

    def orders(self) -> list[Hl7Order]:
        merged: list[list[_Group]] = []
        for group in self.groups:
            if merged and group.placer and merged[-1][0].placer == group.placer:
                merged[-1].append(group)
            else:
                merged.append([group])
        return [self._order(groups) for groups in merged]

    def _order(self, groups: list[_Group]) -> Hl7Order:
        first = groups[0]
        positions: dict[str, Hl7Position] = {"order_id": first.placer_at, "lab_id": _position("MSH", 1, 6, 1, 1)}
        positions.update(self.patient_positions)
        provider = next((group.provider for group in groups if group.provider), None)
        collection = next((group.collection for group in groups if group.collection), None)
        fallback = next((group.fallback_collection for group in groups if group.fallback_collection), None)
        event: dict[str, Any] = {
            "order_id": first.placer,
            "lab_id": self._value(self.lab[1] if not self.lab[0] and len(self.lab) > 1 else self.lab[0]),
            "ordering_provider": {"npi": provider[0]} if provider else {},
            "patient": dict(self.patient),
        }
        if provider:
            positions["ordering_provider.npi"] = positions["ordering_provider"] = provider[1]
        member = self.member(positions)
        if member is not None:
            event["member"] = member
        when = collection or fallback
        if when and when[0]:
            event["collection_date"] = _date(when[0])
        if when:
            positions["collection_date"] = when[1]
        event["tests"] = _listed("tests", [test for group in groups for test in group.tests], positions)
        diagnoses = []
        for group in groups:
            for diagnosis in group.diagnoses:
                if diagnosis[0] not in [seen[0] for seen in diagnoses]:
                    diagnoses.append(diagnosis)
        event["diagnoses"] = _listed("diagnoses", diagnoses, positions)
        return Hl7Order(event, positions, tuple(answer for group in groups for answer in group.answered))


def _listed(name: str, items: list[tuple[dict[str, str], Hl7Position, Hl7Position]],
            positions: dict[str, Hl7Position]) -> list[dict[str, str]]:  # fmt: skip
    for index, (_, code, system) in enumerate(items):
        positions[f"{name}[{index}]"] = positions[f"{name}[{index}].code"] = code
        positions[f"{name}[{index}].system"] = system
    if items:
        positions[name] = items[0][1]
    return [values for values, _, _ in items]


def _date(value: str) -> str:
    """An HL7 DTM's date (YYYYMMDD...) as YYYY-MM-DD; anything shorter as it is (the schema then names it)."""
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


@functools.lru_cache(maxsize=1024)
def _unescape(value: str, encoding: Encoding) -> str:
    e = encoding.escape
    for sequence, char in (("F", encoding.field), ("S", encoding.component), ("T", encoding.subcomponent),
                           ("R", encoding.repetition), ("E", encoding.escape)):  # fmt: skip
        value = value.replace(f"{e}{sequence}{e}", char)
    return value


def escape(text: str, encoding: Encoding = STANDARD_ENCODING) -> str:
    """Text fit for an HL7 field: the delimiters as escape sequences, line breaks as spaces."""
    e = encoding.escape
    text = text.replace(e, f"{e}E{e}")
    for char, sequence in ((encoding.field, "F"), (encoding.component, "S"), (encoding.subcomponent, "T"),
                           (encoding.repetition, "R")):  # fmt: skip
        text = text.replace(char, f"{e}{sequence}{e}")
    return " ".join(text.split())


# Acknowledgments.


def build_hl7_response(
    parsed: ParsedHl7, decisions: Sequence[dict[str, Any]], *, control_id: str, created_at: datetime
) -> str:
    """The acknowledgments of every message of ``parsed``: ``decisions`` are the decision records of its
    orders, in the order of ``parsed.orders``. An ACK for an ORM, an ORL^O22 for an OML (and an ACK with AR
    for a message that could not be read); a batch answers in a batch (BHS ... BTS)."""
    orders = parsed.orders
    if len(decisions) != len(orders):
        raise ValueError(f"{len(decisions)} decisions for {len(orders)} orders")
    answers, start = [], 0
    for number, message in enumerate(parsed.messages, start=1):
        count = len(message.orders)
        own = list(decisions[start:start + count])  # fmt: skip
        start += count
        message_control = control_id if len(parsed.messages) == 1 else f"{control_id}-{number}"
        answers.append(build_response(message, own, control_id=message_control, created_at=created_at))
    if not parsed.batch:
        return "".join(answers)
    stamp = created_at.strftime("%Y%m%d%H%M%S")
    return f"BHS|^~\\&|||||{stamp}||||{escape(control_id)}\r" + "".join(answers) + f"BTS|{len(answers)}\r"


def build_response(
    message: Hl7Message, decisions: Sequence[dict[str, Any]], *, control_id: str, created_at: datetime
) -> str:
    """The acknowledgment of one message: ORL^O22 for an OML^O21 that was read, else an ACK."""
    if message.response_type == "ORL^O22" and message.error is None:
        return build_orl(message, decisions, control_id=control_id, created_at=created_at)
    return build_ack(message, decisions, control_id=control_id, created_at=created_at)


def build_ack(
    message: Hl7Message, decisions: Sequence[dict[str, Any]], *, control_id: str, created_at: datetime
) -> str:
    """An ACK (v2.5.1): MSH, MSA and an ERR per reason of the message's orders, or one for the error that
    stopped the message."""
    event = message.message_type.split("^")[1] if "^" in message.message_type else ""
    segments = [_msh(message, f"ACK^{event}^ACK" if event else "ACK", control_id, created_at),
                *_msa_err(message, decisions)]  # fmt: skip
    return "".join(segment + "\r" for segment in segments)


def build_orl(
    message: Hl7Message, decisions: Sequence[dict[str, Any]], *, control_id: str, created_at: datetime
) -> str:
    """An ORL^O22 (v2.5.1): MSH, MSA, ERRs, then the patient (PID as received) and per ORC group its ORC
    (order control OK or UA, order status HD when held for review) and the OBR it answers."""
    segments = [_msh(message, "ORL^O22^ORL_O22", control_id, created_at), *_msa_err(message, decisions)]
    if message.pid is not None:
        segments.append(message.pid)
        for order, decision in zip(message.orders, decisions, strict=True):
            outcome = decision["outcome"]
            control = "UA" if outcome == "returned" else "OK"
            status = "HD" if outcome == "needs_review" else ""
            for group in order.groups:
                segments.append(f"ORC|{control}|{group.placer}|||{status}".rstrip("|"))
                segments.append(f"OBR|{group.obr_set_id}|{group.obr_placer}||{group.service}")
    return "".join(segment + "\r" for segment in segments)


def _msh(message: Hl7Message, message_type: str, control_id: str, created_at: datetime) -> str:
    processing = message.processing_id or "P"
    return (f"MSH|^~\\&|{message.receiving_application}|{message.receiving_facility}|{message.sending_application}|"
            f"{message.sending_facility}|{created_at.strftime('%Y%m%d%H%M%S')}||{message_type}|{escape(control_id)}|"
            f"{processing}|{RESPONSE_VERSION}")  # fmt: skip


def _msa_err(message: Hl7Message, decisions: Sequence[dict[str, Any]]) -> list[str]:
    if message.error is not None:
        error = message.error
        location = error.location.erl if error.location else ""
        return [f"MSA|AR|{escape(message.control_id)}",
                f"ERR||{location}|{error.condition}^{CONDITIONS[error.condition]}^HL70357|E||||"
                f"{escape(error.message)}"]  # fmt: skip
    acks = [decision.get("hl7_ack", "AA") for decision in decisions]
    worst = max(acks, key=_SEVERITY.__getitem__, default="AA")
    segments = [f"MSA|{worst}|{escape(message.control_id)}"]
    for order, decision in zip(message.orders, decisions, strict=True):
        for reason in decision.get("reasons", ()):
            hl7 = reason["hl7"]
            position = position_of(order.positions, reason["field"])
            location = position.erl if position is not None else (hl7["location"] or "")
            condition = hl7["condition"]
            segments.append(f"ERR||{location}|{condition}^{CONDITIONS.get(condition, '')}^HL70357|"
                            f"{hl7['severity']}|{escape(reason['id'])}|||{escape(reason['message'])}")  # fmt: skip
    return segments
