"""Code systems: their names, the printed form of their codes, and the check digits of LOINC and NPI.

Everything here is a pure function of a string; the code table answers whether a well-formed code exists.
"""

from __future__ import annotations

import functools
import re

ICD10CM = "ICD-10-CM"
ICD10PCS = "ICD-10-PCS"
HCPCS = "HCPCS"
CPT = "CPT"
LOINC = "LOINC"
# The procedure code modifiers of claim lines: HCPCS Level II modifiers (LT, RT, GA, XE...) from CMS's HCPCS
# file; CPT's two-digit modifiers (25, 59...) are AMA material a payer loads itself.
MODIFIER = "HCPCS-MODIFIER"
# Place of service (CMS's POS code set): where a professional claim's services were rendered, on the claim and
# on its lines. Not a coded diagnosis, procedure or test: no role below takes it.
POS = "POS"
STANDARD_SYSTEMS = (ICD10CM, ICD10PCS, HCPCS, CPT, LOINC, MODIFIER, POS)

# Which systems may code which role. A payer's internal system (any other name present in the code
# table) may code any role.
DIAGNOSIS_SYSTEMS = frozenset({ICD10CM})
PROCEDURE_SYSTEMS = frozenset({HCPCS, CPT})  # on claim lines; ICD-10-PCS codes an inpatient stay's procedures
TEST_SYSTEMS = frozenset({LOINC, CPT, HCPCS})

# The printed form of each standard system's codes, after normalize().
FORMATS = {
    # a letter, then 2 to 6 letters or digits (the dot is removed by normalize). The second character was
    # always a digit until FY2026 added category QA0 (QA0.0151): only the loaded release says which codes
    # exist, so the form admits anything a release could hold.
    ICD10CM: re.compile(r"[A-Z][0-9A-Z]{2,6}"),
    # exactly seven of 0-9 and A-Z without I and O
    ICD10PCS: re.compile(r"[0-9A-HJ-NP-Z]{7}"),
    # Level II: a letter then four digits
    HCPCS: re.compile(r"[A-Z][0-9]{4}"),
    # Category I: five digits; II: four digits + F; III: four digits + T; PLA: four digits + U
    CPT: re.compile(r"[0-9]{5}|[0-9]{4}[FTU]"),
    # digits, a hyphen, one mod-10 check digit
    LOINC: re.compile(r"[0-9]{1,7}-[0-9]"),
    # exactly two digits, the leading zero included (02, not 2)
    POS: re.compile(r"[0-9]{2}"),
}

FORMAT_HINTS = {
    ICD10CM: "3 to 7 characters: a letter, then letters or digits (a dot after the third is optional), "
    "e.g. E11.9, S52.521A or QA0.0151",
    ICD10PCS: "exactly 7 letters or digits without I and O, e.g. 0DTJ4ZZ",
    HCPCS: "a letter then 4 digits, e.g. J1100 (a 5-digit code is CPT)",
    CPT: "5 digits, or 4 digits then F, T or U, e.g. 99213 or 0001U",
    LOINC: "digits, a hyphen and a check digit, e.g. 4548-4",
    POS: "two digits, e.g. 11 (office) or 81 (independent laboratory)",
}
# The form of a payer's internal codes: any, in printable ASCII.
INTERNAL_HINT = "letters, digits, spaces and punctuation in ASCII"

_ICD10_SYSTEMS = frozenset({ICD10CM, ICD10PCS})
_ICD10CM_DOT = re.compile(r"[A-Z][0-9A-Z]{2}\.[0-9A-Z]{1,4}")


def normalize(system: str, code: str) -> str:
    """The form a code is stored and looked up in: ASCII spaces trimmed, upper case, ICD-10 without its dot.

    Nothing else is trimmed or folded: a code with any other character (a tab, a control character, a
    no-break space, a non-ASCII letter such as the dotless i U+0131, which Python upper-cases to I) keeps it and
    fails its format, instead of becoming a valid code silently."""
    code = code.strip(" ")
    if code.isascii():
        code = code.upper()
    # Only the printed dot after the third character is removed; other dots stay and fail the format.
    if system in _ICD10_SYSTEMS and "." in code and (system == ICD10PCS or _ICD10CM_DOT.fullmatch(code)):
        code = code.replace(".", "", 1)
    return code


def with_dot(code: str) -> str:
    """An ICD-10-CM code as printed: E119 -> E11.9."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def is_well_formed(system: str, normalized_code: str) -> bool:
    """True when a normalized code has its system's printed form and, for LOINC, its check digit."""
    pattern = FORMATS.get(system)
    if pattern is None:  # internal systems define their own formats, in printable ASCII
        return bool(normalized_code) and normalized_code.isascii() and normalized_code.isprintable()
    if not pattern.fullmatch(normalized_code):
        return False
    if system == LOINC:
        body, check = normalized_code.split("-")
        return luhn_check_digit(body) == int(check)
    return True


def luhn_check_digit(digits: str) -> int:
    """The mod-10 (Luhn) check digit for a string of digits, as LOINC and NPI use it."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 0:  # rightmost digit and every second one to its left are doubled
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


_NPI = re.compile(r"[12][0-9]{9}")


@functools.lru_cache(maxsize=65_536)  # a payer sees the same providers all day
def is_valid_npi(npi: str) -> bool:
    """A National Provider Identifier: 10 digits starting 1 or 2, Luhn check over 80840 + the first 9."""
    return bool(_NPI.fullmatch(npi)) and luhn_check_digit("80840" + npi[:9]) == int(npi[9])
