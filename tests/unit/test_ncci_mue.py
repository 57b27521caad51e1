"""NCCI PTP edits and MUEs from the files CMS publishes: the readers, the records, the table's look-ups by
table and date, and loading a release on top of what the topic holds (no Kafka: ``held`` is a dict)."""

import io
from pathlib import Path

import jsonschema
import orjson
import pytest

from processor.code_table import ncci_mue
from processor.code_table.csv_rows import read_csv
from processor.code_table.ncci_mue import (
    MueRow,
    PtpRow,
    merge_mue,
    merge_ptp,
    prepare_load,
    read_mue_file,
    read_ptp_file,
)
from processor.code_table.releases import Release
from processor.code_table.table import MUE, NCCI, NCCI_SET, CodeTable, MueLimit, PairEdit, policy_record
from processor.contracts import load_schema

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cms"
PRACTITIONER = sorted((FIXTURES / "ncci").glob("ccipra-*.txt"))
HOSPITAL = sorted((FIXTURES / "ncci").glob("ccioph-*.txt"))
MUE_FILES = {
    "practitioner": FIXTURES / "mue" / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv",
    "outpatient": FIXTURES / "mue" / "MCR_MUE_OutpatientHospitalServices_Eff_01-01-2026.csv",
    "dme": FIXTURES / "mue" / "MCR_MUE_DMESupplierServices_Eff_01-01-2026.csv",
}
RECORD_SCHEMA = jsonschema.Draft202012Validator(load_schema("code-table-record"))
CODING = "CPT Manual or CMS manual coding instruction"
MISUSE = "Misuse of column two code with column one code"
STANDARDS = "Standards of medical / surgical practice"


def published(held: dict, records) -> dict:
    """``held`` after ``records`` reached the topic (a tombstone deletes)."""
    held = dict(held)
    for key, record in records:
        if record is None:
            held.pop(key, None)
        else:
            held[key] = record
    return held


def loaded(what: str, paths: list[Path], table: str, first_day: str = "2026-01-01", held=None) -> list:
    return list(prepare_load(what, paths, table, first_day, None, None).records(held or {}))


@pytest.fixture(scope="module")
def cms_table() -> CodeTable:
    """Both PTP tables and the three MUE tables, as a worker would hold them."""
    records = [*loaded("ncci-ptp", PRACTITIONER, "practitioner"), *loaded("ncci-ptp", HOSPITAL, "hospital")]
    for table, path in MUE_FILES.items():
        records += loaded("mue", [path], table)
    return CodeTable("cms").load(records)


# The readers


def test_the_ptp_reader_skips_the_banner_and_the_wrapped_header():
    found = read_ptp_file(PRACTITIONER[0])
    assert (found.name, found.banner_lines, found.header_lines) == ("ccipra-v321r0-f1.txt", 4, 4)
    assert found.rows == [
        PtpRow("13121", "13120", False, "1996-01-01", "1996-01-01", "9", CODING),
        PtpRow("13121", "13120", True, "1996-01-01", None, "0", CODING),
        PtpRow("17000", "17281", False, "1999-07-01", "2005-01-01", "1", "Mutually exclusive procedures"),
    ]


