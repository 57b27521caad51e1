"""Every edit the engine runs, declared once: its stable id, default outcomes, answer codes and message.

A reason id is a stable string that users grep, configure and alert on; never rename one. ``outcome`` is
the default on a claim and ``order_outcome`` on a lab order (the lab double-checks most problems with
the ordering doctor instead of rejecting). Message templates name the field and the value and say what to
do; ``review`` says what a human coder should check when the reason sends the event to needs-review (by
default or because a payer's policy says so).

A claim is answered in X12 terms. ``stc`` is the 277CA STC01 composite a returned claim gets: category (code
list 507: A3 returned as unprocessable, A6 missing, A7 invalid, A8 relational, fields that contradict each
other), status (code list 508: what is wrong) and, for an "Entity's ..." status, the entity (code list 98).
A claim held for review is "A2 accepted into adjudication" with the pend status ``pend``: a 277CA allows
only A categories (X12 RFI 1942), never P. ``carc``/``rarc`` are the 835 adjustment reason and remark codes.
A lab order is answered in HL7 v2 terms: ``hl7_condition`` is the ERR-3 error condition (table 0357).
``engine/answers.py`` makes each reason's answer exact from the field it names.

A payer changes outcomes per rule (or switches a rule off) with a ``Policy`` (``engine/policy.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """Where a decision goes, and what a reason does. Order matters: the worst reason decides.

    ``DENIED`` is a reason's outcome only, never a decision's: the claim line it names is denied (an 835
    adjustment with group code CO, as CMS's editors deny a line), and the claim goes on, accepted.
    """

    ACCEPTED = "accepted"
    DENIED = "denied"
    NEEDS_REVIEW = "needs_review"
    RETURNED = "returned"


RETURNED = Outcome.RETURNED
REVIEW = Outcome.NEEDS_REVIEW
DENIED = Outcome.DENIED
SEVERITY = {Outcome.ACCEPTED: 0, Outcome.DENIED: 0, Outcome.NEEDS_REVIEW: 1, Outcome.RETURNED: 2}
DECISION_OUTCOMES = (Outcome.ACCEPTED, Outcome.NEEDS_REVIEW, Outcome.RETURNED)  # the three outcome topics
DENIAL_GROUP = "CO"  # the 835 group code of a denied line: contractual obligation, not the patient's to pay


# The kinds of claim (``claim_type``): 837P professional, 837I outpatient (type of bill 13x), 837I inpatient (11x).
PROFESSIONAL, OUTPATIENT, INPATIENT = "professional", "outpatient", "inpatient"
CLAIM_TYPES = frozenset({PROFESSIONAL, OUTPATIENT, INPATIENT})
INPATIENT_ONLY = frozenset({INPATIENT})

ACCEPTED_INTO_ADJUDICATION = "A2"  # 277CA category of a claim held for review, with a pend status
# Status (508) of a claim accepted with a line denied. WPC's list numbers it between 19 "entity acknowledges
# receipt" and 21 "missing or invalid information"; not checked against a primary copy of the list.
ACCEPTED_FOR_PROCESSING = "20"


@dataclass(frozen=True, slots=True)
class Stc:
    """An X12 277CA STC01 composite: claim status category (507), status code (508) and, when the status
    names an entity's data ("Entity's National Provider Identifier"), the entity identifier code (98)."""

    category: str
    status: str
    entity: str | None = None

    def __str__(self) -> str:
        return ":".join(part for part in (self.category, self.status, self.entity) if part)

    def as_dict(self) -> dict[str, str | None]:
        return {"category": self.category, "status": self.status, "entity": self.entity}


def stc(composite: str) -> Stc:
    """An STC01 as X12 writes it, ``category:status`` or ``category:status:entity``: ``stc("A7:562:85")``."""
    category, status, *entity = composite.split(":")
    return Stc(category, status, entity[0] if entity else None)


@dataclass(frozen=True, slots=True)
class Rule:
    """One edit: what it is called, where it sends an event by default, and how it explains itself.

    ``outcome`` None: the rule is off unless a payer's rules file switches it on; ``DENIED``: it denies the claim
    line it fires on (a payment edit) instead of returning the claim. ``lines``: it can fire on a claim line,
    so a payer may make it deny the line. ``claim_types``: the kinds of
    claim it runs on (lab orders have none). ``mce``: the CMS Medicare Code Editor edit it implements, if any.
    ``stc``: the 277CA answer of a returned claim; ``pend``: the status (508) of a claim held for review, which
    answers A2 with it (46 internal review/audit unless the row says better). ``hl7_condition``: the HL7 table
    0357 code of the reason on a lab order (207 application error unless the row says 101, 102 or 103).
    """

    id: str
    outcome: Outcome | None
    order_outcome: Outcome | None
    stc: Stc
    carc: str | None
    rarc: str | None
    message: str
    review: str = "Check {field} ({value!r}) as the message says; correct it with the submitter or accept it."
    claim_types: frozenset[str] = CLAIM_TYPES
    mce: str | None = None
    pend: str = "46"
    hl7_condition: str = "207"
    lines: bool = False

    def outcome_for(self, kind: str) -> Outcome | None:
        """The default outcome of this rule on an event of ``kind`` (None: off unless switched on)."""
        return self.order_outcome if kind == "order" else self.outcome

    def claim_answer(self, outcome: Outcome) -> Stc:
        """The 277CA STC01 of this rule's reason on a claim it sends to ``outcome``: ``stc`` when returned,
        A2 with the pend status when held for review, A2:20 (accepted for processing) when it denies a line."""
        if outcome == REVIEW:
            return Stc(ACCEPTED_INTO_ADJUDICATION, self.pend)
        if outcome == DENIED:  # the claim goes on: accepted for processing; the line's denial is the 835's
            return Stc(ACCEPTED_INTO_ADJUDICATION, ACCEPTED_FOR_PROCESSING)
        return self.stc

    @property
    def category(self) -> str:
        """The 277CA category of the rule's default answer on a claim (A2 when it holds claims for review)."""
        return self.claim_answer(self.outcome or RETURNED).category


_FIX = "Correct it and resubmit."
_LOAD = "The code table has no {system} codes loaded: a coder must check {value!r} by hand, or load the {system} table."
_LOAD_REVIEW = "Look {value!r} up in the {system} release valid on the date by hand, or ask for the table to be loaded."
_UNCOVERED = (
    "{field} is {value!r}, but the code table does not cover {system} on {day} (loaded releases: "
    "{releases}). Nothing can be said about the code on that date until that release is loaded."
)
_UNCOVERED_REVIEW = (
    "Look {value!r} up in the {system} release for {day} by hand, or load that release and decide the event again."
)
_DX_CHECK = "Check {value!r} with the ordering doctor: the lab needs a valid diagnosis for the test."
_AGE = (
    "{field} is {value!r} ({description}), which the {system} edits limit to ages {age_min} to {age_max}"
    "{edit}, but the patient is {age} on {day}. Check the code and the patient's birth date, correct them and "
    "resubmit."
)
_AGE_REVIEW = "Check the patient's birth date and whether {value!r} fits a patient aged {age}."
_SEX = (
    "{field} is {value!r} ({description}), which the {system} edits limit to patients of sex {sex}, but "
    "patient.sex is {patient_sex!r}. Check the code and the patient's sex, correct them and resubmit."
)
_SEX_REVIEW = "Check the patient's sex and whether {value!r} fits it."
# The meaning of every code below, and where it was looked up: tests/unit/test_answers.py and docs/rules.md.
# fmt: off
RULES: dict[str, Rule] = {rule.id: rule for rule in (
    # Structure: the event against its JSON Schema (450 lines at most: the IOCE cap), dates and times that are
    # real and make sense (a birth date within a lifetime), line numbers used once, pointers that point at
    # something.
    Rule("event.missing_field", RETURNED, RETURNED, stc("A6:21"), "16", "MA130",
         "{field} is required but missing. Add it and resubmit.", hl7_condition="101"),
    Rule("event.invalid_field", RETURNED, RETURNED, stc("A7:21"), "16", "MA130",
         "{field} is {value!r}, but it {problem}. " + _FIX, hl7_condition="102"),
    Rule("date.invalid", RETURNED, RETURNED, stc("A7:21"), "16", "MA130",
         "{field} is {value!r}, which is not a calendar date. Use a real date as YYYY-MM-DD and resubmit.",
         hl7_condition="102"),
    Rule("date.invalid_datetime", RETURNED, RETURNED, stc("A7:21"), "16", "MA130",
         "{field} is {value!r}, which is not a real date and time in the years {years}. Use a date on the "
         "calendar and a time on the clock, as YYYY-MM-DDThh:mm:ssZ or with an offset (-05:00), and resubmit.",
         hl7_condition="102"),
    Rule("date.birth_too_early", RETURNED, REVIEW, stc("A7:158:QC"), "16", "N329",
         "{field} is more than {years} years before the date of service {day}: no patient is that old. Check "
         "the patient's birth date, correct it and resubmit.",
         review="Check the patient's birth date with the submitter (for an order, the ordering doctor): it is "
                "more than {years} years before {day}."),
    Rule("date.before_birth", RETURNED, REVIEW, stc("A8:158:QC"), "14", "N329",
         "{field} is {value!r}, before the patient's birth date. Check the date of service and the birth "
         "date, correct them and resubmit.",
         review="Check the collection date and the patient's birth date with the ordering doctor."),
    Rule("date.discharge_before_admission", RETURNED, RETURNED, stc("A8:675"), "16", "N318",
         "{field} is {value!r}, before the admission date {admission}. Correct the stay's dates and resubmit.",
         claim_types=INPATIENT_ONLY),
    Rule("date.after_submission", RETURNED, RETURNED, stc("A8:187"), "110", "M52",
         "{field} is {value!r}, after the claim was submitted ({submitted}): a service cannot be billed "
         "before it is given. Correct the date of service and resubmit."),
    Rule("line.pointer_invalid", RETURNED, RETURNED, stc("A8:477"), "16", "M76",
         "{field} is {value!r}, but the claim has only {count} diagnoses. Point at a diagnosis on the claim "
         "(1 to {count}) and resubmit.", lines=True),
    Rule("line.duplicate_number", RETURNED, RETURNED, stc("A7:21"), "16", "MA130",
         "{field} is {value!r}, the line number of {other} too. Give each line of the claim its own number "
         "and resubmit."),
    Rule("npi.invalid", RETURNED, REVIEW, stc("A7:562:85"), "16", "N257",
         "{field} is {value!r}, which is not a valid NPI (10 digits starting with 1 or 2, ending in a "
         "Luhn check digit). Check the provider's NPI in NPPES and resubmit.",
         review="Look the ordering provider up in NPPES and confirm the NPI with the doctor's office.",
         hl7_condition="102"),
    Rule("npi.rendering_invalid", RETURNED, RETURNED, stc("A7:562:82"), "16", "N290",
         "{field} is {value!r}, which is not a valid NPI (10 digits starting with 1 or 2, ending in a Luhn "
         "check digit). Check the rendering provider's NPI in NPPES and resubmit.", hl7_condition="102"),
    Rule("npi.referring_invalid", RETURNED, RETURNED, stc("A7:562:DN"), "16", "N286",
         "{field} is {value!r}, which is not a valid NPI (10 digits starting with 1 or 2, ending in a Luhn "
         "check digit). Check the referring provider's NPI in NPPES and resubmit.", hl7_condition="102"),
    Rule("npi.missing", RETURNED, REVIEW, stc("A6:562:DK"), "16", "N265",
         "{field} is missing: the order does not say who ordered it. Add the ordering provider's NPI.",
         review="Ask the doctor's office who ordered the test and record the ordering provider's NPI.",
         hl7_condition="101"),

    # Who is covered, what the claim charges and what it replaces (a payer's front end: WEDI SNIP levels 2-3).
    Rule("member.missing", RETURNED, RETURNED, stc("A6:164:IL"), "16", "N382",
         "{field} is missing: the claim does not say who is covered. Add the subscriber's member id from the "
         "insurance card (X12 2010BA NM1*IL NM109) and resubmit.", hl7_condition="101"),
    Rule("claim.unbalanced", RETURNED, RETURNED, stc("A7:400"), "16", "N379",
         "{field} is {value!r}, but the lines' charges add up to {total}{unpriced}. The claim's total charge "
         "must equal the sum of its line charges; correct the charges and resubmit.", hl7_condition="102"),
    Rule("claim.replaces_unknown", REVIEW, REVIEW, stc("A7:464"), "16", "M47",
         "{field} is {value!r}, which names no claim of this member that the payer holds (within the duplicate "
         "window): nothing is {done}.",
         review="Find claim {value!r}: if it is this member's and was paid, apply the {frequency} by hand; if it "
                "is unknown, return the claim with the right payer claim control number (REF*F8)."),
    Rule("claim.replaces_missing", RETURNED, RETURNED, stc("A6:464"), "16", "M47",
         "{field} is required: a {frequency} names the payer's claim control number of the claim it "
         "{verb} (X12 REF*F8, from the 277CA's REF*1K). Add it and resubmit.", hl7_condition="101"),

    # Diagnosis codes (ICD-10-CM). On a lab order the lab reviews them with the doctor instead.
    Rule("diagnosis.system_unknown", RETURNED, REVIEW, stc("A7:255"), "16", "M76",
         "{field} is {value!r}, which is not a diagnosis code system. Use {expected} and resubmit.",
         review="Ask the ordering doctor for the diagnosis in ICD-10-CM.", hl7_condition="103"),
    Rule("diagnosis.malformed", RETURNED, REVIEW, stc("A7:255"), "16", "M76",
         "{field} is {value!r}, which is not a well-formed {system} code ({hint}). " + _FIX, review=_DX_CHECK,
         mce="INVALID_CODE", hl7_condition="102"),
    Rule("diagnosis.not_in_table", RETURNED, REVIEW, stc("A7:255"), "16", "M76",
         "{field} is {value!r}, which is not a {system} code. Check the code in the current {system} "
         "release and resubmit.", review=_DX_CHECK, mce="INVALID_CODE", hl7_condition="103"),
    Rule("diagnosis.not_valid_on_date", RETURNED, REVIEW, stc("A7:255"), "146", None,
         "{field} is {value!r}, which is not valid on the date of service {day} ({validity}). Use the code "
         "valid on that date and resubmit.", review=_DX_CHECK, mce="INVALID_CODE", hl7_condition="103"),
    Rule("diagnosis.header", RETURNED, REVIEW, stc("A7:772"), "16", "M81",
         "{field} is {value!r}, a header code ({description}) with more specific codes under it. Code to "
         "the highest specificity (a billable code under {value}) and resubmit.",
         review="Ask the ordering doctor for the billable code under {value!r} that fits the patient.",
         mce="INVALID_CODE"),
    Rule("diagnosis.system_not_loaded", REVIEW, REVIEW, stc("A3:255"), None, None, _LOAD, review=_LOAD_REVIEW,
         pend="41"),
    Rule("diagnosis.date_not_covered", REVIEW, REVIEW, stc("A3:255"), None, None, _UNCOVERED,
         review=_UNCOVERED_REVIEW, pend="41"),
    Rule("diagnosis.age_conflict", RETURNED, REVIEW, stc("A8:255"), "9", None, _AGE, review=_AGE_REVIEW,
         mce="AGE_CONFLICT"),
    # CMS's MCE sex lists are empty from FY2025 (discharges from 2024-10-01); a payer's own table (CSV ``sex``)
    # still applies. ``sex_list_conflict`` applies CMS's last published lists (FY2024) to later dates: off
    # unless a payer switches it on.
    Rule("diagnosis.sex_conflict", RETURNED, REVIEW, stc("A8:86"), "10", None, _SEX, review=_SEX_REVIEW,
         mce="SEX_CONFLICT"),
    Rule("diagnosis.sex_list_conflict", None, None, stc("A8:86"), "10", None, _SEX, review=_SEX_REVIEW),
    # Principal (first-listed) diagnosis on a claim.
    Rule("diagnosis.manifestation_principal", RETURNED, RETURNED, stc("A8:254"), "16", "MA63",
         "{field} is {value!r} ({description}), a manifestation code: it is never the principal diagnosis. "
         "List the underlying condition first and resubmit.", mce="MANIFESTATION_AS_PDX"),
    Rule("diagnosis.external_cause_principal", RETURNED, RETURNED, stc("A8:254"), "16", "MA63",
         "{field} is {value!r}, an external cause code (V00-Y99): it is never the principal diagnosis. List "
         "the injury or condition first and resubmit.", mce="E_CODE_AS_PDX"),
    Rule("diagnosis.code_first_principal", REVIEW, REVIEW, stc("A8:254"), "16", "MA63",
         "{field} is {value!r} ({description}), which the tabular says to code after its underlying "
         "condition, yet it is listed first.",
         review="Check that the underlying condition is coded and listed before {value!r}."),
    # Inpatient stays (CMS MCE): the principal diagnosis is the condition that occasioned the admission.
    Rule("diagnosis.unacceptable_principal", RETURNED, RETURNED, stc("A8:254"), "16", "MA63",
         "{field} is {value!r} ({description}), which CMS's Medicare Code Editor does not accept as the "
         "principal diagnosis of an inpatient stay. List the condition that occasioned the admission first "
         "and resubmit.", claim_types=INPATIENT_ONLY, mce="UNACCEPTABLE_PDX"),
    Rule("diagnosis.requires_secondary", RETURNED, RETURNED, stc("A6:254"), "16", "M64",
         "{field} is {value!r} ({description}), which CMS's Medicare Code Editor accepts as the principal "
         "diagnosis only with a secondary diagnosis, and the claim has none. Add the secondary diagnosis and "
         "resubmit.", claim_types=INPATIENT_ONLY, mce="REQUIRES_SDX"),
    Rule("diagnosis.duplicate_of_principal", RETURNED, RETURNED, stc("A8:255"), "16", "M64",
         "{field} is {value!r}, the same code as the principal diagnosis. Remove the repeated secondary "
         "diagnosis and resubmit.", claim_types=INPATIENT_ONLY, mce="DUPLICATE_OF_PDX"),
    Rule("diagnosis.questionable_admission", REVIEW, REVIEW, stc("A8:254"), "50", None,
         "{field} is {value!r} ({description}), which CMS's Medicare Code Editor flags as a questionable "
         "reason for an inpatient admission.",
         review="Check the record for why {value!r} needed inpatient care; if it did not, return the claim.",
         claim_types=INPATIENT_ONLY, mce="QUESTIONABLE_ADMISSION"),

    # Procedure codes on claim lines (ICD-10-PCS, HCPCS Level II, CPT).
    Rule("procedure.system_unknown", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which is not a procedure code system. Use {expected} and resubmit.",
         hl7_condition="103", lines=True),
    Rule("procedure.malformed", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which is not a well-formed {system} code ({hint}). " + _FIX, mce="INVALID_CODE",
         hl7_condition="102", lines=True),
    Rule("procedure.not_in_table", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which is not a {system} code. Check the code in the current {system} "
         "release and resubmit.", mce="INVALID_CODE", hl7_condition="103", lines=True),
    Rule("procedure.not_valid_on_date", RETURNED, RETURNED, stc("A7:796"), "181", None,
         "{field} is {value!r}, which is not valid on the date of service {day} ({validity}). Use the code "
         "valid on that date and resubmit.", mce="INVALID_CODE", hl7_condition="103", lines=True),
    Rule("procedure.not_billable", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which the {system} table marks as not billable ({description}). Use a "
         "billable code and resubmit.", mce="INVALID_CODE", lines=True),
    Rule("procedure.system_not_loaded", REVIEW, REVIEW, stc("A3:454"), None, None, _LOAD, review=_LOAD_REVIEW,
         pend="41", lines=True),
    Rule("procedure.date_not_covered", REVIEW, REVIEW, stc("A3:454"), None, None, _UNCOVERED,
         review=_UNCOVERED_REVIEW, pend="41", lines=True),
    Rule("procedure.age_conflict", DENIED, REVIEW, stc("A8:475"), "6", None, _AGE, review=_AGE_REVIEW, lines=True),
    Rule("procedure.sex_conflict", DENIED, REVIEW, stc("A8:474"), "7", None, _SEX, review=_SEX_REVIEW,
         mce="SEX_CONFLICT", lines=True),
    # ICD-10-PCS procedures of an inpatient stay (CMS MCE procedure edits).
    Rule("procedure.non_covered", RETURNED, RETURNED, stc("A3:765"), "96", "N425",
         "{field} is {value!r} ({description}), a procedure Medicare does not cover{condition} (CMS Medicare "
         "Code Editor). Do not bill it to this payer; bill the patient or the responsible payer.",
         claim_types=INPATIENT_ONLY, mce="NON_COVERED"),
    Rule("procedure.limited_coverage", REVIEW, REVIEW, stc("A3:765"), "50", "N386",
         "{field} is {value!r} ({description}), a procedure Medicare covers only under limited conditions "
         "(CMS Medicare Code Editor).",
         review="Check that the stay meets the coverage conditions for {value!r} (the national coverage "
                "determination); if not, deny it.", claim_types=INPATIENT_ONLY, mce="LIMITED_COVERAGE", pend="45"),
    Rule("procedure.date_outside_stay", RETURNED, RETURNED, stc("A8:187"), "16", "N301",
         "{field} is {value!r}, outside the stay ({admission} to {discharge}). Correct the procedure date or "
         "the stay's dates and resubmit.", claim_types=INPATIENT_ONLY),

    # Places of service (CMS's POS code set, two digits), on the claim and on a line where it differs.
    Rule("place_of_service.malformed", RETURNED, RETURNED, stc("A7:249"), "16", "M77",
         "{field} is {value!r}, which is not a well-formed place of service ({hint}). " + _FIX,
         hl7_condition="102", lines=True),
    Rule("place_of_service.not_in_table", RETURNED, RETURNED, stc("A7:249"), "16", "M77",
         "{field} is {value!r}, which is not a place of service code of CMS's list. Use the code of where "
         "the service was given (11 office, 22 on campus outpatient hospital...) and resubmit.",
         hl7_condition="103", lines=True),
    Rule("place_of_service.not_valid_on_date", RETURNED, RETURNED, stc("A7:249"), "16", "M77",
         "{field} is {value!r}, which is not a place of service on the date of service {day} ({validity}). "
         + _FIX, hl7_condition="103", lines=True),
    Rule("place_of_service.system_not_loaded", REVIEW, REVIEW, stc("A3:249"), None, None, _LOAD,
         review=_LOAD_REVIEW, pend="41", lines=True),
    Rule("place_of_service.date_not_covered", REVIEW, REVIEW, stc("A3:249"), None, None, _UNCOVERED,
         review=_UNCOVERED_REVIEW, pend="41", lines=True),

    # Test codes on lab orders (LOINC, CPT, HCPCS): an invalid one goes back to the ordering provider.
    Rule("test.system_unknown", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which is not a lab test code system. Use {expected} and resend the order.",
         hl7_condition="103"),
    Rule("test.malformed", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which is not a well-formed {system} code ({hint}). Correct it and resend "
         "the order.", hl7_condition="102"),
    Rule("test.not_in_table", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which is not a {system} code. Check the test code and resend the order.",
         hl7_condition="103"),
    Rule("test.not_valid_on_date", RETURNED, RETURNED, stc("A7:796"), "181", None,
         "{field} is {value!r}, which is not valid on the collection date {day} ({validity}). Use the code "
         "valid on that date and resend the order.", hl7_condition="103"),
    Rule("test.not_billable", RETURNED, RETURNED, stc("A7:454"), "16", "M51",
         "{field} is {value!r}, which the {system} table marks as not orderable ({description}). Use an "
         "orderable code and resend the order."),
    Rule("test.system_not_loaded", REVIEW, REVIEW, stc("A3:454"), None, None, _LOAD, review=_LOAD_REVIEW,
         pend="41"),
    Rule("test.date_not_covered", REVIEW, REVIEW, stc("A3:454"), None, None, _UNCOVERED,
         review=_UNCOVERED_REVIEW, pend="41"),
    Rule("test.age_conflict", RETURNED, REVIEW, stc("A8:475"), "6", None, _AGE, review=_AGE_REVIEW),
    Rule("test.sex_conflict", RETURNED, REVIEW, stc("A8:474"), "7", None, _SEX, review=_SEX_REVIEW),
    Rule("order.no_diagnosis", REVIEW, REVIEW, stc("A6:255"), "16", "M76",
         "{field} is empty: the order gives no diagnosis for its tests.",
         review="Ask the ordering doctor for the diagnoses that support the tests.", hl7_condition="101"),

    # A payer's internal codes, checked as the external code its cross-reference maps them to.
    Rule("crosswalk.unmapped", REVIEW, REVIEW, stc("A7:21"), None, None,
         "{field} is {value!r}, a {system} code that the cross-reference maps to no external code.",
         review="Map {value!r} to its external code in the {system} cross-reference, or code the event with it.",
         pend="41"),
    Rule("crosswalk.target_invalid", REVIEW, REVIEW, stc("A7:21"), None, None,
         "{field} is {value!r}, a {system} code mapped to {target}, which fails its own check: {problem}",
         review="Fix the {system} cross-reference entry of {value!r}, then decide the event again.", pend="41"),

    # Coverage: a procedure or test that the pointed diagnoses do not support (lab NCDs, payer policies).
    Rule("coverage.not_supported", DENIED, REVIEW, stc("A8:454"), "50", None,
         "{field} is {value!r}, which the coverage policy does not support for the diagnoses it points at "
         "({diagnoses}) on {day}: not medically necessary as billed.",
         review="Check the record for a diagnosis that supports {value!r} (policy: {policy}); otherwise the "
                "patient may be asked to sign an ABN (modifier GA).", pend="45", lines=True),

    # Pairs, modifiers and units on claim lines (NCCI procedure-to-procedure edits and MUEs).
    Rule("ncci.bundled", DENIED, RETURNED, stc("A8:735"), "236", None,
         "{field} is {value!r}, which NCCI's {table} table bundles into {column1} on line {other} ({day}) and "
         "never pays with it (modifier indicator 0; CMS: {rationale}). The line is not paid; bill the "
         "comprehensive code only.", lines=True),
    Rule("ncci.modifier_required", DENIED, RETURNED, stc("A8:453"), "236", None,
         "{field} is {value!r}, which NCCI's {table} table bundles into {column1} on line {other} ({day}) unless "
         "a modifier shows a distinct service (modifier indicator 1; CMS: {rationale}). An anatomic modifier "
         "counts only when the two lines name different sites (LT on one, RT on the other). If the services "
         "were distinct, add 59, XE, XS, XP or XU or the sites' modifiers and resubmit the line.", lines=True),
    Rule("modifier.invalid_combination", RETURNED, RETURNED, stc("A7:453"), "4", "N519",
         "{field} is {value!r}: modifier 59 and an X modifier (XE, XS, XP, XU) on one line contradict each "
         "other. Keep the most specific one and resubmit.", lines=True),
    Rule("modifier.repeated", RETURNED, RETURNED, stc("A7:453"), "4", "N823",
         "{field} is {value!r}, a modifier the line already gives. Give each modifier once and resubmit.",
         lines=True),
    Rule("modifier.both_sides", RETURNED, RETURNED, stc("A7:453"), "4", "N519",
         "{field} is {value!r}, and the line also says {other!r}: one line cannot be on both sides. Bill a "
         "bilateral procedure as one line with modifier 50 (Medicare), or each side on a line of its own, and "
         "resubmit.", lines=True),
    Rule("modifier.invalid", RETURNED, RETURNED, stc("A7:453"), "182", None,
         "{field} is {value!r}, which is not a modifier valid on the date of service {day} ({validity}). Use "
         "a valid modifier and resubmit.", lines=True),
    Rule("units.over_mue", DENIED, RETURNED, stc("A8:476"), "151", "N362",
         "{field} is {value!r}{summed}, more than the {max_units:g} units of {code} {scope} may bill on {day} "
         "(MUE, adjudication indicator {mai}: {mai_text}; CMS: {rationale}). The units over the limit are not "
         "paid; bill the units actually given.", lines=True),

    # Duplicates, per member and per line (processor.engine.duplicates keeps what the window holds, as hashes).
    Rule("claim.duplicate", RETURNED, RETURNED, stc("A3:54"), "18", None,
         "{field} is {value!r}, and every line of it repeats claim {first_id!r} of the same member (payer claim "
         "control number {first_control_number}, submitted {first_seen}): the same claim was sent again. It is "
         "not decided again; to correct that claim, send a replacement (frequency 7) naming "
         "{first_control_number}."),
    Rule("line.duplicate", DENIED, RETURNED, stc("A3:54"), "18", None,
         "{field} ({value!r}) repeats line {first_line} of claim {first_id!r} of the same member (payer claim "
         "control number {first_control_number}, submitted {first_seen}): the same service, date, provider, "
         "modifiers, place of service and charge. The line is not paid again; a repeat service is billed with "
         "modifier 76, 77 or 91.", lines=True),
    Rule("claim.suspect_duplicate", REVIEW, REVIEW, stc("A3:54"), "18", None,
         "{field} ({value!r}) is the same service (member, date, provider, procedure) as line {first_line} of "
         "claim {first_id!r} (payer claim control number {first_control_number}, submitted {first_seen}), with "
         "another charge, place of service, modifier or units.",
         review="Compare {field} with line {first_line} of claim {first_id!r}: if the same service was billed "
                "twice, return it as a duplicate; if both happened, accept it.", pend="78", lines=True),
)}
# fmt: on
