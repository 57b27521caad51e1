"""The in-memory table: upserts, tombstones, versions by date; and the CSV loader."""

import io

import orjson
import pytest

from processor.code_table.csv_rows import read_csv
from processor.code_table.table import (
    MCE,
    MCE_AGE,
    CodeTable,
    MceEntry,
    MueLimit,
    PairEdit,
    policy_record,
    record_key,
)
from tests.conftest import SMALL_TABLE


def test_versions_by_date(small_table):
    versions = small_table.versions("ICD-10-CM", "B880")
    assert [(v.valid_from, v.valid_to, v.billable) for v in versions] == [
        ("2024-10-01", "2025-09-30", True),
        ("2025-10-01", None, False),
    ]
    assert versions[0].covers("2025-09-30") and not versions[0].covers("2025-10-01")


def test_a_tombstone_deletes_and_a_record_replaces():
    table = CodeTable().load(SMALL_TABLE)
    size = len(table)
    key = record_key("ICD-10-CM", "I10", "2024-10-01")
    table.apply(key, None)
    assert table.versions("ICD-10-CM", "I10") == () and len(table) == size - 1
    table.apply(key, {"system": "ICD-10-CM", "code": "I10", "billable": False, "valid_from": "2024-10-01"})
    assert table.versions("ICD-10-CM", "I10")[0].billable is False and len(table) == size


def test_the_last_code_of_a_system_deleted_unloads_the_system():
    table = CodeTable().load(SMALL_TABLE)
    for key, record in SMALL_TABLE:
        if record["system"] == "LOINC":
            assert table.has_system("LOINC")
            table.apply(key, None)
    assert not table.has_system("LOINC")


@pytest.mark.parametrize(
    ("key", "record"),
    [
        ("no-bars", {"system": "X", "code": "A", "valid_from": "2024-01-01"}),
        ("ICD-10-CM|E119|2024-10-01", {"system": "ICD-10-CM", "code": "E11.8", "valid_from": "2024-10-01"}),
        ("ICD-10-CM|E119|2024-10-01", {"system": "ICD-10-CM", "code": "E11.9", "valid_from": "2025-10-01"}),
    ],
)
def test_records_that_do_not_match_their_key_are_refused(key, record):
    with pytest.raises(ValueError):
        CodeTable().apply(key, record)


@pytest.mark.parametrize(
    "changes",
    [{"billable": "false"}, {"valid_to": 20251231}, {"code": 119}, {"description": ["E11.9"]}, {"attributes": []}],
)
def test_a_code_record_of_the_wrong_types_is_refused_not_misread(changes):
    """A code's record decodes typed (``CodeRecord``): ``"billable": "false"`` is refused, where reading it as
    a truthy string would have made a header billable."""
    record = {"system": "ICD-10-CM", "code": "E11.9", "valid_from": "2024-10-01", "billable": True}
    table = CodeTable()
    with pytest.raises(ValueError):
        table.apply("ICD-10-CM|E119|2024-10-01", {**record, **changes})
    with pytest.raises(ValueError):
        table.apply_json(b"ICD-10-CM|E119|2024-10-01", orjson.dumps({**record, **changes}))
    assert len(table) == 0
    table.apply_json(b"ICD-10-CM|E119|2024-10-01", orjson.dumps(record))
    assert len(table) == 1 and table.versions("ICD-10-CM", "E119")[0].billable is True


def test_csv_rows():
    text = io.StringIO(
        "# comment\nsystem,code,description,billable,valid_from,valid_to,maps_to\n"
        "CPT,99213,,true,2024-01-01,,\n"
        "ACME,X1,Internal visit,false,2024-01-01,2024-12-31,99213\n"
    )
    records = list(read_csv(text))
    assert [k for k, _ in records] == ["CPT|99213|2024-01-01", "ACME|X1|2024-01-01"]
    assert records[1][1]["billable"] is False and records[1][1]["valid_to"] == "2024-12-31"
    assert records[1][1]["attributes"] == {"maps_to": "99213"}


def test_csv_errors_name_the_row():
    with pytest.raises(ValueError, match="row 3"):
        list(read_csv(io.StringIO("system,code,valid_from\nCPT,99213,2024-01-01\nCPT,,2024-01-01\n")))


