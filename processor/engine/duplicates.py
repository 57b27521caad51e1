"""Duplicate claims, as claims systems judge them: per member and per line, within a window. No I/O.

What a window holds of a claim is its ``Seen`` entry: the payer claim control number it was given
(``decision.claim_control_number``), its claim id, submission time and where it was read, a **member hash**,
and for each billed line its line number, a **service hash** and an **exact hash** (``line_hashes``). Only
hashes: member ids, birth dates and codes are protected health information, and never reach the window, its
store or its changelog. A new claim's lines are matched against the lines the window holds and against the
claim's own earlier lines (TRICARE Operations Manual ch. 8 sec. 9; CMS MLN MM8121):

- the same service hash (the same member, date of service, provider and procedure) is a **suspect**
  (potential) duplicate of the line held: another charge, place of service, modifier or units;
- the same exact hash too (the same modifiers, anatomic ones included, place of service, charge and units)
  is an **exact** duplicate, unless the new line carries a repeat or distinct-service modifier
  (``REPEAT_MODIFIERS``: 76, 77, 91, 59, XE, XS, XP, XU), which says it is another service: never exact, but
  it may still be a suspect. RT and LT hash differently: another site is never exact;
- two members never match: the member hash is part of the service hash.

A claim every one of whose lines is an exact duplicate was sent again (``Verdict.resent``: ``claim.duplicate``)
and is not remembered. A replacement (``frequency`` replacement with ``replaces``, the control number of an
earlier claim of the same member) is checked against the window without the claim it replaces, and once
committed takes its place; a void removes the claim it names and is not remembered itself; either one naming
no claim the window holds for that member says so (``Verdict.replaces_unknown``: review). A record read
again at the same source (a replay after a crash or an aborted transaction) has the same control number, and
is no duplicate of itself.

Time is the claim's ``submitted_at``, so ``processor check`` and the worker agree and a replay decides the
same way: a claim matches what was submitted within ``window_ms`` of it. The worker keeps one ``SeenClaims``
per partition of the claims it checks (the integrator partitions them by ``member_partition_key``, so that
all of a member's claims meet), its changes in a compacted changelog topic written in the same transaction as
the decisions (``changelog_records``: key = the control number, value = the entry, a tombstone for a claim
replaced or voided).

Where the entries are kept is a ``Store``'s business: ``MemoryStore`` (``processor check``, the tests) in
dicts, the worker's LMDB store (``app.window_store``) on disk; both take a window's ``Change``\\ s by the same
rule (``Store.take``). With ``staged=True`` the changes ``check`` makes are first held in an overlay, which
lookups consult too, and reach the store only on ``commit`` (the worker commits a batch's changes once its
transaction has committed) or are dropped by ``rollback`` (its delivery failed).

Memory is bounded by the window: entries submitted more than a window before the newest claim seen are
dropped (``MemoryStore``: in a sweep once the entries taken since the last one reach half of those kept, and
at least ``SWEEP_AFTER``), so a claim submitted that long before the newest one is checked only against what
is still kept.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import msgspec
import orjson

from processor.contracts import Claim

# The fewest entries taken between two sweeps: a sweep walks every entry, so not too often.
SWEEP_AFTER = 16_384
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# The instants a ``datetime`` holds in UTC, years 1 to 9999: every submission time in the window is one.
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _MS
# A line with one of these is another service than a line it repeats: never an exact duplicate (76 repeat by
# the same physician, 77 by another, 91 repeat clinical lab test; 59, XE, XS, XP, XU distinct service).
REPEAT_MODIFIERS = frozenset({"76", "77", "91", "59", "XE", "XS", "XP", "XU"})
# Anatomic modifiers (NCCI's list): two lines with different ones are on different sites.
ANATOMIC_MODIFIERS = frozenset(
    {"LT", "RT", "FA", "TA", "LC", "LD", "LM", "RC", "RI"}
    | {f"F{n}" for n in range(1, 10)}
    | {f"T{n}" for n in range(1, 10)}
    | {f"E{n}" for n in range(1, 5)}
)
# The line number of an inpatient stay billed without lines: the stay counts as one line.
STAY_LINE = 0
_HASH = 16  # bytes of blake2b digest: 32 hex digits
# The longest control number a window keeps (``claim_control_number`` makes a dozen characters; a claim's
# ``replaces`` holds at most 64): keys of the LMDB store, and part of its line index's values.
MAX_CONTROL_NUMBER = 100
_SEP = "\x1f"  # the unit separator: no field of a hash can run into the next


def submitted_ms(claim: dict[str, Any]) -> int | None:
    """``submitted_at`` in milliseconds since the epoch (UTC when it gives no offset), or None when it does not
    parse or its instant lies outside the years 1 to 9999 in UTC (``9999-12-31T23:59:59-01:00`` is in 10000).
    Pure arithmetic: unlike ``datetime.timestamp`` it never asks the platform's C library, so it cannot raise."""
    return _ms(claim.get("submitted_at"))


