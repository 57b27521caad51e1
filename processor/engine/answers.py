"""How a reason answers the submitter in its own terms: a claim in X12 (the 277CA STC01 composite and the 835
CARC/RARC), a lab order in HL7 v2 (MSA-1 acknowledgment code and an ERR segment).

A rule names the problem; the field of the reason names the data element. Where the rule's 277CA status
only names the kind of element (21 any information, 187 a date of service, 255 a diagnosis, 454 a
procedure) the field makes it exact: the principal diagnosis (254), the discharge date (190), the patient's
birth date (158, entity QC). A provider's NPI is the billing provider's (entity 85, RARC N257) or the
ordering provider's (DK, N265). On a lab order the field gives the ERR-2 error location, an HL7 ERL:
``SEGMENT^SEQUENCE^FIELD`` or, for a component, ``SEGMENT^SEQUENCE^FIELD^REPETITION^COMPONENT``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from processor.engine.rules import REVIEW, Outcome, Rule, Stc

# MSA-1 (HL7 table 0008) of an order by its outcome; ERR-4 severity (table 0516) of a reason by its outcome:
# E "transaction was unsuccessful" for a rejected order, W "successful, but there may be issues" for one the
# lab holds while it checks with the ordering doctor.
ACK = {Outcome.ACCEPTED: "AA", Outcome.NEEDS_REVIEW: "AE", Outcome.RETURNED: "AR"}
SEVERITY = {Outcome.NEEDS_REVIEW: "W", Outcome.RETURNED: "E"}

# A rule's 277CA status that names only a kind of element, and the exact statuses a field may give it.
_REFINES: dict[str, frozenset[str] | None] = {
    "21": None,  # missing or invalid information: any element
    "187": frozenset({"189", "190", "486", "492"}),  # date(s) of service: the stay's dates, a procedure's
    "255": frozenset({"254"}),  # diagnosis code: the principal diagnosis
    "454": frozenset({"465", "490"}),  # procedure code: the principal or another procedure of a stay
}
# The remark (RARC) of a provider's identifier, by the entity it belongs to.
_PROVIDER_RARC = {"85": "N257", "DK": "N265", "82": "N290", "DN": "N286"}


class Element(NamedTuple):
    """A claim data element as a 277CA status names it: the status (code list 508) and, for an "Entity's ..."
    status, whose (code list 98)."""

    status: str
    entity: str | None = None


def _steps(field: str) -> list[str | int]:
    """``"lines[2].service_date"`` as ``["lines", 2, "service_date"]``."""
    return [int(step[1:-1]) if step.startswith("[") else step for step in re.findall(r"\[\d+\]|[^.\[\]]+", field)]


@functools.lru_cache(maxsize=4096)
def claim_element(field: str) -> Element | None:
    """The claim data element at ``field``; None when no status names it better than 21 (missing or invalid
    information)."""
    match _steps(field):
        case ["patient", "birth_date"]:
            return Element("158", "QC")  # entity's date of birth: the patient
        case ["patient", "sex"]:
            return Element("157", "QC")  # entity's gender
        case ["billing_provider", *_]:
            return Element("562", "85")  # entity's NPI: the billing provider
        case ["ordering_provider", *_]:
            return Element("562", "DK")  # the ordering physician
        case ["rendering_provider", *_] | ["lines", int(), "rendering_provider", *_]:
            return Element("562", "82")  # the rendering provider
        case ["referring_provider", *_]:
            return Element("562", "DN")  # the referring provider
        case ["member", *_]:
            return Element("164", "IL")  # entity's contract/member number: the insured or subscriber
        case ["replaces"]:
            return Element("464")  # payer assigned claim control number
        case ["charge"] | ["lines", int(), "charge"]:
            return Element("178")  # submitted charges
        case ["place_of_service"] | ["lines", int(), "place_of_service"]:
            return Element("249")  # place of service
        case ["submitter_id"]:
            return Element("478")  # claim submitter's identifier
        case ["claim_id"]:
            return Element("538")  # claim or encounter identifier
        case ["diagnoses", 0, *_]:
            return Element("254")  # principal diagnosis code
        case ["diagnoses", *_]:
            return Element("255")  # diagnosis code
        case ["lines", int(), "code" | "system"]:
            return Element("454")  # procedure code for services rendered
        case ["lines", int(), "modifiers", *_]:
            return Element("453")  # procedure code modifier(s)
        case ["lines", int(), "units"]:
            return Element("476")  # missing or invalid units of service
        case ["lines", int(), "service_date"]:
            return Element("187")  # date(s) of service
        case ["lines", int(), "diagnosis_pointers", *_]:
            return Element("477")  # diagnosis code pointer is missing or invalid
        case ["lines", int(), "revenue_code"]:
            return Element("455")  # revenue code for services rendered
        case ["lines", *_]:
            return Element("247")  # line information
        case ["admission_date"]:
            return Element("189")  # facility admission date
        case ["discharge_date"]:
            return Element("190")  # facility discharge date
        case ["discharge_status"]:
            return Element("234")  # patient discharge status
        case ["procedures", 0, "date"]:
            return Element("486")  # principal procedure date
        case ["procedures", int(), "date"]:
            return Element("492")  # other procedure date
        case ["procedures", 0, *_]:
            return Element("465")  # principal procedure code
        case ["procedures", *_]:
            return Element("490")  # other procedure code
    return None


def claim_stc(rule: Rule, field: str, outcome: Outcome) -> Stc:
    """The 277CA STC01 of a reason of ``rule`` at ``field`` that sends a claim to ``outcome``."""
    answer = rule.claim_answer(outcome)
    if outcome == REVIEW:
        return answer
    element = claim_element(field)
    if element is None:
        return answer
    if answer.status == element.status:
        return Stc(answer.category, answer.status, element.entity or answer.entity)
    if answer.status in _REFINES:
        exact = _REFINES[answer.status]
        if exact is None or element.status in exact:
            return Stc(answer.category, element.status, element.entity)
    return answer


def claim_rarc(rule: Rule, field: str) -> str | None:
    """The remark code of a reason of ``rule`` at ``field``: a provider's identifier names its provider."""
    if rule.rarc in _PROVIDER_RARC.values():
        element = claim_element(field)
        if element is not None and element.entity in _PROVIDER_RARC:
            return _PROVIDER_RARC[element.entity]
    return rule.rarc


