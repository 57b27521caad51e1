"""Duplicate claims: what was decided within a window, and whether a new claim repeats it. No I/O.

- exact duplicate: the same ``claim_id`` with the same content (everything but the id and the submission
  time) -> ``claim.duplicate`` (CARC 18);
- suspect duplicate: the same content under another ``claim_id`` -> ``claim.suspect_duplicate`` (review);
- the same ``claim_id`` with other content is a corrected resubmission: decided as usual.

Time is the claim's ``submitted_at``, so ``processor check`` and the worker agree and a replay decides the
same way. A record seen again at the same source coordinates (a replay after a crash or an aborted
transaction) is not a duplicate of itself. The worker keeps one ``SeenClaims`` per partition of the claims
it checks and its changes in a compacted changelog topic, written in the same transaction as the decisions:
by default the partitions of the content check's topic, where claims are partitioned by ``fingerprint`` so
that every repeat of a content meets the first (``routing``); with duplicate scope "partition", the claims
topic's own, where only repeats on one partition meet.

Where the entries are kept is a ``Store``'s business: ``MemoryStore`` (the default: ``processor check``, the
tests) holds them in dicts, the worker's LMDB store (``app.window_store``) on disk. Both keep an entry by the
same rule (``Store.take``): the newest entry of a claim id wins; the first entry of a content stays until one
comes more than a window after it. With ``staged=True`` what ``remember`` takes is first held in an overlay,
which lookups consult too, and reaches the store only on ``commit`` (the worker commits a batch's entries
once its transaction has committed) or is dropped by ``rollback`` (its delivery failed): the store then holds
committed entries only.

Memory is bounded by the window: entries submitted more than a window before the newest claim seen are
dropped (``MemoryStore``: in a sweep once the entries taken since the last one reach half of those kept, and
at least ``SWEEP_AFTER``), so a claim submitted that long before the newest one is checked only against what
is still kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec
import orjson

from processor.contracts import Claim

# The fewest entries taken between two sweeps: a sweep walks every entry, so not too often.
SWEEP_AFTER = 16_384
_CONTENT = ("submitter_id", "patient", "billing_provider", "diagnoses", "lines")
_SORTED = msgspec.json.Encoder(order="sorted")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# The instants a ``datetime`` holds in UTC, years 1 to 9999: every submission time in the window is one.
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _MS


def fingerprint(claim: dict[str, Any] | Claim) -> str:
    """A hash of what a claim bills, leaving out its id and submission time (32 hex digits): the JSON object's
    content, keys sorted, encoded by orjson. A ``Claim`` decoded from that object (``contracts.decode_event``)
    has the same bytes from msgspec's encoder with sorted fields: it holds the fields the object holds (no
    other: it refuses them; an optional one left out stays ``UNSET``, which the encoder leaves out), with the
    same values, ints as ints, and both libraries write strings and floats alike (``tests/unit/test_duplicates``
    holds them to it). Encoding the struct saves converting it back to dicts first (a third of the cost)."""
    if isinstance(claim, dict):
        content = orjson.dumps({k: claim.get(k) for k in _CONTENT}, option=orjson.OPT_SORT_KEYS)
    else:  # the fields of _CONTENT, spelled out: a comprehension over it costs 1.2-1.5 us more a claim
        lines = None if isinstance(claim.lines, msgspec.UnsetType) else claim.lines
        content = _SORTED.encode({
            "billing_provider": claim.billing_provider, "diagnoses": claim.diagnoses, "lines": lines,
            "patient": claim.patient, "submitter_id": claim.submitter_id,
        })  # fmt: skip
    return hashlib.blake2b(content, digest_size=16).hexdigest()


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


@dataclass(frozen=True, slots=True)
class Seen:
    """A claim decided earlier: its id, content hash, submission time and where it was read."""

    claim_id: str
    fingerprint: str
    at_ms: int
    source: str

    def as_record(self) -> bytes:
        """The changelog record's value (its key is the claim id)."""
        return orjson.dumps({"claim_id": self.claim_id, "fingerprint": self.fingerprint, "at_ms": self.at_ms,
                             "source": self.source})  # fmt: skip

    @classmethod
    def from_record(cls, value: bytes | None) -> Seen | None:
        """The entry a changelog record value holds; None for a value that is not one (a tombstone, garbage,
        a fingerprint that ``fingerprint`` could not have made, a time outside ``MIN_MS``..``MAX_MS``)."""
        if value is None:
            return None
        try:
            entry = orjson.loads(value)
            seen = cls(str(entry["claim_id"]), str(entry["fingerprint"]), int(entry["at_ms"]), str(entry["source"]))
            bytes.fromhex(seen.fingerprint)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        valid = seen.claim_id and len(seen.fingerprint) == 32 and MIN_MS <= seen.at_ms <= MAX_MS
        return seen if valid else None


