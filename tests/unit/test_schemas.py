"""The JSON Schemas are valid, and what the code writes and reads matches them."""

import base64
import copy

import jsonschema
import pytest
import referencing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor import samples
from processor.code_table.cms_files import ReleaseCode
from processor.code_table.releases import icd10cm_records
from processor.contracts import SCHEMA_BASE_URI, _full_validator, load_schema, mirror_accepts, schema_dir
from processor.engine import decide
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
    for _key, record in icd10cm_records(older, newer):
        validator("code-table-record").validate(record)


def test_dead_letter_example_matches_its_schema():
    validator("dead-letter").validate({
        "source": {"topic": "claims", "partition": 0, "offset": 7, "timestamp": 1764000000000},
        "error": "not valid UTF-8 JSON: unexpected character: line 1 column 1 (char 0)",
        "raw": base64.b64encode(b"\x00garbage").decode(),
        "dead_lettered_at": "2026-01-01T00:00:00.000Z",
    })  # fmt: skip


# The msgspec mirror that answers the valid case fast must never accept what the JSON Schema refuses.

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
    if mirror_accepts(event, kind):
        assert _full_validator(kind).is_valid(event), (path, value)
