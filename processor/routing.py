"""What one input record becomes: its decision record, for the accepted, returned or needs-review topic, or a
dead letter. Pure: no I/O (an engine failure is logged, never raised).

``decide_value`` takes a record value to ``Decided`` (the decision and its encoded record) or ``Refused``
(why no decision can be made: too large or nested too deep, not a JSON object, not a claim or an order, or a
bug in the engine; the message never quotes the content). ``Router`` adds where the result goes: the outcome
topic or the dead-letter topic, the key (the event id, else the input's key) and the partition number (the
input's, so the outputs keep the inputs' partitioning and order). The worker, ``processor check``, the benchmark's
engine-alone loop and the Faust agent all decide records through here, so they cannot drift apart.

A record in a submitter's format (an X12 837 interchange, an HL7 v2 message, a FHIR resource: its
``content-type`` header, else its first bytes, says) is read by ``formats.read_record`` into one event per
claim or order, each decided as above (of the kind the document holds, whatever the topic), and its answers
(999 and 277CA, ACK, ClaimResponse...) go to the responses topic with the record's decisions, keyed
``topic:partition:offset`` of the input, on its partition: all in the record's batch, so in one transaction.
"""

from __future__ import annotations

import base64
import logging
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from processor.code_table.table import CodeTable
from processor.config import Topics
from processor.contracts import Undecodable, decode, infer_kind, real_datetime
from processor.engine import Decision, Outcome, Policy, decide
from processor.engine.duplicates import Seen, SeenClaims
from processor.formats import Format, detect
from processor.formats.documents import DOCUMENT_FORMATS
from processor.formats.records import Headers, content_type, read_record

log = logging.getLogger(__name__)

Message = tuple[str, bytes | None, bytes, int]  # topic, key, value, partition number (modulo the topic's count)


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds: the ``decided_at`` of a batch's records."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Incoming(Protocol):
    """What routing reads of an input record; aiokafka's ``ConsumerRecord`` is one."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class Received:
    """An input record as a client other than aiokafka hands it over (the Faust agent): an ``Incoming``."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision, its record as published (bytes), and the duplicate window's new entry, if one was made."""

    decision: Decision
    value: bytes
    seen: Seen | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """No decision can be made; ``error`` says why without quoting the content."""

    error: str


