"""CMS's code files as CMS publishes them: the real 2020 HCPCS Level II file and rows of an ICD-10-PCS order
file (``tests/fixtures/cms``), read, loaded into a code table and decided on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jsonschema
import pytest

from processor.cli import main
from processor.code_table.cms_files import (
    HCPCS_MODIFIER,
    ReleaseCode,
    order_file_lines,
    read_hcpcs_file,
    read_order_file,
    read_pcs_order_file,
)
from processor.code_table.releases import Release, merge_hcpcs, merge_release
from processor.code_table.table import CodeTable
from processor.contracts import load_schema
from processor.engine import decide
from tests.conftest import a_claim

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cms"
HCPCS_2020 = FIXTURES / "hcpcs-2020" / "HCPC2020_ANWEB_w_disclaimer.txt"
PCS_2023 = FIXTURES / "icd10pcs-2023" / "icd10pcs_order_2023.txt"


@pytest.fixture(scope="module")
def hcpcs():
    return read_hcpcs_file(HCPCS_2020)


@pytest.fixture(scope="module")
def hcpcs_records(hcpcs):
    return list(merge_hcpcs({}, hcpcs, "2020", "2020-01-01", "2020-12-31"))


@pytest.fixture(scope="module")
def hcpcs_table(hcpcs_records):
    return CodeTable("hcpcs-2020").load(hcpcs_records)


def test_the_fixture_is_cms_file_byte_for_byte():
    data = HCPCS_2020.read_bytes()
    assert len(data) == 2_771_202 and data.count(b"\r\n") == 12_368  # CRLF, as CMS ships it
    assert hashlib.sha256(data).hexdigest() == "e7f6f58b91fa54d081be50230a1a34ae4671038539a2b42ed055002d395c1063"


def test_the_disclaimer_before_the_first_record_is_skipped_and_counted(hcpcs):
    assert len(hcpcs.banner) == 9  # 6 lines of text and 3 blank ones
    # Byte 0x92 is a right single quotation mark in Windows-1252 (a C1 control character in Latin-1).
    assert hcpcs.banner[0].startswith("Note regarding coverage and payment indicators for codes in CMS\u2019 2020")


def test_the_real_file_holds_6710_codes_605_of_them_terminated_and_369_modifiers(hcpcs):
    codes, modifiers = hcpcs.codes, hcpcs.modifiers
    assert len(codes) == 6_710 and len(modifiers) == 369
    ended = [c.valid_to for c in codes.values() if c.valid_to]
    assert len(ended) == 605 and (min(ended), max(ended)) == ("2014-06-30", "2019-12-31")
    assert sum(c.attributes["action_code"] == "D" for c in codes.values()) == 98
    assert {c.attributes["coverage_code"] for c in codes.values()} == {"C", "D", "I", "M", "S"}
    assert all(c.valid_from for c in [*codes.values(), *modifiers.values()])  # every record has an add date
    assert sum(bool(c.valid_to) for c in modifiers.values()) == 10
    assert not any(code.isdigit() for code in modifiers)  # no CPT modifiers (25, 59): they are the AMA's


@pytest.mark.parametrize(
    ("code", "valid_from", "valid_to", "coverage", "action", "action_effective"),
    [
        ("J1100", "1982-01-01", None, "D", "N", "2001-01-01"),  # dexamethasone: valid all along
        ("J9310", "1999-01-01", "2018-12-31", "D", "N", "2019-01-01"),  # rituximab 100 mg, ended 2018, still listed
        ("C9441", "2014-01-01", "2014-06-30", "D", "N", "2014-07-01"),  # the oldest termination the file keeps
        ("C9035", "2019-01-01", "2019-09-30", "D", "D", "2019-10-01"),  # discontinued (action D)
        ("A4226", "2020-01-01", None, "C", "A", "2020-01-01"),  # added in 2020 (action A)
        ("A0130", "1982-01-01", None, "I", "N", None),  # no action effective date in the file
    ],
)
def test_known_codes_have_their_dates_and_coverage_code(hcpcs, code, valid_from, valid_to, coverage, action,
                                                        action_effective):  # fmt: skip
    found = hcpcs.codes[code]
    assert (found.valid_from, found.valid_to) == (valid_from, valid_to)
    assert found.attributes["coverage_code"] == coverage and found.attributes["action_code"] == action
    assert found.attributes.get("action_effective") == action_effective


def test_continuation_records_are_joined(hcpcs):
    assert hcpcs.codes["E0114"].description == (
        "Crutches underarm, other than wood, adjustable or fixed, pair, with pads, tips and handgrips"
    )
    assert hcpcs.codes["E0114"].attributes["short_description"] == "Crutch underarm pair no wood"


@pytest.mark.parametrize(
    ("modifier", "valid_from", "valid_to", "action"),
    [
        ("GA", "1995-01-01", None, "N"),  # waiver of liability statement (ABN) issued
        ("LT", "1984-01-01", None, "N"),
        ("XS", "2015-01-01", None, "N"),
        ("GD", "2008-01-01", "2019-12-31", "D"),  # discontinued for 2020
        ("V8", "2010-01-01", "2012-03-31", "N"),  # the oldest termination among the modifiers
    ],
)
def test_modifiers_are_read_with_their_dates(hcpcs, modifier, valid_from, valid_to, action):
    found = hcpcs.modifiers[modifier]
    assert (found.valid_from, found.valid_to, found.attributes["action_code"]) == (valid_from, valid_to, action)


def record_320(code: str, record_id: str, long: str, short: str = "", added: str = "20200101", ended: str = "") -> str:
    """A first record in CMS's layout (continuations: record id 4 or 8 and the long description only)."""
    line = f"{code:>5}00100{record_id}{long:<80}{short:<28}".ljust(229) + "C"
    return (line.ljust(268) + f"{added:<8}{added:<8}{ended:<8}" + ("D" if ended else "N")).ljust(320)