def test_the_ptp_reader_takes_the_header_on_one_line_too():
    found = read_ptp_file(HOSPITAL[1])
    assert (found.banner_lines, found.header_lines) == (4, 1)
    assert [(r.column1, r.column2, r.modifier_indicator) for r in found.rows] == [
        ("20610", "20552", "0"),
        ("36556", "36000", "1"),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("9300\t93005\t\t19960101\t*\t0\tx", "column 1 '9300' is not a HCPCS/CPT code"),
        ("93000\t93005\t\t20251301\t*\t0\tx", "effective date '20251301' is not a YYYYMMDD date"),
        ("93000\t93005\t\t20250101\t2026-01-01\t0\tx", "deletion date '2026-01-01'"),
        ("93000\t93005\t\t20250101\t*\t2\tx", "modifier indicator '2' is not 0, 1 or 9"),
        ("93000\t93005\tX\t20250101\t*\t0\tx", "the prior-1996 field"),
        ("93000\t93005\t20250101\t*", "4 tab-separated fields"),
        ("Note: codes deleted this quarter\t\t\t\t\t\t", "column 1 'Note: codes deleted this quarter'"),
    ],
)
def test_a_bad_ptp_row_is_named_by_file_and_line(tmp_path, row, message):
    text = PRACTITIONER[3].read_bytes().decode("latin-1")
    path = tmp_path / "ccipra-v321r0-f4.txt"
    path.write_bytes((text + row + "\r\n").encode("latin-1"))
    line = text.count("\n") + 1
    with pytest.raises(ValueError, match=f"ccipra-v321r0-f4.txt line {line}: .*{message}"):
        read_ptp_file(path)


def test_a_file_without_the_ptp_header_is_not_taken_for_one():
    with pytest.raises(ValueError, match=r"MCR_MUE_.*not an NCCI PTP edit file"):
        read_ptp_file(MUE_FILES["practitioner"])


def test_the_mue_reader_skips_the_preamble_and_keeps_the_mai_and_rationale():
    found = read_mue_file(MUE_FILES["practitioner"])
    assert (found.banner_rows, found.setting) == (1, "practitioner")  # the preamble is one quoted cell
    assert found.rows[:3] == [
        MueRow("36415", 2, 2, "CMS Policy"),
        MueRow("20610", 2, 1, "Anatomic Consideration"),
        MueRow("93000", 1, 3, "Clinical: Data"),
    ]
    assert read_mue_file(MUE_FILES["outpatient"]).setting == "outpatient"
    assert read_mue_file(MUE_FILES["dme"]).rows[0] == MueRow("E0601", 1, 2, "Nature of Equipment")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('36415,2,"4 Date of Service Edit: Policy","CMS Policy"', "indicator '4 Date of Service.*' does not"),
        ('99999,two,"1 Line Edit","CMS Policy"', "MUE value 'two' is not a number"),
        ('3641,2,"1 Line Edit","CMS Policy"', "'3641' is not a HCPCS/CPT code"),
        ('J1100,1,"1 Line Edit","CMS Policy"', r"J1100 again \(first on line 10\)"),
        ("36416,2", "2 fields, an MUE row has 4"),
    ],
)
def test_a_bad_mue_row_is_named_by_file_and_line(tmp_path, row, message):
    text = MUE_FILES["practitioner"].read_bytes().decode("latin-1")
    path = tmp_path / "MCR_MUE_PractitionerServices.csv"
    path.write_bytes((text + row + "\r\n").encode("latin-1"))
    line = text.count("\n") + 1
    with pytest.raises(ValueError, match=f"MCR_MUE_PractitionerServices.csv line {line}: .*{message}"):
        read_mue_file(path)


# Loading: what is checked before anything is published


@pytest.mark.parametrize(
    ("what", "paths", "table", "message"),
    [
        ("ncci-ptp", PRACTITIONER[:1], "practitioner", "all four files"),
        ("ncci-ptp", [*PRACTITIONER[:3], HOSPITAL[3]], "practitioner", "ccioph-v321r0-f4 is a hospital file"),
        ("ncci-ptp", HOSPITAL, "practitioner", "is a hospital file, not practitioner"),
        ("ncci-ptp", HOSPITAL, None, "give --table: practitioner or hospital"),
        ("mue", [MUE_FILES["outpatient"]], "practitioner", "is the outpatient table .*, not practitioner"),
        ("mue", [MUE_FILES["dme"]], "hospital", "give --table: practitioner or outpatient or dme"),
    ],
)
def test_a_load_that_does_not_fit_its_files_is_refused(what, paths, table, message):
    with pytest.raises(ValueError, match=message):
        prepare_load(what, paths, table, "2026-01-01", None, None)


