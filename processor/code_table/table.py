"""The in-memory code table, built from code-table records (see ``schemas/code-table-record.schema.json``).

A record is one version of one code: valid on service dates from ``valid_from`` to ``valid_to``
(open-ended when null). Its key is ``SYSTEM|CODE|VALID_FROM`` with the code normalized; a record with the
same key replaces the earlier one and a null value (tombstone) deletes it, exactly as the compacted
topic keeps them.

Policy records travel on the same topic under reserved system names that start with ``@`` (no code
system may): ``@release`` (the dates a loaded release of a system covers), ``@supports`` (a diagnosis
range that supports a procedure or test: coverage), ``@ncci`` (a code pair with its NCCI modifier
indicator), ``@mue`` (the most units a line may bill), ``@mce`` (the flags CMS's Medicare Code Editor lists
give a code: age group, manifestation, unacceptable principal...) and ``@mce-age`` (the ages an MCE age
group allows; both from ``mce``). Their keys have the same three parts, so compaction, replacement and
tombstones work the same way (see ``policy_record``).

Everything the engine needs per event is computed here, once per record applied: a version's age, sex,
principal and crosswalk attributes are parsed into fields, and policy records go into indexes keyed the
way the engine looks them up. The table is not thread-safe: the worker applies updates on its event loop
between batches, so every decision in a batch sees one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from processor.code_systems import normalize

RELEASE = "@release"
SUPPORTS = "@supports"
NCCI = "@ncci"
MUE = "@mue"
MCE = "@mce"
MCE_AGE = "@mce-age"
POLICY_KINDS = (RELEASE, SUPPORTS, NCCI, MUE, MCE, MCE_AGE)


def record_key(system: str, code: str, valid_from: str) -> str:
    """The topic key of a code-table record."""
    return f"{system}|{normalize(system, code)}|{valid_from}"


def policy_record(
    kind: str, subject: str, valid_from: str, valid_to: str | None, attributes: dict[str, Any], description: str = ""
) -> tuple[str, dict[str, Any]]:
    """A policy record and its key ``KIND|SUBJECT|VALID_FROM`` (SUBJECT upper case, see the module doc)."""
    subject = subject.strip().upper()
    record = {"system": kind, "code": subject, "valid_from": valid_from, "valid_to": valid_to,
              "attributes": attributes}  # fmt: skip
    if description:
        record["description"] = description
    return f"{kind}|{subject}|{valid_from}", record


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """One version of a code: the dates it is valid on and what the table says of it then.

    The edit attributes (``age_min``... ``maps_to``) are parsed from the record's ``attributes`` when it is
    applied, so that the engine reads fields instead of parsing per event.
    """

    valid_from: str
    valid_to: str | None
    billable: bool
    description: str
    attributes: dict[str, Any] | None
    age_min: int | None = None
    age_max: int | None = None
    age_edit: str = ""
    sex: str | None = None
    manifestation: bool = False
    code_first: bool = False
    maps_to: tuple[str, str] | None = None

    def covers(self, day: str) -> bool:
        """True when the version is valid on ``day`` (ISO dates compare as strings)."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class MceEntry(NamedTuple):
    """What CMS's MCE lists say of a code on a day: its flags (``maternity``, ``manifestation``,
    ``unacceptable``...) and, once CMS dropped the code from its sex lists, the sex of its last list."""

    flags: frozenset[str]
    cms_sex: str | None


_NONE: tuple[CodeVersion, ...] = ()
_TRUE = {True, "true", "True", "TRUE", "1", "yes", "y"}