def _ms(submitted_at: Any) -> int | None:
    try:
        at = datetime.fromisoformat(str(submitted_at))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return (at.astimezone(UTC) - _EPOCH) // _MS
    except (ValueError, TypeError, OverflowError, OSError):
        return None


# --- reading a claim, a JSON object or the ``Claim`` decoded from it, alike ----------------------------------


def _get(value: Any, name: str) -> Any:
    """Field ``name`` of a JSON object or a msgspec struct; None when absent (``UNSET`` too)."""
    if isinstance(value, dict):
        return value.get(name)
    found = getattr(value, name, None)
    return None if found is msgspec.UNSET else found


def _text(value: Any) -> str:
    """A field as normalized text: trimmed, upper case; "" for nothing. Never raises (a refused event's
    fields may be of any type)."""
    if value is None:
        return ""
    return (value if isinstance(value, str) else str(value)).strip().upper()


def _amount(value: Any) -> str:
    """``_amount_text`` of a value, each distinct text worked out once (the same prices and units come back)."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return _amount_text(value)
    return _amount_of(value)


@functools.lru_cache(maxsize=4096)
def _amount_text(value: str | int) -> str:
    return _amount_of(value)


def _amount_of(value: Any) -> str:
    """A decimal amount (a charge, units) as one text for all its spellings ("80", "80.0", "80.00" -> "80");
    "" for none. Never a binary float's digits: ``2.5`` is read as the text "2.5"."""
    if value is None or isinstance(value, bool):
        return _text(value)
    text = str(value)
    if len(text) > 40:  # no amount of the contracts is that long: not worth a Decimal
        return _text(text)
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError):
        return _text(text)
    if not amount.is_finite() or not -30 <= amount.adjusted() <= 30:  # "1e999999" would write a million digits
        return _text(text)
    return format(amount.normalize(), "f") if amount else "0"


def _digest(*parts: str | bytes) -> bytes:
    """blake2b (16 bytes) of the parts, each followed by a unit separator (0x1F)."""
    hashed = hashlib.blake2b(digest_size=_HASH)
    for part in parts:
        hashed.update(part if isinstance(part, bytes) else part.encode("utf-8", "surrogatepass"))
        hashed.update(b"\x1f")
    return hashed.digest()


def member_hash(claim: dict[str, Any] | Claim) -> bytes:
    """Who a claim is for, as a hash (16 bytes): blake2b of the member's payer id, member id, the patient's
    birth date and sex and relationship to the subscriber (self when absent), normalized."""
    member, patient = _get(claim, "member"), _get(claim, "patient")
    relationship = _text(_get(member, "relationship")) or "SELF"
    return _digest(_text(_get(member, "payer_id")), _text(_get(member, "id")), _text(_get(patient, "birth_date")),
                   _text(_get(patient, "sex")), relationship)  # fmt: skip


def member_partition_key(claim: dict[str, Any] | Claim) -> bytes:
    """The key that puts all of a member's claims on one partition of the duplicate check's topic: the member
    hash (no member id in the clear)."""
    return member_hash(claim)


def _modifiers(line: Any) -> list[str]:
    found = _get(line, "modifiers")
    return sorted(_text(m) for m in found) if isinstance(found, list) else []


