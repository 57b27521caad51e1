"""The engine: one event and a code-table snapshot in, one decision out. Pure: no I/O, no clock.

``decide`` checks the event against its schema first (a broken structure halts the review, as it does for
a payer), then the dates, then every code on it against the table on the date it was used (through the
payer's cross-reference for internal codes), then what the codes say together: the patient's age and
sex, the principal diagnosis, coverage, NCCI pairs and units. Each failed check becomes a ``Reason`` from
``rules.RULES``, with the outcome the payer's ``Policy`` gives the rule; the worst reason's outcome is the
decision's.

A claim's ``claim_type`` picks its edits, as CMS's editors do: on an inpatient stay every code is judged on
the discharge date and CMS's Medicare Code Editor (MCE) runs in full, with the lists of that date's fiscal
year (``engine/mce.py``); professional and outpatient claims get the edits that apply to them (codes valid on
each date of service, the MCE age lists, manifestation or external cause first-listed). Where the table holds
no MCE lists for a date, the tabular's own notes and the chapter of a code stand in for them.

Each check is stated once, in the review (``_review_claim``, ``_review_order`` and ``_Review``'s methods); there
is no second, faster copy of it. Most events are clean, and the review is cheap on a clean event because it
builds nothing until a check fails: ``_Review.fail`` is the only place that names a field, formats a message or
makes a ``Reason``, and the answer about each code (system, form, release, existence, dates, billability, CMS's
MCE flags, and whether the code has age, sex or principal-diagnosis edits to make at all) is kept in the table's
memo (``engine/memo.py``), so a code seen before costs one dictionary look-up. A new check is one more call
in the review, with its rule in ``rules.RULES``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple, cast

import msgspec

from processor import code_systems as codes
from processor.code_table.table import CodeTable, CodeVersion, in_range
from processor.contracts import (
    DATETIME_YEARS,
    Claim,
    Event,
    Line,
    Order,
    Patient,
    Procedure,
    SchemaProblem,
    check_event,
    event_id,
    real_datetime,
)
from processor.engine.decision import Decision, Reason
from processor.engine.duplicates import STAY_LINE, Verdict
from processor.engine.mce import AGE_LISTS, Stay, age_conflict, limited_coverage, non_covered
from processor.engine.memo import MEMO_LIMIT, memo_of
from processor.engine.policy import DEFAULT_POLICY, Policy
from processor.engine.rules import DENIED, INPATIENT, OUTPATIENT, PROFESSIONAL, RETURNED, RULES, SEVERITY, Outcome

# The modifiers that NCCI accepts to bypass a pair edit of modifier indicator 1 (NCCI policy manual): the
# anatomic ones, which bypass only when they show the two services on different sites (LT on one line, RT on
# the other), and the global surgery and distinct-service ones (59, XE, XS, XP, XU), which bypass by themselves.
ANATOMIC_MODIFIERS = frozenset({
    "E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "LC", "LD", "LM", "LT",
    "RC", "RI", "RT", "TA", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9",
})  # fmt: skip
DISTINCT_MODIFIERS = frozenset({"24", "25", "57", "58", "78", "79", "27", "59", "91", "XE", "XS", "XP", "XU"})
NCCI_MODIFIERS = ANATOMIC_MODIFIERS | DISTINCT_MODIFIERS
# Which of CMS's NCCI and MUE tables a claim's lines meet: practitioner for 837P, hospital outpatient for 837I
# outpatient claims. Inpatient stays are paid by DRG: no NCCI PTP or MUE edits.
_NCCI_TABLE = {PROFESSIONAL: "practitioner", OUTPATIENT: "hospital"}
_MUE_TABLE = {PROFESSIONAL: "practitioner", OUTPATIENT: "outpatient"}
_MAI = {1: "per line", 2: "per day, policy", 3: "per day, clinical"}
_X_MODIFIERS = frozenset({"XE", "XS", "XP", "XU"})
_EXTERNAL_CAUSE = frozenset("VWXY")  # ICD-10-CM chapter 20, V00-Y99
_NO_MODIFIERS: frozenset[str] = frozenset()
_NO_FLAGS: frozenset[str] = frozenset()
_CPT_MODIFIERS = ("cpt-modifiers-loaded",)  # the memo's key for whether a payer loaded CPT's modifiers
_TABLE_FACTS = ("table-facts",)  # the memo's key for what the table holds (``_Review.table_facts``)
_MCE_SYSTEMS = frozenset({codes.ICD10CM, codes.ICD10PCS})
# Before FY2025 CMS's MCE took an unknown sex as a conflict with a sex list; from 2024-10-01 it does not.
_UNKNOWN_SEX_VALID_FROM = "2024-10-01"
# The oldest a patient can be: CMS's MCE takes ages 0 to 124 (its adult list ends at 124). A birth date 125
# years or more before a date of service is a typo, and no age edit can be judged on it.
MAX_AGE = 124
_DATETIME_YEARS = f"{DATETIME_YEARS.start} to {DATETIME_YEARS.stop - 1}"


def decide(
    event: dict[str, Any] | Event,
    kind: str,
    table: CodeTable,
    policy: Policy | None = None,
    duplicate: Verdict | None = None,
) -> Decision:
    """Decide one claim (``kind="claim"``) or lab order (``kind="order"``) against ``table``.

    ``event`` is the parsed JSON object, checked against its schema here, or the ``Claim`` or ``Order`` that
    ``contracts.decode_event`` decoded (valid by then: it is reviewed as it is).
    ``policy`` gives each rule's outcome (or switches it off); None means the rules' defaults.
    ``duplicate`` is what the duplicate window (``duplicates.SeenClaims.check``) said of this claim, if anything:
    its lines that repeat lines of the member's claims, and a replacement or void naming no claim it holds.
    """
    policy = policy or DEFAULT_POLICY
    if isinstance(event, dict):
        typed, problems = check_event(event, kind)
        if problems:
            review = _Review(kind, table, policy)
            _review_problems(event, kind, problems, review)
            if duplicate is not None:
                _review_repeats(duplicate, event.get("claim_id"), event.get("replaces"), event.get("frequency"),
                                event.get("lines"), review)  # fmt: skip
            return review.conclude(event_id(event, kind))
        if typed is None:
            raise RuntimeError(f"the {kind} schema takes an event its msgspec mirror refuses")
        event = typed
    review = _Review(kind, table, policy)
    if isinstance(event, Claim):
        _review_claim(event, review)
        if duplicate is not None:
            _review_repeats(duplicate, event.claim_id, event.replaces, event.frequency, event.lines, review)
        return review.conclude(event.claim_id)
    _review_order(event, event.ordering_provider.npi, review)
    return review.conclude(event.order_id)


def _table_facts(table: CodeTable, memo: dict[Any, Any]) -> tuple[bool, bool, bool]:
    """Whether ``table`` holds coverage policies, MUEs and NCCI pairs, kept in its memo: asked once per table."""
    facts = memo[_TABLE_FACTS] = (table.has_coverage_policy, table.has_mue, table.has_pairs)
    return facts


def _invalid_modifiers(
    table: CodeTable, memo: dict[Any, Any], modifiers: Sequence[str], day: str
) -> list[tuple[int, str, str]]:
    """The modifiers of a line that the table does not hold on ``day``, as (index, modifier, validity): HCPCS
    Level II modifiers from CMS's HCPCS file; CPT's two-digit modifiers (AMA material) only once a payer has
    loaded some. Kept in the memo per modifiers and date: the same few come back on line after line."""
    key = ("modifiers", tuple(modifiers), day)
    invalid: list[tuple[int, str, str]] | None = memo.get(key)
    if invalid is not None:
        return invalid
    invalid = []
    if table.has_system(codes.MODIFIER):
        cpt_loaded = memo.get(_CPT_MODIFIERS)
        if cpt_loaded is None:  # once per table as it is: any two-digit modifier loaded?
            cpt_loaded = memo[_CPT_MODIFIERS] = any(table.versions(codes.MODIFIER, f"{n:02d}") for n in range(100))
        for k, modifier in enumerate(modifiers):
            upper = modifier.upper()
            if upper.isdigit() and not cpt_loaded:
                continue
            versions = table.versions(codes.MODIFIER, upper)
            if _version_on(versions, day) is None:
                invalid.append((k, modifier, _validity(versions) if versions else "not a modifier the table holds"))
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = invalid
    return invalid


@functools.lru_cache(maxsize=8192)  # the same providers bill all day
def _valid_npi(npi: str) -> bool:
    return codes.is_valid_npi(npi)


def _review_problems(event: dict[str, Any], kind: str, problems: list[SchemaProblem], review: _Review) -> None:
    """The reasons of an event that breaks its schema: one per problem. The review halts there, but for an
    order whose only problem is its missing ordering NPI: a lab double-checks that with the doctor, and
    reviews the order."""
    npi_missing = [p for p in problems if kind == "order" and p.problem == "is required"
                   and p.field in ("ordering_provider", "ordering_provider.npi")]  # fmt: skip
    for problem in problems:
        if problem in npi_missing:
            review.fail("npi.missing", "ordering_provider.npi", None)
        elif kind == "claim" and problem.problem == "is required" and problem.field == "member.id":
            review.fail("member.missing", "member.id", None)  # a member without its id
        elif problem.problem == "is required":
            review.fail("event.missing_field", problem.field, None)
        else:
            review.fail("event.invalid_field", problem.field, problem.value, problem=problem.problem)
    if len(npi_missing) == len(problems):
        # Valid but for the NPI: the mirror takes it with an empty one, which the review is told is none.
        _review_order(msgspec.convert({**event, "ordering_provider": {"npi": ""}}, Order), None, review)


class _Coded(NamedTuple):
    """A code that passed its checks: the external system and normalized code the later edits use (the
    crosswalk target for an internal code), the version valid on the date, and CMS's MCE flags for it on
    that date (None when the table holds no MCE lists for the date)."""

    system: str
    code: str
    version: CodeVersion
    mce: frozenset[str] | None = None
    cms_sex: str | None = None  # the sex of CMS's last MCE sex list for the code, kept after FY2024
    # Whether the age and sex edits (``fits_patient``) have a list or a limit to check: most codes have none.
    patient_edits: bool = False
    # Whether a principal diagnosis' edits (``principal``) can find anything on this code: most find nothing.
    principal_edits: bool = False


# The MCE flags that ``fits_patient`` checks: the age lists and the sex lists. Others (``qadm``, ``unacceptable``,
# the procedures' coverage flags...) leave a code's age and sex edits with nothing to find.
_PATIENT_FLAGS = frozenset({*AGE_LISTS, "male", "female"})


def _coded(system: str, code: str, version: CodeVersion, mce: frozenset[str] | None = None,
           cms_sex: str | None = None) -> _Coded:  # fmt: skip
    limited = version.age_min is not None or version.age_max is not None or version.sex is not None
    patient = limited or cms_sex is not None or (mce is not None and not mce.isdisjoint(_PATIENT_FLAGS))
    principal = False
    if system == codes.ICD10CM:
        external = "ecodepdx" in mce if mce is not None else code[0] in _EXTERNAL_CAUSE
        manifestation = "manifestation" in mce if mce is not None else version.manifestation
        first_listed = version.code_first or external or manifestation  # edits on any claim type
        principal = first_listed or (mce is not None and ("unacceptable" in mce or "qadm" in mce))  # on a stay
    return _Coded(system, code, version, mce, cms_sex, patient, principal)


class _Failure(NamedTuple):
    rule_id: str
    part: str  # of the coded field: "system" or "code"
    value: Any
    details: dict[str, Any]


def _review_claim(claim: Claim, review: _Review) -> None:
    claim_type = PROFESSIONAL if claim.claim_type is msgspec.UNSET else claim.claim_type
    lines: Sequence[Line] = () if claim.lines is msgspec.UNSET else claim.lines
    review.lines = lines
    if len({line.line_number for line in lines}) < len(lines):
        _review_line_numbers([line.line_number for line in lines], review)
    review.npi("billing_provider.npi", claim.billing_provider.npi)
    if claim.member is msgspec.UNSET:
        review.fail("member.missing", "member.id", None)
    if claim.replaces is msgspec.UNSET and claim.frequency in ("replacement", "void"):
        review.fail("claim.replaces_missing", "replaces", None, frequency=claim.frequency,
                    verb="voids" if claim.frequency == "void" else "replaces")  # fmt: skip
    if claim.rendering_provider is not msgspec.UNSET and not _valid_npi(claim.rendering_provider.npi):
        review.fail("npi.rendering_invalid", "rendering_provider.npi", claim.rendering_provider.npi)
    if claim.referring_provider is not msgspec.UNSET and not _valid_npi(claim.referring_provider.npi):
        review.fail("npi.referring_invalid", "referring_provider.npi", claim.referring_provider.npi)
    if claim.charge is not msgspec.UNSET and lines:
        _review_balance(claim.charge, lines, review)
    birth = review.patient(claim.patient)
    submitted = review.submitted("submitted_at", claim.submitted_at)
    diagnoses = claim.diagnoses
    count = len(diagnoses)
    discharge = _review_stay(claim, submitted, review) if claim_type == INPATIENT else None
    line_days: list[str | None] = []
    submitted_day = submitted[:10] if submitted is not None else None
    # A field's name (``lines[2].service_date``) is spelled out only when a check on it fails.
    for i, line in enumerate(lines):
        service_date = line.service_date
        day = service_date if _is_calendar_date(service_date) else review.day(f"lines[{i}].service_date", service_date)
        if day is not None:
            if birth is not None and day < birth:
                review.fail("date.before_birth", f"lines[{i}].service_date", day)
            if submitted_day is not None and day > submitted_day:
                review.fail("date.after_submission", f"lines[{i}].service_date", day, submitted=submitted)
        line_days.append(day)
        pointers = line.diagnosis_pointers
        if pointers and max(pointers) > count:
            _review_pointers(i, pointers, count, review)
    known_days = [d for d in line_days if d is not None]
    first_day = min(known_days) if known_days else None
    if discharge is not None:
        known_days.append(discharge)
    review.born_within(MAX_AGE, max(known_days) if known_days else None)
    if claim.place_of_service is not msgspec.UNSET:  # the claim's, on its first date of service
        review.code("place_of_service", "place_of_service", None, codes.POS, claim.place_of_service,
                    (first_day or discharge,), field="place_of_service")  # fmt: skip
    dx: list[_Coded | None] = []
    days: tuple[str | None, ...] = (discharge,) if claim_type == INPATIENT else (first_day,)
    # Outside a stay, a diagnosis must be valid on the dates of service of the lines that point at it; one
    # that no line points at, on the claim's first date of service. On a stay, every code on the discharge date.
    several = claim_type != INPATIENT and first_day is not None and first_day != max(known_days)
    days_of = _days_of(lines, line_days, count) if several else None
    for i, diagnosis in enumerate(diagnoses):
        if days_of is not None:
            on = days_of.get(i)
            days = (first_day,) if not on else tuple(on) if len(on) == 1 else tuple(sorted(on))
        coded = review.code("diagnosis", "diagnoses", i, diagnosis.system, diagnosis.code, days)
        if coded is not None and coded.patient_edits:
            review.fits_patient("diagnosis", f"diagnoses[{i}]", diagnosis.code, coded, days[0])
        dx.append(coded)
    if dx[0] is not None and dx[0].principal_edits:
        review.principal(diagnoses[0].code, dx[0], claim_type, count > 1)
    if claim_type == INPATIENT:
        _review_inpatient_codes(claim, dx, discharge, review)
    coverage, has_mue, has_pairs = review.table_facts()
    coded_lines: list[_Coded | None] = []
    modifiers: list[frozenset[str]] = []
    for i, line in enumerate(lines):
        day = line_days[i]
        coded = review.code("procedure", "lines", i, line.system, line.code, (day,))
        coded_lines.append(coded)
        if line.place_of_service is not msgspec.UNSET:
            review.code("place_of_service", "lines", i, codes.POS, line.place_of_service, (day,),
                        field=f"lines[{i}].place_of_service")  # fmt: skip
        if line.rendering_provider is not msgspec.UNSET and not _valid_npi(line.rendering_provider.npi):
            review.fail("npi.rendering_invalid", f"lines[{i}].rendering_provider.npi", line.rendering_provider.npi)
        written = line.modifiers or None
        if written:
            mods = frozenset(m.upper() for m in written)
            if len(mods) < len(written) or ("LT" in mods and "RT" in mods):
                _review_modifier_pairs(i, written, review)
            if "59" in mods and mods & _X_MODIFIERS:
                review.fail("modifier.invalid_combination", f"lines[{i}].modifiers", written)
            if day is not None:  # a modifier is checked against the table's list whatever becomes of the code
                review.modifiers_valid(i, written, day)
        else:
            mods = _NO_MODIFIERS
        modifiers.append(mods)
        if coded is None or day is None:
            continue
        if coded.patient_edits:
            review.fits_patient("procedure", f"lines[{i}]", line.code, coded, day)
        if coverage:
            pointed = [p - 1 for p in line.diagnosis_pointers or () if p <= count] or range(count)
            review.supported("lines", i, line.code, coded, [dx[p] for p in pointed], day)
    if has_mue and claim_type in _MUE_TABLE:
        _review_units(lines, line_days, coded_lines, _MUE_TABLE[claim_type], review)
    if has_pairs and claim_type in _NCCI_TABLE:
        _review_pairs(lines, line_days, coded_lines, modifiers, _NCCI_TABLE[claim_type], review)


def _review_repeats(
    verdict: Verdict, claim_id: Any, replaces: Any, frequency: Any, lines: Any, review: _Review
) -> None:
    """What the duplicate window found: a claim every line of which repeats the member's claims exactly was
    sent again (``claim.duplicate``); otherwise each line that repeats one exactly is not paid again
    (``line.duplicate``), and one that is the same service with another charge, place, modifier or units is a
    potential duplicate for a coder (``claim.suspect_duplicate``), each naming the claim and line it repeats;
    a replacement or void of a claim the window does not hold for the member goes to review."""
    if verdict.resent:
        review.fail("claim.duplicate", "claim_id", claim_id, **verdict.lines[0].details())
    else:
        for match in verdict.lines:
            if match.line_number == STAY_LINE and not lines:  # an inpatient stay billed without lines
                field, value = "claim_id", claim_id
            else:
                line = lines[match.index]
                field, value = f"lines[{match.index}]", line.get("code") if isinstance(line, dict) else line.code
            rule = "line.duplicate" if match.exact else "claim.suspect_duplicate"
            review.fail(rule, field, value, **match.details())
    if verdict.replaces_unknown:
        void = frequency == "void"
        review.fail("claim.replaces_unknown", "replaces", replaces, frequency="void" if void else "replacement",
                    done="voided" if void else "replaced")  # fmt: skip


def _review_balance(charge: str, lines: Sequence[Line], review: _Review) -> None:
    """The claim's total charge must be the sum of its lines' (X12 CLM02 and SV102/SV203; WEDI SNIP level 3),
    in decimals: a line that gives no charge leaves the claim unbalanced."""
    total = _ZERO
    unpriced = []
    for line in lines:
        if line.charge is msgspec.UNSET:
            unpriced.append(line.line_number)
        else:
            total += _amount(line.charge)
    if unpriced or total != _amount(charge):
        numbers = ", ".join(map(str, unpriced))
        without = f" (lines {numbers} give no charge)" if len(unpriced) > 1 else f" (line {numbers} gives no charge)"
        review.fail("claim.unbalanced", "charge", charge, total=f"{total:.2f}", unpriced=without if unpriced else "")


_ZERO = Decimal(0)
# A charge's text as a Decimal, each text once: the same prices come back on claim after claim.
_amount = functools.lru_cache(maxsize=4096)(Decimal)


def _review_modifier_pairs(index: int, written: Sequence[str], review: _Review) -> None:
    """A modifier given twice on a line, and LT with RT on one line (Medicare bills a bilateral procedure as
    one line with modifier 50): neither is accepted silently."""
    seen: dict[str, int] = {}
    for k, modifier in enumerate(written):
        upper = modifier.upper()
        if upper in seen:
            review.fail("modifier.repeated", f"lines[{index}].modifiers[{k}]", modifier)
        seen.setdefault(upper, k)
    if "LT" in seen and "RT" in seen:
        k = max(seen["LT"], seen["RT"])
        review.fail("modifier.both_sides", f"lines[{index}].modifiers[{k}]", written[k],
                    other=written[min(seen["LT"], seen["RT"])])  # fmt: skip


def _days_of(lines: Sequence[Line], line_days: list[str | None], count: int) -> dict[int, set[str]]:
    """The dates of service of the lines that point at each diagnosis (by index), for a claim whose lines are on
    more than one date (on one, every diagnosis is judged on it)."""
    days_of: dict[int, set[str]] = {}
    for line, day in zip(lines, line_days, strict=True):
        if day is not None:
            for pointer in line.diagnosis_pointers or ():
                if pointer <= count:
                    days_of.setdefault(pointer - 1, set()).add(day)
    return days_of


def _review_pointers(index: int, pointers: list[int], count: int, review: _Review) -> None:
    """A line's diagnosis pointers name diagnoses of the claim (1 to the number of them)."""
    for k, pointer in enumerate(pointers):
        if pointer > count:
            review.fail("line.pointer_invalid", f"lines[{index}].diagnosis_pointers[{k}]", pointer, count=count)


