"""The in-memory code table, built from code-table records (see ``schemas/code-table-record.schema.json``).

A record is one version of one code: valid on service dates from ``valid_from`` to ``valid_to``
(open-ended when null). Its key is ``SYSTEM|CODE|VALID_FROM`` with the code normalized; a record with the
same key replaces the earlier one and a null value (tombstone) deletes it, exactly as the compacted
topic keeps them.

Policy records travel on the same topic under reserved system names that start with ``@`` (no code
system may): ``@release`` (the dates a loaded release of a system covers), ``@supports`` (a diagnosis
range that supports a procedure or test: coverage), ``@ncci`` (an NCCI procedure-to-procedure edit: a code
pair of CMS's practitioner or hospital table with its modifier indicator), ``@ncci-set`` (every edit of CMS's
PTP files for one column-1 code of one table, with their dates: what ``processor load ncci-ptp`` publishes,
see ``ncci_mue``), ``@mue`` (a Medically Unlikely
Edit of the practitioner, outpatient hospital or DME table: the most units of a code, and whether per line or
per day), ``@mce`` (the flags CMS's Medicare Code Editor lists give a code: age group, manifestation,
unacceptable principal...) and ``@mce-age`` (the ages an MCE age group allows; both from ``mce``). Their keys
have the same three parts, so compaction, replacement and tombstones work the same way (see
``policy_record``). The subject of an ``@ncci`` or ``@mue`` key names its table and codes (``ncci_subject``,
``mue_subject``): ``HOSPITAL:93000/93005``, ``DME:E0114``; the practitioner table's carry no prefix
(``93000/93005``, ``36415``), as they did before there were other tables. An ``@ncci-set`` key is the one
exception to the third part: ``@ncci-set|HOSPITAL:93000|1`` names the table, the column-1 code and the part
(a code with more than ``ncci_mue.SET_SIZE`` edits takes several records), since its edits have many dates.

Everything the engine needs per event is computed here, once per record applied: a version's age, sex,
principal and crosswalk attributes are parsed into fields, and policy records go into indexes keyed the
way the engine looks them up. NCCI and MUE tables run to a million rows, so their index holds no record and
no key: table -> column 1 -> column 2 -> a flat tuple ``(from, to, PairEdit, from, to, PairEdit...)`` (MUE:
table -> code -> the same with ``MueLimit``), with codes interned and equal values and lone versions shared
(most edits share their dates, indicator and rationale with thousands of others): about 45 bytes a pair.
``@ncci-set`` records have an index of their own (table -> column 1 -> part -> column 2 -> versions), which
a record replaces whole; a payer's own ``@ncci`` edit of a pair, in effect on the day, is the one that
holds over CMS's. The
table is not thread-safe: the worker applies updates on its event loop between batches, so every decision
in a batch sees one table.
"""

from __future__ import annotations

import sys
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import msgspec
import orjson

from processor.code_systems import normalize

RELEASE = "@release"
SUPPORTS = "@supports"
NCCI = "@ncci"
NCCI_SET = "@ncci-set"
MUE = "@mue"
MCE = "@mce"
MCE_AGE = "@mce-age"
POLICY_KINDS = (RELEASE, SUPPORTS, NCCI, NCCI_SET, MUE, MCE, MCE_AGE)
_EDIT_KINDS = frozenset((NCCI, MUE))
_first = itemgetter(0)
_valid_from = attrgetter("valid_from")
_PREFIXES = {"practitioner": "", "hospital": "HOSPITAL:"}  # what an @ncci key's subject starts with, by table
PRACTITIONER = "practitioner"
PTP_TABLES = (PRACTITIONER, "hospital")  # CMS's NCCI PTP tables: practitioner, hospital outpatient
MUE_TABLES = (PRACTITIONER, "outpatient", "dme")  # CMS's MUE tables: practitioner, outpatient hospital, DME supplier


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


