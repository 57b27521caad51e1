"""Duplicate claims: what was decided within a window, and whether a new claim repeats it. No I/O.

- exact duplicate: the same ``claim_id`` with the same content (everything but the id and the submission
  time) -> ``claim.duplicate`` (CARC 18);
- suspect duplicate: the same content under another ``claim_id`` -> ``claim.suspect_duplicate`` (review);
- the same ``claim_id`` with other content is a corrected resubmission: decided as usual.

Time is the claim's ``submitted_at``, so ``processor check`` and the worker agree and a replay decides the
same way. A record seen again at the same source coordinates (a replay after a crash or an aborted
transaction) is not a duplicate of itself. The worker keeps one ``SeenClaims`` per claims partition and
its changes in a compacted changelog topic, written in the same transaction as the decisions.

Memory is bounded by the window: entries submitted more than a window before the newest claim seen are
dropped (in a sweep once the entries taken since the last one reach half of those kept, and at least
``SWEEP_AFTER``), so a claim submitted that long before the newest one is checked only against what is still
kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

# The fewest entries taken between two sweeps: a sweep walks every entry, so not too often.
SWEEP_AFTER = 16_384
_CONTENT = ("submitter_id", "patient", "billing_provider", "diagnoses", "lines")


def fingerprint(claim: dict[str, Any]) -> str:
    """A hash of what a claim bills, leaving out its id and submission time."""
    content = orjson.dumps({k: claim.get(k) for k in _CONTENT}, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def submitted_ms(claim: dict[str, Any]) -> int | None:
    """``submitted_at`` in milliseconds since the epoch, or None when it does not parse."""
    try:
        return int(datetime.fromisoformat(str(claim.get("submitted_at"))).timestamp() * 1000)
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Seen:
    """A claim decided earlier: its id, content hash, submission time and where it was read."""

    claim_id: str
    fingerprint: str
    at_ms: int
    source: str

    def as_record(self) -> bytes:
        return orjson.dumps({"claim_id": self.claim_id, "fingerprint": self.fingerprint, "at_ms": self.at_ms,
                             "source": self.source})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Duplicate:
    """What a new claim repeats: ``exact`` or a suspect, and the claim it repeats."""

    exact: bool
    first_id: str
    first_seen_ms: int

    def details(self) -> dict[str, Any]:
        first_seen = datetime.fromtimestamp(self.first_seen_ms / 1000, UTC).isoformat(timespec="seconds")
        return {"first_id": self.first_id, "first_seen": first_seen}


class SeenClaims:
    """The claims decided within ``window_ms`` of each other, by id and by content."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._by_id: dict[str, Seen] = {}
        self._by_content: dict[str, Seen] = {}
        self._newest_ms = 0
        self._since_sweep = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def check(self, claim: dict[str, Any], source: str) -> tuple[Duplicate | None, Seen | None]:
        """What the window says of ``claim`` read at ``source``, and the entry remembered for it (None when
        nothing was: an exact duplicate, or a claim without a usable id or submission time)."""
        claim_id, at_ms = claim.get("claim_id"), submitted_ms(claim)
        if not isinstance(claim_id, str) or not claim_id or at_ms is None:
            return None, None
        content = fingerprint(claim)
        duplicate = self.match(claim_id, content, at_ms, source)
        if duplicate is not None and duplicate.exact:
            return duplicate, None
        return duplicate, self.remember(claim_id, content, at_ms, source)

    def match(self, claim_id: str, content: str, at_ms: int, source: str) -> Duplicate | None:
        """The earlier claim this one repeats within the window, if any."""
        earlier = self._by_id.get(claim_id)
        if earlier and earlier.fingerprint == content and earlier.source != source and self._near(earlier, at_ms):
            return Duplicate(True, earlier.claim_id, earlier.at_ms)
        earlier = self._by_content.get(content)
        if earlier and earlier.claim_id != claim_id and self._near(earlier, at_ms):
            return Duplicate(False, earlier.claim_id, earlier.at_ms)
        return None

    def remember(self, claim_id: str, content: str, at_ms: int, source: str) -> Seen:
        """Record a decided claim (the newest submission of an id or a content wins)."""
        seen = Seen(claim_id, content, at_ms, source)
        self.apply(seen)
        return seen

    def apply(self, seen: Seen) -> None:
        """Take one changelog entry (also how the state is rebuilt on assignment)."""
        self._by_id[seen.claim_id] = seen
        self._by_content.setdefault(seen.fingerprint, seen)
        if self._by_content[seen.fingerprint].at_ms < seen.at_ms - self.window_ms:
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

    def apply_record(self, value: bytes | None) -> None:
        """Take one changelog record value; ignores values that are not changelog entries."""
        if value is None:
            return
        try:
            entry = orjson.loads(value)
            self.apply(Seen(str(entry["claim_id"]), str(entry["fingerprint"]), int(entry["at_ms"]),
                            str(entry["source"])))  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return

    def _near(self, earlier: Seen, at_ms: int) -> bool:
        return abs(at_ms - earlier.at_ms) <= self.window_ms