def _review_line_numbers(numbers: list[int], review: _Review) -> None:
    """Each line of a claim has its own number: a denial, an NCCI pair or a remittance names the line by it."""
    first: dict[int, int] = {}
    for i, number in enumerate(numbers):
        if number in first:
            review.fail("line.duplicate_number", f"lines[{i}].line_number", number, other=f"lines[{first[number]}]")
        else:
            first[number] = i


def _review_units(
    lines: Sequence[Line], days: list[str | None], coded: list[_Coded | None], table_name: str, review: _Review,
) -> None:  # fmt: skip
    """Medically Unlikely Edits: units of a code per line (MAI 1), or per date of service summed over the
    claim's lines of that code (MAI 2 and 3: then every line of the code on that date is denied)."""
    table = review.table
    per_day: dict[tuple[str, str], list[int]] = {}
    for i, found in enumerate(coded):
        day = days[i]
        if found is None or day is None:
            continue
        limit = table.mue(found.code, day, table_name)
        if limit is None:
            continue
        if limit.mai == 1:
            if lines[i].units > limit.max_units:
                _over_mue(review, lines, [i], day, limit, lines[i].units)
        else:
            per_day.setdefault((found.code, day), []).append(i)
    for (code, day), indexes in per_day.items():
        limit = table.mue(code, day, table_name)
        total = sum(lines[i].units for i in indexes)
        if limit is not None and total > limit.max_units:
            _over_mue(review, lines, indexes, day, limit, total)


