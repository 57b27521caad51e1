"""The JSON Schemas are valid, and what the code writes and reads matches them."""

import base64
import copy

import jsonschema
import msgspec
import orjson
import pytest
import referencing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor import samples
from processor.code_table.cms_files import ReleaseCode
from processor.code_table.releases import FY2025, FY2026, icd10cm_records
from processor.contracts import (
    SCHEMA_BASE_URI,
    Undecodable,
    _full_validator,
    decode,
    decode_event,
    infer_kind,
    load_schema,
    mirror_accepts,
    mirror_of,
    schema_dir,
)
from processor.engine import decide
from processor.engine.duplicates import entry
from tests.conftest import SMALL_POLICY, SMALL_TABLE

NAMES = sorted(p.name.removesuffix(".schema.json") for p in schema_dir().glob("*.schema.json"))


def validator(name):
    registry = referencing.Registry().with_resources(
        (SCHEMA_BASE_URI + f"{n}.schema.json", referencing.Resource.from_contents(load_schema(n))) for n in NAMES
    )
    return jsonschema.Draft202012Validator(load_schema(name), registry=registry)


def test_every_record_kind_has_a_schema():
    assert set(NAMES) >= {"claim", "order", "code-table-record", "decision", "dead-letter", "response"}


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name):
    jsonschema.Draft202012Validator.check_schema(load_schema(name))


def test_sample_events_match_their_schemas():
    for kind, event in samples.generate(300, seed=1, bad_share=0):
        validator(kind).validate(event)


def test_decisions_match_the_decision_schema(small_table):
    for kind, event in samples.generate(300, seed=2, bad_share=0.5):
        record = decide(event, kind, small_table).as_record(
            event, "2026-01-01T00:00:00.000Z", {"topic": "claims", "partition": 0, "offset": 1}
        )
        validator("decision").validate(record)


def test_code_table_records_match_their_schema():
    for _key, record in [*SMALL_TABLE, *SMALL_POLICY]:
        validator("code-table-record").validate(record)
    older = {"E119": ReleaseCode(True, "Type 2 diabetes mellitus without complications"),
             "B880": ReleaseCode(True, "Other acariasis")}  # fmt: skip
    newer = {"E119": ReleaseCode(True, "Type 2 diabetes mellitus without complications"),
             "O80": ReleaseCode(True, "Encounter for full-term uncomplicated delivery"),
             "G63": ReleaseCode(True, "Polyneuropathy in diseases classified elsewhere", {"manifestation": True}),
             "B880": ReleaseCode(False, "Other acariasis")}  # fmt: skip
    for _key, record in icd10cm_records([(FY2025, older), (FY2026, newer)]):
        validator("code-table-record").validate(record)


def test_dead_letter_example_matches_its_schema():
    validator("dead-letter").validate({
        "source": {"topic": "claims", "partition": 0, "offset": 7, "timestamp": 1764000000000},
        "error": "not valid UTF-8 JSON: unexpected character: line 1 column 1 (char 0)",
        "raw": base64.b64encode(b"\x00garbage").decode(),
        "dead_lettered_at": "2026-01-01T00:00:00.000Z",
    })  # fmt: skip