def entry(claim: dict[str, Any] | Claim, source: str) -> Seen | None:
    """The entry a window makes of ``claim`` (the JSON object, or the ``Claim`` decoded from it) read at
    ``source``; None when the claim has no usable id or submission time (such a claim is decided without a
    duplicate check)."""
    if isinstance(claim, dict):
        claim_id, at_ms = claim.get("claim_id"), submitted_ms(claim)
    else:
        claim_id, at_ms = claim.claim_id, _ms(claim.submitted_at)
    if not isinstance(claim_id, str) or not claim_id or at_ms is None:
        return None
    return Seen(claim_id, fingerprint(claim), at_ms, source)


class Deferred:
    """A window that matches nothing and keeps nothing: ``check`` only makes a claim's entry, for a window
    elsewhere to check it (the worker's content check, on the claims partitioned by content)."""

    def check(self, claim: dict[str, Any] | Claim, source: str) -> tuple[Duplicate | None, Seen | None]:
        return None, entry(claim, source)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """What a new claim repeats: ``exact`` or a suspect, and the claim it repeats."""

    exact: bool
    first_id: str
    first_seen_ms: int

    def details(self) -> dict[str, Any]:
        first_seen = (_EPOCH + self.first_seen_ms * _MS).isoformat(timespec="seconds")
        return {"first_id": self.first_id, "first_seen": first_seen}


def content_stays(current: Seen | None, new: Seen, window_ms: int) -> bool:
    """Whether ``current``, the entry kept for a content, stays it when ``new`` comes with the same content:
    the first claim of a content is the one a suspect names, until one comes more than a window after it."""
    return current is not None and current.at_ms >= new.at_ms - window_ms


class Store(Protocol):
    """Where a window's committed entries are kept, by claim id and by content."""

    def by_id(self, claim_id: str) -> Seen | None:
        """The newest entry of ``claim_id``, if kept."""

    def by_content(self, content: str) -> Seen | None:
        """The entry kept for a content fingerprint (``content_stays`` says which), if any."""

    def take(self, entries: Sequence[Seen], note: object = None) -> None:
        """Keep ``entries`` in order (an id's newest wins; a content's by ``content_stays``), drop what is more
        than a window before the newest submission time taken, and keep ``note`` with them (the LMDB store's
        changelog checkpoint; the memory store ignores it): all at once, or nothing."""

    def __len__(self) -> int:
        """The claim ids kept."""