def _over_mue(review: _Review, lines: Sequence[Line], indexes: list[int], day: str, limit: Any,
              total: float) -> None:  # fmt: skip
    """Deny each of the lines ``indexes`` whose units (``total``, summed for a per-day MUE) pass ``limit``."""
    scope = "a line" if limit.mai == 1 else "a day"
    summed = "" if limit.mai == 1 else f" ({total:g} units on {day} over {len(indexes)} line(s))"
    mai, mai_text, rationale = limit.mai, _MAI.get(limit.mai, "?"), limit.rationale or "none given"
    for i in indexes:
        review.fail("units.over_mue", f"lines[{i}].units", lines[i].units, max_units=limit.max_units,
                    code=lines[i].code, day=day, scope=scope, summed=summed, mai=mai, mai_text=mai_text,
                    rationale=rationale)  # fmt: skip


def _review_stay(claim: Claim, submitted: str | None, review: _Review) -> str | None:
    """The dates of an inpatient stay (``submitted``: the claim's ``submitted_at``, None when it is no real
    date and time); returns the discharge date when it is a real date (its code set and MCE lists apply to
    every code of the claim). A valid stay has both dates."""
    admission = review.day("admission_date", cast(str, claim.admission_date))
    discharge = review.day("discharge_date", cast(str, claim.discharge_date))
    if admission is not None and review.birth is not None and admission < review.birth:
        review.fail("date.before_birth", "admission_date", admission)
    if admission is not None and discharge is not None and discharge < admission:
        review.fail("date.discharge_before_admission", "discharge_date", discharge, admission=admission)
    if discharge is not None and submitted is not None and discharge > submitted[:10]:
        review.fail("date.after_submission", "discharge_date", discharge, submitted=submitted)
    return discharge