def test_a_release_covers_a_quarter_unless_told_otherwise():
    records = dict(loaded("mue", [MUE_FILES["dme"]], "dme", first_day="2026-04-01"))
    release = records["@release|MUE-DME:2026-04-01|2026-04-01"]
    assert (release["valid_from"], release["valid_to"], release["attributes"]) == (
        "2026-04-01",
        "2026-06-30",
        {"system": "MUE-DME"},
    )


# The records and the table


def test_ptp_records_group_a_tables_edits_by_column_1_and_say_where_they_come_from():
    practitioner = dict(loaded("ncci-ptp", PRACTITIONER, "practitioner"))
    hospital = dict(loaded("ncci-ptp", HOSPITAL, "hospital"))
    assert practitioner["@ncci-set|20610|1"] == {
        "system": "@ncci-set",
        "code": "20610",
        "valid_from": "2016-01-01",
        "valid_to": None,
        "attributes": {
            "table": "practitioner",
            "column1": "20610",
            "part": 1,
            "rationales": [MISUSE],
            "edits": [["20552", "2016-01-01", None, "1", 0]],
        },
        "release": "CMS NCCI PTP practitioner",
    }
    assert hospital["@ncci-set|HOSPITAL:20610|1"]["attributes"]["edits"] == [["20552", "2016-01-01", None, "0", 0]]
    assert practitioner["@ncci-set|93000|1"]["attributes"]["edits"][0][-1] is True  # CMS's '*': before 1996
    # Every edit of a column-1 code in one record, by column 2 and date: CMS's two versions of 96372/J1100.
    assert [edit[:4] for edit in practitioner["@ncci-set|96372|1"]["attributes"]["edits"]] == [
        ["J1100", "2020-01-01", "2023-12-31", "1"],
        ["J1100", "2024-01-01", None, "0"],
    ]
    # The files' ten edits, 13121/13120 once (CMS lists it twice with one effective date).
    assert sum(len(r["attributes"]["edits"]) for r in practitioner.values() if r["system"] == NCCI_SET) == 9
    for _key, record in [*practitioner.items(), *hospital.items()]:
        RECORD_SCHEMA.validate(record)


def test_a_column_1_code_with_more_edits_than_a_record_holds_takes_parts_and_a_reload_ends_the_extra():
    release = Release("NCCI-PTP-HOSPITAL 2026-Q1", "2026-01-01", "2026-03-31", "NCCI-PTP-HOSPITAL")
    codes = [f"{n:05d}" for n in range(10_000, 10_000 + ncci_mue.SET_SIZE + 5)]
    rows = [ptp_row("99999", code, "2016-01-01") for code in codes]
    out = dict(merge_ptp({}, release, "hospital", rows))
    assert [len(out[f"@ncci-set|HOSPITAL:99999|{part}"]["attributes"]["edits"]) for part in (1, 2)] == [
        ncci_mue.SET_SIZE, 5]  # fmt: skip
    table = CodeTable().load(out.items())
    assert table.pair("99999", codes[0], "2026-02-01", "hospital") == PairEdit("1", STANDARDS)
    assert table.pair("99999", codes[-1], "2026-02-01", "hospital") == PairEdit("1", STANDARDS)
    # The next release lists a few: the rest end the day before it, in the same parts.
    q2 = Release("NCCI-PTP-HOSPITAL 2026-Q2", "2026-04-01", "2026-06-30", "NCCI-PTP-HOSPITAL")
    later = dict(merge_ptp(published({}, out.items()), q2, "hospital", rows[:3]))
    table = CodeTable().load(published(out, later.items()).items())
    assert table.pair("99999", codes[0], "2026-04-01", "hospital") == PairEdit("1", STANDARDS)
    assert table.pair("99999", codes[-1], "2026-04-01", "hospital") is None
    assert table.pair("99999", codes[-1], "2026-03-31", "hospital") == PairEdit("1", STANDARDS)
    # A release loaded again, corrected: edits that start with it and that it no longer lists are dropped,
    # and a part left empty is deleted.
    first = [ptp_row("99999", code, "2026-04-01") for code in codes]
    held = published({}, merge_ptp({}, q2, "hospital", first))
    corrected = dict(merge_ptp(held, q2, "hospital", first[:1]))
    assert corrected["@ncci-set|HOSPITAL:99999|2"] is None
    assert corrected["@ncci-set|HOSPITAL:99999|1"]["attributes"]["edits"] == [[codes[0], "2026-04-01", None, "1", 0]]


