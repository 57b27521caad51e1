"""Event contracts: the JSON Schemas of ``schemas/`` and the decoding of raw Kafka values.

``decode_event`` decodes a record's bytes in one pass, in C, straight into msgspec types that mirror the
schemas (``Claim``, ``Order``), checking them as it goes: what it takes is a valid event, which the engine
reads as it is. Only a record it refuses (not valid, or carrying a field the schemas do not name) pays for
the rest: ``decode`` turns bytes into a JSON object or raises ``Undecodable`` (the record then goes to the
dead-letter topic): not JSON, not an object, or nested deeper than ``MAX_DEPTH`` (the schemas need four
levels; the limit keeps every decoded event within what the encoder writes back in its decision).
``check_event`` checks such an object against its schema in two steps: the mirror answers the valid case in
a few microseconds (a twelfth of a compiled JSON Schema validator's time) and gives the engine its typed
event; only an event it refuses pays for the JSON Schema validator, which is the authority and lists the
problems with the path of the field that failed. The mirror takes exactly the events the schemas take (the
engine can review only what it takes): tests/unit/test_schemas.py checks it is never looser, and takes
every valid event it is given.

The validator reads the schemas as JSON Schema means them, where Python's defaults differ: a ``pattern``
is an ECMA-262 regular expression, whose ``$`` is the end of the text (Python's also matches before a final
newline, which would let ``"25\\n"`` pass as a modifier); an ``integer`` is written as one (``1``, not
``1.0``, which JSON Schema counts as an integer but the engine could not use as an index). It stops at the
first size error (too many items, too long a text): an array over its ``maxItems`` is not walked item by
item, so a huge record costs no more than a small one. ``real_datetime`` says whether a ``datetime`` of the
schemas names a real instant (the pattern gives its shape only).
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
import msgspec
import orjson
import referencing

SCHEMA_BASE_URI = "https://medical-coding-processor.github.io/schemas/"
KINDS = ("claim", "order")
ID_FIELD = {"claim": "claim_id", "order": "order_id"}


def schema_dir() -> Path:
    """The folder of JSON Schemas: packaged beside the code in a wheel, else the repository's ``schemas/``."""
    packaged = Path(__file__).parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "schemas"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``schemas/<name>.schema.json`` as a dict (e.g. ``load_schema("claim")``)."""
    return orjson.loads((schema_dir() / f"{name}.schema.json").read_bytes())


@functools.cache
def _ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A schema's ``pattern`` compiled to mean what ECMA-262 says: ``$`` (outside a character class) is the
    end of the text, and the digit and word classes are ASCII."""
    translated, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        translated.append(char)
    return re.compile("".join(translated), re.ASCII)


# Keywords the validator runs its own way. Their messages never quote the value (jsonschema's write out its
# repr: a walk over a huge array just to word an error); ``_describe`` words the reason from the keyword.
def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if isinstance(instance, str) and not _ecma_pattern(pattern).search(instance):
        yield jsonschema.ValidationError("does not match its pattern")