def test_windows_1252_characters_in_a_record_are_decoded(tmp_path):
    path = tmp_path / "hcpcs.txt"
    text = "Disclaimer\r\n" + record_320("Q9999", "3", "Test \u2013 dressing \u00e9") + "\r\n"
    path.write_bytes(text.encode("cp1252"))  # the en dash is byte 0x96, the e acute 0xE9
    assert read_hcpcs_file(path).codes["Q9999"].description == "Test \u2013 dressing \u00e9"


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (["banner", record_320("J1100", "3", "x"), "a footer line"], "line 3: not a HCPCS record"),
        (["   GA00200" + "8" + "more text"], "line 1: a continuation of GA"),
        ([record_320("J1100", "3", "x", added="20201301")], "add date '20201301' is not a date"),
        ([record_320("J1100", "3", "x", added="20200101", ended="20191231")], "before it was added"),
        (["00001 A00     0 Cholera   Cholera"], "no HCPCS records"),  # an order file given by mistake
    ],
)
def test_the_hcpcs_reader_names_what_is_wrong(lines, error):
    with pytest.raises(ValueError, match=error):
        read_hcpcs_file(lines)


def test_a_byte_windows_1252_does_not_define_is_an_error(tmp_path):
    path = tmp_path / "hcpcs.txt"
    path.write_bytes(record_320("J1100", "3", "x").encode("cp1252") + b"\x81\r\n")
    with pytest.raises(ValueError, match="byte 320 is not Windows-1252"):
        read_hcpcs_file(path)


@pytest.mark.parametrize(
    ("system", "code", "day", "valid"),
    [
        ("HCPCS", "J9310", "2018-06-01", True),  # before its termination date: accepted
        ("HCPCS", "J9310", "2018-12-31", True),
        ("HCPCS", "J9310", "2019-01-01", False),
        ("HCPCS", "J9310", "2020-03-01", False),  # listed in the 2020 file, but terminated
        ("HCPCS", "A4226", "2019-12-31", False),  # added 2020-01-01
        ("HCPCS", "A4226", "2020-01-01", True),
        ("HCPCS", "J1100", "2014-06-30", True),
        (HCPCS_MODIFIER, "GD", "2019-12-31", True),
        (HCPCS_MODIFIER, "GD", "2020-01-01", False),
        (HCPCS_MODIFIER, "GA", "2020-03-01", True),
    ],
)
def test_a_code_is_valid_from_its_add_date_to_its_termination_date(hcpcs_table, system, code, day, valid):
    assert any(v.covers(day) for v in hcpcs_table.versions(system, code)) is valid


def test_the_file_covers_its_year_and_the_dates_its_terminations_speak_for(hcpcs_table):
    assert hcpcs_table.releases("HCPCS") == [
        ("HCPCS 2020 history", "2014-06-30", "2019-12-31"),
        ("HCPCS 2020", "2020-01-01", "2020-12-31"),
    ]
    assert hcpcs_table.releases(HCPCS_MODIFIER)[0] == ("HCPCS-MODIFIER 2020 history", "2012-03-31", "2019-12-31")
    # Before the earliest termination it lists, a code CMS has since dropped may have been valid: not covered.
    assert hcpcs_table.covers_date("HCPCS", "2014-06-29") is False
    assert hcpcs_table.covers_date("HCPCS", "2014-06-30") and hcpcs_table.covers_date("HCPCS", "2020-12-31")


