"""What the engine answers: a ``Decision`` for one event, with a ``Reason`` for every edit that failed, and
the record of it that is published (``schemas/decision.schema.json``).

A claim's reasons answer in X12 (the 277CA STC01 composite, CARC and RARC), a lab order's in HL7 v2 (the
acknowledgment code and an ERR segment); ``engine/answers.py`` says how."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from processor.engine import answers
from processor.engine.rules import DENIAL_GROUP, Outcome, Rule, Stc

_TEXT = {outcome: outcome.value for outcome in Outcome}  # an enum's ``value`` is a property: slow per event


class Reason(msgspec.Struct, frozen=True):
    """Why an event was not accepted: which rule, which field and value, what to do, and (for needs-review)
    what the reviewer should check. The rule and the field give the answer codes.

    A frozen msgspec struct rather than a frozen dataclass: built in C, an order of magnitude faster, with the same
    fields, equality and immutability."""

    rule: Rule
    field: str
    value: Any
    message: str
    outcome: Outcome
    review: str | None = None
    line_number: int | None = None  # of the claim line the field is on

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def stc(self) -> Stc:
        """The 277CA STC01 composite this reason gives a claim (A2 with a pend status when held for review)."""
        return answers.claim_stc(self.rule, self.field, self.outcome)

    @property
    def category(self) -> str:
        return self.stc.category

    @property
    def carc(self) -> str | None:
        return self.rule.carc

    @property
    def rarc(self) -> str | None:
        return answers.claim_rarc(self.rule, self.field)

    @property
    def hl7(self) -> dict[str, Any]:
        """The HL7 v2 answer this reason gives a lab order: ``ack``, ERR ``location``, ``condition``, ``severity``."""
        return answers.hl7_error(self.rule, self.field, self.outcome)

    def as_dict(self, kind: str) -> dict[str, Any]:
        """The reason as it appears in the decision record of an event of ``kind``: a claim's carries its X12
        answer, an order's its HL7 one."""
        reason = {
            "id": self.rule.id, "field": self.field, "value": self.value, "message": self.message,
            "outcome": _TEXT[self.outcome], "review": self.review,
        }  # fmt: skip
        if kind == "order":
            reason["hl7"] = self.hl7
        else:
            stc = self.stc
            reason.update(stc=stc.as_dict(), category=stc.category, carc=self.carc, rarc=self.rarc)
            if self.line_number is not None:
                reason["line_number"] = self.line_number
            if self.outcome is Outcome.DENIED:  # the line's 835 adjustment
                reason["adjustment"] = {"group": DENIAL_GROUP, "carc": self.carc, "rarc": self.rarc}
        return reason


class Decision(msgspec.Struct, frozen=True):
    """The engine's answer for one event (a frozen msgspec struct, as ``Reason`` is: one is built per event)."""

    event_id: str | None
    kind: str
    outcome: Outcome
    reasons: tuple[Reason, ...]
    code_table_version: str

    @property
    def lines_denied(self) -> list[int]:
        """The line numbers of the claim lines denied (the claim itself goes on)."""
        return sorted({r.line_number for r in self.reasons if r.outcome is Outcome.DENIED and r.line_number})

    def as_record(self, event: Any, decided_at: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
        """The decision record published to an outcome topic (``schemas/decision.schema.json``). ``event`` is the
        input event: a dict, or its bytes as an ``orjson.Fragment`` to embed them as they came in."""
        reasons = self.reasons
        record = {
            "event_id": self.event_id,
            "kind": self.kind,
            "outcome": _TEXT[self.outcome],
            "reasons": [reason.as_dict(self.kind) for reason in reasons] if reasons else [],
            "code_table_version": self.code_table_version,
            "decided_at": decided_at,
            "event": event,
        }
        if self.kind == "order":
            record["hl7_ack"] = answers.order_ack(self.outcome)
        elif reasons:
            denied = self.lines_denied
            if denied:
                record["lines_denied"] = denied
        if source is not None:
            if self.kind == "claim" and self.outcome is not Outcome.RETURNED:
                record["claim_control_number"] = claim_control_number(source)
            record["source"] = source
        return record

    def encode_record(self, event: bytes, decided_at: str, source: dict[str, Any] | None = None) -> bytes:
        """The decision record (``as_record``) as JSON bytes, with ``event``, the input's bytes (one JSON object,
        no whitespace around it), embedded as they are.

        An accepted event with no reason, most of them, is written from a prefix kept per kind, table version
        and decision time: the bytes ``orjson.dumps`` would write of its record, without building the record."""
        if self.reasons:
            return orjson.dumps(self.as_record(orjson.Fragment(event), decided_at, source))
        key = (self.kind, self.outcome, self.code_table_version, decided_at)
        parts = _CLEAN_PARTS.get(key)
        if parts is None:
            parts = _CLEAN_PARTS[key] = _clean_parts(*key)
        head, tail = parts
        id_json = orjson.dumps(self.event_id)
        if source is None:
            return b"".join((b'{"event_id":', id_json, head, event, tail, b"}"))
        if self.kind == "claim":  # accepted: the claim gets its control number
            tail += b',"claim_control_number":' + orjson.dumps(claim_control_number(source))
        return b"".join((b'{"event_id":', id_json, head, event, tail, b',"source":', orjson.dumps(source), b"}"))


def claim_control_number(source: dict[str, Any]) -> str:
    """The payer claim control number the processor, as the payer's front door, gives a claim it takes into
    adjudication (accepted or held for review), told to the submitter in the 277CA (REF*1K) and named by a
    later replacement or void (REF*F8). It is made of where the claim came in, so a replay gives the same:
    ``3-18234`` (claims partition 3, offset 18234), ``3-18240-2`` (the third claim of an 837 at that offset);
    from ``processor check``, ``L12`` (line 12) or ``F2`` (the third claim of the file)."""
    if "offset" in source:
        number = f"{source.get('partition', 0)}-{source['offset']}"
        return f"{number}-{source['index']}" if "index" in source else number
    if "line" in source:
        return f"L{source['line']}"
    return f"F{source.get('index', 0)}"


# The bytes of a reasonless record around its event id and its event, per (kind, outcome, table version, decision
# time); a decision time serves a whole batch, so the few kept are cleared now and then.
_CLEAN_PARTS: dict[tuple[str, Outcome, str, str], tuple[bytes, bytes]] = {}
_MARK = b'"\\u0000event\\u0000"'


def _clean_parts(kind: str, outcome: Outcome, version: str, decided_at: str) -> tuple[bytes, bytes]:
    """What ``orjson.dumps`` writes of a reasonless record between its event id and its event (``head``), and
    after the event up to its source (``tail``), found by writing one record with a marker for the event."""
    if len(_CLEAN_PARTS) > 64:
        _CLEAN_PARTS.clear()
    record = Decision(None, kind, outcome, (), version).as_record("\0event\0", decided_at)
    written = orjson.dumps(record)
    before, marker, after = written.partition(_MARK)
    if not marker or not before.startswith(b'{"event_id":null') or not after.endswith(b"}"):
        raise RuntimeError("a decision record does not start with its event id, or its event is not in it")
    return before[len(b'{"event_id":null') :], after[:-1]