def ncci_subject(table: str, column1: str, column2: str) -> str:
    """The subject of an ``@ncci`` key: ``93000/93005`` in the practitioner table, ``HOSPITAL:93000/93005``."""
    pair = f"{column1}/{column2}".upper()
    return pair if table == PRACTITIONER else f"{table.upper()}:{pair}"


def mue_subject(table: str, code: str) -> str:
    """The subject of an ``@mue`` key: ``36415`` in the practitioner table, ``OUTPATIENT:36415``, ``DME:E0114``."""
    return code.upper() if table == PRACTITIONER else f"{table.upper()}:{code.upper()}"


class PairEdit(NamedTuple):
    """An NCCI procedure-to-procedure edit in effect: ``modifier_indicator`` '0' (the pair is never paid
    together), '1' (an NCCI-associated modifier may allow it) or '9' (not applicable: the edit was deleted),
    and CMS's rationale ('' when the table gave none)."""

    modifier_indicator: str
    rationale: str


class MueLimit(NamedTuple):
    """A Medically Unlikely Edit in effect: the most units of a code, and its adjudication indicator
    (``mai``: 1 per claim line; 2 per day, an absolute policy limit; 3 per day, a clinical benchmark)."""

    max_units: float
    mai: int
    rationale: str


class EditAttributes(msgspec.Struct):
    """The attributes of an ``@ncci`` record (table, column 1 and 2, modifier indicator, rationale) or an
    ``@mue`` record (table, code, most units, MAI, rationale), typed: decoded straight from the record's bytes."""

    table: str | None = None
    column1: str | None = None
    column2: str | None = None
    modifier_indicator: str | int | None = None
    code: str | None = None
    max_units: float | str | None = None
    mai: int | str = 1  # per line, as CMS's MAI 1
    rationale: str | None = None


class EditRecord(msgspec.Struct):
    """An ``@ncci`` or ``@mue`` record, typed (the other fields of a code-table record are not needed)."""

    system: str
    code: str
    valid_from: str
    valid_to: str | None = None
    attributes: EditAttributes | None = None


_EDIT_DECODER = msgspec.json.Decoder(EditRecord)


class SetEdit(msgspec.Struct, array_like=True):
    """One version of one edit of an ``@ncci-set`` record, as the array ``[column2, valid_from, valid_to,
    modifier_indicator, rationale]`` (``rationale``: its place in the record's ``rationales``), and ``true``
    after them when CMS marks the edit as in existence before 1996."""

    column2: str
    valid_from: str
    valid_to: str | None
    modifier_indicator: str
    rationale: int = 0
    prior_1996: bool = False


class SetAttributes(msgspec.Struct):
    """The attributes of an ``@ncci-set`` record: its table, column-1 code and part, and its edits."""

    table: str
    column1: str
    part: int
    edits: list[SetEdit]
    rationales: list[str] = []


class SetRecord(msgspec.Struct):
    """An ``@ncci-set`` record, typed."""

    system: str
    code: str
    valid_from: str
    attributes: SetAttributes
    valid_to: str | None = None


_SET_DECODER = msgspec.json.Decoder(SetRecord)


class CodeRecord(msgspec.Struct):
    """A code's record (not a policy record), typed: decoded straight from the record's bytes."""

    system: str
    code: str
    valid_from: str
    valid_to: str | None = None
    billable: bool = True
    description: str | None = None
    attributes: dict[str, Any] | None = None


_CODE_DECODER = msgspec.json.Decoder(CodeRecord)


