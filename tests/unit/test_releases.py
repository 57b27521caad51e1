"""The default table from the installed ICD-10-CM FY2025 and FY2026 releases."""

import pytest

from processor.code_table.releases import fy2025_codes, fy2026_codes, icd10cm_records
from processor.code_table.table import CodeTable


@pytest.fixture(scope="module")
def releases():
    return fy2025_codes(), fy2026_codes()


@pytest.fixture(scope="module")
def default_table(releases):
    return CodeTable("default").load(icd10cm_records(*releases))


def test_release_sizes_match_the_published_files(releases):
    fy2025, fy2026 = releases
    assert len(fy2025) == 97_584 and sum(b for b, _ in fy2025.values()) == 74_260  # the CMS order file
    assert 74_000 < sum(b for b, _ in fy2026.values()) < 75_500  # leaves of the FY2026 tabular


@pytest.mark.parametrize(
    ("code", "versions"),
    [
        ("E11", [("2024-10-01", None, False)]),
        ("E119", [("2024-10-01", None, True)]),
        ("E11A", [("2025-10-01", None, True)]),
        ("B880", [("2024-10-01", "2025-09-30", True), ("2025-10-01", None, False)]),
        ("B8801", [("2025-10-01", None, True)]),
        ("S52521A", [("2024-10-01", None, True)]),
    ],
)
def test_effective_dates_come_from_both_releases(default_table, code, versions):
    found = default_table.versions("ICD-10-CM", code)
    assert [(v.valid_from, v.valid_to, v.billable) for v in found] == versions


def test_descriptions_are_kept(default_table):
    assert (
        default_table.versions("ICD-10-CM", "E119")[0].description == "Type 2 diabetes mellitus without complications"
    )