class CodeTable:
    """Codes by system, each with its versions, and the policy records; ``version`` names where the table
    was read up to, and ``revision`` counts the records applied to it (it moves whenever the table changes)."""

    def __init__(self, version: str = "empty") -> None:
        self._codes: dict[str, dict[str, tuple[CodeVersion, ...]]] = {}
        self._size = 0
        self.version = version
        # key -> (index, subject) of every policy record held, so that a replacement or tombstone finds it.
        self._policy: dict[str, tuple[dict[Any, dict[str, tuple]], Any]] = {}
        self._releases: dict[str, dict[str, tuple]] = {}  # system -> key -> (first, last, name)
        self._supports: dict[tuple[str, str], dict[str, tuple]] = {}  # (system, code) -> key -> (lo, hi, from, to)
        self._pairs: dict[tuple[str, str], dict[str, tuple]] = {}  # (col1, col2) -> key -> (indicator, from, to)
        self._mue: dict[str, dict[str, tuple]] = {}  # code -> key -> (max units, from, to)
        self._mce: dict[tuple[str, str], dict[str, tuple]] = {}  # (system, code) -> key -> (from, to, MceEntry)
        self._mce_ages: dict[str, dict[str, tuple]] = {}  # group -> key -> (from, to, (age min, age max))
        self._mce_entries: dict[MceEntry, MceEntry] = {}  # one shared MceEntry per distinct value
        # One shared tuple per distinct lone version with no description or attributes: such codes (ICD-10-PCS:
        # ~79,000) have a few distinct versions between them, and the worker holds the table as long as it runs.
        self._shared: dict[CodeVersion, tuple[CodeVersion]] = {}
        # (system, day) -> covers_date answer: a few hundred days a year, asked for every code of every event.
        self._covered: dict[tuple[str, str], bool | None] = {}
        # Counts the records applied, so that whatever was worked out from the table at one revision (the
        # engine's memo, ``engine/memo.py``) is known to hold for as long as the revision stays the same.
        self.revision = 0

    def __len__(self) -> int:
        """The number of code versions held (policy records not counted)."""
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

    # Policy look-ups. Each answers for one date of service; None means "no policy says anything".

    def covers_date(self, system: str, day: str) -> bool | None:
        """Whether a loaded release of ``system`` covers ``day``; None when no release of it is declared."""
        answer = self._covered.get((system, day), self)
        if answer is self:
            releases = self._releases.get(system)
            answer = any(first <= day <= last for first, last, _ in releases.values()) if releases else None
            self._covered[(system, day)] = answer
        return answer  # type: ignore[return-value]

    def releases(self, system: str) -> list[tuple[str, str, str]]:
        """The declared releases of ``system`` as ``(name, first day, last day)``, oldest first."""
        return sorted(((n, f, t) for f, t, n in self._releases.get(system, {}).values()), key=lambda r: r[1])

    @property
    def has_coverage_policy(self) -> bool:
        """True when any ``@supports`` record is loaded."""
        return bool(self._supports)

    def supporting(self, system: str, code: str, day: str) -> list[tuple[str, str]] | None:
        """The diagnosis ranges ``(low, high)`` that support a service on ``day``; None when no policy does."""
        entries = self._supports.get((system, code))
        if not entries:
            return None
        ranges = [(lo, hi) for lo, hi, start, end in entries.values() if start <= day and (end is None or day <= end)]
        return ranges or None

    @property
    def has_pairs(self) -> bool:
        """True when any NCCI pair is loaded."""
        return bool(self._pairs)

    def pair(self, column1: str, column2: str, day: str) -> str | None:
        """The NCCI modifier indicator of the pair on ``day`` ('0', '1' or '9'), or None."""
        entries = self._pairs.get((column1, column2))
        if entries:
            for indicator, start, end in entries.values():
                if start <= day and (end is None or day <= end):
                    return indicator
        return None

    @property
    def has_mue(self) -> bool:
        """True when any MUE record is loaded."""
        return bool(self._mue)

    def max_units(self, code: str, day: str) -> float | None:
        """The most units of ``code`` one line may bill on ``day`` (MUE), or None."""
        entries = self._mue.get(code)
        if entries:
            for units, start, end in entries.values():
                if start <= day and (end is None or day <= end):
                    return units
        return None

    @property
    def has_mce(self) -> bool:
        """True when any ``@mce`` record (CMS's MCE lists) is loaded."""
        return bool(self._mce)

    def mce(self, system: str, code: str, day: str) -> MceEntry | None:
        """What the MCE lists say of a normalized code on ``day``; None when no entry covers it (no flags)."""
        entries = self._mce.get((system, code))
        if entries:
            for start, end, entry in entries.values():
                if start <= day and (end is None or day <= end):
                    return entry
        return None

    def mce_age_range(self, group: str, day: str) -> tuple[int, int] | None:
        """The youngest and oldest age the MCE age group (``newborn``, ``pediatric``, ``maternity``,
        ``adult``) allows on ``day``, or None."""
        entries = self._mce_ages.get(group)
        if entries:
            for start, end, ages in entries.values():
                if start <= day and (end is None or day <= end):
                    return ages
        return None

    def apply(self, key: str, record: dict[str, Any] | None) -> None:
        """Upsert the record stored under ``key``, or delete it when ``record`` is None (a tombstone).

        Raises ValueError for a key that is not ``SYSTEM|CODE|VALID_FROM`` or a record that does not
        match its key; the follower counts those and skips them.
        """
        system, code, valid_from = _split_key(key)
        if record is not None:
            if record.get("system") != system or normalize(system, str(record.get("code", ""))) != code:
                raise ValueError("record does not match its key")
            if record.get("valid_from") != valid_from:
                raise ValueError("record valid_from does not match its key")
        if system.startswith("@"):
            self._apply_policy(system, key, record)
            self.revision += 1
            return
        codes = self._codes.setdefault(system, {})
        kept = tuple(v for v in codes.get(code, _NONE) if v.valid_from != valid_from)
        if record is not None:
            version = _version(record)
            if not kept and version.attributes is None and not version.description:  # ICD-10-PCS, CPT...
                kept = self._shared.setdefault(version, (version,))
            else:
                kept = tuple(sorted((*kept, version), key=lambda v: v.valid_from))
        self.revision += 1
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

    def _apply_policy(self, kind: str, key: str, record: dict[str, Any] | None) -> None:
        entry = None if record is None else self._policy_entry(kind, record)  # validate before removing
        if kind == RELEASE:
            self._covered.clear()
        held = self._policy.pop(key, None)
        if held is not None:
            index, subject = held
            entries = index.get(subject)
            if entries is not None:
                entries.pop(key, None)
                if not entries:
                    del index[subject]
        if entry is not None:
            index, subject, value = entry
            index.setdefault(subject, {})[key] = value
            self._policy[key] = (index, subject)

    def _policy_entry(self, kind: str, record: dict[str, Any]) -> tuple[dict, Any, tuple]:
        attributes = record.get("attributes") or {}
        start, end = record["valid_from"], record.get("valid_to")
        if kind == RELEASE:
            if end is None:
                raise ValueError("a release record needs valid_to (the last day it covers)")
            return self._releases, _text(attributes, "system"), (start, end, record.get("description") or "")
        if kind == SUPPORTS:
            system = _text(attributes, "system")
            low, _, high = _text(attributes, "diagnoses").partition("-")
            low, high = normalize("ICD-10-CM", low), normalize("ICD-10-CM", high or low)
            subject = (system, normalize(system, _text(attributes, "code")))
            return self._supports, subject, (low, high, start, end)
        if kind == NCCI:
            indicator = str(attributes.get("modifier_indicator", ""))
            if indicator not in {"0", "1", "9"}:
                raise ValueError("modifier_indicator must be 0, 1 or 9")
            subject = (_code(attributes, "column1"), _code(attributes, "column2"))
            return self._pairs, subject, (indicator, start, end)
        if kind == MUE:
            units = float(attributes.get("max_units", "nan"))
            if not units >= 0:
                raise ValueError("max_units must be a number >= 0")
            return self._mue, _code(attributes, "code"), (units, start, end)
        if kind == MCE:
            system = _text(attributes, "system")
            flags = attributes.get("flags")
            if not isinstance(flags, list) or not all(isinstance(f, str) and f for f in flags):
                raise ValueError("flags must be a list of MCE flag names")
            sex = attributes.get("cms_sex")
            if sex not in (None, "M", "F"):
                raise ValueError("cms_sex must be M or F")
            entry = MceEntry(frozenset(flags), sex)
            entry = self._mce_entries.setdefault(entry, entry)
            return self._mce, (system, normalize(system, _text(attributes, "code"))), (start, end, entry)
        if kind == MCE_AGE:
            ages = _age(attributes.get("age_min")), _age(attributes.get("age_max"))
            if ages[0] is None or ages[1] is None or ages[0] > ages[1]:
                raise ValueError("an MCE age group needs age_min <= age_max")
            return self._mce_ages, _text(attributes, "group").lower(), (start, end, ages)
        raise ValueError(f"unknown policy record kind {kind!r}")


