"""The in-memory code table, built from code-table records (see ``schemas/code-table-record.schema.json``).

A record is one version of one code: valid on service dates from ``valid_from`` to ``valid_to``
(open-ended when null). Its key is ``SYSTEM|CODE|VALID_FROM`` with the code normalized; a record with the
same key replaces the earlier one and a null value (tombstone) deletes it, exactly as the compacted
topic keeps them. The table is not thread-safe: the worker applies updates on its event loop between
batches, so every decision in a batch sees one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.code_systems import normalize


def record_key(system: str, code: str, valid_from: str) -> str:
    """The topic key of a code-table record."""
    return f"{system}|{normalize(system, code)}|{valid_from}"


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """One version of a code: the dates it is valid on and what the table says of it then."""

    valid_from: str
    valid_to: str | None
    billable: bool
    description: str
    attributes: dict[str, Any] | None

    def covers(self, day: str) -> bool:
        """True when the version is valid on ``day`` (ISO dates compare as strings)."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


_NONE: tuple[CodeVersion, ...] = ()


class CodeTable:
    """Codes by system, each with its versions; ``version`` names where the table was read up to."""

    def __init__(self, version: str = "empty") -> None:
        self._codes: dict[str, dict[str, tuple[CodeVersion, ...]]] = {}
        self._size = 0
        self.version = version

    def __len__(self) -> int:
        """The number of code versions held."""
        return self._size

    def systems(self) -> set[str]:
        """The systems that have at least one code in the table."""
        return {system for system, codes in self._codes.items() if codes}

    def has_system(self, system: str) -> bool:
        """True when at least one code of ``system`` is loaded."""
        return bool(self._codes.get(system))

    def versions(self, system: str, normalized_code: str) -> tuple[CodeVersion, ...]:
        """Every version of a code, oldest first; empty when the table does not know it."""
        codes = self._codes.get(system)
        return codes.get(normalized_code, _NONE) if codes else _NONE

    def apply(self, key: str, record: dict[str, Any] | None) -> None:
        """Upsert the record stored under ``key``, or delete it when ``record`` is None (a tombstone).

        Raises ValueError for a key that is not ``SYSTEM|CODE|VALID_FROM`` or a record that does not
        match its key; the follower counts those and skips them.
        """
        system, code, valid_from = _split_key(key)
        codes = self._codes.setdefault(system, {})
        kept = tuple(v for v in codes.get(code, _NONE) if v.valid_from != valid_from)
        if record is not None:
            if record.get("system") != system or normalize(system, str(record.get("code", ""))) != code:
                raise ValueError("record does not match its key")
            if record.get("valid_from") != valid_from:
                raise ValueError("record valid_from does not match its key")
            version = CodeVersion(
                valid_from=valid_from,
                valid_to=record.get("valid_to"),
                billable=bool(record.get("billable", True)),
                description=str(record.get("description") or ""),
                attributes=record.get("attributes") or None,
            )
            kept = tuple(sorted((*kept, version), key=lambda v: v.valid_from))
        self._size += len(kept) - len(codes.get(code, _NONE))
        if kept:
            codes[code] = kept
        else:
            codes.pop(code, None)

    def load(self, records: Any) -> CodeTable:
        """Apply ``(key, record)`` pairs in order; returns the table for chaining."""
        for key, record in records:
            self.apply(key, record)
        return self


def _split_key(key: str) -> tuple[str, str, str]:
    parts = key.split("|")
    if len(parts) != 3 or not all(parts):
        raise ValueError("code-table key is not SYSTEM|CODE|VALID_FROM")
    return parts[0], parts[1], parts[2]