class MemoryStore:
    """A ``Store`` in dicts, swept now and then (see the module's docstring)."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._by_id: dict[str, Seen] = {}
        self._by_content: dict[str, Seen] = {}
        self._newest_ms = 0
        self._since_sweep = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def by_id(self, claim_id: str) -> Seen | None:
        return self._by_id.get(claim_id)

    def by_content(self, content: str) -> Seen | None:
        return self._by_content.get(content)

    def take(self, entries: Sequence[Seen], note: object = None) -> None:
        for seen in entries:
            self._by_id[seen.claim_id] = seen
            if not content_stays(self._by_content.get(seen.fingerprint), seen, self.window_ms):
                self._by_content[seen.fingerprint] = seen
            if seen.at_ms > self._newest_ms:
                self._newest_ms = seen.at_ms
            self._since_sweep += 1
        if self._since_sweep > max(SWEEP_AFTER, len(self._by_id) // 2):
            self._sweep()

    def _sweep(self) -> None:
        """Drop the entries submitted more than a window before the newest: no claim near it can match them."""
        horizon = self._newest_ms - self.window_ms
        self._by_id = {key: seen for key, seen in self._by_id.items() if seen.at_ms >= horizon}
        self._by_content = {key: seen for key, seen in self._by_content.items() if seen.at_ms >= horizon}
        self._since_sweep = 0


class SeenClaims:
    """The claims decided within ``window_ms`` of each other, by id and by content, kept in ``store`` (in
    memory by default); with ``staged``, new entries wait in an overlay for ``commit`` or ``rollback``."""

    def __init__(self, window_ms: int, store: Store | None = None, staged: bool = False) -> None:
        self.window_ms = window_ms
        self.store: Store = store if store is not None else MemoryStore(window_ms)
        self.staged = staged
        self._staged: list[Seen] = []
        self._staged_ids: dict[str, Seen] = {}
        self._staged_contents: dict[str, Seen] = {}

    def __len__(self) -> int:
        return len(self.store) + len(self._staged)

    def check(self, claim: dict[str, Any] | Claim, source: str) -> tuple[Duplicate | None, Seen | None]:
        """What the window says of ``claim`` (the JSON object, or the ``Claim`` decoded from it) read at
        ``source``, and the entry remembered for it (None when nothing was: an exact duplicate, or a claim
        without a usable id or submission time)."""
        seen = entry(claim, source)
        return (None, None) if seen is None else self.check_entry(seen)

    def check_entry(self, seen: Seen) -> tuple[Duplicate | None, Seen | None]:
        """``check`` for a claim already reduced to its entry (``entry``)."""
        same_content = self._by_content(seen.fingerprint)
        duplicate = self._match(seen.claim_id, seen.fingerprint, seen.at_ms, seen.source, same_content)
        if duplicate is not None and duplicate.exact:
            return duplicate, None
        self._remember(seen, same_content)
        return duplicate, seen

    def match(self, claim_id: str, content: str, at_ms: int, source: str) -> Duplicate | None:
        """The earlier claim this one repeats within the window, if any."""
        return self._match(claim_id, content, at_ms, source, self._by_content(content))

    def remember(self, claim_id: str, content: str, at_ms: int, source: str) -> Seen:
        """Record a decided claim (the newest submission of an id or a content wins)."""
        seen = Seen(claim_id, content, at_ms, source)
        self._remember(seen, self._by_content(content))
        return seen

    def apply(self, seen: Seen) -> None:
        """Take one changelog entry, committed by definition (also how the state is rebuilt on assignment)."""
        self.store.take((seen,))

    def apply_record(self, value: bytes | None) -> None:
        """Take one changelog record value; ignores values that are not changelog entries."""
        seen = Seen.from_record(value)
        if seen is not None:
            self.apply(seen)

    def pending(self) -> Sequence[Seen]:
        """The entries remembered but not committed yet, oldest first (empty unless ``staged``)."""
        return self._staged

    def commit(self, count: int | None = None, note: object = None) -> None:
        """The first ``count`` pending entries (all when None) are committed: the store takes them with
        ``note`` at once; the others stay pending."""
        count = len(self._staged) if count is None else count
        done, rest = self._staged[:count], self._staged[count:]
        if done or note is not None:
            self.store.take(done, note)
        self.rollback()
        for seen in rest:
            self._stage(seen, self._by_content(seen.fingerprint))

    def rollback(self) -> None:
        """Forget every pending entry: the records they came from will be decided again."""
        self._staged, self._staged_ids, self._staged_contents = [], {}, {}

    def _by_id(self, claim_id: str) -> Seen | None:
        staged = self._staged_ids.get(claim_id) if self._staged_ids else None
        return staged if staged is not None else self.store.by_id(claim_id)

    def _by_content(self, content: str) -> Seen | None:
        staged = self._staged_contents.get(content) if self._staged_contents else None
        return staged if staged is not None else self.store.by_content(content)

    def _match(self, claim_id: str, content: str, at_ms: int, source: str, same: Seen | None) -> Duplicate | None:
        earlier = self._by_id(claim_id)
        if earlier and earlier.fingerprint == content and earlier.source != source and self._near(earlier, at_ms):
            return Duplicate(True, earlier.claim_id, earlier.at_ms)
        if same and same.claim_id != claim_id and self._near(same, at_ms):
            return Duplicate(False, same.claim_id, same.at_ms)
        return None

    def _remember(self, seen: Seen, same_content: Seen | None) -> None:
        if self.staged:
            self._stage(seen, same_content)
        else:
            self.store.take((seen,))

    def _stage(self, seen: Seen, same_content: Seen | None) -> None:
        """Hold ``seen`` in the overlay, by the store's rule, as the store will take it on ``commit``."""
        self._staged.append(seen)
        self._staged_ids[seen.claim_id] = seen
        if not content_stays(same_content, seen, self.window_ms):
            self._staged_contents[seen.fingerprint] = seen

    def _near(self, earlier: Seen, at_ms: int) -> bool:
        return abs(at_ms - earlier.at_ms) <= self.window_ms