def _provider(line: Any, claim: Any) -> str:
    """Who gave a service: the line's rendering NPI, else the claim's rendering NPI, else the billing NPI."""
    for holder, name in ((line, "rendering_provider"), (claim, "rendering_provider"), (claim, "billing_provider")):
        npi = _text(_get(_get(holder, name), "npi")) if holder is not None else ""
        if npi:
            return npi
    return ""


def _place(line: Any, claim: Any) -> str:
    """Where a service was given: the line's place of service, else the claim's, else the facility type."""
    place = _text(_get(line, "place_of_service")) if line is not None else ""
    if place:
        return place
    place = _text(_get(claim, "place_of_service"))
    return place or ("F" + facility if (facility := _text(_get(claim, "facility_type"))) else "")


def line_hashes(member: bytes, date: str, provider: str, procedure: str, modifiers: Sequence[str], place: str,
                charge: str, units: str) -> tuple[bytes, bytes]:  # fmt: skip
    """A line's service hash (member hash, date of service, provider, procedure ``system:code``) and exact hash
    (service hash, sorted modifiers, place of service, charge, units), each 16 bytes."""
    service = _digest(member, date, provider, procedure)
    return service, _digest(service, ",".join(modifiers), place, charge, units)


@dataclass(frozen=True, slots=True)
class SeenLine:
    """A billed line as a window holds it: its number, hashes (hex) and whether it carries a repeat or
    distinct-service modifier (``REPEAT_MODIFIERS``) or an anatomic one (``ANATOMIC_MODIFIERS``)."""

    line_number: int
    service: str
    exact: str
    repeat: bool = False
    anatomic: bool = False


def _billed_lines(claim: dict[str, Any] | Claim, member: bytes) -> tuple[SeenLine, ...]:
    """The claim's lines as the window holds them; an inpatient stay without lines as one (``STAY_LINE``)."""
    lines = _get(claim, "lines")
    seen = []
    if isinstance(lines, list) and lines:
        for index, line in enumerate(lines):
            if not isinstance(line, dict | msgspec.Struct):
                continue
            number = _get(line, "line_number")
            modifiers = _modifiers(line)
            procedure = _text(_get(line, "system")) + ":" + _text(_get(line, "code"))
            service, exact = line_hashes(
                member, _text(_get(line, "service_date")), _provider(line, claim), procedure, modifiers,
                _place(line, claim), _amount(_get(line, "charge")), _amount(_get(line, "units")),
            )  # fmt: skip
            seen.append(SeenLine(number if isinstance(number, int) and not isinstance(number, bool) else index + 1,
                                 service.hex(), exact.hex(), not REPEAT_MODIFIERS.isdisjoint(modifiers),
                                 not ANATOMIC_MODIFIERS.isdisjoint(modifiers)))  # fmt: skip
    elif _get(claim, "admission_date") is not None or _get(claim, "discharge_date") is not None:
        dates = _text(_get(claim, "admission_date")) + ".." + _text(_get(claim, "discharge_date"))
        service, exact = line_hashes(member, dates, _provider(None, claim), "STAY", [], _place(None, claim),
                                     _amount(_get(claim, "charge")), "")  # fmt: skip
        seen.append(SeenLine(STAY_LINE, service.hex(), exact.hex()))
    return tuple(seen)


# --- the entry -------------------------------------------------------------------------------------------------