def _review_inpatient_codes(claim: Claim, dx: list[_Coded | None], discharge: str | None,
                            review: _Review) -> None:  # fmt: skip
    """The inpatient-only MCE edits: a secondary diagnosis repeating the principal, the admitting diagnosis,
    and the stay's ICD-10-PCS procedures with their coverage."""
    diagnoses = claim.diagnoses
    principal = codes.normalize(diagnoses[0].system, diagnoses[0].code)
    for i, diagnosis in enumerate(diagnoses[1:], start=1):
        if codes.normalize(diagnosis.system, diagnosis.code) == principal:
            review.fail("diagnosis.duplicate_of_principal", f"diagnoses[{i}].code", diagnosis.code)
    admitting = claim.admitting_diagnosis
    if admitting is not msgspec.UNSET:
        review.code("diagnosis", "admitting_diagnosis", None, admitting.system, admitting.code, (discharge,))
    admission = cast(str, claim.admission_date)
    procedures: Sequence[Procedure] = () if claim.procedures is msgspec.UNSET else claim.procedures
    coded: list[_Coded | None] = []
    for i, procedure in enumerate(procedures):
        day = review.day(f"procedures[{i}].date", procedure.date)
        if day is not None and discharge is not None and not admission <= day <= discharge:
            review.fail("procedure.date_outside_stay", f"procedures[{i}].date", day, admission=admission,
                        discharge=discharge)  # fmt: skip
        found = review.code("icd_procedure", "procedures", i, procedure.system, procedure.code, (discharge,))
        if found is not None and found.patient_edits and discharge is not None:
            review.fits_patient("procedure", f"procedures[{i}]", procedure.code, found, discharge)
        coded.append(found)
    if not any(c is not None and c.mce for c in coded) or review.birth is None or discharge is None:
        return
    stay = Stay.of(
        dx[0].mce or frozenset() if dx[0] is not None else frozenset(),
        (d.mce or frozenset() for d in dx[1:] if d is not None),
        (c.mce or frozenset() for c in coded if c is not None),
        _age_on(review.birth, discharge),
    )
    for i, found in enumerate(coded):
        if found is None or not found.mce:
            continue
        at, value, description = f"procedures[{i}].code", procedures[i].code, found.version.description
        condition = non_covered(found.mce, stay)
        if condition is not None:
            review.fail("procedure.non_covered", at, value, description=description, condition=condition)
        elif limited_coverage(found.mce, stay):
            review.fail("procedure.limited_coverage", at, value, description=description)


