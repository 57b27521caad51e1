"""One document in a submitter's format, in and out: the events it holds, and the answers to their decisions.

A document is an X12 837 interchange, an HL7 v2 message (or batch) or a FHIR resource (or Bundle), wherever
it comes from: a file (``processor check``) or a Kafka record (``records.py``). ``read_document`` reads it into
``(kind, event)`` pairs in the order of the document; ``answer`` builds what the submitter's system reads from
the decision records of those events: the 999 (or a TA1) and the 277CA, the ACK or ORL^O22, the
ClaimResponse or OperationOutcome (a Bundle of them for a Bundle). An event that could not be decided (its
decision is None: it was dead-lettered) is left out of the answers; an HL7 message with such an order is
rejected whole (AR), as its acknowledgment cannot answer that order.

The answers are pure functions of the document, the decisions, the control numbers and the time: the caller
chooses them (the input's own, echoed, for a file; numbers derived from the record's place for a topic), so
the same input always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from processor.formats.detect import Format
from processor.formats.fhir import FhirError, ParsedFhir, build_fhir_response, parse_fhir
from processor.formats.hl7v2 import Hl7Error, ParsedHl7, build_hl7_response, parse_hl7
from processor.formats.x12_837 import Parsed837, Transaction837, parse_837
from processor.formats.x12_responses import build_277ca, build_999

DOCUMENT_FORMATS = frozenset({Format.X12, Format.HL7V2, Format.FHIR})
_X12_LIMIT = 1_000_000_000  # ISA13 and GS06: nine digits


@dataclass(frozen=True, slots=True)
class Document:
    """A document as read: its format, the parse (``Parsed837``, ``ParsedHl7`` or ``ParsedFhir``) and its
    events as ``(kind, event)`` pairs, kind ``claim`` or ``order``, in the order of the document."""

    format: Format
    parsed: Parsed837 | ParsedHl7 | ParsedFhir
    events: tuple[tuple[str, dict[str, Any]], ...]

    @property
    def failure(self) -> str | None:
        """Why (part of) the document could not be read, for a dead letter or an undecodable line: it names
        segments, fields and control numbers, never content. None when everything was read."""
        return self.parsed.failure


def read_document(raw: bytes, form: Format) -> Document:
    """Read ``raw`` as a document of ``form`` (X12, HL7V2 or FHIR). Never raises for what the bytes hold: what
    breaks the document is in its parse, for the answers to reject; a ``form`` that is no document format is a
    ValueError (a bug in the caller)."""
    if form is Format.X12:
        claims = parse_837(raw)
        return Document(form, claims, tuple(("claim", claim.event) for claim in claims.claims))
    if form is Format.HL7V2:
        orders = parse_hl7(raw)
        return Document(form, orders, tuple(("order", order.event) for order in orders.orders))
    if form is Format.FHIR:
        body = parse_fhir(raw)
        return Document(form, body, tuple((entry.kind, entry.event) for entry in body.entries))
    raise ValueError(f"not a document format: {form}")


@dataclass(frozen=True, slots=True)
class ControlNumbers:
    """The control numbers of the answers: ``interchange`` the 999's (or TA1's) ISA13 and GS06,
    ``claim_acknowledgment`` the 277CA's, ``message`` the MSH-10 of the ACK or ORL^O22 (a batch's BHS-11; its
    messages add ``-1``, ``-2``, ...). FHIR answers carry none."""

    interchange: int
    claim_acknowledgment: int
    message: str


def echoed_control_numbers(document: Document) -> ControlNumbers:
    """Control numbers taken from the input, as ``processor check`` gives them: the 837's ISA13 for the 999 and
    the next number for the 277CA (1 and 2 when the ISA13 cannot be read); ``A`` and the tail of the first
    MSH-10 (MSH-10 is at most 20 characters), else ``1``."""
    parsed = document.parsed
    number = 1
    if isinstance(parsed, Parsed837) and parsed.header and parsed.header.control_number.isdigit():
        number = int(parsed.header.control_number)
    control = ""
    if isinstance(parsed, ParsedHl7):
        control = next((message.control_id for message in parsed.messages if message.control_id), "")
    return ControlNumbers(number, number % (_X12_LIMIT - 1) + 1, f"A{control[-19:]}" if control else "1")


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer to a document: its ``type`` (``999``, ``TA1``, ``277CA``, ``ACK``, ``ORL^O22``,
    ``ClaimResponse``, ``OperationOutcome`` or ``Bundle``), the file suffix ``processor check`` writes it under,
    its bytes and its control number (ISA13 or MSH-10; None for FHIR)."""

    type: str
    suffix: str
    content: bytes
    control_number: str | None