def decide_value(
    raw: bytes | None,
    kind: str | None,
    table: CodeTable,
    policy: Policy | None,
    decided_at: str,
    source: dict[str, Any],
    max_bytes: int | None = None,
    window: SeenClaims | None = None,
    seen_at: str = "",
) -> Decided | Refused:
    """Decide one record value as a ``kind`` (None: the event's own ``kind`` or id field says), checked against
    ``window`` for duplicates when it is a claim; ``source`` (where it was read) goes into the decision record,
    ``seen_at`` (the same place, as the window names it: a replay of one place is no duplicate) into the window.
    """
    if max_bytes is not None and raw is not None and len(raw) > max_bytes:
        return Refused(f"record is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        event = decode(raw)
        kind = kind or infer_kind(event)
        if kind is None:
            return Refused("neither a claim (claim_id) nor a lab order (order_id)" + _format_hint(raw))
        duplicate = seen = None
        # Only a real submission time reaches the window's date arithmetic (the engine returns the claim for
        # any other: date.invalid_datetime), and only one not after the decision time by more than a day: the
        # window ages out what lies a window behind the newest time it has seen, so one claim dated 2199
        # would otherwise drop every real entry. Such a claim is decided, not checked for duplicates.
        if window is not None and kind == "claim":
            submitted = real_datetime(event.get("submitted_at"))
            if submitted is not None and submitted <= _latest_submission(decided_at):
                duplicate, seen = window.check(event, seen_at)
        decision = decide(event, kind, table, policy, duplicate)
        # The record carries the input as it came in, not a re-encoding of the parsed event: decode accepted
        # it as one JSON object, so the bytes, less the whitespace JSON allows around them, embed as they are.
        # Duplicate keys stay as sent; the engine decided on the last of each, as JSON parsers read it.
        if raw[0] != 0x7B or raw[-1] != 0x7D:  # type: ignore[index]  # decode refuses None; 0x7B is {, 0x7D }
            raw = raw.strip(b" \t\n\r")  # type: ignore[union-attr]
        embedded = orjson.Fragment(raw)
        return Decided(decision, orjson.dumps(decision.as_record(embedded, decided_at, source)), seen)
    except Undecodable as err:  # decode also refuses what the encoder could not write back (MAX_DEPTH)
        return Refused(str(err) + _format_hint(raw))
    except Exception as err:  # a bug must not stop the caller: keep the record, log where, not what
        frames = "".join(traceback.format_tb(err.__traceback__))
        log.error("engine failed on %s: %s\n%s", source, type(err).__name__, frames)
        return Refused(f"internal error while deciding: {type(err).__name__}")


_FORMAT_NAMES = {Format.X12: "an X12 interchange", Format.HL7V2: "an HL7 v2 message", Format.FHIR: "a FHIR resource"}


def _format_hint(raw: bytes | None) -> str:
    """For a value in a submitter's standard format refused as a JSON event (``processor check --format json``,
    a FHIR resource sent with a JSON content type), what to do instead. Only refused values pay for it."""
    name = _FORMAT_NAMES.get(detect(None, raw))
    return f" (it is {name}: send it with its content type, or processor check --format auto)" if name else ""


_CLOCK_SKEW = timedelta(days=1)
_LATEST: dict[str, datetime] = {}  # decision time -> the latest submission time the window takes


def _latest_submission(decided_at: str) -> datetime:
    """The latest ``submitted_at`` the duplicate window takes from claims decided at ``decided_at``: a day
    after it (clocks differ). One decision time serves a whole batch, so the answer is kept."""
    latest = _LATEST.get(decided_at)
    if latest is None:
        if len(_LATEST) > 64:
            _LATEST.clear()
        decided = datetime.fromisoformat(decided_at)
        latest = _LATEST[decided_at] = (decided if decided.tzinfo else decided.replace(tzinfo=UTC)) + _CLOCK_SKEW
    return latest


class Router:
    """Turns input records into the messages to publish, for one set of topic names."""

    def __init__(self, topics: Topics, table: CodeTable, policy: Policy | None, max_bytes: int | None) -> None:
        self.topics = topics
        self.table = table
        self.policy = policy
        self.max_bytes = max_bytes
        self._kind_of = {topics.claims: "claim", topics.orders: "order"}
        self._topic_of = {
            Outcome.ACCEPTED: topics.accepted,
            Outcome.RETURNED: topics.returned,
            Outcome.NEEDS_REVIEW: topics.needs_review,
        }

    def kind_of(self, topic: str) -> str:
        """The kind of the events on an input topic: "claim" or "order"."""
        return self._kind_of[topic]

    def route(
        self, record: Incoming, decided_at: str, out: list[Message], window: SeenClaims | None = None
    ) -> list[Decision | None]:
        """Append what ``record`` becomes to ``out``: the decision of each of its events (and, for a claim in a
        duplicate window, the window's changelog entry) or a dead letter, and the answers to a record in a
        submitter's format. Returns the decisions, one per event (None for one dead-lettered); one None for a
        record that could not be read at all."""
        headers = record.headers
        form = detect(content_type(headers) if headers else None, record.value)
        if form not in DOCUMENT_FORMATS:  # the project's JSON event, as the topic names its kind
            source = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
            seen_at = f"{record.partition}:{record.offset}"
            kind = self._kind_of[record.topic]
            result = self._decided(record, kind, record.value, source, seen_at, decided_at, out, window)
            return [None if result is None else result.decision]
        if self.max_bytes is not None and record.value is not None and len(record.value) > self.max_bytes:
            error = f"record is {len(record.value)} bytes; the limit is {self.max_bytes}"
            out.append(self.dead_letter(record, error, decided_at))
            return [None]
        read = read_record(record.value, headers, record.topic, record.partition, record.offset, record.timestamp)
        results = [
            self._decided(record, event.kind, event.value, event.source, event.seen_at, decided_at, out,
                          window if event.kind == "claim" else None, f"{event.kind} {event.index} of the record")
            for event in read.events
        ]  # fmt: skip
        if read.failure is not None:
            out.append(self.dead_letter(record, read.failure, decided_at))
        for response in read.responses([None if result is None else result.value for result in results]):
            out.append((self.topics.responses, read.key, response.encode(), record.partition))
        return [None if result is None else result.decision for result in results] or [None]

    def _decided(
        self,
        record: Incoming,
        kind: str | None,
        value: bytes | None,
        source: dict[str, Any],
        seen_at: str,
        decided_at: str,
        out: list[Message],
        window: SeenClaims | None,
        which: str = "",
    ) -> Decided | None:
        """Decide one event of ``record`` and append its messages (or its dead letter) to ``out``."""
        result = decide_value(value, kind, self.table, self.policy, decided_at, source, self.max_bytes, window, seen_at)
        if isinstance(result, Refused):
            out.append(self.dead_letter(record, f"{which}: {result.error}" if which else result.error, decided_at))
            return None
        decision = result.decision
        key = decision.event_id.encode() if decision.event_id else record.key
        out.append((self._topic_of[decision.outcome], key, result.value, record.partition))
        if result.seen is not None:
            out.append(
                (self.topics.seen_claims, result.seen.claim_id.encode(), result.seen.as_record(), record.partition)
            )
        return result

    def dead_letter(self, record: Incoming, error: str, at: str) -> Message:
        """The dead letter of ``record``: where it was read, why it was refused, its bytes in base64."""
        letter = {
            "source": {
                "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "timestamp": record.timestamp,
            },
            "error": error,
            "raw": None if record.value is None else base64.b64encode(record.value).decode(),
            "dead_lettered_at": at,
        }  # fmt: skip
        return self.topics.dead_letter, record.key, orjson.dumps(letter), record.partition