def _review_pairs(
    lines: Sequence[Line],
    days: list[str | None],
    coded: list[_Coded | None],
    modifiers: list[frozenset[str]],
    table_name: str,
    review: _Review,
) -> None:
    """NCCI procedure-to-procedure edits of ``table_name`` between lines on the same date of service: the
    column-2 line is denied."""
    table = review.table
    for i, first in enumerate(coded):
        day = days[i]
        if first is None or day is None:
            continue
        for j, second in enumerate(coded):
            if i == j or second is None or days[j] != day:
                continue
            edit = table.pair(first.code, second.code, day, table_name)
            if edit is None or edit.modifier_indicator == "9":  # 9: not applicable (the edit was deleted)
                continue
            if edit.modifier_indicator == "0":
                rule_id = "ncci.bundled"
            elif _distinct(modifiers[i], modifiers[j]):
                continue
            else:
                rule_id = "ncci.modifier_required"
            review.fail(rule_id, f"lines[{j}].code", lines[j].code, column1=lines[i].code,
                        other=lines[i].line_number, day=days[i], table=table_name,
                        rationale=edit.rationale or "none given")  # fmt: skip


def _distinct(first: frozenset[str], second: frozenset[str]) -> bool:
    """Whether the modifiers of two lines show distinct services, as an indicator-1 NCCI pair needs: a global
    surgery or distinct-service modifier on either line, or anatomic modifiers on both that name different
    sites (RT on one, LT on the other; RT on both is the same site)."""
    if (first | second) & DISTINCT_MODIFIERS:
        return True
    sites_first, sites_second = first & ANATOMIC_MODIFIERS, second & ANATOMIC_MODIFIERS
    return bool(sites_first and sites_second and not sites_first & sites_second)


def _review_order(order: Order, npi: str | None, review: _Review) -> None:
    """The checks of a lab order; ``npi``, its ordering provider's, is None when the order has none."""
    if npi is not None:
        review.npi("ordering_provider.npi", npi)
    birth = review.patient(order.patient)
    day = review.day("collection_date", order.collection_date)
    if day is not None and birth is not None and day < birth:
        review.fail("date.before_birth", "collection_date", day)
    review.born_within(MAX_AGE, day)
    days = (day,)
    tests = [review.code("test", "tests", i, t.system, t.code, days) for i, t in enumerate(order.tests)]
    coverage = review.table_facts()[0]
    dx: list[_Coded | None] = []
    for i, diagnosis in enumerate(order.diagnoses):
        coded = review.code("diagnosis", "diagnoses", i, diagnosis.system, diagnosis.code, days)
        if coded is not None and coded.patient_edits:
            review.fits_patient("diagnosis", f"diagnoses[{i}]", diagnosis.code, coded, day)
        dx.append(coded)
    if not dx:
        review.fail("order.no_diagnosis", "diagnoses", [])
    for i, coded in enumerate(tests):
        if coded is None or day is None:
            continue
        value = order.tests[i].code
        if coded.patient_edits:
            review.fits_patient("test", f"tests[{i}]", value, coded, day)
        if dx and coverage:
            review.supported("tests", i, value, coded, dx, day)