def test_the_records_match_the_code_table_schema(hcpcs_records):
    validator = jsonschema.Draft202012Validator(load_schema("code-table-record"))
    for _key, record in hcpcs_records:
        validator.validate(record)
    records = dict(hcpcs_records)
    assert records["HCPCS|J9310|1999-01-01"] == {
        "system": "HCPCS", "code": "J9310", "description": "Injection, rituximab, 100 mg", "billable": True,
        "valid_from": "1999-01-01", "valid_to": "2018-12-31", "release": "HCPCS 2020",
        "attributes": {"short_description": "Rituximab injection", "coverage_code": "D", "action_code": "N",
                       "action_effective": "2019-01-01"},
    }  # fmt: skip
    assert records["HCPCS-MODIFIER|GA|1995-01-01"]["attributes"]["coverage_code"] == "C"


def test_loading_the_same_file_again_publishes_nothing(hcpcs, hcpcs_records):
    assert list(merge_hcpcs(dict(hcpcs_records), hcpcs, "2020", "2020-01-01", "2020-12-31")) == []


# ICD-10-CM E11.9 and I10 (both valid in every fiscal year since FY2016) with a release covering 2018 to 2020:
# the diagnoses of the claims below, so that only the HCPCS line decides.
DIAGNOSES = list(merge_release({}, Release("ICD-10-CM FY2018-FY2020", "2017-10-01", "2020-09-30"), {
    "E119": ReleaseCode(True, "Type 2 diabetes mellitus without complications"),
    "I10": ReleaseCode(True, "Essential (primary) hypertension"),
}))  # fmt: skip


def hcpcs_claim(code: str, day: str) -> dict:
    claim = a_claim(submitted_at=f"{day}T10:00:00Z")
    claim["lines"][0].update(code=code, system="HCPCS", service_date=day)
    return claim


@pytest.mark.parametrize(
    ("code", "day", "outcome", "reason"),
    [
        ("J9310", "2018-06-01", "accepted", None),  # terminated 2018-12-31: still valid then
        ("J9310", "2020-03-01", "returned", "procedure.not_valid_on_date"),  # listed in 2020, but terminated
        ("J1100", "2020-03-01", "accepted", None),
        ("A4226", "2019-06-01", "returned", "procedure.not_valid_on_date"),  # added 2020-01-01
    ],
)
def test_the_engine_decides_on_the_files_dates(hcpcs_records, code, day, outcome, reason):
    table = CodeTable("test").load([*DIAGNOSES, *hcpcs_records])
    decision = decide(hcpcs_claim(code, day), "claim", table)
    assert decision.outcome.value == outcome, decision.reasons
    assert [r.id for r in decision.reasons] == ([reason] if reason else [])


def test_the_icd10pcs_order_file_rows_are_read_with_their_descriptions():
    codes = read_pcs_order_file(PCS_2023)
    assert len(codes) == 12 and sum(c.billable for c in codes.values()) == 11
    assert codes["001"] == ReleaseCode(False, "Central Nervous System and Cranial Nerves, Bypass")
    assert codes["0016070"] == ReleaseCode(
        True, "Bypass Cerebral Ventricle to Nasopharynx with Autologous Tissue Substitute, Open Approach"
    )


def test_the_fixture_has_cms_order_file_layout():
    rows = PCS_2023.read_bytes().decode("latin-1").split("\r\n")[:-1]
    codes = read_pcs_order_file(PCS_2023)
    columns = [
        (code, c.billable, row[16:76].rstrip(), c.description)
        for (code, c), row in zip(codes.items(), rows, strict=True)
    ]
    assert list(order_file_lines(columns)) == rows


def test_an_icd10cm_order_file_is_not_read_as_icd10pcs():
    with pytest.raises(ValueError, match="line 1: 'E119' is not an ICD-10-PCS code"):
        read_pcs_order_file(["12345 E119    1 Type 2 diabetes mellitus without complications"])
    assert read_order_file(PCS_2023.read_text(encoding="latin-1").splitlines()[:1])  # a header passes either way


def test_an_icd10pcs_release_holds_the_descriptions():
    release = Release("ICD-10-PCS FY2023", "2022-10-01", "2023-09-30", "ICD-10-PCS")
    table = CodeTable().load(merge_release({}, release, read_pcs_order_file(PCS_2023)))
    version = table.versions("ICD-10-PCS", "001607A")[0]
    assert (version.valid_from, version.billable) == ("2022-10-01", True)
    assert version.description.startswith("Bypass Cerebral Ventricle to Subgaleal Space")
    assert table.covers_date("ICD-10-PCS", "2023-09-30") and not table.covers_date("ICD-10-PCS", "2023-10-01")


def test_the_load_command_says_what_is_wrong_with_the_file_before_connecting(tmp_path):
    path = tmp_path / "not-hcpcs.txt"
    path.write_text("00001 A00     0 Cholera   Cholera\n")
    with pytest.raises(SystemExit, match="processor load hcpcs: HCPCS file: no HCPCS records"):
        main(["load", "hcpcs", str(path), "--first-day", "2020-01-01", "--bootstrap-servers", "127.0.0.1:1"])