def test_a_load_replaces_the_per_edit_records_an_earlier_version_published_and_keeps_their_history():
    release = Release("NCCI-PTP-PRACTITIONER 2026-Q2", "2026-04-01", "2026-06-30", "NCCI-PTP-PRACTITIONER")
    old = {}
    for row in (ptp_row("20610", "20552", "2016-01-01"), ptp_row("36556", "36000", "2008-01-01")):
        attributes = {"column1": row.column1, "column2": row.column2, "modifier_indicator": "1",
                      "table": "practitioner", "rationale": STANDARDS}  # fmt: skip
        key, record = policy_record(NCCI, f"{row.column1}/{row.column2}", row.effective, None, attributes)
        old[key] = {**record, "release": "CMS NCCI PTP practitioner"}
    out = dict(merge_ptp(old, release, "practitioner", [ptp_row("20610", "20552", "2016-01-01")]))
    assert out["@ncci|20610/20552|2016-01-01"] is None and out["@ncci|36556/36000|2008-01-01"] is None
    table = CodeTable().load(published(old, out.items()).items())
    assert table.pair("20610", "20552", "2026-04-01") == PairEdit("1", STANDARDS)
    assert table.pair("36556", "36000", "2026-03-31") == PairEdit("1", STANDARDS)  # history, ended by the release
    assert table.pair("36556", "36000", "2026-04-01") is None


def test_mue_records_carry_the_table_mai_and_rationale():
    records = dict(loaded("mue", [MUE_FILES["outpatient"]], "outpatient"))
    assert records["@mue|OUTPATIENT:36415|2026-01-01"] == {
        "system": "@mue",
        "code": "OUTPATIENT:36415",
        "valid_from": "2026-01-01",
        "valid_to": None,
        "attributes": {"code": "36415", "max_units": 1, "mai": 2, "table": "outpatient", "rationale": "CMS Policy"},
        "release": "CMS MUE outpatient",
    }
    for _key, record in records.items():
        RECORD_SCHEMA.validate(record)


@pytest.mark.parametrize(
    ("column1", "column2", "day", "table", "edit"),
    [
        ("20610", "20552", "2026-02-01", "practitioner", PairEdit("1", MISUSE)),
        ("20610", "20552", "2026-02-01", "hospital", PairEdit("0", MISUSE)),  # the hospital table says 0
        ("93000", "93005", "2026-02-01", "practitioner", PairEdit("0", "HCPCS/CPT procedure code definition")),
        ("93000", "93005", "2026-02-01", "hospital", None),  # only in the practitioner table
        ("20552", "20610", "2026-02-01", "practitioner", None),  # column 1 comes first
        ("17000", "17281", "2004-12-31", "practitioner", PairEdit("1", "Mutually exclusive procedures")),
        ("17000", "17281", "2005-01-01", "practitioner", None),  # not in effect on its deletion date
        ("17000", "17281", "1999-06-30", "practitioner", None),  # nor before its effective date
        ("96372", "J1100", "2023-12-31", "practitioner", PairEdit("1", STANDARDS)),
        ("96372", "J1100", "2024-01-01", "practitioner", PairEdit("0", STANDARDS)),  # the next version
        ("64483", "64479", "2011-01-01", "practitioner", None),  # deleted on the day it took effect: never
        ("13121", "13120", "2026-02-01", "practitioner", PairEdit("0", CODING)),  # listed twice: the one in effect
    ],
)
def test_the_table_answers_for_the_pair_the_day_and_the_table(cms_table, column1, column2, day, table, edit):
    assert cms_table.pair(column1, column2, day, table) == edit