@dataclass(frozen=True, slots=True, kw_only=True)
class _RoleRules:
    """The code systems a coded field of one role may use, and the rules its checks raise, each named in
    full so that a search for a rule id finds where it is raised."""

    systems: frozenset[str]
    system_unknown: str
    malformed: str
    not_in_table: str
    not_valid_on_date: str
    not_billable: str
    system_not_loaded: str
    date_not_covered: str
    age_conflict: str
    sex_conflict: str


_ROLES = {
    "diagnosis": _RoleRules(
        systems=codes.DIAGNOSIS_SYSTEMS,
        system_unknown="diagnosis.system_unknown",
        malformed="diagnosis.malformed",
        not_in_table="diagnosis.not_in_table",
        not_valid_on_date="diagnosis.not_valid_on_date",
        not_billable="diagnosis.header",
        system_not_loaded="diagnosis.system_not_loaded",
        date_not_covered="diagnosis.date_not_covered",
        age_conflict="diagnosis.age_conflict",
        sex_conflict="diagnosis.sex_conflict",
    ),
    "procedure": _RoleRules(
        systems=codes.PROCEDURE_SYSTEMS,
        system_unknown="procedure.system_unknown",
        malformed="procedure.malformed",
        not_in_table="procedure.not_in_table",
        not_valid_on_date="procedure.not_valid_on_date",
        not_billable="procedure.not_billable",
        system_not_loaded="procedure.system_not_loaded",
        date_not_covered="procedure.date_not_covered",
        age_conflict="procedure.age_conflict",
        sex_conflict="procedure.sex_conflict",
    ),
    # The ICD-10-PCS procedures of an inpatient stay: the procedure rules, for another code system.
    "icd_procedure": _RoleRules(
        systems=frozenset({codes.ICD10PCS}),
        system_unknown="procedure.system_unknown",
        malformed="procedure.malformed",
        not_in_table="procedure.not_in_table",
        not_valid_on_date="procedure.not_valid_on_date",
        not_billable="procedure.not_billable",
        system_not_loaded="procedure.system_not_loaded",
        date_not_covered="procedure.date_not_covered",
        age_conflict="procedure.age_conflict",
        sex_conflict="procedure.sex_conflict",
    ),
    "test": _RoleRules(
        systems=codes.TEST_SYSTEMS,
        system_unknown="test.system_unknown",
        malformed="test.malformed",
        not_in_table="test.not_in_table",
        not_valid_on_date="test.not_valid_on_date",
        not_billable="test.not_billable",
        system_not_loaded="test.system_not_loaded",
        date_not_covered="test.date_not_covered",
        age_conflict="test.age_conflict",
        sex_conflict="test.sex_conflict",
    ),
    # A place of service: a code of CMS's POS code set (the system is not the submitter's to name; every POS
    # code is billable, and none has age or sex edits: those rule names are never raised for it).
    "place_of_service": _RoleRules(
        systems=frozenset({codes.POS}),
        system_unknown="place_of_service.not_in_table",
        malformed="place_of_service.malformed",
        not_in_table="place_of_service.not_in_table",
        not_valid_on_date="place_of_service.not_valid_on_date",
        not_billable="place_of_service.not_in_table",
        system_not_loaded="place_of_service.system_not_loaded",
        date_not_covered="place_of_service.date_not_covered",
        age_conflict="place_of_service.not_in_table",
        sex_conflict="place_of_service.not_in_table",
    ),
}


