"""Every edit the engine runs, declared once: its stable id, default outcomes, X12 codes and message.

A reason id is a stable string that users grep, configure and alert on; never rename one. ``outcome`` is
the default on a claim and ``order_outcome`` on a lab order (the lab double-checks most problems with
the ordering doctor instead of rejecting). ``category`` is the X12 277CA claim status category (A6
missing, A7 invalid, P2 pending payer review); ``carc``/``rarc`` are the 835 adjustment reason and
remark codes that explain it. Message templates name the field and the value and say what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """Where a decision goes. Order matters: the worst reason decides."""

    ACCEPTED = "accepted"
    NEEDS_REVIEW = "needs_review"
    RETURNED = "returned"


RETURNED = Outcome.RETURNED
REVIEW = Outcome.NEEDS_REVIEW
SEVERITY = {Outcome.ACCEPTED: 0, Outcome.NEEDS_REVIEW: 1, Outcome.RETURNED: 2}


@dataclass(frozen=True, slots=True)
class Rule:
    """One edit: what it is called, where it sends an event by default, and how it explains itself."""

    id: str
    outcome: Outcome
    order_outcome: Outcome
    category: str
    carc: str | None
    rarc: str | None
    message: str

    def outcome_for(self, kind: str) -> Outcome:
        """The default outcome of this rule on an event of ``kind``."""
        return self.order_outcome if kind == "order" else self.outcome


_FIX = "Correct it and resubmit."
_LOAD = "The code table has no {system} codes loaded: a coder must check {value!r} by hand, or load the {system} table."
# fmt: off
RULES: dict[str, Rule] = {rule.id: rule for rule in (
    # Structure: the event against its JSON Schema, and dates that parse.
    Rule("event.missing_field", RETURNED, RETURNED, "A6", "16", "MA130",
         "{field} is required but missing. Add it and resubmit."),
    Rule("event.invalid_field", RETURNED, RETURNED, "A7", "16", "MA130",
         "{field} is {value!r}, but it {problem}. " + _FIX),
    Rule("date.invalid", RETURNED, RETURNED, "A7", "16", "MA130",
         "{field} is {value!r}, which is not a calendar date. Use a real date as YYYY-MM-DD and resubmit."),
    Rule("npi.invalid", RETURNED, REVIEW, "A7", "16", "N257",
         "{field} is {value!r}, which is not a valid NPI (10 digits starting with 1 or 2, ending in a "
         "Luhn check digit). Check the provider's NPI in NPPES and resubmit."),

    # Diagnosis codes (ICD-10-CM). On a lab order the lab reviews them with the doctor instead.
    Rule("diagnosis.system_unknown", RETURNED, REVIEW, "A7", "16", "M76",
         "{field} is {value!r}, which is not a diagnosis code system. Use {expected} and resubmit."),
    Rule("diagnosis.malformed", RETURNED, REVIEW, "A7", "16", "M76",
         "{field} is {value!r}, which is not a well-formed {system} code ({hint}). " + _FIX),
    Rule("diagnosis.not_in_table", RETURNED, REVIEW, "A7", "16", "M76",
         "{field} is {value!r}, which is not a {system} code. Check the code in the current {system} "
         "release and resubmit."),
    Rule("diagnosis.not_valid_on_date", RETURNED, REVIEW, "A7", "146", None,
         "{field} is {value!r}, which is not valid on the date of service {day} ({validity}). Use the code "
         "valid on that date and resubmit."),
    Rule("diagnosis.header", RETURNED, REVIEW, "A7", "16", "M76",
         "{field} is {value!r}, a header code ({description}) with more specific codes under it. Code to "
         "the highest specificity (a billable code under {value}) and resubmit."),
    Rule("diagnosis.system_not_loaded", REVIEW, REVIEW, "P2", None, None, _LOAD),

    # Procedure codes on claim lines (ICD-10-PCS, HCPCS Level II, CPT).
    Rule("procedure.system_unknown", RETURNED, RETURNED, "A7", "16", "M51",
         "{field} is {value!r}, which is not a procedure code system. Use {expected} and resubmit."),
    Rule("procedure.malformed", RETURNED, RETURNED, "A7", "16", "M51",
         "{field} is {value!r}, which is not a well-formed {system} code ({hint}). " + _FIX),
    Rule("procedure.not_in_table", RETURNED, RETURNED, "A7", "16", "M51",
         "{field} is {value!r}, which is not a {system} code. Check the code in the current {system} "
         "release and resubmit."),
    Rule("procedure.not_valid_on_date", RETURNED, RETURNED, "A7", "181", None,
         "{field} is {value!r}, which is not valid on the date of service {day} ({validity}). Use the code "
         "valid on that date and resubmit."),
    Rule("procedure.not_billable", RETURNED, RETURNED, "A7", "16", "M51",
         "{field} is {value!r}, which the {system} table marks as not billable ({description}). Use a "
         "billable code and resubmit."),
    Rule("procedure.system_not_loaded", REVIEW, REVIEW, "P2", None, None, _LOAD),

    # Test codes on lab orders (LOINC, CPT, HCPCS): an invalid one goes back to the ordering provider.
    Rule("test.system_unknown", RETURNED, RETURNED, "A7", "16", None,
         "{field} is {value!r}, which is not a lab test code system. Use {expected} and resend the order."),
    Rule("test.malformed", RETURNED, RETURNED, "A7", "16", None,
         "{field} is {value!r}, which is not a well-formed {system} code ({hint}). Correct it and resend "
         "the order."),
    Rule("test.not_in_table", RETURNED, RETURNED, "A7", "16", None,
         "{field} is {value!r}, which is not a {system} code. Check the test code and resend the order."),
    Rule("test.not_valid_on_date", RETURNED, RETURNED, "A7", "16", None,
         "{field} is {value!r}, which is not valid on the collection date {day} ({validity}). Use the code "
         "valid on that date and resend the order."),
    Rule("test.not_billable", RETURNED, RETURNED, "A7", "16", None,
         "{field} is {value!r}, which the {system} table marks as not orderable ({description}). Use an "
         "orderable code and resend the order."),
    Rule("test.system_not_loaded", REVIEW, REVIEW, "P2", None, None, _LOAD),
)}
# fmt: on
