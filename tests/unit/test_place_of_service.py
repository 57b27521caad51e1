"""CMS's place of service code set as a code system of the code table: its records, dates, format and release."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest

from processor.code_systems import (
    DIAGNOSIS_SYSTEMS,
    FORMATS,
    POS,
    PROCEDURE_SYSTEMS,
    STANDARD_SYSTEMS,
    TEST_SYSTEMS,
    is_well_formed,
    normalize,
)
from processor.code_table.place_of_service import CODES, FIRST_DAY, LAST_DAY, pos_records
from processor.code_table.sources import build_table
from processor.code_table.table import CodeTable
from processor.engine import decide
from tests.conftest import SMALL_POLICY, SMALL_TABLE, a_claim, an_order
from tests.unit.test_schemas import validator

TODAY = "2026-12-07"


@pytest.fixture(scope="module")
def table() -> CodeTable:
    return CodeTable("pos").load(pos_records())


@pytest.fixture(scope="module")
def default_table() -> CodeTable:
    return build_table()


def valid_on(table: CodeTable, code: str, day: str) -> bool:
    """True when the table holds a billable version of the POS code on ``day``."""
    return any(v.billable and v.covers(day) for v in table.versions(POS, normalize(POS, code)))


VALIDITY = [
    ("11", "2025-06-01", True, "office: in the list since before HIPAA's code sets"),
    ("11", TODAY, True, "office, on the day the list was checked"),
    ("81", TODAY, True, "independent laboratory, where lab orders are tested"),
    ("10", "2021-12-31", False, "telehealth in the patient's home did not exist before 2022"),
    ("10", "2022-01-01", True, "telehealth in the patient's home: added 2022-01-01 (CR 12427)"),
    ("02", "2016-12-31", False, "telehealth: added 2017-01-01"),
    ("02", "2021-12-31", True, "telehealth, under its first name"),
    ("02", "2022-01-01", True, "telehealth, renamed the day 10 was added"),
    ("19", "2015-12-31", False, "off campus outpatient hospital: added 2016-01-01 (CR 9231)"),
    ("19", "2016-01-01", True, "off campus outpatient hospital, its first day"),
    ("22", "2015-12-31", True, "outpatient hospital, before it became 'on campus'"),
    ("22", "2016-01-01", True, "on campus outpatient hospital"),
    ("27", "2023-09-30", False, "outreach site/street: not before 2023-10-01 (CR 13314)"),
    ("27", "2023-10-01", True, "outreach site/street, its first day"),
    ("58", "2019-12-31", False, "non-residential opioid treatment facility: added 2020-01-01 (CR 11353)"),
    ("58", "2020-01-01", True, "non-residential opioid treatment facility, its first day"),
    ("66", "2024-07-31", False, "PACE center: added 2024-08-01"),
    ("66", "2024-08-01", True, "PACE center, its first day"),
    ("49", "2010-06-01", True, "independent clinic: since 2003, though CMS's page now prints 2023"),
    ("99", TODAY, True, "other place of service"),
    ("30", TODAY, False, "30 is unassigned: not a place of service"),
    ("00", TODAY, False, "00 was never assigned"),
]


@pytest.mark.parametrize(("code", "day", "valid", "why"), VALIDITY, ids=[f"{c[0]}@{c[1]}" for c in VALIDITY])
def test_a_code_is_valid_on_the_dates_cms_gives_it(table, code, day, valid, why):
    assert valid_on(table, code, day) is valid, why


@pytest.mark.parametrize("code", ["00", "28", "29", "30", "35", "40", "43", "48", "59", "63", "67", "73", "82", "98"])
def test_unassigned_codes_are_not_in_the_table(table, code):
    assert table.versions(POS, code) == ()


@pytest.mark.parametrize(
    ("code", "day", "name"),
    [
        ("02", "2021-12-31", "Telehealth"),
        ("02", "2022-01-01", "Telehealth Provided Other than in Patient's Home"),
        ("22", "2015-12-31", "Outpatient Hospital"),
        ("22", "2016-01-01", "On Campus-Outpatient Hospital"),
        ("81", TODAY, "Independent Laboratory"),
        ("27", TODAY, "Outreach Site/Street"),
    ],
)
def test_the_description_is_cms_name_on_the_day(table, code, day, name):
    [version] = [v for v in table.versions(POS, code) if v.covers(day)]
    assert version.description == name


def test_the_records_load_as_52_codes_and_one_release(table):
    assert table.systems() == {POS}
    assert len({code for code, *_ in CODES}) == 52  # CMS's list as HL7 copies it: 52 codes
    assert len(table) == 54  # two of them (02, 22) with a version per name
    assert table.releases(POS) == [("POS 2026-Q4", FIRST_DAY, LAST_DAY)]


@pytest.mark.parametrize(
    ("day", "covered"),
    [
        ("2003-10-15", False),  # before HIPAA's last compliance date for code sets: not vouched for
        (FIRST_DAY, True),
        ("2025-06-01", True),
        (TODAY, True),
        (LAST_DAY, True),
        ("2027-04-01", False),  # past the rest of the default table and the quarter after the check: review
    ],
)
def test_the_release_covers_the_dates_the_list_speaks_for(table, day, covered):
    assert table.covers_date(POS, day) is covered


def test_the_versions_of_a_code_follow_one_another_without_gap_or_overlap():
    by_code: dict[str, list[tuple[str, str | None]]] = {}
    for code, first, last, name in CODES:
        assert FORMATS[POS].fullmatch(code) and name and (last is None or first <= last), code
        by_code.setdefault(code, []).append((first, last))
    assert list(by_code) == sorted(by_code)
    for code, versions in by_code.items():
        for (_, last), (first, _) in pairwise(versions):
            assert last is not None and date.fromisoformat(last) + timedelta(days=1) == date.fromisoformat(first), code
        assert versions[-1][1] is None, code  # no code has left CMS's list


def test_every_record_matches_the_code_table_record_schema():
    check = validator("code-table-record")
    for _key, record in pos_records():
        check.validate(record)


@pytest.mark.parametrize(
    ("code", "normalized", "well_formed"),
    [
        ("11", "11", True),
        (" 81 ", "81", True),  # ASCII spaces around it are trimmed, as for every system
        ("02", "02", True),
        ("2", "2", False),  # the leading zero is part of the code
        ("011", "011", False),
        ("1A", "1A", False),
        ("١١", "١١", False),  # Arabic-Indic digits are not ASCII digits
        ("", "", False),
    ],
)
def test_format_of_a_pos_code(code, normalized, well_formed):
    assert normalize(POS, code) == normalized
    assert is_well_formed(POS, normalize(POS, code)) is well_formed


def test_pos_is_a_standard_system_of_no_coded_role():
    assert POS in STANDARD_SYSTEMS
    assert POS not in DIAGNOSIS_SYSTEMS | PROCEDURE_SYSTEMS | TEST_SYSTEMS


POS_LINE = {"line_number": 1, "code": "11", "system": POS, "modifiers": [], "units": 1, "service_date": "2025-11-03",
            "diagnosis_pointers": [1]}  # fmt: skip
CODED_FIELDS = [
    ("claim", a_claim(diagnoses=[{"code": "11", "system": POS}]), ("diagnosis.system_unknown", "diagnoses[0].system")),
    ("claim", a_claim(lines=[POS_LINE]), ("procedure.system_unknown", "lines[0].system")),
    ("order", an_order(tests=[{"code": "81", "system": POS}]), ("test.system_unknown", "tests[0].system")),
]


@pytest.mark.parametrize(("kind", "event", "expected"), CODED_FIELDS, ids=[c[2][1] for c in CODED_FIELDS])
def test_a_pos_code_in_a_coded_field_is_an_unknown_system_not_an_internal_one(kind, event, expected):
    """POS codes are loaded, but POS is a standard system: it is not taken for a payer's internal system."""
    table = CodeTable("small+pos").load([*SMALL_TABLE, *SMALL_POLICY, *pos_records()])
    decision = decide(event, kind, table)
    assert decision.outcome == "returned"
    assert [(r.id, r.field, r.value) for r in decision.reasons] == [(*expected, POS)]


def test_the_default_table_holds_the_pos_code_set(default_table):
    assert default_table.releases(POS) == [("POS 2026-Q4", FIRST_DAY, LAST_DAY)]
    assert default_table.covers_date(POS, TODAY)
    assert valid_on(default_table, "11", "2025-06-01") and not valid_on(default_table, "10", "2021-12-31")
    assert default_table.versions(POS, "30") == ()
