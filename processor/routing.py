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

Duplicate claims are found by a window (``engine.duplicates``), per member and per line, among the claims taken
into adjudication (a returned claim is neither checked nor kept). By default every claim meets every other claim
of its member wherever it came in: ``Router`` holds a claim's decision on the internal ``claims_by_member`` topic,
partitioned by its member hash, and the member check (routing that topic's records) matches it against its
partition's window before it publishes the decision, on the claim's own partition number.
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec
import orjson

from processor.code_table.table import CodeTable
from processor.config import Topics
from processor.contracts import Event, Undecodable, decode, decode_event, infer_kind, real_datetime
from processor.engine import Decision, Outcome, Policy, decide
from processor.engine.decision import claim_control_number
from processor.engine.duplicates import Deferred, Seen, SeenClaims, Verdict, changelog_records
from processor.formats import Format, detect
from processor.formats.documents import DOCUMENT_FORMATS
from processor.formats.records import Headers, content_type, read_record

log = logging.getLogger(__name__)

# topic, key, value (None: a tombstone of a compacted topic), partition number (modulo the topic's count)
Message = tuple[str, bytes | None, bytes | None, int]


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
    """A decision, its record as published (bytes), the duplicate window's new entry, if one was made, and what
    the window said of the claim (``changelog_records`` of the two are what its changelog takes)."""

    decision: Decision
    value: bytes
    seen: Seen | None = None
    verdict: Verdict | None = None


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
    window: SeenClaims | Deferred | None = None,
    seen_at: str = "",
    duplicate: Verdict | None = None,
) -> Decided | Refused:
    """Decide one record value as a ``kind`` (None: the event's own ``kind`` or id field says); a claim taken
    into adjudication is then checked against ``window`` for duplicates (or is known to repeat as ``duplicate``
    says), and decided again with what the window says when it says anything. ``source`` (where it was read)
    goes into the decision record and makes the claim's control number, ``seen_at`` (the same place, as the
    window names it) into the window.
    """
    if max_bytes is not None and raw is not None and len(raw) > max_bytes:
        return Refused(f"record is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        # A valid event with no field of its own is decoded once, into the engine's types; any other record
        # is parsed and checked as a JSON object (its schema problems listed), as ``decode_event`` says.
        typed = decode_event(raw, kind) if raw is not None else None
        event: dict[str, Any] | Event
        if typed is not None:
            kind, event = typed
        else:
            event = decode(raw)
            kind = kind or infer_kind(event)
            if kind is None:
                return Refused("neither a claim (claim_id) nor a lab order (order_id)" + _format_hint(raw))
        decision = decide(event, kind, table, policy, duplicate)
        seen = verdict = None
        # A claim the payer takes into adjudication (accepted, or held for review) meets the member's claims in
        # the window; a returned one is not taken in, so nothing is matched against it or kept of it. Only a real
        # submission time reaches the window's date arithmetic (the engine returns the claim for any other:
        # date.invalid_datetime), and only one not after the decision time by more than a day: the window ages
        # out what lies a window behind the newest time it has seen, so one claim dated 2199 would otherwise drop
        # every real entry. Such a claim is decided, not checked for duplicates.
        if window is not None and kind == "claim" and decision.outcome is not Outcome.RETURNED:
            at = event.get("submitted_at") if isinstance(event, dict) else getattr(event, "submitted_at", None)
            submitted = real_datetime(at)
            if submitted is not None and submitted <= _latest_submission(decided_at):
                verdict, seen = window.check(event, seen_at, claim_control_number(source))
                if verdict is not None:
                    decision = decide(event, kind, table, policy, verdict)
        # The record carries the input as it came in, never a re-encoding of the event: it was read as one JSON
        # object, so the bytes, less the whitespace JSON allows around them, embed as they are.
        # Duplicate keys stay as sent; the engine decided on the last of each, as JSON parsers read it.
        if raw[0] != 0x7B or raw[-1] != 0x7D:  # type: ignore[index]  # decode refuses None; 0x7B is {, 0x7D }
            raw = raw.strip(b" \t\n\r")  # type: ignore[union-attr]
        record = decision.encode_record(raw, decided_at, source)  # type: ignore[arg-type]
        return Decided(decision, record, seen, verdict)
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


class Tallied(Protocol):
    """What the worker counts of a decision: its outcome and its reasons' rules and outcomes (a ``Decision``,
    or a held decision's record as the member check reads it)."""

    @property
    def outcome(self) -> Outcome: ...

    @property
    def reasons(self) -> Sequence[_TalliedReason]: ...


class _TalliedReason(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def outcome(self) -> Outcome: ...


class Held(msgspec.Struct):
    """A claim's decision held for the member check (``schemas/held-claim.schema.json``), on the
    ``claims_by_member`` partition its member hash picks; its key is the decision's. Read leniently (a field
    a newer worker adds is skipped), so that workers of two versions can share the topic in a rolling upgrade."""

    entry: msgspec.Raw  # the claim's window entry (``duplicates.Seen.as_record``): hashes, no patient data
    partition: int  # the claims partition it was read from: where its decision goes
    decision: msgspec.Raw  # the decision record as it will be published


class _PublishedReason(msgspec.Struct):
    id: str
    outcome: Outcome


class _Published(msgspec.Struct):
    """What the member check reads of a held decision record (the event as the bytes it embeds)."""

    outcome: Outcome
    reasons: list[_PublishedReason]
    decided_at: str
    event: msgspec.Raw
    source: dict[str, Any]


_HELD = msgspec.json.Decoder(Held)
_PUBLISHED = msgspec.json.Decoder(_Published)
_DEFERRED = Deferred()


class Router:
    """Turns input records into the messages to publish, for one set of topic names.

    With ``member_check`` (the worker's duplicate scope "topic"), the decision of a claim taken into
    adjudication is not published at once: it is held, with the claim's window entry, on the
    ``claims_by_member`` partition its member hash picks, so that all of a member's claims, replacements and
    voids, whatever claims partition they came in on, reach one partition; routing that record (the member
    check) matches it against that partition's window and publishes the decision, or decides the claim again
    with what the window found. Without it, a claim is checked against the window of its own claims
    partition."""

    def __init__(
        self, topics: Topics, table: CodeTable, policy: Policy | None, max_bytes: int | None,
        member_check: bool = False,
    ) -> None:  # fmt: skip
        self.topics = topics
        self.table = table
        self.policy = policy
        self.max_bytes = max_bytes
        self.member_check = member_check
        self._changelog = topics.windowed(member_check)[1]
        self._kind_of = {topics.claims: "claim", topics.orders: "order", topics.claims_by_member: "claim"}
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
    ) -> list[Tallied | None]:
        """Append what ``record`` becomes to ``out``: the decision of each of its events (and, for a claim in a
        duplicate window, the window's changelog entry) or a dead letter, and the answers to a record in a
        submitter's format. Returns what to count, one per event decided here (None for one dead-lettered; a
        claim held for the member check is counted there); one None for a record that could not be read."""
        if record.topic == self.topics.claims_by_member:
            return [self._check_member(record, decided_at, out, window)]
        headers = record.headers
        form = detect(content_type(headers) if headers else None, record.value)
        if form not in DOCUMENT_FORMATS:  # the project's JSON event, as the topic names its kind
            source = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
            seen_at = f"{record.partition}:{record.offset}"
            kind = self._kind_of[record.topic]
            result = self._decided(record, kind, record.value, source, seen_at, decided_at, out, window)
            return [] if self._held(result) else [None if result is None else result.decision]
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
        if not results:
            return [None]
        return [None if result is None else result.decision for result in results if not self._held(result)]

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
        """Decide one event of ``record`` and append its messages (or its dead letter) to ``out``; a claim's
        decision goes to the member check instead when it runs (then ``_held`` says so)."""
        checked = _DEFERRED if self.member_check and kind == "claim" else window
        table, policy = self.table, self.policy
        result = decide_value(value, kind, table, policy, decided_at, source, self.max_bytes, checked, seen_at)
        if isinstance(result, Refused):
            out.append(self.dead_letter(record, f"{which}: {result.error}" if which else result.error, decided_at))
            return None
        decision = result.decision
        key = decision.event_id.encode() if decision.event_id else record.key
        seen = result.seen
        if seen is not None and self.member_check:
            held = Held(msgspec.Raw(seen.as_record()), record.partition, msgspec.Raw(result.value))
            out.append((self.topics.claims_by_member, key, msgspec.json.encode(held), _member_partition(seen)))
            return result
        out.append((self._topic_of[decision.outcome], key, result.value, record.partition))
        for changed, value in changelog_records(result.verdict, seen):
            out.append((self._changelog, changed, value, record.partition))
        return result

    def _held(self, result: Decided | None) -> bool:
        """Whether ``result`` went to the member check (which publishes and counts it), not out."""
        return self.member_check and result is not None and result.seen is not None

    def _check_member(
        self, record: Incoming, decided_at: str, out: list[Message], window: SeenClaims | None
    ) -> Tallied | None:
        """The member check of a held decision: publish it as it is, or, when the window of this partition of
        claims by member finds it repeats lines of the member's claims (or replaces one it does not hold), decide
        it again with that (at its first decision time)."""
        try:
            held = _HELD.decode(record.value or b"")
            published = _PUBLISHED.decode(held.decision)
            entry = Seen.from_record(bytes(held.entry))
            if entry is None:
                raise msgspec.ValidationError("its entry is not a window entry")
        except msgspec.MsgspecError as err:  # not written by a worker of this version: keep it, say why
            out.append(self.dead_letter(record, f"not a held claim decision: {err}", decided_at))
            return None
        duplicate = None
        if window is not None:
            duplicate, seen = window.check_entry(entry, f"{record.partition}:{record.offset}")
            for changed, value in changelog_records(duplicate, seen):
                out.append((self._changelog, changed, value, record.partition))
        if duplicate is None:
            out.append((self._topic_of[published.outcome], record.key, bytes(held.decision), held.partition))
            return published
        result = decide_value(bytes(published.event), "claim", self.table, self.policy, published.decided_at,
                              published.source, duplicate=duplicate)  # fmt: skip
        if isinstance(result, Refused):
            out.append(self.dead_letter(record, result.error, published.decided_at))
            return None
        out.append((self._topic_of[result.decision.outcome], record.key, result.value, held.partition))
        return result.decision

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


def _member_partition(seen: Seen) -> int:
    """The ``claims_by_member`` partition number of a claim's member (modulo the topic's partition count)."""
    return int(seen.member[:8], 16)