class CodeVersion(msgspec.Struct, frozen=True):
    """One version of a code: the dates it is valid on and what the table says of it then.

    The edit attributes (``age_min``... ``maps_to``) are parsed from the record's ``attributes`` when it is
    applied, so that the engine reads fields instead of parsing per event. (A frozen msgspec struct, not a
    dataclass: two hundred thousand are made at start, and a frozen dataclass's ``__init__`` cost a third of
    the default table's load.)
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
        # key -> (index, subject) of every policy record held (but @ncci and @mue), so that a replacement or
        # tombstone finds it.
        self._policy: dict[str, tuple[dict[Any, dict[str, tuple]], Any]] = {}
        self._releases: dict[str, dict[str, tuple]] = {}  # system -> key -> (first, last, name)
        self._supports: dict[tuple[str, str], dict[str, tuple]] = {}  # (system, code) -> key -> (lo, hi, from, to)
        # NCCI and MUE: no key map (a key names its place: ``_edit_place``); flat version tuples (module doc).
        self._pairs: dict[str, dict[str, dict[str, tuple]]] = {}  # table -> column 1 -> column 2 -> versions
        self._sets: dict[str, dict[str, dict[int, dict[str, tuple]]]] = {}  # the same, by part: @ncci-set
        self._mue: dict[str, dict[str, tuple]] = {}  # table -> code -> versions
        self._shared_edits: dict[tuple, tuple] = {}  # one PairEdit, MueLimit, lone version per distinct value
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

    def covered_until(self) -> dict[str, str]:
        """The last date of service the loaded releases of each system cover (the latest release's last day),
        by system; systems with no ``@release`` record are left out."""
        return {system: max(last for _, last, _ in releases.values())
                for system, releases in sorted(self._releases.items()) if releases}  # fmt: skip

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
        """True when any NCCI pair is loaded (of any table)."""
        return any(self._pairs.values()) or any(self._sets.values())

    def pair(self, column1: str, column2: str, day: str, table: str = PRACTITIONER) -> PairEdit | None:
        """The NCCI edit of ``table`` ('practitioner' or 'hospital') in effect on ``day`` for the pair
        (normalized codes, column 1 first), or None: a payer's own (``@ncci``) before CMS's (``@ncci-set``).
        When versions overlap, the one that starts last wins."""
        columns = self._pairs.get(table)
        if columns:
            seconds = columns.get(column1)
            if seconds:
                versions = seconds.get(column2)
                if versions:
                    edit = _in_effect(versions, day)
                    if edit is not None:
                        return edit
        sets = self._sets.get(table)
        if sets:
            parts = sets.get(column1)
            if parts:
                for seconds in parts.values():
                    versions = seconds.get(column2)
                    if versions:
                        return _in_effect(versions, day)
        return None

    @property
    def has_mue(self) -> bool:
        """True when any MUE is loaded (of any table)."""
        return any(self._mue.values())

    def mue(self, code: str, day: str, table: str = PRACTITIONER) -> MueLimit | None:
        """The MUE of ``table`` ('practitioner', 'outpatient' or 'dme') in effect on ``day`` for a normalized
        code, or None. When versions overlap, the one that starts last wins."""
        codes = self._mue.get(table)
        if codes:
            versions = codes.get(code)
            if versions:
                return _in_effect(versions, day)
        return None

    def max_units(self, code: str, day: str, table: str = PRACTITIONER) -> float | None:
        """The most units of ``code`` on ``day`` (``mue(...).max_units``), or None."""
        limit = self.mue(code, day, table)
        return None if limit is None else limit.max_units

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
        kind = key[: key.find("|")]
        if kind in _EDIT_KINDS:
            self._apply_edit(kind, key, None if record is None else msgspec.convert(record, EditRecord))
            self.revision += 1
            return
        if kind == NCCI_SET:
            self._apply_set(key, None if record is None else msgspec.convert(record, SetRecord))
            self.revision += 1
            return
        if kind.startswith("@"):
            system, code, valid_from = _split_key(key)
            if record is not None:
                if record.get("system") != system or normalize(system, str(record.get("code", ""))) != code:
                    raise ValueError("record does not match its key")
                if record.get("valid_from") != valid_from:
                    raise ValueError("record valid_from does not match its key")
            self._apply_policy(system, key, record)
            self.revision += 1
            return
        self._apply_code(key, None if record is None else msgspec.convert(record, CodeRecord))

    def _apply_code(self, key: str, record: CodeRecord | None) -> None:
        """Upsert or delete one version of a code."""
        system, code, valid_from = _split_key(key)
        if record is not None:
            if record.system != system or normalize(system, record.code) != code:
                raise ValueError("record does not match its key")
            if record.valid_from != valid_from:
                raise ValueError("record valid_from does not match its key")
        codes = self._codes.get(system)
        if codes is None:
            codes = self._codes[system] = {}
        held = codes.get(code, _NONE)
        kept = tuple(v for v in held if v.valid_from != valid_from) if held else _NONE
        if record is not None:
            version = _version(record)
            if not kept and version.attributes is None and not version.description:  # ICD-10-PCS, CPT...
                kept = self._shared.setdefault(version, (version,))
            elif not kept:
                kept = (version,)
            else:
                kept = tuple(sorted((*kept, version), key=_valid_from))
        self.revision += 1
        self._size += len(kept) - len(held)
        if kept:
            codes[code] = kept
        else:
            codes.pop(code, None)

    def apply_json(self, key: bytes, value: bytes | None) -> None:
        """``apply`` for a record as the topic holds it: the key and the JSON value (None: a tombstone) as bytes.
        NCCI and MUE records, a million at start, decode straight into typed structs (``EditRecord``): a
        third faster than into dicts. Raises ValueError (or UnicodeDecodeError) for a record that is not one."""
        text = key.decode()
        kind = text[: text.find("|")]
        if kind in _EDIT_KINDS:
            self._apply_edit(kind, text, None if value is None else _EDIT_DECODER.decode(value))
            self.revision += 1
        elif kind == NCCI_SET:
            self._apply_set(text, None if value is None else _SET_DECODER.decode(value))
            self.revision += 1
        elif kind.startswith("@"):
            self.apply(text, None if value is None else orjson.loads(value))
        else:  # a code: two hundred thousand at start
            self._apply_code(text, None if value is None else _CODE_DECODER.decode(value))

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

    def _apply_edit(self, kind: str, key: str, record: EditRecord | None) -> None:
        """Upsert or delete one version of an NCCI pair or MUE. The key's subject names the place (table and
        codes) and its date the version, so a tombstone needs no record; a record must name the same place.
        A million of these load at start, so the common case is checked without copying a string: the key and
        the record are held against each other here, not by ``apply``'s generic checks."""
        parts = key.split("|")
        if len(parts) != 3 or not all(parts):
            raise ValueError("code-table key is not SYSTEM|CODE|VALID_FROM")
        _, subject, start = parts
        version: tuple = ()
        if record is None:
            place = _edit_place(kind, subject)
        else:
            code = record.code
            if record.system != kind or record.valid_from != start or (
                    code != subject and code.strip().upper() != subject):  # fmt: skip
                raise ValueError("record does not match its key")
            attributes = record.attributes
            if attributes is None:
                raise ValueError(f"a {kind} record needs attributes")
            parse = self._pair_edit if kind == NCCI else self._mue_limit
            place, value = parse(subject, attributes)
            end = record.valid_to
            if end is None or start <= end:  # CMS deletes an edit retroactively by ending it before it starts
                version = (start, end, value)
                version = self._shared_edits.setdefault(version, version)
        # Every place is found from the first level down, made as needed (its codes interned), and pruned when
        # it empties.
        if kind == NCCI:
            table, parent, last = place
            parents = self._pairs.get(table)
            if parents is None:
                parents = self._pairs[table] = {}
        else:
            parents, (parent, last) = self._mue, place
        index = parents.get(parent)
        if index is None:
            index = parents[sys.intern(parent)] = {}
        held = index.get(last)
        if held is None:  # the common case: a place's first version
            if version:
                index[sys.intern(last)] = version
            elif not index:
                del parents[parent]
            return
        versions = [held[i : i + 3] for i in range(0, len(held), 3) if held[i] != start]
        if version:
            versions.append(version)
            versions.sort(key=_first)
        if versions:  # a pair with versions of its own (few do): not shared, so that nothing is kept when it goes
            index[last] = tuple(x for v in versions for x in v)
        else:
            del index[last]
            if not index:
                del parents[parent]

    def _apply_set(self, key: str, record: SetRecord | None) -> None:
        """Replace (or delete) one part of an ``@ncci-set``: the edits of one column-1 code of one table. The
        part is built whole, then put in place of what the key held: nothing of the old part is diffed."""
        subject, table, column1, part = _set_place(key)
        seconds: dict[str, tuple] = {}
        if record is not None:
            a = record.attributes
            if record.system != NCCI_SET or record.code.upper() != subject:
                raise ValueError("record does not match its key")
            if (a.table, a.column1.upper(), a.part) != (table, column1, part):
                raise ValueError(f"an @ncci-set key names its table, column 1 and part: {a.table} {a.column1} {a.part}")
            shared, rationales = self._shared_edits, a.rationales
            edits: dict[tuple[str, int], PairEdit] = {}  # (indicator, rationale) -> the shared PairEdit
            for edit in a.edits:
                start, end = edit.valid_from, edit.valid_to
                if end is not None and end < start:
                    continue  # CMS deletes an edit retroactively by ending it before it starts
                value = edits.get((edit.modifier_indicator, edit.rationale))
                if value is None:
                    value = edits[edit.modifier_indicator, edit.rationale] = self._set_edit(edit, rationales)
                version = (start, end, value)
                version = shared.setdefault(version, version)
                held = seconds.get(edit.column2)
                if held is None:
                    seconds[sys.intern(edit.column2)] = version
                else:  # a pair with versions of its own (few do)
                    flat = [held[i : i + 3] for i in range(0, len(held), 3) if held[i] != start]
                    seconds[edit.column2] = tuple(x for v in sorted((*flat, version), key=_first) for x in v)
        parts = self._sets.setdefault(table, {}).get(column1)
        if seconds:
            if parts is None:
                parts = self._sets[table][sys.intern(column1)] = {}
            parts[part] = seconds
        elif parts is not None:
            parts.pop(part, None)
            if not parts:
                del self._sets[table][column1]

    def _set_edit(self, edit: SetEdit, rationales: list[str]) -> PairEdit:
        if edit.modifier_indicator not in {"0", "1", "9"}:
            raise ValueError("modifier_indicator must be 0, 1 or 9")
        if not 0 <= edit.rationale < max(1, len(rationales)):
            raise ValueError(f"rationale {edit.rationale} is not one of the record's rationales")
        value = PairEdit(edit.modifier_indicator, rationales[edit.rationale] if rationales else "")
        return self._shared_edits.setdefault(value, value)  # type: ignore[return-value]

    def _pair_edit(self, subject: str, attributes: EditAttributes) -> tuple[tuple[str, str, str], PairEdit]:
        """Where an ``@ncci`` record goes, ``(table, column1, column2)``, and its shared ``PairEdit``."""
        table, column1, column2 = attributes.table or PRACTITIONER, attributes.column1, attributes.column2
        prefix = _PREFIXES.get(table)
        if prefix is None or column1 is None or column2 is None or subject != f"{prefix}{column1}/{column2}":
            # Not as the loaders write it (a code in lower case, a table unknown...): each part checked.
            table = _table(table, PTP_TABLES)
            column1, column2 = _code(column1, "column1"), _code(column2, "column2")
            if ncci_subject(table, column1, column2) != subject:
                raise ValueError(f"an @ncci key names its pair: {ncci_subject(table, column1, column2)}")
        indicator, rationale = attributes.modifier_indicator, attributes.rationale or ""
        edit = self._shared_edits.get((indicator, rationale))  # a PairEdit equals its plain tuple
        if edit is None:
            indicator = str(indicator)
            if indicator not in {"0", "1", "9"}:
                raise ValueError("modifier_indicator must be 0, 1 or 9")
            edit = PairEdit(indicator, rationale)
            edit = self._shared_edits.setdefault(edit, edit)
        return (table, column1, column2), edit  # type: ignore[return-value]

    def _mue_limit(self, subject: str, attributes: EditAttributes) -> tuple[tuple[str, str], MueLimit]:
        """Where an ``@mue`` record goes, ``(table, code)``, and its shared ``MueLimit``."""
        table, code = _table(attributes.table or PRACTITIONER, MUE_TABLES), _code(attributes.code, "code")
        if mue_subject(table, code) != subject:
            raise ValueError(f"an @mue key names its code: {mue_subject(table, code)}")
        units = float("nan" if attributes.max_units is None else attributes.max_units)
        if not units >= 0:
            raise ValueError("max_units must be a number >= 0")
        mai = attributes.mai
        if mai not in (1, 2, 3, "1", "2", "3"):
            raise ValueError("mai must be 1, 2 or 3")
        limit = MueLimit(units, int(mai), attributes.rationale or "")  # type: ignore[arg-type]
        return (table, code), self._shared_edits.setdefault(limit, limit)


