"""One Kafka record of an input topic, in whatever format it came: its events, and the responses for the
submitter, as the worker handles them. Pure: no Kafka, no engine call; the worker decides the events (through
``routing``) and publishes what this returns, all in the record's transaction.

``read_record`` tells the record's format from its ``content-type`` header (``formats.detect``: the header
when it names a known type, else the first bytes) and reads it:

- the project's own JSON event (or anything no format claims) is one event, the value as it is, decided as
  the topics always decided it (``source`` topic, partition, offset; a refusal is a dead letter);
- an X12 837 interchange, an HL7 v2 message or batch, a FHIR resource or Bundle (``documents.py``) is one
  event per claim or order, each with ``source`` topic, partition, offset and ``index`` (its place among the
  record's events, from 0), and ``seen_at`` ``partition:offset:index`` for the duplicate window: a replay of
  the record gives the same events, so the same keys and the same decisions.

``ReadRecord.responses(decisions)`` then builds the record's answers for the ``responses`` topic
(``schemas/response.schema.json``): a 999 (a TA1 when the envelope is unreadable) and a 277CA for an 837, an
ACK or ORL^O22 for HL7 v2, a ClaimResponse, OperationOutcome or Bundle for FHIR. A record that could not be
read has no events and its ``failure`` (for its dead letter), and still gets its rejection: never silence,
never an exception. The control numbers come from the record's partition and offset (``control_numbers``)
and the answers' time from its timestamp, so a replay after a crash, whose transaction was aborted, publishes
byte-identical responses: exactly one set of them is ever committed, and it is the same whichever attempt
commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from processor.formats.detect import Format, detect
from processor.formats.documents import DOCUMENT_FORMATS, ControlNumbers, Document, answer, read_document
from processor.formats.fhir import ParsedFhir
from processor.formats.hl7v2 import ParsedHl7
from processor.formats.x12_837 import Parsed837

CONTENT_TYPE_HEADER = "content-type"
RESPONSE_CONTENT_TYPES = {
    Format.X12: "application/edi-x12",
    Format.HL7V2: "x-application/hl7-v2+er7",
    Format.FHIR: "application/fhir+json",
}
_CONTROL_LIMIT = 999_999_999  # ISA13 runs 000000001 to 999999999
_PARTITION_SPAN = 1024  # partitions whose records of one offset get distinct X12 control numbers

Headers = Iterable[tuple[str, bytes | None]]  # aiokafka's ``ConsumerRecord.headers``; confluent-kafka's list


def content_type(headers: Headers | None) -> str | None:
    """The value of a record's ``content-type`` header (the name in any case; the last one when repeated);
    None without one."""
    found = None
    for name, value in headers or ():
        if value is not None and name.lower() == CONTENT_TYPE_HEADER:
            found = value.decode("latin-1")  # any bytes: an unknown type then falls back to the first bytes
    return found


def control_numbers(partition: int, offset: int) -> ControlNumbers:
    """The control numbers of the answers to the record at ``partition`` and ``offset``, and nothing else, so a
    replay gives the same: the 999's ISA13 ``(offset * 2048 + partition * 2) % 999_999_999 + 1`` and the
    277CA's the next. As 2,048 and 999,999,999 share no factor, the numbers of one partition repeat only after
    999,999,999 offsets, and the records of one offset in up to 1,024 partitions never share one. HL7 v2:
    MSH-10 ``partition-offset`` (the 20 characters of MSH-10 hold an offset of 15 digits)."""
    place = (offset * _PARTITION_SPAN + partition) * 2
    return ControlNumbers(place % _CONTROL_LIMIT + 1, (place + 1) % _CONTROL_LIMIT + 1, f"{partition}-{offset}")


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """One event of a record, ready for ``routing.decide_value``: its ``kind`` (claim or order; None for a JSON
    record, whose topic says), its ``value`` (the JSON event; a JSON record's value as it came), its ``index``
    among the record's events, the ``source`` its decision record carries and ``seen_at``, its place as the
    duplicate window names it."""

    kind: str | None
    value: bytes | None = field(repr=False)
    index: int
    source: dict[str, Any]
    seen_at: str


class ResponseSource(msgspec.Struct, frozen=True):
    """The input record a response answers."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class Correlation(msgspec.Struct, frozen=True):
    """What the submitter matches a response with, from the input's envelope (no protected health information):
    X12 ISA06, ISA08 and ISA13; HL7 v2 MSH-4 (else MSH-3), MSH-6 (else MSH-5) and MSH-10; FHIR the body's
    ``resourceType/id``."""

    sender: str | None
    receiver: str | None
    control_number: str | None


class ResponseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A record of the ``responses`` topic (``schemas/response.schema.json``)."""

    format: str  # x12, hl7v2, fhir: the schema gives each field's values
    type: str
    content_type: str
    control_number: str | None
    text: str
    events: int
    source: ResponseSource
    correlation: Correlation
    created_at: str

    def __repr__(self) -> str:  # the text repeats protected health information: keep it out of logs
        where = f"{self.source.topic}:{self.source.partition}:{self.source.offset}"
        return f"ResponseRecord({self.type} {self.control_number} answering {where})"

    def encode(self) -> bytes:
        """The record's value: JSON, the fields in the schema's order."""
        return _ENCODER.encode(self)


_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class ReadRecord:
    """What ``read_record`` made of one input record: its format, its events, why (part of) it could not be
    read (``failure``, for a dead letter: never quotes content), and, for a document format, the document the
    responses answer."""

    format: Format
    topic: str
    partition: int
    offset: int
    timestamp: int
    events: tuple[RecordEvent, ...]
    failure: str | None = None
    document: Document | None = field(default=None, repr=False)

    @property
    def key(self) -> bytes:
        """The key of its responses: ``topic:partition:offset`` of the input."""
        return f"{self.topic}:{self.partition}:{self.offset}".encode()

    def responses(self, decisions: Sequence[dict[str, Any] | bytes | None]) -> list[ResponseRecord]:
        """The responses to the record, built from the decision records of its events (one per event, in the
        order of ``events``, as dicts or as published bytes; None for an event that was dead-lettered, which the
        answers leave out). None for a JSON record: the decision topics answer it."""
        document = self.document
        if document is None:
            return []
        records = [orjson.loads(decision) if isinstance(decision, bytes) else decision for decision in decisions]
        created_at = datetime.fromtimestamp(max(self.timestamp, 0) / 1000, UTC)
        answers = answer(document, records, control_numbers(self.partition, self.offset), created_at)
        source = ResponseSource(self.topic, self.partition, self.offset, self.timestamp)
        correlation = _correlation(document)
        stamp = created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        form, content = document.format, RESPONSE_CONTENT_TYPES[document.format]
        return [
            ResponseRecord(
                format=form.value,
                type=found.type,
                content_type=content,
                control_number=found.control_number,
                text=found.content.decode(),
                events=len(document.events),
                source=source,
                correlation=correlation,
                created_at=stamp,
            )
            for found in answers
        ]


def read_record(
    value: bytes | None, headers: Headers | None, topic: str, partition: int, offset: int, timestamp: int = 0
) -> ReadRecord:
    """Read one input record: ``value`` and ``headers`` as the consumer hands them over, ``topic``,
    ``partition``, ``offset`` and ``timestamp`` (ms since the epoch) its place. Never raises for what the
    record holds."""
    form = detect(content_type(headers), value)
    if form not in DOCUMENT_FORMATS:
        source = {"topic": topic, "partition": partition, "offset": offset}
        event = RecordEvent(None, value, 0, source, f"{partition}:{offset}")
        return ReadRecord(Format.JSON, topic, partition, offset, timestamp, (event,))
    document = read_document(value or b"", form)
    events = tuple(
        RecordEvent(
            kind,
            orjson.dumps(event),
            index,
            {"topic": topic, "partition": partition, "offset": offset, "index": index},
            f"{partition}:{offset}:{index}",
        )
        for index, (kind, event) in enumerate(document.events)
    )
    return ReadRecord(form, topic, partition, offset, timestamp, events, document.failure, document)


def _correlation(document: Document) -> Correlation:
    parsed = document.parsed
    if isinstance(parsed, Parsed837):
        header = parsed.header
        if header is None:
            return Correlation(None, None, None)
        return Correlation(header.sender_id or None, header.receiver_id or None, header.control_number or None)
    if isinstance(parsed, ParsedHl7):
        first = parsed.messages[0]
        return Correlation(first.sending_facility or first.sending_application or None,
                           first.receiving_facility or first.receiving_application or None,
                           first.control_id or None)  # fmt: skip
    assert isinstance(parsed, ParsedFhir)
    return Correlation(None, None, parsed.reference)