def _is_hash(text: Any) -> bool:
    if not isinstance(text, str) or len(text) != 2 * _HASH:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Seen:
    """A claim a window holds (or, ``void``, one that cancels the claim ``replaces``): its control number, claim
    id, submission time, where it was read, its member hash and its billed lines; ``replaces``, the control
    number of the claim it replaced."""

    control_number: str
    claim_id: str
    at_ms: int
    source: str
    member: str
    lines: tuple[SeenLine, ...]
    replaces: str | None = None
    void: bool = False

    def as_record(self) -> bytes:
        """The changelog record's value (its key is the control number): no PHI, only hashes."""
        record: dict[str, Any] = {
            "control_number": self.control_number, "claim_id": self.claim_id, "at_ms": self.at_ms,
            "source": self.source, "member": self.member,
            "lines": [{"line_number": line.line_number, "service": line.service, "exact": line.exact,
                       "repeat": line.repeat, "anatomic": line.anatomic} for line in self.lines],
        }  # fmt: skip
        if self.replaces is not None:
            record["replaces"] = self.replaces
        if self.void:
            record["void"] = True
        return orjson.dumps(record)

    @classmethod
    def from_record(cls, value: bytes | None) -> Seen | None:
        """The entry a changelog record value holds; None for a value that is not one (a tombstone, garbage, an
        entry of an older format, a hash ``line_hashes`` could not have made, a time outside
        ``MIN_MS``..``MAX_MS``)."""
        if value is None:
            return None
        try:
            record = orjson.loads(value)
            lines = tuple(
                SeenLine(int(line["line_number"]), str(line["service"]), str(line["exact"]), bool(line["repeat"]),
                         bool(line["anatomic"]))
                for line in record["lines"]
            )  # fmt: skip
            replaces = record.get("replaces")
            seen = cls(str(record["control_number"]), str(record["claim_id"]), int(record["at_ms"]),
                       str(record["source"]), str(record["member"]), lines,
                       None if replaces is None else str(replaces), record.get("void") is True)  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return None
        valid = (
            0 < len(seen.control_number) <= MAX_CONTROL_NUMBER and seen.claim_id
            and MIN_MS <= seen.at_ms <= MAX_MS and _is_hash(seen.member)
            and all(_is_hash(line.service) and _is_hash(line.exact) for line in seen.lines)
            and (not seen.void or seen.replaces) and len(seen.replaces or "") <= MAX_CONTROL_NUMBER
        )  # fmt: skip
        return seen if valid else None


def entry(claim: dict[str, Any] | Claim, source: str, control_number: str) -> Seen | None:
    """The entry a window makes of ``claim`` (the JSON object, or the ``Claim`` decoded from it) read at
    ``source`` and given ``control_number``; None when the claim has no usable claim id, submission time or
    member id (such a claim is decided without a duplicate check)."""
    claim_id = _get(claim, "claim_id")
    at_ms = submitted_ms(claim) if isinstance(claim, dict) else _ms(claim.submitted_at)
    member_id = _get(_get(claim, "member"), "id")
    if not isinstance(claim_id, str) or not claim_id or at_ms is None or not _text(member_id):
        return None
    if not 0 < len(control_number) <= MAX_CONTROL_NUMBER:
        return None
    member = member_hash(claim)
    frequency, replaces = _get(claim, "frequency"), _get(claim, "replaces")
    named = replaces if isinstance(replaces, str) and replaces and frequency in ("replacement", "void") else None
    lines = () if frequency == "void" else _billed_lines(claim, member)
    void = frequency == "void" and named is not None
    return Seen(control_number, claim_id, at_ms, source, member.hex(), lines, named, void)


# --- what a window says of a claim ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineMatch:
    """A line of a new claim that repeats a line held (or an earlier line of the same claim): ``exact`` or a
    suspect, and the claim and line it repeats (``first_seen_ms``: that claim's submission time)."""

    index: int  # the line's index in the claim's lines (0 for a stay)
    line_number: int
    exact: bool
    claim_id: str
    control_number: str
    matched_line: int
    first_seen_ms: int

    def details(self) -> dict[str, Any]:
        first_seen = (_EPOCH + self.first_seen_ms * _MS).isoformat(timespec="seconds")
        return {"first_id": self.claim_id, "first_control_number": self.control_number,
                "first_line": self.matched_line, "first_seen": first_seen}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a window says of a claim: its lines that repeat others (``lines``), whether every line is an exact
    duplicate (``resent``: the claim was sent again), whether it replaces or voids a claim the window does not
    hold for its member (``replaces_unknown``), and the control number it replaces or voids (``replaced``),
    which leaves the window (its changelog gets a tombstone)."""

    lines: tuple[LineMatch, ...] = ()
    resent: bool = False
    replaces_unknown: bool = False
    replaced: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One change to a window, as its changelog record: keep ``seen`` under ``control_number``, or (``seen``
    None) remove the claim of ``control_number``. ``source`` is where the claim that made it was read."""

    control_number: str
    seen: Seen | None
    source: str

    @property
    def key(self) -> bytes:
        return self.control_number.encode("utf-8", "surrogatepass")

    @property
    def value(self) -> bytes | None:
        return None if self.seen is None else self.seen.as_record()