def in_range(code: str, low: str, high: str) -> bool:
    """True when a normalized ICD-10-CM code falls in ``low``-``high`` as the classification writes ranges:
    E08-E13 holds every code under E08 to E13, E11.6 every code under E11.6."""
    return low <= code[: len(low)] and code[: len(high)] <= high


def _version(record: CodeRecord) -> CodeVersion:
    attributes = record.attributes or None
    description = record.description or ""
    if attributes is None:  # most codes: no edit attributes
        return CodeVersion(record.valid_from, record.valid_to, record.billable, description, None)
    a = attributes
    maps_to = None
    if a.get("maps_to"):
        target = str(a["maps_to"])
        system = str(a.get("maps_to_system") or "")
        if not system and ":" in target:
            system, _, target = target.partition(":")
        maps_to = (system, normalize(system, target))
    sex = a.get("sex")
    return CodeVersion(
        valid_from=record.valid_from,
        valid_to=record.valid_to,
        billable=record.billable,
        description=description,
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


def _code(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise ValueError(f"policy record without attributes.{name}")
    return value.strip().upper()


def _table(table: str, tables: tuple[str, ...]) -> str:
    if table not in tables:
        raise ValueError(f"table must be one of {', '.join(tables)}")
    return table


def _edit_place(kind: str, subject: str) -> tuple[str, ...]:
    """Where the subject of an ``@ncci`` or ``@mue`` key points: ``(table, column1, column2)`` or ``(table, code)``."""
    prefix, _, rest = subject.rpartition(":")
    table = prefix.lower() if prefix else PRACTITIONER
    if kind == NCCI:
        column1, slash, column2 = rest.partition("/")
        if table in PTP_TABLES and slash and column1 and column2 and "/" not in column2:
            return table, column1, column2
        raise ValueError("an @ncci key's subject is [TABLE:]COLUMN1/COLUMN2")
    if table in MUE_TABLES and rest:
        return table, rest
    raise ValueError("an @mue key's subject is [TABLE:]CODE")


def _set_place(key: str) -> tuple[str, str, str, int]:
    """Where an ``@ncci-set`` key points: its subject, and ``(table, column1, part)``."""
    parts = key.split("|")
    prefix, _, column1 = parts[1].rpartition(":") if len(parts) == 3 else ("", "", "")
    table = prefix.lower() if prefix else PRACTITIONER
    if table not in PTP_TABLES or not column1 or not parts[2].isdigit():
        raise ValueError("an @ncci-set key is @ncci-set|[TABLE:]COLUMN1|PART")
    return parts[1], table, column1, int(parts[2])


def _in_effect(versions: tuple, day: str) -> Any:
    """The value of the version in effect on ``day`` in a flat ``(from, to, value, ...)`` tuple, the latest
    starting first; None when none is."""
    for i in range(len(versions) - 3, -1, -3):
        if versions[i] <= day:
            end = versions[i + 1]
            if end is None or day <= end:
                return versions[i + 2]
    return None


def _split_key(key: str) -> tuple[str, str, str]:
    parts = key.split("|")
    if len(parts) != 3 or not all(parts):
        raise ValueError("code-table key is not SYSTEM|CODE|VALID_FROM")
    return parts[0], parts[1], parts[2]