def test_policy_tables_load_from_csv_and_the_table_indexes_them():
    text = io.StringIO(
        "policy,system,code,diagnoses,valid_from,valid_to\nsupports,CPT,83036,E08-E13,2024-01-01,\n"
        "supports,LOINC,4548-4,E08-E13,2024-01-01,\n"
    )
    pairs = io.StringIO(
        "policy,column1,column2,modifier_indicator,valid_from,valid_to\nncci,93000,93005,0,2024-01-01,2025-12-31\n"
    )
    units = io.StringIO("policy,code,max_units,valid_from,valid_to\nmue,36415,2,2024-01-01,\n")
    releases = io.StringIO("policy,system,release,valid_from,valid_to\nrelease,HCPCS,2026,2026-01-01,2026-12-31\n")
    table = CodeTable().load([*read_csv(text), *read_csv(pairs), *read_csv(units), *read_csv(releases)])
    assert table.supporting("CPT", "83036", "2025-11-03") == [("E08", "E13")]
    assert table.pair("93000", "93005", "2025-11-03") == PairEdit("0", "")  # no table: practitioner
    assert table.pair("93000", "93005", "2026-01-02") is None
    assert table.pair("93000", "93005", "2025-11-03", "hospital") is None
    assert table.mue("36415", "2025-11-03") == MueLimit(2, 1, "") and table.max_units("36415", "2025-11-03") == 2
    assert table.covers_date("HCPCS", "2026-06-01") and table.covers_date("HCPCS", "2025-06-01") is False
    assert len(table) == 0  # policy records are not code versions


def test_a_policy_record_is_replaced_and_deleted_by_its_key():
    table = CodeTable().load(
        read_csv(io.StringIO("policy,code,max_units,valid_from,valid_to\nmue,36415,2,2024-01-01,\n"))
    )
    key = "@mue|36415|2024-01-01"
    table.apply(key, {"system": "@mue", "code": "36415", "valid_from": "2024-01-01",
                      "attributes": {"code": "36415", "max_units": 3}})  # fmt: skip
    assert table.max_units("36415", "2025-01-01") == 3
    table.apply(key, None)
    assert table.max_units("36415", "2025-01-01") is None and not table.has_mue


def mce_record(code, valid_from, valid_to, flags, cms_sex=None, system="ICD-10-CM"):
    attributes = {"system": system, "code": code, "flags": flags, **({"cms_sex": cms_sex} if cms_sex else {})}
    return policy_record(MCE, f"{system}:{code}", valid_from, valid_to, attributes)


def test_mce_records_are_looked_up_by_code_and_day():
    table = CodeTable().load([
        mce_record("O80", "2023-10-01", "2024-09-30", ["female", "maternity"]),
        mce_record("O80", "2024-10-01", "2026-09-30", ["maternity"], cms_sex="F"),  # CMS dropped its sex lists
        policy_record(MCE_AGE, "MATERNITY", "2024-10-01", "2026-09-30",
                      {"group": "maternity", "age_min": 9, "age_max": 64}),
    ])  # fmt: skip
    assert table.has_mce
    assert table.mce("ICD-10-CM", "O80", "2024-09-30") == MceEntry(frozenset({"female", "maternity"}), None)
    assert table.mce("ICD-10-CM", "O80", "2025-03-01") == MceEntry(frozenset({"maternity"}), "F")
    assert table.mce("ICD-10-CM", "O80", "2026-10-01") is None  # no entry: no flags
    assert table.mce("ICD-10-CM", "E119", "2025-03-01") is None
    assert table.mce_age_range("maternity", "2025-03-01") == (9, 64)
    assert table.mce_age_range("maternity", "2026-10-01") is None and table.mce_age_range("adult", "2025-03-01") is None
    assert len(table) == 0  # policy records are not code versions


def test_an_mce_record_is_replaced_and_deleted_by_its_key_and_each_change_moves_the_revision():
    key, record = mce_record("Z00.00", "2024-10-01", None, ["adult", "unacceptable"])
    table = CodeTable().load([(key, record)])
    assert key == "@mce|ICD-10-CM:Z00.00|2024-10-01" and table.mce("ICD-10-CM", "Z0000", "2025-01-01").flags == {
        "adult", "unacceptable"}  # fmt: skip
    revision = table.revision
    table.apply(key, {**record, "attributes": {**record["attributes"], "flags": ["adult"]}})
    assert table.mce("ICD-10-CM", "Z0000", "2025-01-01").flags == {"adult"} and table.revision == revision + 1
    table.apply(key, None)
    assert table.mce("ICD-10-CM", "Z0000", "2025-01-01") is None and not table.has_mce
    assert table.revision == revision + 2


@pytest.mark.parametrize(
    ("kind", "subject", "attributes"),
    [
        (MCE, "ICD-10-CM:O80", {"system": "ICD-10-CM", "code": "O80", "flags": "maternity"}),  # not a list
        (MCE, "ICD-10-CM:O80", {"system": "ICD-10-CM", "code": "O80", "flags": ["maternity"], "cms_sex": "U"}),
        (MCE, "ICD-10-CM:O80", {"code": "O80", "flags": []}),
        (MCE_AGE, "ADULT", {"group": "adult", "age_min": 124, "age_max": 15}),
        (MCE_AGE, "ADULT", {"group": "adult", "age_min": 15}),
    ],
)
def test_malformed_mce_records_are_refused_and_leave_the_table_as_it_was(kind, subject, attributes):
    table = CodeTable()
    with pytest.raises(ValueError):
        table.apply(*policy_record(kind, subject, "2024-10-01", None, attributes))
    assert not table.has_mce and table.mce_age_range("adult", "2025-01-01") is None