def in_range(code: str, low: str, high: str) -> bool:
    """True when a normalized ICD-10-CM code falls in ``low``-``high`` as the classification writes ranges:
    E08-E13 holds every code under E08 to E13, E11.6 every code under E11.6."""
    return low <= code[: len(low)] and code[: len(high)] <= high


def _version(record: dict[str, Any]) -> CodeVersion:
    attributes = record.get("attributes") or None
    a = attributes or {}
    maps_to = None
    if a.get("maps_to"):
        target = str(a["maps_to"])
        system = str(a.get("maps_to_system") or "")
        if not system and ":" in target:
            system, _, target = target.partition(":")
        maps_to = (system, normalize(system, target))
    sex = a.get("sex")
    return CodeVersion(
        valid_from=record["valid_from"],
        valid_to=record.get("valid_to"),
        billable=bool(record.get("billable", True)),
        description=str(record.get("description") or ""),
        attributes=attributes,
        age_min=_age(a.get("age_min")),
        age_max=_age(a.get("age_max")),
        age_edit=str(a.get("age_edit") or ""),
        sex=sex if sex in ("M", "F") else None,
        manifestation=a.get("manifestation") in _TRUE,
        code_first=a.get("code_first") in _TRUE,
        maps_to=maps_to,
    )


def _age(value: Any) -> int | None:
    if value is None or value == "":
        return None
    age = int(value)
    if not 0 <= age <= 150:
        raise ValueError("an age limit must be 0 to 150")
    return age


def _text(attributes: dict[str, Any], name: str) -> str:
    value = attributes.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"policy record without attributes.{name}")
    return value.strip()


def _code(attributes: dict[str, Any], name: str) -> str:
    return _text(attributes, name).upper()


def _split_key(key: str) -> tuple[str, str, str]:
    parts = key.split("|")
    if len(parts) != 3 or not all(parts):
        raise ValueError("code-table key is not SYSTEM|CODE|VALID_FROM")
    return parts[0], parts[1], parts[2]