def answer(
    document: Document,
    decisions: Sequence[dict[str, Any] | None],
    controls: ControlNumbers,
    created_at: datetime,
) -> list[Answer]:
    """The answers to ``document``: ``decisions`` are the decision records of its events, one per event in the
    order of ``document.events`` (None: an event that could not be decided). X12: the 999 (a TA1 when the
    envelope could not be read) and, when a claim was decided, the 277CA; HL7 v2: one ACK or ORL^O22 (a batch
    answers in a batch); FHIR: one ClaimResponse, OperationOutcome or Bundle of them."""
    if len(decisions) != len(document.events):
        raise ValueError(f"{len(decisions)} decisions for {len(document.events)} events")
    kept = {index for index, record in enumerate(decisions) if record is not None}
    records = [record for record in decisions if record is not None]
    parsed = document.parsed
    if isinstance(parsed, Parsed837):
        if len(kept) < len(decisions):
            parsed = _keep_837(parsed, kept)
        syntax = build_999(parsed, control_number=controls.interchange, created_at=created_at)
        answers = [Answer("TA1" if parsed.errors or not parsed.groups else "999", ".999", syntax.encode(),
                          _isa13(controls.interchange))]  # fmt: skip
        claim_ack = build_277ca(parsed, records, control_number=controls.claim_acknowledgment, created_at=created_at)
        if claim_ack is not None:
            answers.append(Answer("277CA", ".277ca", claim_ack.encode(), _isa13(controls.claim_acknowledgment)))
        return answers
    if isinstance(parsed, ParsedHl7):
        if len(kept) < len(decisions):
            places = {id(order): index for index, order in enumerate(parsed.orders)}
            parsed = _keep_hl7(parsed, kept)
            records = [record for order in parsed.orders if (record := decisions[places[id(order)]]) is not None]
        first = parsed.messages[0]
        kind = first.response_type if first.error is None else "ACK"
        text = build_hl7_response(parsed, records, control_id=controls.message, created_at=created_at)
        return [Answer(kind, ".ack.hl7", text.encode(), controls.message)]
    if len(kept) < len(decisions):
        entries = tuple(entry for index, entry in enumerate(parsed.entries) if index in kept)
        error = None if entries else FhirError("exception", "no entry of the body could be decided")
        parsed = replace(parsed, entries=entries, error=error)
    response = build_fhir_response(parsed, records, created_at=created_at)
    content = orjson.dumps(response, option=orjson.OPT_INDENT_2) + b"\n"
    return [Answer(response["resourceType"], ".response.json", content, None)]


def _isa13(number: int) -> str:
    """The ISA13 ``write_interchange`` writes for ``number``."""
    return f"{number % _X12_LIMIT:09d}"


def _keep_837(parsed: Parsed837, kept: set[int]) -> Parsed837:
    """``parsed`` with only the claims whose places are ``kept``."""
    ordinals = {id(claim): index for index, claim in enumerate(parsed.claims)}

    def claims(transaction: Transaction837) -> Transaction837:
        return replace(transaction, claims=tuple(claim for claim in transaction.claims if ordinals[id(claim)] in kept))

    groups = tuple(replace(group, transactions=tuple(map(claims, group.transactions))) for group in parsed.groups)
    return replace(parsed, groups=groups)


def _keep_hl7(parsed: ParsedHl7, kept: set[int]) -> ParsedHl7:
    """``parsed`` with only the orders whose places are ``kept``: a message with an order that could not be
    decided is rejected whole (AR, condition 207), as its acknowledgment cannot answer that order."""
    ordinals = {id(order): index for index, order in enumerate(parsed.orders)}
    messages = tuple(
        message
        if all(ordinals[id(order)] in kept for order in message.orders)
        else replace(message, orders=(), error=Hl7Error("207", "an order of the message could not be decided"))
        for message in parsed.messages
    )
    return replace(parsed, messages=messages)