@pytest.mark.parametrize(
    ("code", "day", "table", "limit"),
    [
        ("36415", "2026-02-01", "practitioner", MueLimit(2, 2, "CMS Policy")),
        ("36415", "2026-02-01", "outpatient", MueLimit(1, 2, "CMS Policy")),
        ("20610", "2026-02-01", "practitioner", MueLimit(2, 1, "Anatomic Consideration")),
        ("96372", "2026-02-01", "practitioner", MueLimit(4, 3, "Clinical: Data")),
        ("96372", "2026-02-01", "outpatient", MueLimit(6, 3, "Clinical: Data")),
        ("E0601", "2026-02-01", "dme", MueLimit(1, 2, "Nature of Equipment")),
        ("E0601", "2026-02-01", "practitioner", None),
        ("36415", "2025-12-31", "practitioner", None),  # before the release
    ],
)
def test_the_table_answers_for_the_code_the_day_and_the_mue_table(cms_table, code, day, table, limit):
    assert cms_table.mue(code, day, table) == limit
    assert cms_table.max_units(code, day, table) == (limit.max_units if limit else None)


def test_a_key_names_its_place_so_a_tombstone_needs_no_record_and_a_mismatch_is_refused():
    attributes = {"column1": "20610", "column2": "20552", "modifier_indicator": "0", "table": "hospital"}
    key, record = policy_record(NCCI, "HOSPITAL:20610/20552", "2016-01-01", None, attributes)
    table = CodeTable().load([(key, record)])
    assert table.pair("20610", "20552", "2026-01-01", "hospital") == PairEdit("0", "") and table.has_pairs
    assert table.pair("20610", "20552", "2026-01-01") is None
    with pytest.raises(ValueError, match="an @ncci key names its pair: 20610/20552"):
        table.apply(key, {**record, "attributes": {**record["attributes"], "table": "practitioner"}})
    with pytest.raises(ValueError, match="table must be one of"):
        table.apply(key, {**record, "attributes": {**record["attributes"], "table": "inpatient"}})
    with pytest.raises(ValueError, match="mai must be 1, 2 or 3"):
        table.apply(*policy_record(MUE, "36415", "2026-01-01", None, {"code": "36415", "max_units": 2, "mai": 4}))
    table.apply(key, None)
    assert table.pair("20610", "20552", "2026-01-01", "hospital") is None and not table.has_pairs