# The msgspec mirror that answers the valid case fast must never accept what the JSON Schema refuses, and must
# take what it accepts (the engine reviews the mirror's types). ``decode_event``, its stricter twin that reads the
# record's bytes, must take nothing the mirror refuses, and read what it takes as ``decode`` reads it.

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 100_000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70)
    | st.sampled_from(["2025-01-01", "2025-01-01T10:00:00Z", "M", "F", "X", "1234567893"]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def test_the_mirror_accepts_valid_events():
    for kind, event in samples.generate(500, seed=4, bad_share=0.3):
        assert mirror_accepts(event, kind) == _full_validator(kind).is_valid(event)
        assert_decoded_alike(orjson.dumps(event), kind)


def assert_decoded_alike(raw, kind, keys_once=True):
    """``decode_event`` takes ``raw`` only if ``decode``, the mirror and the schema do; then it reads the same
    event (the same fields and values, ints as ints) and infers the same kind; and, when ``raw`` writes each
    key once (msgspec checks every value of a key written twice, not only the last), it takes a valid event
    with no field of its own."""
    try:
        event = decode(raw)
    except Undecodable:
        assert decode_event(raw, kind) is None and decode_event(raw, None) is None
        return
    for asked in (kind, None):
        typed = decode_event(raw, asked)
        as_kind = asked or infer_kind(event)
        if typed is None:
            valid = as_kind is not None and _full_validator(as_kind).is_valid(event)
            assert not (keys_once and valid and not has_own_fields(event, as_kind))
            continue
        assert typed[0] == as_kind and _full_validator(as_kind).is_valid(event)
        mirrored = mirror_of(event, as_kind)
        assert mirrored is not None
        assert orjson.dumps(msgspec.to_builtins(typed[1])) == orjson.dumps(msgspec.to_builtins(mirrored))
        assert orjson.dumps(msgspec.to_builtins(typed[1]), option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            event, option=orjson.OPT_SORT_KEYS
        )
        if as_kind == "claim":
            assert entry(typed[1], "0:1", "0-1") == entry(event, "0:1", "0-1")  # the window hashes either alike


def has_own_fields(event, kind):
    """Whether ``event`` (valid) carries a field its schema does not name, at any level."""
    return orjson.dumps(msgspec.to_builtins(mirror_of(event, kind)), option=orjson.OPT_SORT_KEYS) != orjson.dumps(
        event, option=orjson.OPT_SORT_KEYS
    )


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), pick=st.integers(0, 10_000), value=json_values, delete=st.booleans())
def test_the_mirror_is_never_looser_than_the_schema(seed, pick, value, delete):
    kind, event = samples.generate(1, seed=seed, bad_share=0)[0]
    event = copy.deepcopy(event)
    paths = [p for p in _paths(event) if p]
    path = paths[pick % len(paths)]
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    assert mirror_accepts(event, kind) == _full_validator(kind).is_valid(event), (path, value)
    assert_decoded_alike(orjson.dumps(event), kind)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"extra": "\xff"}',  # invalid UTF-8 in a field the types would skip
        b'{"extra": "\xed\xa0\x80"}',  # a surrogate, encoded
        b'{"extra": 1e999}',  # a number orjson refuses
        b'{"extra": ' + b"1" * 400 + b"}",
        b'{"extra": ' + b"[" * 70 + b"]" * 70 + b"}",  # deeper than MAX_DEPTH
        b'{"extra": 123456789012345678901234567890}',  # orjson reads it as a float
        b'{"claim_type": "professional", "claim_type": "inpatient"}',  # the last of a key written twice
        b'{"claim_type": "inpatient", "claim_type": "professional"}',
        b'{"patient": {"birth_date": "1961-04-12", "sex": "M"}, "patient": {"birth_date": "1961-04-13", "sex": "F"}}',
        b'{"lines": [{"units": 1E0, "modifiers": ["RT"], "modifiers": []}]}',
        b'{"lines": [{"units": 2}]}',
        b'{"lines": [{"units": 2.0}]}',
        b'{"lines": [{"units": 1e-300}]}',
        b'{"lines": [{"units": 0.1000000000000000055511151231257827}]}',
        b'{"lines": [{"diagnosis_pointers": [1, 1.0]}]}',
        b'{"submitted_at": "2025-11-03T10:00:00Z\n"}',
        b'{"kind": "order"}',
        b'{"order_id": "ORD-1"}',
        b'{"claim_id": "\\u0043LM-1"}',
        b'{"claim_id": "\\ud800"}',
    ],
)
def test_decode_event_reads_hostile_bytes_as_decode_does(raw):
    from tests.conftest import a_claim

    claim = orjson.dumps(a_claim())
    for body in (raw, claim[:-1] + b"," + raw[1:], raw[:-1] + b"," + claim[1:], b" \n" + claim[:-1] + b"," + raw[1:]):
        assert_decoded_alike(body, "claim", keys_once=False)
        assert_decoded_alike(body, "order", keys_once=False)