def _type(validator: Any, types: str | list[str], instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    names = [types] if isinstance(types, str) else types
    if not any(validator.is_type(instance, name) for name in names):
        yield jsonschema.ValidationError(f"is not of type {', '.join(names)}")


def _max_items(validator: Any, limit: int, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if isinstance(instance, list) and len(instance) > limit:
        yield jsonschema.ValidationError(f"has more than {limit} items")


def _max_length(validator: Any, limit: int, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if isinstance(instance, str) and len(instance) > limit:
        yield jsonschema.ValidationError(f"has more than {limit} characters")


_draft_items = jsonschema.Draft202012Validator.VALIDATORS["items"]


def _items(validator: Any, items: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    limit = schema.get("maxItems")
    if isinstance(instance, list) and isinstance(limit, int) and len(instance) > limit:
        return  # too many items: that error is the answer, not one per item
    yield from _draft_items(validator, items, instance, schema)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    validators={
        "pattern": _pattern,
        "type": _type,
        "maxItems": _max_items,
        "maxLength": _max_length,
        "items": _items,
    },
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, instance: type(instance) is int
    ),
)


@functools.cache
def _full_validator(kind: str) -> Any:
    # Every schema registered up front: a retrieving registry would rebuild common.schema.json per event.
    names = [path.name.removesuffix(".schema.json") for path in schema_dir().glob("*.schema.json")]
    registry: referencing.Registry = referencing.Registry().with_resources(
        (SCHEMA_BASE_URI + f"{name}.schema.json", referencing.Resource.from_contents(load_schema(name)))
        for name in names
    )
    return _Validator(load_schema(kind), registry=registry)


class Undecodable(ValueError):
    """A record value that is not a JSON object. Its message never quotes the record's content."""


# How deep a record's JSON may nest (the event object is level 1). The schemas need 4 levels (a claim, its
# lines, a line, its modifiers); the encoder refuses past 254, and a decision record holds its event one
# level down. orjson itself decodes up to 1024.
MAX_DEPTH = 64


def decode(raw: bytes | None) -> dict[str, Any]:
    """Parse one record value into a JSON object nested at most ``MAX_DEPTH`` deep, or raise ``Undecodable``."""
    if raw is None:
        raise Undecodable("record value is null")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        # orjson's message gives the position only, never the text around it.
        raise Undecodable(f"not valid UTF-8 JSON: {err}") from None
    if not isinstance(value, dict):
        raise Undecodable(f"JSON value is a {type(value).__name__}, not an object")
    # A record with fewer brackets than the limit cannot nest past it: most are walked no further.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise Undecodable(f"JSON is nested more than {MAX_DEPTH} levels deep")
    return value


def _deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    """True when ``value`` holds objects or arrays more than ``limit`` levels deep (``value`` is level 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def event_id(event: dict[str, Any], kind: str) -> str | None:
    """The claim_id or order_id of an event, when it has a usable one."""
    value = event.get(ID_FIELD[kind])
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def infer_kind(event: dict[str, Any]) -> str | None:
    """The kind of an event read from a file: its ``kind`` field, else the id field it carries."""
    kind = event.get("kind")
    if kind in KINDS:
        return kind
    for candidate in KINDS:
        if ID_FIELD[candidate] in event:
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One way an event breaks its schema: the field's path, the value found there, and what is wrong."""

    field: str
    value: Any
    problem: str


# A broken event is reported with at most this many problems: enough to fix it, bounded in time and size.
MAX_PROBLEMS = 20


def schema_problems(event: dict[str, Any], kind: str) -> list[SchemaProblem]:
    """The schema violations of ``event`` as a ``kind``, at most ``MAX_PROBLEMS`` (empty when it is valid)."""
    return check_event(event, kind)[1]


def check_event(event: dict[str, Any], kind: str) -> tuple[Event | None, list[SchemaProblem]]:
    """``event`` as the mirror's ``kind`` (a ``Claim`` or an ``Order``) and no problems when it is valid; else
    None and its schema violations, at most ``MAX_PROBLEMS``. (None and no problems would be a valid event the
    mirror refuses: a mirror stricter than its schema, which tests/unit/test_schemas.py rules out.)"""
    typed = mirror_of(event, kind)
    if typed is not None:
        return typed, []
    return None, sorted(itertools.islice(_problems(event, kind), MAX_PROBLEMS), key=lambda p: p.field)


_SIZE_ERRORS = frozenset({"maxItems", "maxLength", "maxProperties"})


def _problems(event: dict[str, Any], kind: str) -> Iterator[SchemaProblem]:
    for error in _full_validator(kind).iter_errors(event):
        path = _path(error.absolute_path)
        if error.validator == "required":
            # jsonschema reports a missing property at its parent; name the property itself.
            missing = re.match(r"'([^']+)' is a required property", error.message)
            name = missing.group(1) if missing else "?"
            yield SchemaProblem(f"{path}.{name}" if path else name, None, "is required")
        else:
            yield SchemaProblem(path or "(event)", _bounded(error.instance), _describe(error))
        if error.validator in _SIZE_ERRORS:
            return  # the first size error ends the search: a huge event costs what a small one does


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    match error.validator:
        case "type" if error.validator_value == "integer":
            return "must be of type integer, written without a fraction (1, not 1.0)"
        case "type":
            return f"must be of type {error.validator_value}"
        case "enum":
            return "must be one of " + ", ".join(map(str, error.validator_value))
        case "const":
            return f"must be {error.validator_value!r}"
        case "pattern":
            return "must be " + schema.get("description", f"text matching {error.validator_value}")
        case "minItems" | "minLength":
            return f"must have at least {error.validator_value} {_unit(error.validator)}"
        case "maxItems" | "maxLength":
            return f"must have at most {error.validator_value} {_unit(error.validator)}"
        case "minimum":
            return f"must be at least {error.validator_value}"
        case "maximum":
            return f"must be at most {error.validator_value}"
        case "exclusiveMinimum":
            return f"must be greater than {error.validator_value}"
        case _:
            return f"is invalid ({error.validator})"


def _unit(validator: str) -> str:
    return "items" if validator.endswith("Items") else "characters"


def _bounded(value: Any) -> Any:
    """A value to quote back in a reason: scalars as they are, containers summarised."""
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    if isinstance(value, str) and len(value) > 64:
        return value[:64] + "..."
    return value


# When a schema's datetime names a real instant: a date on the calendar, a time on the clock, an offset under
# 24 hours, in these years (far from year 1 and 9999, where date arithmetic overflows; no claim is
# submitted outside them).
DATETIME_YEARS = range(1900, 2200)
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def real_datetime(value: Any) -> datetime | None:
    """The instant a ``datetime`` of the schemas names (``2025-11-03T10:00:00Z``), or None when ``value`` is not
    one: not of that form, not on the calendar or the clock (``2025-11-31``, ``T25:61``), or outside
    ``DATETIME_YEARS``."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.year in DATETIME_YEARS else None


# The mirror of schemas/claim.schema.json, order.schema.json and common.schema.json, as msgspec types. msgspec
# runs a pattern with Python's re.search: \Z, not $, is the end of the text.
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Code = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
# Dates and date-times are checked against their patterns after the types (``_fits``), each text once: the same
# few dates come back on event after event, and a pattern per field was half the mirror's time.
_Date = str
_DateTime = str
_DATE_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DATETIME_PATTERN = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})\Z"
)


# Texts known to match the date pattern: a set, so that an event's dates are checked in one subset test.
_DATES_SEEN: set[str] = set()
_DATES_SEEN_LIMIT = 16_384


def _are_dates(values: set[str]) -> bool:
    """True when every text of ``values`` matches the date pattern."""
    if values <= _DATES_SEEN:
        return True
    for value in values - _DATES_SEEN:
        if _DATE_PATTERN.search(value) is None:
            return False
        if len(value) == 10 and len(_DATES_SEEN) < _DATES_SEEN_LIMIT:  # only texts of a date's length are kept
            _DATES_SEEN.add(value)
    return True


# Texts known to match the date-time pattern: the same minutes come back all day.
_DATETIMES_SEEN: set[str] = set()


def _is_datetime(value: str) -> bool:
    """True when ``value`` matches the date-time pattern."""
    if value in _DATETIMES_SEEN:
        return True
    if len(value) > 35 or _DATETIME_PATTERN.search(value) is None:  # 35: the longest text the pattern matches
        return False
    if len(_DATETIMES_SEEN) < _DATES_SEEN_LIMIT:
        _DATETIMES_SEEN.add(value)
    return True


_Modifier = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z]{2}\Z")]
_Pointer = Annotated[int, msgspec.Meta(ge=1, le=25)]
# A line's units as JSON wrote them: 3 stays an int and 3.0 a float, as a JSON parser reads them (a reason
# quotes the value back, and the duplicate window hashes it).
_Units = Annotated[int, msgspec.Meta(gt=0, le=99999)] | Annotated[float, msgspec.Meta(gt=0, le=99999)]


# Money as the schemas write it: a decimal string, never a binary float (``engine`` reads it as a Decimal).
_Money = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?\Z")]
_PlaceOfService = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
_Text80 = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Relationship = Literal["self", "spouse", "child", "employee", "life_partner", "other", "unknown"]


class Coded(msgspec.Struct):
    """A code and its system: a diagnosis, a test, an admitting diagnosis."""

    code: _Code
    system: _Code


class Patient(msgspec.Struct):
    birth_date: _Date
    sex: Literal["M", "F", "U"]


class Provider(msgspec.Struct):
    npi: Annotated[str, msgspec.Meta(max_length=32)]


class Member(msgspec.Struct):
    """Who is covered: the subscriber's member id, the patient's relationship to the subscriber, the payer."""

    id: _Text80
    relationship: Relationship | msgspec.UnsetType = msgspec.UNSET
    payer_id: _Text80 | msgspec.UnsetType = msgspec.UNSET


class Line(msgspec.Struct):
    """A claim's service line. The optional lists stay ``UNSET`` when the event leaves them out, so that the
    line reads back (``msgspec.to_builtins``) with the fields it came with."""

    line_number: Annotated[int, msgspec.Meta(ge=1, le=999)]
    code: _Code
    system: _Code
    units: _Units
    service_date: _Date
    modifiers: Annotated[list[_Modifier], msgspec.Meta(max_length=4)] | msgspec.UnsetType = msgspec.UNSET
    diagnosis_pointers: Annotated[list[_Pointer], msgspec.Meta(max_length=12)] | msgspec.UnsetType = msgspec.UNSET
    revenue_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}\Z")] | msgspec.UnsetType = msgspec.UNSET
    charge: _Money | msgspec.UnsetType = msgspec.UNSET
    place_of_service: _PlaceOfService | msgspec.UnsetType = msgspec.UNSET
    rendering_provider: Provider | msgspec.UnsetType = msgspec.UNSET


class Procedure(msgspec.Struct):
    """An ICD-10-PCS procedure of an inpatient stay."""

    code: _Code
    system: _Code
    date: _Date


class Claim(msgspec.Struct):
    """A claim as ``schemas/claim.schema.json`` has it; a field the event leaves out is ``UNSET``."""

    claim_id: _Id
    submitter_id: _Id
    submitted_at: _DateTime
    patient: Patient
    billing_provider: Provider
    diagnoses: Annotated[list[Coded], msgspec.Meta(min_length=1, max_length=25)]
    lines: Annotated[list[Line], msgspec.Meta(max_length=450)] | msgspec.UnsetType = msgspec.UNSET
    member: Member | msgspec.UnsetType = msgspec.UNSET  # the payer requires it: the engine says so (member.missing)
    kind: Literal["claim"] | msgspec.UnsetType = msgspec.UNSET
    frequency: Literal["original", "replacement", "void"] | msgspec.UnsetType = msgspec.UNSET
    replaces: _Id | msgspec.UnsetType = msgspec.UNSET
    place_of_service: _PlaceOfService | msgspec.UnsetType = msgspec.UNSET
    facility_type: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{2}\Z")] | msgspec.UnsetType = msgspec.UNSET
    charge: _Money | msgspec.UnsetType = msgspec.UNSET
    rendering_provider: Provider | msgspec.UnsetType = msgspec.UNSET
    referring_provider: Provider | msgspec.UnsetType = msgspec.UNSET
    prior_authorization: Annotated[str, msgspec.Meta(min_length=1, max_length=50)] | msgspec.UnsetType = msgspec.UNSET
    claim_type: Literal["professional", "outpatient", "inpatient"] | msgspec.UnsetType = msgspec.UNSET
    admission_date: _Date | msgspec.UnsetType = msgspec.UNSET
    discharge_date: _Date | msgspec.UnsetType = msgspec.UNSET
    discharge_status: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{2}\Z")] | msgspec.UnsetType = msgspec.UNSET
    admitting_diagnosis: Coded | msgspec.UnsetType = msgspec.UNSET
    procedures: Annotated[list[Procedure], msgspec.Meta(max_length=25)] | msgspec.UnsetType = msgspec.UNSET


class Order(msgspec.Struct):
    """A lab order as ``schemas/order.schema.json`` has it."""

    order_id: _Id
    lab_id: _Id
    ordering_provider: Provider
    patient: Patient
    collection_date: _Date
    tests: Annotated[list[Coded], msgspec.Meta(min_length=1, max_length=100)]
    diagnoses: Annotated[list[Coded], msgspec.Meta(max_length=25)]
    kind: Literal["order"] | msgspec.UnsetType = msgspec.UNSET
    member: Member | msgspec.UnsetType = msgspec.UNSET


Event = Claim | Order
_MIRROR: dict[str, type[Claim | Order]] = {"claim": Claim, "order": Order}


def mirror_accepts(event: dict[str, Any], kind: str) -> bool:
    """True when the msgspec mirror of the schemas takes ``event`` as a ``kind``: then the schema does too."""
    return mirror_of(event, kind) is not None


def mirror_of(event: dict[str, Any], kind: str) -> Event | None:
    """``event`` as the mirror's ``kind`` (a ``Claim`` or an ``Order``) when the mirror takes it, else None."""
    try:
        typed = msgspec.convert(event, _MIRROR[kind])
    except msgspec.ValidationError:
        return None
    return typed if _fits(typed) else None


_SERVICE_DATE, _DATE = operator.attrgetter("service_date"), operator.attrgetter("date")


def _fits(event: Event) -> bool:
    """What the schemas require that the mirror's types do not say: the patterns of dates and date-times, an
    inpatient claim's stay, and the lines of any other claim."""
    if isinstance(event, Order):
        return _are_dates({event.patient.birth_date, event.collection_date})
    if not _is_datetime(event.submitted_at):
        return False
    dates = set() if event.lines is msgspec.UNSET else set(map(_SERVICE_DATE, event.lines))
    dates.add(event.patient.birth_date)
    if event.procedures:
        dates.update(map(_DATE, event.procedures))
    if event.admission_date is not msgspec.UNSET:
        dates.add(event.admission_date)
    if event.discharge_date is not msgspec.UNSET:
        dates.add(event.discharge_date)
    if not _are_dates(dates):
        return False
    if event.claim_type == "inpatient":
        return not (event.admission_date is msgspec.UNSET or event.discharge_date is msgspec.UNSET
                    or event.discharge_status is msgspec.UNSET)  # fmt: skip
    return event.lines is not msgspec.UNSET and len(event.lines) > 0


# The mirror again, refusing any field the schemas do not name: what ``decode_event`` decodes the bytes into.
# Only these types see every value of the record (msgspec skips an unknown field's value without checking it as
# orjson does: its UTF-8, its numbers), so what they take, ``decode`` takes too, with the same values, and no
# deeper than four levels. An event with fields of its own is valid all the same: ``decode`` reads it.
class _StrictCoded(Coded, forbid_unknown_fields=True):
    pass


class _StrictPatient(Patient, forbid_unknown_fields=True):
    pass


class _StrictProvider(Provider, forbid_unknown_fields=True):
    pass


class _StrictMember(Member, forbid_unknown_fields=True):
    pass


class _StrictLine(Line, forbid_unknown_fields=True):
    rendering_provider: _StrictProvider | msgspec.UnsetType = msgspec.UNSET


class _StrictProcedure(Procedure, forbid_unknown_fields=True):
    pass


# (mypy) A strict copy narrows a list's items to their strict copies; lists are invariant to mypy, but these are
# only ever read (msgspec builds them), so the narrowing is sound: ``type: ignore[assignment]`` below says so.
class _StrictClaim(Claim, forbid_unknown_fields=True):
    patient: _StrictPatient
    billing_provider: _StrictProvider
    diagnoses: Annotated[list[_StrictCoded], msgspec.Meta(min_length=1, max_length=25)]  # type: ignore[assignment]
    lines: Annotated[list[_StrictLine], msgspec.Meta(max_length=450)] | msgspec.UnsetType = msgspec.UNSET  # type: ignore[assignment]
    member: _StrictMember | msgspec.UnsetType = msgspec.UNSET
    rendering_provider: _StrictProvider | msgspec.UnsetType = msgspec.UNSET
    referring_provider: _StrictProvider | msgspec.UnsetType = msgspec.UNSET
    admitting_diagnosis: _StrictCoded | msgspec.UnsetType = msgspec.UNSET
    procedures: Annotated[list[_StrictProcedure], msgspec.Meta(max_length=25)] | msgspec.UnsetType = msgspec.UNSET  # type: ignore[assignment]


class _StrictOrder(Order, forbid_unknown_fields=True):
    ordering_provider: _StrictProvider
    patient: _StrictPatient
    tests: Annotated[list[_StrictCoded], msgspec.Meta(min_length=1, max_length=100)]  # type: ignore[assignment]
    diagnoses: Annotated[list[_StrictCoded], msgspec.Meta(max_length=25)]  # type: ignore[assignment]
    member: _StrictMember | msgspec.UnsetType = msgspec.UNSET


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(strict) for kind, strict in (("claim", _StrictClaim), ("order", _StrictOrder))
}


def decode_event(raw: bytes, kind: str | None) -> tuple[str, Event] | None:
    """The event in ``raw``, decoded in one pass into the mirror's types, with its kind (``kind``; None: a
    claim, else an order, as ``infer_kind`` would read it), when it is a valid event with no field the schemas
    do not name; else None, and the record takes ``decode`` and ``schema_problems``, which answer it as ever.

    What it takes, ``decode`` takes too and reads the same: msgspec's JSON is orjson's, and both keep the last
    of a key written twice. It checks what ``schema_problems`` checks, so an event it takes is valid."""
    for candidate in (kind,) if kind is not None else KINDS:
        try:
            event: Event = _DECODERS[candidate].decode(raw)
        except msgspec.DecodeError:  # not JSON, or a ValidationError: not (only) what the mirror reads
            continue
        return (candidate, event) if _fits(event) else None
    return None