def changes(verdict: Verdict | None, seen: Seen | None, source: str) -> list[Change]:
    """What ``check``'s answer changes in the window, in the order its changelog records are written: the
    tombstone of the claim replaced or voided, then the new entry."""
    done = []
    if verdict is not None and verdict.replaced is not None:
        done.append(Change(verdict.replaced, None, source))
    if seen is not None:
        done.append(Change(seen.control_number, seen, source))
    return done


def changelog_records(verdict: Verdict | None, seen: Seen | None) -> list[tuple[bytes, bytes | None]]:
    """The changelog records (key, value) of ``check``'s answer: a tombstone keyed by the control number
    replaced or voided, then the entry keyed by its control number. The worker's commit checkpoints name
    these records, so they must be written in this order and no others."""
    return [(change.key, change.value) for change in changes(verdict, seen, "")]


@dataclass(frozen=True, slots=True)
class HeldLine:
    """A line a store holds, by its service hash: the claim's control number and submission time, the line's
    number, exact hash (16 bytes) and modifier flags."""

    control_number: str
    at_ms: int
    line_number: int
    exact: bytes
    repeat: bool = False
    anatomic: bool = False


def held_lines(seen: Seen) -> Iterable[tuple[bytes, HeldLine]]:
    """The (service hash, held line) pairs a store keeps of ``seen``."""
    for line in seen.lines:
        held = HeldLine(seen.control_number, seen.at_ms, line.line_number, bytes.fromhex(line.exact), line.repeat,
                        line.anatomic)  # fmt: skip
        yield bytes.fromhex(line.service), held


class Store(Protocol):
    """Where a window's committed entries are kept, by control number and their lines by service hash."""

    def entry(self, control_number: str) -> Seen | None:
        """The entry of ``control_number``, if kept."""

    def lines(self, service: bytes) -> Sequence[HeldLine]:
        """The lines kept with service hash ``service`` (usually none or one)."""

    def take(self, changes: Sequence[Change], note: object = None) -> None:
        """Apply ``changes`` in order (an entry replaces the one kept under its control number, lines and all; a
        removal removes it and its lines), drop what is more than a window before the newest submission time
        taken, and keep ``note`` with them (the LMDB store's changelog checkpoint; the memory store ignores
        it): all at once, or nothing."""

    def __len__(self) -> int:
        """The entries kept."""