class _Review:
    """The checks of one event, collecting reasons as they fail."""

    __slots__ = ("birth", "kind", "lines", "memo", "outcomes", "reasons", "sex", "table")

    def __init__(self, kind: str, table: CodeTable, policy: Policy) -> None:
        self.kind = kind
        self.table = table
        self.memo = memo_of(table)  # once per event: the look-up is too slow to repeat for every code
        self.outcomes = policy.outcomes[kind]
        self.reasons: list[Reason] = []
        self.lines: Sequence[Line] = ()  # a claim's lines, in order: a reason on lines[i] names its line
        self.birth: str | None = None
        self.sex: str | None = None

    def fail(self, rule_id: str, field: str, value: Any, **details: Any) -> None:
        outcome = self.outcomes[rule_id]
        if outcome is None:  # the payer switched the rule off
            return
        line = self._line_number(field) if field.startswith("lines[") else None
        if outcome is DENIED and line is None:  # no line to deny (a stay's procedure): the claim goes back
            outcome = RETURNED
        rule = RULES[rule_id]
        message = rule.message.format(field=field, value=value, **details)
        review = rule.review.format(field=field, value=value, **details) if outcome is Outcome.NEEDS_REVIEW else None
        if details.get("description") == "":  # a code no loaded source describes: the message names it alone
            message = message.replace(" ()", "")
            review = review and review.replace(" ()", "")
        self.reasons.append(Reason(rule, field, value, message, outcome, review, line))

    def _line_number(self, field: str) -> int | None:
        """The ``line_number`` of the claim line a field such as ``lines[2].code`` is on."""
        index = int(field[6 : field.index("]")])
        number = self.lines[index].line_number if index < len(self.lines) else None
        return number if isinstance(number, int) else None

    def day(self, field: str, value: str) -> str | None:
        """The date in ``value`` when it is a real calendar date, else a reason and None."""
        if _is_calendar_date(value):
            return value
        self.fail("date.invalid", field, value)
        return None

    def submitted(self, field: str, value: str) -> str | None:
        """``value`` when it is a real date and time (the schema gives its form only), else a reason and None."""
        if _is_real_datetime(value):
            return value
        self.fail("date.invalid_datetime", field, value, years=_DATETIME_YEARS)
        return None

    def patient(self, patient: Patient) -> str | None:
        """Remember the patient's birth date (when it is a date) and sex for the age and sex edits."""
        self.birth = self.day("patient.birth_date", patient.birth_date)
        self.sex = patient.sex  # M, F or U
        return self.birth

    def born_within(self, years: int, day: str | None) -> None:
        """A birth date more than ``years`` years before ``day`` (the event's last date of service) is a reason,
        and is no longer used: no age edit is judged on it. The message leaves the birth date out."""
        if self.birth is not None and day is not None and self.birth <= _birthday_aged(years + 1, day):
            self.fail("date.birth_too_early", "patient.birth_date", self.birth, day=day, years=years)
            self.birth = None

    def npi(self, field: str, value: str) -> None:
        if not _valid_npi(value):
            self.fail("npi.invalid", field, value)

    def code(
        self,
        role: str,
        at: str,
        index: int | None,
        system: str,
        code: str,
        days: tuple[str | None, ...],
        field: str | None = None,
    ) -> _Coded | None:
        """Check one coded field, ``at[index]`` (``at`` alone when ``index`` is None; ``field`` when the value is
        the field itself, with no system beside it: a place of service): its system, its form, that the table
        covers the date and has the code, billable, on ``days``; an internal code through its cross-reference.
        None when a check failed.

        The answer depends only on the role, system, code, dates and table, and the same codes come back
        on event after event, so it is kept in the engine's memo of the table (``engine/memo.py``), which
        holds while the table does not change."""
        memo = self.memo
        key = (role, system, code, days)
        found: _Coded | _Failure | None = memo.get(key)
        if found is None:
            found = self._resolve(role, system, code, days, internal_allowed=True)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = found
        if isinstance(found, _Failure):
            if field is None:
                field = f"{at}.{found.part}" if index is None else f"{at}[{index}].{found.part}"
            self.fail(found.rule_id, field, found.value, **found.details)
            return None
        return found

    def _resolve(
        self, role: str, system: str, code: str, days: tuple[str | None, ...], internal_allowed: bool
    ) -> _Coded | _Failure:
        table = self.table
        rules = _ROLES[role]
        internal = internal_allowed and system not in codes.STANDARD_SYSTEMS and table.has_system(system)
        if system not in rules.systems and not internal:
            expected = " or ".join(sorted(rules.systems))
            return _Failure(rules.system_unknown, "system", system, {"expected": expected})
        normalized = codes.normalize(system, code)
        if not codes.is_well_formed(system, normalized):
            hint = codes.FORMAT_HINTS.get(system, codes.INTERNAL_HINT)
            return _Failure(rules.malformed, "code", code, {"system": system, "hint": hint})
        if not table.has_system(system):
            return _Failure(rules.system_not_loaded, "code", code, {"system": system})
        for day in days:
            # A date no loaded release covers: the code may well exist in the release we do not hold.
            if day is not None and table.covers_date(system, day) is False:
                releases = ", ".join(f"{n} {f} to {t}" for n, f, t in table.releases(system))
                return _Failure(rules.date_not_covered, "code", code,
                                {"system": system, "day": day, "releases": releases})  # fmt: skip
        versions = table.versions(system, normalized)
        if not versions:
            return _Failure(rules.not_in_table, "code", code, {"system": system})
        version = versions[-1]
        for day in days:
            found = _version_on(versions, day)
            if found is None:
                validity = _validity(versions)
                return _Failure(rules.not_valid_on_date, "code", code, {"day": day, "validity": validity})
            if not found.billable:
                return _Failure(rules.not_billable, "code", code,
                                {"system": system, "description": found.description})  # fmt: skip
            version = found
        if not internal:
            day = days[-1]
            if system in _MCE_SYSTEMS and day is not None and table.covers_date("MCE", day):
                entry = table.mce(system, normalized, day)
                if entry is None:
                    return _coded(system, normalized, version, _NO_FLAGS)
                return _coded(system, normalized, version, entry.flags, entry.cms_sex)
            return _coded(system, normalized, version)
        if version.maps_to is None:
            return _Failure("crosswalk.unmapped", "code", code, {"system": system})
        target_system, target_code = version.maps_to
        target = self._resolve(role, target_system, target_code, days, internal_allowed=False)
        if isinstance(target, _Failure):
            problem = RULES[target.rule_id].message.format(field="the target", value=target.value, **target.details)
            return _Failure(
                "crosswalk.target_invalid",
                "code",
                code,
                {"system": system, "target": f"{target_system} {target_code}", "problem": problem},
            )
        return target

    def table_facts(self) -> tuple[bool, bool, bool]:
        """Whether the table holds coverage policies, MUEs and NCCI pairs: asked once per table as it is."""
        return self.memo.get(_TABLE_FACTS) or _table_facts(self.table, self.memo)  # type: ignore[no-any-return]

    def modifiers_valid(self, index: int, modifiers: Sequence[str], day: str) -> None:
        """Each modifier of a line must be one the table holds on ``day`` (``_invalid_modifiers``)."""
        for k, modifier, validity in _invalid_modifiers(self.table, self.memo, modifiers, day):
            self.fail("modifier.invalid", f"lines[{index}].modifiers[{k}]", modifier, day=day, validity=validity)

    def fits_patient(self, role: str, at: str, value: str, coded: _Coded, day: str | None) -> None:
        """The age and sex edits of a code on ``day``: CMS's MCE lists where the table holds them for the day,
        and a payer's own limits (the ``age_min``, ``age_max``, ``sex`` of its code records)."""
        version, flags = coded.version, coded.mce
        limited = version.age_min is not None or version.age_max is not None or version.sex is not None
        if not day or not (flags or coded.cms_sex or limited):  # most codes: no list, no limit to check
            return
        field = f"{at}.code"
        age = _age_on(self.birth, day) if self.birth is not None else None
        description = version.description
        if flags and age is not None:
            conflict = age_conflict(flags, age, day, self.table.mce_age_range)
            if conflict is not None:
                group, low, high = conflict
                self.fail(_ROLES[role].age_conflict, field, value, system=coded.system, age=age, day=day, age_min=low,
                          age_max=high, edit=f" (CMS MCE {group} list)", description=description)  # fmt: skip
        if flags and ("male" in flags or "female" in flags) and (self.sex != "U" or day < _UNKNOWN_SEX_VALID_FROM):
            sex = "M" if "male" in flags else "F"
            if self.sex != sex:
                self.fail(_ROLES[role].sex_conflict, field, value, system=coded.system, sex=sex,
                          patient_sex=self.sex, description=description)  # fmt: skip
        elif coded.cms_sex is not None and self.sex in ("M", "F") and self.sex != coded.cms_sex and role == "diagnosis":
            self.fail("diagnosis.sex_list_conflict", field, value, system=coded.system, sex=coded.cms_sex,
                      patient_sex=self.sex, description=description)  # fmt: skip
        if (version.age_min is not None or version.age_max is not None) and age is not None:
            low = version.age_min if version.age_min is not None else 0
            high = version.age_max if version.age_max is not None else 150
            if not low <= age <= high:
                edit = f" ({version.age_edit})" if version.age_edit else ""
                self.fail(_ROLES[role].age_conflict, field, value, system=coded.system, age=age, day=day,
                          age_min=low, age_max=high, edit=edit, description=description)  # fmt: skip
        if version.sex is not None and self.sex in ("M", "F") and version.sex != self.sex:
            self.fail(_ROLES[role].sex_conflict, field, value, system=coded.system, sex=version.sex,
                      patient_sex=self.sex, description=description)  # fmt: skip

    def principal(self, value: str, coded: _Coded, claim_type: str, has_secondary: bool) -> None:
        """The edits on the principal (first-listed) diagnosis of a claim; on an inpatient stay, also the
        MCE's unacceptable-principal, requires-secondary and questionable-admission edits."""
        field, version, flags = "diagnoses[0].code", coded.version, coded.mce
        if coded.system != codes.ICD10CM:
            return
        description = version.description
        external = "ecodepdx" in flags if flags is not None else coded.code[0] in _EXTERNAL_CAUSE
        manifestation = "manifestation" in flags if flags is not None else version.manifestation
        if external:
            self.fail("diagnosis.external_cause_principal", field, value)
        if manifestation:
            self.fail("diagnosis.manifestation_principal", field, value, description=description)
        if version.code_first and not (external or manifestation):
            self.fail("diagnosis.code_first_principal", field, value, description=description)
        if claim_type != INPATIENT or not flags:
            return
        if "unacceptable" in flags and "reqsdx" not in flags:
            self.fail("diagnosis.unacceptable_principal", field, value, description=description)
        elif "unacceptable" in flags and not has_secondary:
            self.fail("diagnosis.requires_secondary", field, value, description=description)
        if "qadm" in flags:
            self.fail("diagnosis.questionable_admission", field, value, description=description)

    def supported(
        self, at: str, index: int, value: str, coded: _Coded, diagnoses: list[_Coded | None], day: str
    ) -> None:
        """Coverage: the service ``at[index]`` must have some diagnosis it points at that the policy says supports
        it. Not judged while a pointed diagnosis is itself invalid (that reason comes first)."""
        ranges = self.table.supporting(coded.system, coded.code, day)
        if ranges is None or any(d is None for d in diagnoses):
            return
        icd = [d.code for d in diagnoses if d is not None and d.system == codes.ICD10CM]
        if any(in_range(code, low, high) for code in icd for low, high in ranges):
            return
        policy = ", ".join(codes.with_dot(lo) if lo == hi else f"{codes.with_dot(lo)}-{codes.with_dot(hi)}"
                           for lo, hi in ranges)  # fmt: skip
        self.fail("coverage.not_supported", f"{at}[{index}].code", value, day=day, policy=policy,
                  diagnoses=", ".join(codes.with_dot(c) for c in icd) or "none")  # fmt: skip

    def conclude(self, event_id: str | None) -> Decision:
        if not self.reasons:
            return Decision(event_id, self.kind, Outcome.ACCEPTED, (), self.table.version)
        outcome = Outcome.ACCEPTED
        for reason in self.reasons:
            if SEVERITY[reason.outcome] > SEVERITY[outcome]:
                outcome = reason.outcome
        return Decision(event_id, self.kind, outcome, tuple(self.reasons), self.table.version)