def test_records_as_the_topic_holds_them_build_the_same_table_and_a_bad_one_is_refused():
    """The follower applies the topic's bytes (``apply_json``: edits decode into typed structs); the answers
    are those of the records applied as dicts, and a record that is not one raises ValueError, as ``apply``."""
    records = [*loaded("ncci-ptp", PRACTITIONER, "practitioner"), *loaded("mue", [MUE_FILES["dme"]], "dme")]
    from_dicts = CodeTable().load(records)
    from_bytes = CodeTable()
    for key, record in records:
        from_bytes.apply_json(key.encode(), orjson.dumps(record))
    for _key, record in records:
        attributes = record["attributes"]
        if record["system"] == NCCI_SET:
            for edit in attributes["edits"]:
                for day in (edit[1], "2026-02-01"):
                    answer = from_bytes.pair(attributes["column1"], edit[0], day)
                    assert answer == from_dicts.pair(attributes["column1"], edit[0], day)
        elif record["system"] == MUE:
            assert from_bytes.mue(attributes["code"], "2026-02-01", "dme") == from_dicts.mue(
                attributes["code"], "2026-02-01", "dme")  # fmt: skip
    key, record = "@ncci-set|20610|1", dict(records)["@ncci-set|20610|1"]
    a = record["attributes"]
    for bad in (
        {**record, "code": "99999"},  # not the key's column 1
        {**record, "system": "@ncci"},
        {**record, "attributes": {**a, "column1": "11111"}},
        {**record, "attributes": {**a, "part": 2}},  # not the key's part
        {**record, "attributes": {**a, "table": "hospital"}},  # not the key's table
        {**record, "attributes": {**a, "edits": [["20552", "2016-01-01", None, "2", 0]]}},  # not an indicator
        {**record, "attributes": {**a, "edits": [["20552", "2016-01-01", None, "1", 3]]}},  # no such rationale
        {**record, "attributes": {**a, "edits": [["20552", "2016-01-01"]]}},  # too short
        {**record, "attributes": None},
    ):
        with pytest.raises(ValueError):
            from_bytes.apply_json(key.encode(), orjson.dumps(bad))
        with pytest.raises(ValueError):
            from_dicts.apply(key, bad)
    for bad_key in ("@ncci-set|20610|one", "@ncci-set|CLINIC:20610|1", "@ncci-set|20610"):
        with pytest.raises(ValueError):
            from_bytes.apply_json(bad_key.encode(), orjson.dumps(record))
    with pytest.raises(ValueError):
        from_bytes.apply_json(key.encode(), b"{not json")
    assert from_bytes.pair("20610", "20552", "2026-02-01") == PairEdit("1", MISUSE)
    from_bytes.apply_json(key.encode(), None)  # a tombstone deletes the part
    assert from_bytes.pair("20610", "20552", "2026-02-01") is None


def test_a_single_edit_record_is_versioned_and_deleted_one_by_one_and_a_payers_own_holds_over_cms():
    payer = {"column1": "96372", "column2": "J1100", "table": "practitioner", "rationale": "Payer policy"}
    first = policy_record(NCCI, "96372/J1100", "2020-01-01", "2023-12-31", {**payer, "modifier_indicator": "1"})
    second = policy_record(NCCI, "96372/J1100", "2024-01-01", None, {**payer, "modifier_indicator": "0"})
    table = CodeTable().load([second, first])
    assert [table.pair("96372", "J1100", day).modifier_indicator for day in ("2023-12-31", "2024-01-01")] == ["1", "0"]
    table.apply(second[0], None)
    assert table.pair("96372", "J1100", "2024-01-01") is None and table.pair("96372", "J1100", "2023-12-31")
    # CMS's edit of the pair: the payer's own holds on the days it is in effect, CMS's on the others.
    release = Release("NCCI-PTP-PRACTITIONER 2026-Q1", "2026-01-01", "2026-03-31", "NCCI-PTP-PRACTITIONER")
    table.load(merge_ptp({}, release, "practitioner", [ptp_row("96372", "J1100", "2016-01-01", indicator="0")]))
    assert table.pair("96372", "J1100", "2023-12-31") == PairEdit("1", "Payer policy")
    assert table.pair("96372", "J1100", "2024-01-01") == PairEdit("0", STANDARDS)
    table.apply(first[0], None)
    table.apply("@ncci-set|96372|1", None)
    assert table.pair("96372", "J1100", "2023-12-31") is None and not table.has_pairs


# The project's own CSV form


