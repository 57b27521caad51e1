"""Code formats and check digits, with real codes."""

import pytest

from processor.code_systems import is_valid_npi, is_well_formed, luhn_check_digit, normalize, with_dot

WELL_FORMED = [
    ("ICD-10-CM", "E11.9", True), ("ICD-10-CM", "E119", True), ("ICD-10-CM", "S52.521A", True),
    ("ICD-10-CM", "V00.01XA", True), ("ICD-10-CM", "U07.1", True), ("ICD-10-CM", "E11.", False),
    ("ICD-10-CM", "E1.19", False), ("ICD-10-CM", "1E119", False), ("ICD-10-CM", "E11.12345", False),
    ("ICD-10-PCS", "0DTJ4ZZ", True), ("ICD-10-PCS", "0DTJ4Z", False), ("ICD-10-PCS", "0DTJ4ZI", False),
    ("HCPCS", "J1100", True), ("HCPCS", "A0425", True), ("HCPCS", "99213", False), ("HCPCS", "J110", False),
    ("CPT", "99213", True), ("CPT", "0001F", True), ("CPT", "0042T", True), ("CPT", "0001U", True),
    ("CPT", "9921", False), ("CPT", "J1100", False),
    ("LOINC", "4548-4", True), ("LOINC", "2345-7", True), ("LOINC", "24323-8", True),
    ("LOINC", "4548-5", False), ("LOINC", "45484", False),
    ("ACME-INTERNAL", "anything", True),
]  # fmt: skip


@pytest.mark.parametrize(("system", "code", "expected"), WELL_FORMED)
def test_well_formed(system, code, expected):
    assert is_well_formed(system, normalize(system, code)) is expected


@pytest.mark.parametrize(
    ("npi", "valid"),
    [("1234567893", True), ("1234567890", False), ("0234567893", False), ("123456789", False), ("12345678a3", False)],
)
def test_npi(npi, valid):
    assert is_valid_npi(npi) is valid


def test_luhn_matches_the_loinc_worked_example():
    assert luhn_check_digit("12345") == 5  # LOINC's manual: 12345 -> check digit 5


def test_normalize_and_print():
    assert normalize("ICD-10-CM", " s52.521a ") == "S52521A"
    assert with_dot("S52521A") == "S52.521A"
    assert with_dot("I10") == "I10"
    assert normalize("LOINC", "4548-4") == "4548-4"