def _version_on(versions: tuple[CodeVersion, ...], day: str | None) -> CodeVersion | None:
    """The version valid on ``day``; with no usable date, the newest version."""
    if day is None:
        return versions[-1]
    for version in versions:
        if version.covers(day):
            return version
    return None


def _validity(versions: tuple[CodeVersion, ...]) -> str:
    return "; ".join(f"valid {v.valid_from} to {v.valid_to or 'now'}" for v in versions)


@functools.lru_cache(maxsize=4096)
def _birthday_aged(age: int, day: str) -> str:
    """The latest birth date of a patient who is ``age`` or older on ``day`` (ISO dates compare as strings, as
    ``_age_on`` compares them): the same month and day, ``age`` years before."""
    return f"{int(day[:4]) - age:04d}{day[4:]}"


def _age_on(birth: str, day: str) -> int:
    """Age in whole years on ``day`` (both ISO dates): one less when the birthday is still to come."""
    return int(day[:4]) - int(birth[:4]) - (day[5:] < birth[5:])


@functools.lru_cache(maxsize=8192)  # submission times repeat: the same minutes all day
def _is_real_datetime(value: str) -> bool:
    return real_datetime(value) is not None


def _is_calendar_date(value: str) -> bool:
    """Whether ``value`` is a real date, written YYYY-MM-DD. Not cached: birth dates hardly repeat (the bench's
    22,000 events hold 15,000), and a cache that misses costs 360 ns a call where the check itself costs 150."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10