def test_the_csv_form_still_loads_and_may_name_the_table_mai_and_rationale():
    pairs = io.StringIO(
        "policy,column1,column2,modifier_indicator,valid_from,valid_to,table,rationale\n"
        "ncci,93000,93005,0,2025-01-01,,,\n"
        "ncci,93000,93005,1,2025-01-01,,hospital,Payer policy\n"
    )
    units = io.StringIO(
        "policy,code,max_units,valid_from,valid_to,mai,table\nmue,36415,2,2025-01-01,,,\nmue,36415,3,2025-01-01,,3,dme\n"
    )
    records = [*read_csv(pairs), *read_csv(units)]
    assert [key for key, _ in records] == [
        "@ncci|93000/93005|2025-01-01",
        "@ncci|HOSPITAL:93000/93005|2025-01-01",
        "@mue|36415|2025-01-01",
        "@mue|DME:36415|2025-01-01",
    ]
    # A row without the new columns makes the record it always made: reloading it publishes nothing.
    assert records[0][1]["attributes"] == {"column1": "93000", "column2": "93005", "modifier_indicator": "0"}
    assert records[2][1]["attributes"] == {"code": "36415", "max_units": "2"}
    table = CodeTable().load(records)
    assert table.pair("93000", "93005", "2025-06-01") == PairEdit("0", "")
    assert table.pair("93000", "93005", "2025-06-01", "hospital") == PairEdit("1", "Payer policy")
    assert table.mue("36415", "2025-06-01") == MueLimit(2, 1, "")  # no mai: per line
    assert table.mue("36415", "2025-06-01", "dme") == MueLimit(3, 3, "")


# Loading a release on top of what the topic holds


@pytest.mark.parametrize(
    ("what", "paths", "table"),
    [("ncci-ptp", PRACTITIONER, "practitioner"), ("ncci-ptp", HOSPITAL, "hospital"),
     *(("mue", [path], table) for table, path in MUE_FILES.items())],
)  # fmt: skip
def test_loading_the_same_release_twice_publishes_nothing(what, paths, table):
    first = loaded(what, paths, table)
    assert first and all(record is not None for _, record in first)
    assert loaded(what, paths, table, held=published({}, first)) == []


def ptp_row(column1, column2, effective, deletion=None, indicator="1"):
    return PtpRow(column1, column2, False, effective, deletion, indicator, STANDARDS)


def test_a_later_ptp_release_publishes_its_changes_and_ends_what_cms_dropped():
    q1 = Release("NCCI-PTP-PRACTITIONER 2026-Q1", "2026-01-01", "2026-03-31", "NCCI-PTP-PRACTITIONER")
    q2 = Release("NCCI-PTP-PRACTITIONER 2026-Q2", "2026-04-01", "2026-06-30", "NCCI-PTP-PRACTITIONER")
    payer = policy_record(NCCI, "99213/36415", "2025-01-01", None,
                          {"column1": "99213", "column2": "36415", "modifier_indicator": "0"})  # fmt: skip
    rows = [ptp_row("20610", "20552", "2016-01-01"), ptp_row("93000", "93005", "1996-01-01"),
            ptp_row("36556", "36000", "2008-01-01"), ptp_row("36556", "36010", "2026-01-01")]  # fmt: skip
    held = published(dict([payer]), merge_ptp(dict([payer]), q1, "practitioner", rows))
    later = [
        ptp_row("20610", "20552", "2016-01-01"),  # unchanged
        ptp_row("93000", "93005", "1996-01-01", deletion="2026-04-01"),  # CMS deletes it from Q2
        ptp_row("11055", "11719", "2026-04-01", indicator="0"),  # new
    ]  # 36556's two edits dropped from the file
    out = dict(merge_ptp(held, q2, "practitioner", later))
    assert set(out) == {
        "@release|NCCI-PTP-PRACTITIONER:2026-Q2|2026-04-01",
        "@ncci-set|93000|1",
        "@ncci-set|11055|1",
        "@ncci-set|36556|1",
    }  # neither the unchanged column-1 code nor the payer's own row
    assert out["@ncci-set|93000|1"]["attributes"]["edits"][0][2] == "2026-03-31"
    # Ended the day before Q2; the edit that started in Q1 is gone (it was never in effect past it).
    ended = [["36000", "2008-01-01", "2026-03-31", "1", 0], ["36010", "2026-01-01", "2026-03-31", "1", 0]]
    assert out["@ncci-set|36556|1"]["attributes"]["edits"] == ended
    table = CodeTable().load(published(held, out.items()).items())
    assert table.pair("93000", "93005", "2026-03-31") and table.pair("93000", "93005", "2026-04-01") is None
    assert table.pair("36556", "36000", "2026-04-01") is None and table.pair("99213", "36415", "2026-04-01")
    assert table.pair("36556", "36000", "2026-03-31") and table.pair("11055", "11719", "2026-04-01")