class MemoryStore:
    """A ``Store`` in dicts, swept now and then (see the module's docstring)."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._entries: dict[str, Seen] = {}
        self._lines: dict[bytes, list[HeldLine]] = {}
        self._newest_ms: int | None = None
        self._since_sweep = 0

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, control_number: str) -> Seen | None:
        return self._entries.get(control_number)

    def lines(self, service: bytes) -> Sequence[HeldLine]:
        return self._lines.get(service, ())

    def take(self, changes: Sequence[Change], note: object = None) -> None:
        for change in changes:
            self._remove(change.control_number)
            seen = change.seen
            if seen is None:
                continue
            self._entries[seen.control_number] = seen
            for service, held in held_lines(seen):
                self._lines.setdefault(service, []).append(held)
            if self._newest_ms is None or seen.at_ms > self._newest_ms:
                self._newest_ms = seen.at_ms
            self._since_sweep += 1
        if self._since_sweep > max(SWEEP_AFTER, len(self._entries) // 2):
            self._sweep()

    def _remove(self, control_number: str) -> None:
        old = self._entries.pop(control_number, None)
        if old is None:
            return
        for line in old.lines:
            service = bytes.fromhex(line.service)
            kept = [held for held in self._lines.get(service, ()) if held.control_number != control_number]
            if kept:
                self._lines[service] = kept
            else:
                self._lines.pop(service, None)

    def _sweep(self) -> None:
        """Drop the entries submitted more than a window before the newest: no claim near it can match them."""
        horizon = (self._newest_ms or 0) - self.window_ms
        self._entries = {key: seen for key, seen in self._entries.items() if seen.at_ms >= horizon}
        lines = {}
        for service, held in self._lines.items():
            kept = [line for line in held if line.at_ms >= horizon]
            if kept:
                lines[service] = kept
        self._lines = lines
        self._since_sweep = 0


class Deferred:
    """A window that matches nothing and keeps nothing: ``check`` only makes a claim's entry (a void's too),
    for a window elsewhere to check it (``SeenClaims.check_entry``: the worker's duplicate check on the claims
    partitioned by member)."""

    def check(self, claim: dict[str, Any] | Claim, source: str, control_number: str) -> tuple[None, Seen | None]:
        return None, entry(claim, source, control_number)


class SeenClaims:
    """The claims submitted within ``window_ms`` of each other, kept in ``store`` (in memory by default); with
    ``staged``, the changes ``check`` makes wait in an overlay for ``commit`` or ``rollback``."""

    def __init__(self, window_ms: int, store: Store | None = None, staged: bool = False) -> None:
        self.window_ms = window_ms
        self.store: Store = store if store is not None else MemoryStore(window_ms)
        self.staged = staged
        self._pending: list[Change] = []
        self._overlay: dict[str, Seen | None] = {}  # control number -> its pending entry; None: removed
        self._overlay_lines: dict[bytes, list[tuple[Seen, HeldLine]]] = {}

    def __len__(self) -> int:
        return len(self.store) + len(self._pending)

    def check(
        self, claim: dict[str, Any] | Claim, source: str, control_number: str
    ) -> tuple[Verdict | None, Seen | None]:
        """What the window says of ``claim`` (the JSON object, or the ``Claim`` decoded from it) read at
        ``source`` and given ``control_number``, and the entry remembered for it. The verdict is None when no
        line matched and nothing is replaced; the entry None when nothing was remembered: a claim sent again
        (every line an exact duplicate), a void, a claim without a usable claim id, submission time or member
        id."""
        seen = entry(claim, source, control_number)
        return (None, None) if seen is None else self.check_entry(seen)

    def check_entry(self, seen: Seen, source: str | None = None) -> tuple[Verdict | None, Seen | None]:
        """``check`` for a claim already reduced to its entry (``entry``, ``Deferred``), read at ``source``
        (the entry's own when None)."""
        if source is not None and source != seen.source:
            seen = replace(seen, source=source)
        replaced, unknown = None, False
        if seen.replaces is not None:
            held = self._held_entry(seen.replaces, seen.at_ms)
            if held is not None and held.member == seen.member and held.control_number != seen.control_number:
                replaced = held.control_number
            elif (again := self._held_entry(seen.control_number, seen.at_ms)) is not None and again.replaces == (
                seen.replaces
            ):
                replaced = seen.replaces  # a replay of a replacement already taken: it replaces the same again
            else:
                unknown = True
        if seen.void:
            verdict = Verdict(replaces_unknown=unknown, replaced=replaced)
            if replaced is not None:
                self._remember(changes(verdict, None, seen.source))
            return (verdict if unknown or replaced else None), None
        matches = self._match(seen, replaced)
        resent = bool(seen.lines) and len(matches) == len(seen.lines) and all(m.exact for m in matches)
        if resent:  # sent again: returned, so it replaces nothing and is not remembered
            return Verdict(matches, True, unknown, None), None
        kept = seen if seen.replaces is None or replaced is not None else replace(seen, replaces=None)
        found = Verdict(matches, False, unknown, replaced) if matches or unknown or replaced else None
        self._remember(changes(found, kept, seen.source))
        return found, kept

    def apply(self, change: Change) -> None:
        """Take one changelog change, committed by definition (also how the state is rebuilt on assignment)."""
        self.store.take((change,))

    def apply_record(self, key: bytes | str | None, value: bytes | None) -> None:
        """Take one changelog record: a tombstone (``value`` None) removes the entry of control number ``key``;
        an entry is kept under its control number. Ignores records that are neither (no key, a value that is
        not an entry, or one whose control number is not its key)."""
        change = change_of_record(key, value)
        if change is not None:
            self.apply(change)

    def pending(self) -> Sequence[Change]:
        """The changes made but not committed yet, oldest first (empty unless ``staged``)."""
        return self._pending

    def commit(self, count: int | None = None, note: object = None) -> None:
        """The first ``count`` pending changes (all when None) are committed: the store takes them with
        ``note`` at once; the others stay pending."""
        count = len(self._pending) if count is None else count
        done, rest = self._pending[:count], self._pending[count:]
        if done or note is not None:
            self.store.take(done, note)
        self.rollback()
        self._stage(rest)

    def rollback(self) -> None:
        """Forget every pending change: the records they came from will be decided again."""
        self._pending, self._overlay, self._overlay_lines = [], {}, {}

    # --- lookups through the overlay --------------------------------------------------------------------------

    def _held_entry(self, control_number: str, at_ms: int) -> Seen | None:
        if len(control_number) > MAX_CONTROL_NUMBER:  # a replacement naming no number a window could hold
            return None
        overlay = self._overlay
        held = overlay[control_number] if control_number in overlay else self.store.entry(control_number)
        return held if held is not None and self._near(held.at_ms, at_ms) else None

    def _held_lines(self, service: bytes, at_ms: int) -> list[HeldLine]:
        overlay = self._overlay
        found = [line for line in self.store.lines(service) if line.control_number not in overlay]
        for seen, line in self._overlay_lines.get(service, ()):
            if overlay.get(seen.control_number) is seen:
                found.append(line)
        return [line for line in found if self._near(line.at_ms, at_ms)]

    def _match(self, seen: Seen, replaced: str | None) -> tuple[LineMatch, ...]:
        """Each line's best match among the lines held (but those of ``replaced`` and of the claim itself, read
        again) and the claim's earlier lines: an exact one, else the first seen."""
        matches = []
        earlier: dict[bytes, list[HeldLine]] = {}
        own = {seen.control_number, replaced}
        for index, line in enumerate(seen.lines):
            service, exact = bytes.fromhex(line.service), bytes.fromhex(line.exact)
            candidates = [held for held in self._held_lines(service, seen.at_ms) if held.control_number not in own]
            candidates += earlier.get(service, ())
            earlier.setdefault(service, []).append(
                HeldLine(seen.control_number, seen.at_ms, line.line_number, exact, line.repeat, line.anatomic)
            )
            if not candidates:
                continue
            best = min(candidates, key=lambda held: (held.exact != exact, held.at_ms, held.control_number,
                                                     held.line_number))  # fmt: skip
            is_exact = best.exact == exact and not line.repeat
            if best.control_number == seen.control_number:
                claim_id = seen.claim_id
            else:
                held_entry = self._held_entry(best.control_number, seen.at_ms)
                claim_id = held_entry.claim_id if held_entry is not None else ""
            matches.append(LineMatch(index, line.line_number, is_exact, claim_id, best.control_number,
                                     best.line_number, best.at_ms))  # fmt: skip
        return tuple(matches)

    def _remember(self, made: list[Change]) -> None:
        if not made:
            return
        if self.staged:
            self._stage(made)
        else:
            self.store.take(made)

    def _stage(self, made: Iterable[Change]) -> None:
        """Hold ``made`` in the overlay, as the store will take them on ``commit``."""
        for change in made:
            self._pending.append(change)
            self._overlay[change.control_number] = change.seen
            if change.seen is not None:
                for service, held in held_lines(change.seen):
                    self._overlay_lines.setdefault(service, []).append((change.seen, held))

    def _near(self, earlier_ms: int, at_ms: int) -> bool:
        return abs(at_ms - earlier_ms) <= self.window_ms


def change_of_record(key: bytes | str | None, value: bytes | None) -> Change | None:
    """The change a changelog record makes: a tombstone removes the entry of control number ``key``, an entry
    is kept; None for a record that is neither (no key, a value that is not an entry, or an entry under
    another control number than its key, or a void, which is never written)."""
    if key is None:
        return None
    try:
        control_number = key if isinstance(key, str) else key.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
    if not 0 < len(control_number) <= MAX_CONTROL_NUMBER:
        return None
    if value is None:
        return Change(control_number, None, "")
    seen = Seen.from_record(value)
    if seen is None or seen.control_number != control_number or seen.void:
        return None
    return Change(control_number, seen, seen.source)