@functools.lru_cache(maxsize=4096)
def hl7_location(field: str) -> str | None:
    """The HL7 v2 ERR-2 error location (ERL) of a lab order's field, as the lab's OML/ORM message carries it:
    the order in ORC, each test in an OBR, each diagnosis in a DG1, the patient in PID. None when the field
    has no place in the message (the event as a whole, its ``kind``)."""
    match _steps(field):
        case ["order_id"]:
            return "ORC^1^2"  # placer order number
        case ["lab_id"]:
            return "MSH^1^6"  # receiving facility
        case ["ordering_provider", *_]:
            return "ORC^1^12"  # ordering provider (OBR-16 repeats it)
        case ["patient", "birth_date"]:
            return "PID^1^7"  # date/time of birth
        case ["patient", "sex"]:
            return "PID^1^8"  # administrative sex
        case ["patient", *_]:
            return "PID^1"
        case ["collection_date"]:
            return "OBR^1^7"  # observation date/time: when the specimen is collected
        case ["tests", int(i), "system"]:
            return f"OBR^{i + 1}^4^1^3"  # universal service identifier, its coding system
        case ["tests", int(i), *_]:
            return f"OBR^{i + 1}^4"  # universal service identifier: the test code
        case ["tests"]:
            return "OBR^1^4"
        case ["diagnoses", int(i), "system"]:
            return f"DG1^{i + 1}^3^1^3"  # diagnosis code, its coding system
        case ["diagnoses", int(i), *_]:
            return f"DG1^{i + 1}^3"  # diagnosis code
        case ["diagnoses"]:
            return "DG1^1^3"
    return None


def hl7_error(rule: Rule, field: str, outcome: Outcome) -> dict[str, Any]:
    """The HL7 v2 answer of a reason of ``rule`` at ``field`` on a lab order it sends to ``outcome``: the
    acknowledgment it implies (AR rejected, AE held for review) and the ERR segment's location, error
    condition (table 0357) and severity (table 0516)."""
    return {
        "ack": ACK[outcome],
        "location": hl7_location(field),
        "condition": rule.hl7_condition,
        "severity": SEVERITY[outcome],
    }


def order_ack(outcome: Outcome) -> str:
    """MSA-1 of a lab order's acknowledgment: AA accepted, AE held for review, AR rejected."""
    return ACK[outcome]