def test_a_later_mue_release_starts_a_version_where_a_value_changed_and_ends_what_it_dropped():
    q1 = Release("MUE-PRACTITIONER 2026-Q1", "2026-01-01", "2026-03-31", "MUE-PRACTITIONER")
    q2 = Release("MUE-PRACTITIONER 2026-Q2", "2026-04-01", "2026-06-30", "MUE-PRACTITIONER")
    held = published({}, merge_mue({}, q1, "practitioner", [MueRow("36415", 2, 2, "CMS Policy"),
                                                             MueRow("20610", 2, 1, "Anatomic Consideration"),
                                                             MueRow("93000", 1, 3, "Clinical: Data")]))  # fmt: skip
    out = dict(merge_mue(held, q2, "practitioner", [MueRow("36415", 3, 2, "CMS Policy"),
                                                     MueRow("20610", 2, 1, "Anatomic Consideration")]))  # fmt: skip
    assert out["@mue|36415|2026-01-01"]["valid_to"] == "2026-03-31"  # changed: the old value ends
    assert out["@mue|36415|2026-04-01"]["attributes"]["max_units"] == 3  # and the new one starts
    assert out["@mue|93000|2026-01-01"]["valid_to"] == "2026-03-31"  # dropped
    assert "@mue|20610|2026-01-01" not in out and "@mue|20610|2026-04-01" not in out  # unchanged: goes on
    table = CodeTable().load(published(held, out.items()).items())
    assert table.mue("36415", "2026-03-31").max_units == 2 and table.mue("36415", "2026-04-01").max_units == 3
    assert table.mue("20610", "2026-05-01").mai == 1 and table.mue("93000", "2026-04-01") is None


def test_a_million_ncci_pairs_are_held_in_little_memory():
    """Issue 12: a worker holding 1,000,000 pairs (with the code sets) in 400 MB: the pairs alone, from the
    JSON the follower reads, 40-60 MB. (How fast they load is the bench's production-size row.) Deselected
    from the quick run (``-k "not million"``)."""
    import gc
    import os

    from processor.bench.machine import memory_mb

    codes = [f"{n:05d}" for n in range(10_000, 23_000)]
    edits: dict[str, list] = {"practitioner": [], "hospital": []}
    for index in range(1_000_000):  # 13,000 column-1 codes with 77 column-2 codes each, over both tables
        row = ptp_row(codes[index // 77], codes[(index % 77) * 167 % 13_000], "2016-01-01")
        edits["hospital" if index % 3 == 0 else "practitioner"].append(ncci_mue.PtpEdit.of(row))
    payloads = [(key.encode(), orjson.dumps(record)) for table, rows in edits.items()
                for key, record in ncci_mue.ptp_set_records(table, rows)]  # fmt: skip
    del edits
    gc.collect()
    before = memory_mb(os.getpid())
    table = CodeTable()
    for key, payload in payloads:
        table.apply_json(key, payload)
    gc.collect()
    after = memory_mb(os.getpid())
    held = [seconds for by_part in table._sets.values() for parts in by_part.values() for seconds in parts.values()]
    assert sum(len(seconds) for seconds in held) == 1_000_000
    assert table.pair(codes[0], codes[167], "2026-01-01") == PairEdit("1", STANDARDS)
    if before and after:  # Linux
        assert after["rss"] - before["rss"] < 150, after["rss"] - before["rss"]
