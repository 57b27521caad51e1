"""FHIR R4 in (Claim, ServiceRequest, or a Bundle of them) and out (ClaimResponse, OperationOutcome).

``parse_fhir(raw)`` reads a resource or a Bundle and gives, per Claim, a claim event and, per order, an order
event, each with the FHIRPath of every value it took (``lines[2].code`` →
``Claim.item[2].productOrService.coding[0].code``), so a reason points at the element to fix. References
resolve to contained resources (``#id``) and to the Bundle's entries (``fullUrl`` or ``Type/id``); a
reference's ``identifier`` (an NPI as a logical reference) counts too. What maps where:

- Claim: ``claim_id`` identifier[0].value (else id); ``claim_type`` from type (professional, institutional)
  and, for an institutional claim, CARIN's ``typeofbill`` supportingInfo (11x inpatient, otherwise
  outpatient); ``submitter_id`` the enterer's identifier, else the provider's; ``submitted_at`` created;
  ``patient`` the Patient's birthDate and gender; ``billing_provider.npi`` the provider's NPI
  (``http://hl7.org/fhir/sid/us-npi``); ``diagnoses`` by sequence, principal first (type ``principal``),
  ``admitting`` as the admitting diagnosis; ``lines`` item[] (sequence, productOrService, modifier,
  quantity, serviced[x], diagnosisSequence as pointers into the diagnoses, revenue); an inpatient stay's
  ``admissionperiod`` and ``discharge-status`` supportingInfo and its ``procedure``s.
- A Claim's payer fields. ``member`` from the Coverage of the focal ``insurance`` (else the first): ``id``
  its subscriberId, else its identifier of type MB/MI (CARIN's memberid), else the patient's of type MB/MI;
  ``relationship`` its relationship (subscriber-relationship: self, spouse, child; common, a common-law
  spouse "or equivalent", is life_partner; parent, injured and other are other; X12's codes are read too;
  any other code is unknown); ``payer_id`` the payor's identifier, else the Claim's insurer's. A claim
  without a member id is refused by the schema (and the engine's member rule) at
  ``Claim.insurance[n].coverage.resolve().subscriberId``, or ``Claim.insurance`` when there is no Coverage.
  ``frequency``: ``void`` when status is ``cancelled``; else what an institutional type of bill's last digit
  says (7 replacement, 8 void); else ``replacement`` when a ``related`` claim has relationship ``prior`` (or
  none, with an identifier); nothing for an original (the schemas' default). ``replaces`` that related
  claim's ``claim.identifier.value``, the payer's claim control number (``associated`` claims are not
  replaced). ``charge`` total.value; a line's ``charge`` item.net.value, else unitPrice times quantity and factor.
  ``place_of_service``: an item's locationCodeableConcept coding of CMS's POS code system; R4 has no
  claim-level place, so when every item names the same one it is the claim's (as CLM05-1, the lines then
  carry none), otherwise each item that names one keeps its own (as SV105). ``rendering_provider`` the NPI of
  the careTeam member of role ``primary`` (or CARIN's ``rendering``), else of the one marked responsible; a
  line's own when its careTeamSequence names another such member. ``referring_provider`` the requester of
  the ServiceRequest ``referral`` names, else the careTeam member of CARIN's role ``referring``.
  ``prior_authorization`` the focal insurance's preAuthRef[0]; ``facility_type`` the type of bill's first two
  digits.
- Amounts: orjson reads a JSON number with a fraction or an exponent as a binary float. Money is read from
  the float's ``repr``, which for a decimal of at most 15 significant digits (money has at most 12) is the
  number as written, and written with two decimals: 0.1 is ``0.10``, 125.50 ``125.50``, 1e2 ``100.00``. An
  amount with more than two decimals or out of range is kept unrounded for the schema to refuse.
- ServiceRequest: ``order_id`` the requisition (ServiceRequests of a Bundle sharing one are one order with
  several tests), else the placer identifier (type PLAC), else identifier[0], else id; ``lab_id`` the
  performer's identifier; ``ordering_provider.npi`` the requester's NPI; ``collection_date`` occurrence[x],
  else the specimen's collection time; ``tests`` code; ``diagnoses`` reasonCode; ``member`` (optional) from
  the first Coverage of ``insurance`` as a Claim's, else the subject's identifier of type MB/MI, and none
  without a member id.

Code systems by URI: ICD-10-CM, ICD-9-CM, ICD-10-PCS (``http://www.cms.gov/Medicare/Coding/ICD10``), CPT,
HCPCS, LOINC; any other system keeps the last part of its URI, which the engine then names.

Answers: a ClaimResponse per Claim (outcome ``complete`` accepted, ``queued`` held for review, ``error``
returned; ``identifier`` the claim control number of a claim taken in, when its decision record has one
(system ``CLAIM_CONTROL_NUMBER_SYSTEM``: what a replacement or void names in ``related.claim.identifier``);
an error per returning reason, its code the rule id and the 277CA status, its element by the
R5 ``ClaimResponse.error.expression`` carried in R4 as the cross-version extension; an item per line with its
adjudication and, for a denied line, the CARC as reason; a process note per reason held for review) and an
OperationOutcome per order (an issue per reason: severity error or warning, code from the HL7 condition,
details the rule id and the v2-0357 condition, expression the FHIRPath); a Bundle answers in a collection
Bundle. A body that is no FHIR JSON, or a resource of another type, is answered by an OperationOutcome with a
fatal issue, and its record is a dead letter.

The reader is plain dicts after orjson (45 to 60 µs a Claim); fhir.resources' R4B models validate the
answers in the tests but cost 0.7 to 1.4 ms a Claim to build from JSON (``python -m
processor.formats.measure``), too much to parse the stream with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from processor.code_systems import CPT, HCPCS, ICD10CM, ICD10PCS, LOINC
from processor.formats.positions import position_of

ICD9CM = "ICD-9-CM"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "http://hl7.org/fhir/sid/icd-9-cm": ICD9CM,
    "http://www.cms.gov/Medicare/Coding/ICD10": ICD10PCS,
    "http://www.ama-assn.org/go/cpt": CPT,
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "http://loinc.org": LOINC,
}
URIS = {ICD10CM: "http://hl7.org/fhir/sid/icd-10-cm", ICD10PCS: "http://www.cms.gov/Medicare/Coding/ICD10",
        CPT: "http://www.ama-assn.org/go/cpt", HCPCS: "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        LOINC: "http://loinc.org"}  # fmt: skip
# Code systems of the answers.
RULES_SYSTEM = "https://medical-coding-processor.github.io/rules"  # the project's stable rule ids
X12_CLAIM_STATUS = "https://x12.org/codes/claim-status-codes"  # code list 508
X12_CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
X12_RARC = "https://x12.org/codes/remittance-advice-remark-codes"
HL7_CONDITION = "http://terminology.hl7.org/CodeSystem/v2-0357"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
ERROR_EXPRESSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ClaimResponse.error.expression"
# The OperationOutcome issue type of an HL7 condition: required field missing, data type error, table value
# not found, any other rule.
ISSUE_TYPE = {"101": "required", "102": "value", "103": "code-invalid", "207": "business-rule"}
# The payer claim control number the processor gives a claim it takes in (ClaimResponse.identifier).
CLAIM_CONTROL_NUMBER_SYSTEM = "https://medical-coding-processor.github.io/claim-control-number"
_GENDER = {"male": "M", "female": "F"}
# CMS's place of service code set, as CARIN Blue Button and terminology.hl7.org name it (without its scheme).
POS_URI = "www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
# Identifier types (v2-0203) of a member id: MB member number; MI, as HL7 v2 senders use it, member id.
MEMBER_ID_TYPES = frozenset({"MB", "MI"})
# The patient's relationship to the subscriber: FHIR's subscriber-relationship codes (a common-law spouse "or
# equivalent" is X12's life partner; parent and injured party are X12's other) and X12's own (SBR02, PAT01).
RELATIONSHIPS = {
    "self": "self", "spouse": "spouse", "child": "child", "common": "life_partner", "parent": "other",
    "injured": "other", "other": "other",
    "18": "self", "01": "spouse", "19": "child", "20": "employee", "53": "life_partner", "21": "unknown", "G8": "other",
}  # fmt: skip
# A type of bill's last digit (the claim frequency, as 837I CLM05-3): 7 replacement, 8 void.
BILL_FREQUENCIES = {"7": "replacement", "8": "void"}
RENDERING_ROLES = frozenset({"primary", "rendering"})  # claimcareteamrole; CARIN's C4BBClaimCareTeamRole
REFERRING_ROLES = frozenset({"referring"})  # CARIN's C4BBClaimCareTeamRole


@dataclass(frozen=True, slots=True)
class FhirEntry:
    """One event read from FHIR: ``kind`` claim or order, its event, the FHIRPath of each field, and the
    resource it answers (a ClaimResponse names its Claim; an OperationOutcome its ServiceRequests)."""

    kind: str
    event: dict[str, Any] = field(repr=False)
    positions: dict[str, str] = field(repr=False)
    resource: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class FhirError:
    """Why the body could not be read: an OperationOutcome issue type, and a message that never quotes the
    content; ``expression`` where, if anywhere."""

    code: str
    message: str
    expression: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFhir:
    """What ``parse_fhir`` read: its entries in the order of the body, whether it was a Bundle, the error
    that stopped it (then there are no entries), and the body's ``resourceType/id`` when it has an id (what a
    response names as the request it answers)."""

    entries: tuple[FhirEntry, ...]
    bundle: bool = False
    error: FhirError | None = None
    reference: str | None = None

    @property
    def failure(self) -> str | None:
        if self.error is None:
            return None
        where = f" at {self.error.expression}" if self.error.expression else ""
        return f"FHIR body rejected ({self.error.code}){where}: {self.error.message}"


def parse_fhir(raw: bytes) -> ParsedFhir:
    """Read a FHIR R4 Claim, ServiceRequest or Bundle of them into events with their FHIRPaths. Never raises."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return ParsedFhir((), error=FhirError("structure", f"not valid UTF-8 JSON: {error}"))
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        return ParsedFhir((), error=FhirError("structure", "not a FHIR resource (a JSON object with resourceType)"))
    kind = body["resourceType"]
    reference = f"{kind[:40]}/{body['id'][:64]}" if isinstance(body.get("id"), str) and body["id"] else None
    if kind == "Bundle":
        try:
            return replace(_read_bundle(body), reference=reference)
        except (TypeError, AttributeError, KeyError):  # as below, for a resource of the Bundle
            wrong = FhirError("structure", "a field of a resource of the Bundle is not of the type FHIR R4 gives it")
            return ParsedFhir((), True, wrong, reference=reference)
    if kind not in ("Claim", "ServiceRequest"):
        unsupported = FhirError("not-supported", f"resourceType {kind[:40]!r} is not Claim, ServiceRequest or "
                                "Bundle", "resourceType")  # fmt: skip
        return ParsedFhir((), error=unsupported, reference=reference)
    try:
        resolver = _Resolver(body, {})
        if kind == "Claim":
            return ParsedFhir((_claim(body, resolver),), reference=reference)
        return ParsedFhir((_order([(body, "ServiceRequest")], resolver),), reference=reference)
    except (TypeError, AttributeError, KeyError):  # a field of another shape than FHIR's ("item": 5): named, not raised
        wrong = FhirError("structure", f"a field of the {kind} is not of the type FHIR R4 gives it (a list, an object)")
        return ParsedFhir((), error=wrong, reference=reference)


def _read_bundle(bundle: dict[str, Any]) -> ParsedFhir:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return ParsedFhir((), True, FhirError("required", "the Bundle has no entry", "Bundle.entry"))
    index: dict[str, dict[str, Any]] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            if isinstance(entry.get("fullUrl"), str):
                index[entry["fullUrl"]] = resource
            if isinstance(resource.get("id"), str):
                index[f"{resource.get('resourceType')}/{resource['id']}"] = resource
    read: list[FhirEntry] = []
    requisitions: dict[str, list[tuple[dict[str, Any], str]]] = {}
    slots: list[tuple[str, Any]] = []  # what comes out, in the body's order: ("claim", entry) or ("order", group)
    for number, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        if resource.get("resourceType") == "Claim":
            slots.append(("claim", _claim(resource, _Resolver(resource, index))))
        elif resource.get("resourceType") == "ServiceRequest":
            requisition = _get(resource, "requisition", "value")
            if isinstance(requisition, str) and requisition in requisitions:
                requisitions[requisition].append((resource, f"Bundle.entry[{number}].resource"))
                continue
            group = [(resource, f"Bundle.entry[{number}].resource")]
            if isinstance(requisition, str):
                requisitions[requisition] = group
            slots.append(("order", group))
    for kind, value in slots:
        if kind == "claim":
            read.append(value)
        else:
            read.append(_order(value, _Resolver(value[0][0], index)))
    if not read:
        return ParsedFhir((), True, FhirError("not-supported", "the Bundle holds no Claim or ServiceRequest",
                                              "Bundle.entry"))  # fmt: skip
    return ParsedFhir(tuple(read), True)


class _Resolver:
    """Finds what a Reference points at: a contained resource or an entry of the Bundle."""

    def __init__(self, resource: dict[str, Any], index: dict[str, dict[str, Any]]) -> None:
        self.index = index
        self.contained = {f"#{item['id']}": item for item in resource.get("contained", ()) or ()
                          if isinstance(item, dict) and isinstance(item.get("id"), str)}  # fmt: skip

    def __call__(self, reference: Any) -> dict[str, Any] | None:
        if not isinstance(reference, dict):
            return None
        target = reference.get("reference")
        if isinstance(target, str):
            return self.contained.get(target) or self.index.get(target)
        return None

    def identifier(self, reference: Any, system: str | None = NPI_SYSTEM) -> tuple[str, str] | None:
        """The identifier of what ``reference`` names (its own logical identifier first), of ``system`` when
        given, and the FHIRPath under the reference where it was found."""
        if not isinstance(reference, dict):
            return None
        own = reference.get("identifier")
        if (
            isinstance(own, dict)
            and isinstance(own.get("value"), str)
            and (system is None or own.get("system") == system)
        ):
            return own["value"], ".identifier.value"
        target = self(reference)
        if target is None:
            return None
        for number, identifier in enumerate(target.get("identifier", ()) or ()):
            if (isinstance(identifier, dict) and isinstance(identifier.get("value"), str)
                    and (system is None or identifier.get("system") == system)):  # fmt: skip
                return identifier["value"], f".resolve().identifier[{number}].value"
        return None


def _get(value: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
    return value


def _coding(concept: Any, preferred: Sequence[str] = ()) -> tuple[dict[str, str], int] | None:
    """A CodeableConcept's code and system, as the project names them, from its first coding of a
    ``preferred`` system, else its first coding; and that coding's index."""
    codings = _get(concept, "coding")
    if not isinstance(codings, list) or not codings:
        return None
    chosen = 0
    for number, coding in enumerate(codings):
        if isinstance(coding, dict) and SYSTEMS.get(str(coding.get("system"))) in preferred:
            chosen = number
            break
    coding = codings[chosen] if isinstance(codings[chosen], dict) else {}
    system = str(coding.get("system", ""))
    name = SYSTEMS.get(system) or system.rstrip("/").rsplit("/", 1)[-1][:32]
    return {"code": str(coding.get("code", "")), "system": name}, chosen


def _date(value: Any) -> Any:
    """A FHIR date or dateTime's date (YYYY-MM-DD), or the value as it is when it is not one."""
    return value[:10] if isinstance(value, str) and len(value) >= 10 and value[4] == "-" else value


def _instant(value: Any) -> Any:
    """A FHIR dateTime as the schemas' datetime: a date alone is midnight UTC."""
    if isinstance(value, str) and len(value) == 10:
        return f"{value}T00:00:00Z"
    return value


def _patient(resource: dict[str, Any], key: str, resolve: _Resolver, root: str,
             positions: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    patient = resolve(resource.get(key))
    found: dict[str, Any] = {}
    where = f"{root}.{key}.resolve()"
    positions["patient"] = f"{root}.{key}"
    positions["patient.birth_date"], positions["patient.sex"] = f"{where}.birthDate", f"{where}.gender"
    if patient is not None:
        if "birthDate" in patient:
            found["birth_date"] = _date(patient["birthDate"])
        if "gender" in patient:
            found["sex"] = _GENDER.get(patient["gender"], "U")
    return found


def _money(value: Any) -> Any:
    """A FHIR decimal (Money.value) as the schemas' money: a decimal string with two decimals (``125.50``).

    orjson reads a JSON number with a fraction or an exponent as a binary float. A decimal of at most 15
    significant digits comes back exactly from its float's ``repr`` (the shortest text that reads back to the
    same float), and money has at most 12 (10 digits, 2 decimals): ``Decimal(repr(value))`` is the amount as
    written, never the float's binary expansion (0.1 stays 0.1, 125.50 is 125.5, 1e2 is 100). An amount with
    more than two decimals, a negative or one of more than 10 digits is kept as it is, unrounded, for the schema
    to refuse at its field; a value that is no JSON number is left as it came."""
    return _cents(Decimal(repr(value))) if _is_number(value) else value


def _cents(amount: Decimal) -> str:
    if not amount.is_finite():
        return str(amount)
    exponent = amount.normalize().as_tuple().exponent
    return f"{amount:.2f}" if isinstance(exponent, int) and exponent >= -2 else format(amount, "f")


def _line_charge(item: dict[str, Any], where: str) -> tuple[str, str] | None:
    """An item's charge and its FHIRPath: ``net``, else ``unitPrice`` times ``quantity`` (1 when absent) and
    ``factor`` (1 when absent), as FHIR defines net."""
    net = _get(item, "net", "value")
    if net is not None:
        return _money(net), f"{where}.net.value"
    price = _get(item, "unitPrice", "value")
    if price is None:
        return None
    factors = [value for value in (_get(item, "quantity", "value"), item.get("factor")) if value is not None]
    if not all(_is_number(value) for value in (price, *factors)):
        return _money(price), f"{where}.unitPrice.value"  # not numbers: the price as it came, for the schema
    total = Decimal(repr(price))
    for factor in factors:
        total *= Decimal(repr(factor))
    return _cents(total), f"{where}.unitPrice.value"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _place_of_service(concept: Any, where: str) -> tuple[str, str] | None:
    """The CMS place of service code of a CodeableConcept (its coding of CMS's POS code system) and its
    FHIRPath."""
    for number, coding in enumerate(_each(_get(concept, "coding"))):
        if isinstance(coding, dict) and _uri(coding.get("system")) == POS_URI and isinstance(coding.get("code"), str):
            return coding["code"], f"{where}.coding[{number}].code"
    return None


def _each(value: Any) -> list[Any]:
    """A FHIR list as the body has it, or nothing when it is not a list."""
    return value if isinstance(value, list) else []


def _uri(system: Any) -> str:
    """A code system URI without its scheme, a trailing ``.html`` or ``/`` (CARIN's POS URI has had each)."""
    text = str(system).split("://", 1)[-1]
    return text.removesuffix("/").removesuffix(".html")


def _codes(concept: Any) -> list[tuple[int, str]]:
    """The codes of a CodeableConcept's codings, each with its coding's index."""
    return [(number, coding["code"]) for number, coding in enumerate(_each(_get(concept, "coding")))
            if isinstance(coding, dict) and isinstance(coding.get("code"), str)]  # fmt: skip


def _typed_identifier(resource: Any, types: frozenset[str]) -> tuple[str, int] | None:
    """The first identifier of ``resource`` whose type (v2-0203) is one of ``types``, and its index."""
    for number, identifier in enumerate(_each(_get(resource, "identifier"))):
        if (isinstance(identifier, dict) and isinstance(identifier.get("value"), str)
                and any(code in types for _, code in _codes(identifier.get("type")))):  # fmt: skip
            return identifier["value"], number
    return None


def _member(coverage: tuple[dict[str, Any], str] | None, patient: tuple[Any, str], resolve: _Resolver,
            positions: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """Who is covered, from a Coverage (and its FHIRPath): the member id is ``subscriberId``, else a Coverage
    identifier of type MB/MI (CARIN's memberid), else one of the patient's; the patient's relationship to the
    subscriber from ``relationship``; the payer's id from the ``payor``'s identifier."""
    member: dict[str, Any] = {}
    resource, where = coverage if coverage is not None else (None, "")
    if coverage is not None:
        positions["member"] = positions["member.id"] = f"{where}.subscriberId"
    if isinstance(_get(resource, "subscriberId"), str):
        member["id"] = resource["subscriberId"]  # type: ignore[index]
    elif (found := _typed_identifier(resource, MEMBER_ID_TYPES)) is not None:
        member["id"], positions["member.id"] = found[0], f"{where}.identifier[{found[1]}].value"
    elif (found := _typed_identifier(patient[0], MEMBER_ID_TYPES)) is not None:
        member["id"], positions["member.id"] = found[0], f"{patient[1]}.identifier[{found[1]}].value"
    for number, code in _codes(_get(resource, "relationship")):
        member["relationship"] = RELATIONSHIPS.get(code, "unknown")
        positions["member.relationship"] = f"{where}.relationship.coding[{number}].code"
        break
    payor = _get(resource, "payor", 0)
    payer = resolve.identifier(payor, None) if payor is not None else None
    if payer is not None:
        member["payer_id"], positions["member.payer_id"] = payer[0], f"{where}.payor[0]{payer[1]}"
    return member


class _CareTeam:
    """A Claim's careTeam: who rendered the services (role ``primary``, or CARIN's ``rendering``; else the member
    marked ``responsible``) and who referred the patient (CARIN's role ``referring``), with their NPIs."""

    def __init__(self, claim: dict[str, Any], root: str, resolve: _Resolver) -> None:
        self.root, self.resolve = root, resolve
        self.members = [(number, member) for number, member in enumerate(_each(claim.get("careTeam")))
                        if isinstance(member, dict)]  # fmt: skip
        self.renderer = self._first(self.members, RENDERING_ROLES, responsible=True)

    @staticmethod
    def _first(members: list[tuple[int, dict[str, Any]]], roles: frozenset[str], responsible: bool = False) -> Any:
        """The index of the first member with one of ``roles``, else (``responsible``) the first marked
        responsible; None when there is none."""
        for number, member in members:
            if any(code in roles for _, code in _codes(member.get("role"))):
                return number
        if responsible:
            return next((number for number, member in members if member.get("responsible") is True), None)
        return None

    def npi(self, number: int) -> tuple[dict[str, str], str]:
        """The provider of careTeam ``number`` as the schemas' provider, and the FHIRPath of its NPI: no NPI
        gives a provider without one, for the schema to name."""
        member = dict(self.members)[number]
        found = self.resolve.identifier(member.get("provider"))
        where = f"{self.root}.careTeam[{number}].provider"
        return ({"npi": found[0]}, where + found[1]) if found else ({}, where)

    def rendering(self) -> tuple[dict[str, str], str] | None:
        """The claim's rendering provider."""
        return self.npi(self.renderer) if self.renderer is not None else None

    def item_rendering(self, sequences: Any) -> tuple[dict[str, str], str] | None:
        """An item's rendering provider, of the members its ``careTeamSequence`` names, when it is another member
        than the claim's (as 837P 2420A is, beside 2310B)."""
        if not isinstance(sequences, list):
            return None
        named = [(number, member) for number, member in self.members if member.get("sequence") in sequences]
        own = self._first(named, RENDERING_ROLES, responsible=True)
        return self.npi(own) if own is not None and own != self.renderer else None

    def referring(self) -> tuple[dict[str, str], str] | None:
        number = self._first(self.members, REFERRING_ROLES)
        return self.npi(number) if number is not None else None


def _payer_fields(claim: dict[str, Any], root: str, resolve: _Resolver, info: dict[str, tuple[int, Any]],
                  team: _CareTeam, positions: dict[str, str], event: dict[str, Any]) -> None:  # fmt: skip
    """What a payer's front end reads beside the codes: the member, the frequency and the claim it replaces,
    the total charge, the rendering and referring providers, the prior authorization and the facility type."""
    insurances = [(n, item) for n, item in enumerate(_each(claim.get("insurance"))) if isinstance(item, dict)]
    focal = next(((n, item) for n, item in insurances if item.get("focal") is True), None)
    number, insurance = focal or (insurances[0] if insurances else (None, None))
    coverage = None
    if insurance is not None:
        coverage_where = f"{root}.insurance[{number}].coverage"
        target = resolve(insurance.get("coverage"))
        coverage = (target if target is not None else {}, f"{coverage_where}.resolve()")
    positions["member"] = positions["member.id"] = f"{root}.insurance"
    member = _member(coverage, (resolve(claim.get("patient")), f"{root}.patient.resolve()"), resolve, positions)
    if "payer_id" not in member and member:
        insurer = resolve.identifier(claim.get("insurer"), None)
        if insurer is not None:
            member["payer_id"], positions["member.payer_id"] = insurer[0], f"{root}.insurer{insurer[1]}"
    if member:
        event["member"] = member
    authorization = _get(insurance, "preAuthRef", 0)
    if authorization is not None:
        event["prior_authorization"] = authorization
        positions["prior_authorization"] = f"{root}.insurance[{number}].preAuthRef[0]"
    _frequency(claim, root, info, positions, event)
    total = _get(claim, "total", "value")
    if total is not None:
        event["charge"] = _money(total)
    positions["charge"] = f"{root}.total.value"
    rendering = team.rendering()
    if rendering is not None:
        event["rendering_provider"], positions["rendering_provider.npi"] = rendering
        positions["rendering_provider"] = positions["rendering_provider.npi"]
    referring = _referral(claim, root, resolve) or team.referring()
    if referring is not None:
        event["referring_provider"], positions["referring_provider.npi"] = referring
        positions["referring_provider"] = positions["referring_provider.npi"]


def _type_of_bill(root: str, info: dict[str, tuple[int, Any]]) -> tuple[str, str] | None:
    """CARIN's ``typeofbill`` supportingInfo as its three digits (``0111`` is 111) and its FHIRPath; None when
    there is none or it is not three digits."""
    if "typeofbill" not in info:
        return None
    number, item = info["typeofbill"]
    bill = _get(item, "code", "coding", 0, "code")
    digits = bill[1:] if isinstance(bill, str) and len(bill) == 4 and bill[0] == "0" else bill
    if not (isinstance(digits, str) and len(digits) == 3 and digits.isdigit()):
        return None
    return digits, f"{root}.supportingInfo[{number}].code.coding[0].code"


def _referral(claim: dict[str, Any], root: str, resolve: _Resolver) -> tuple[dict[str, str], str] | None:
    """The referring provider of ``Claim.referral``: the requester of the ServiceRequest it names."""
    request = resolve(claim.get("referral"))
    if request is None or request.get("resourceType") != "ServiceRequest":
        return None
    where = f"{root}.referral.resolve().requester"
    found = resolve.identifier(request.get("requester"))
    return ({"npi": found[0]}, where + found[1]) if found else ({}, where)


def _frequency(claim: dict[str, Any], root: str, info: dict[str, tuple[int, Any]], positions: dict[str, str],
               event: dict[str, Any]) -> None:  # fmt: skip
    """A void (``status`` cancelled), an institutional claim's type of bill of frequency 7 (replacement) or 8
    (void), or a replacement (a ``related`` claim of relationship ``prior``, or of none), in that order; and the
    payer's claim control number of the claim it names (that related claim's ``claim.identifier``). The type of
    bill also gives the facility type (its first two digits). A related claim of relationship ``associated`` is
    not one it replaces."""
    prior = None
    for number, related in enumerate(_each(claim.get("related"))):
        if not isinstance(related, dict):
            continue
        codes = [code for _, code in _codes(related.get("relationship"))]
        if "prior" in codes or (not codes and _get(related, "claim", "identifier", "value") is not None):
            prior = number, related
            break
    bill = _type_of_bill(root, info)
    if bill is not None:
        event["facility_type"], positions["facility_type"] = bill[0][:2], bill[1]
    if claim.get("status") == "cancelled":
        event["frequency"], positions["frequency"] = "void", f"{root}.status"
    elif bill is not None and bill[0][2] in BILL_FREQUENCIES:
        event["frequency"], positions["frequency"] = BILL_FREQUENCIES[bill[0][2]], bill[1]
    elif prior is not None:
        where = f"{root}.related[{prior[0]}]"
        event["frequency"] = "replacement"
        positions["frequency"] = f"{where}.relationship" if "relationship" in prior[1] else where
    if event.get("frequency") in ("replacement", "void"):
        positions["replaces"] = f"{root}.related"
        if prior is not None:
            positions["replaces"] = f"{root}.related[{prior[0]}].claim.identifier.value"
            replaced = _get(prior[1], "claim", "identifier", "value")
            if replaced is not None:
                event["replaces"] = replaced


def _claim(claim: dict[str, Any], resolve: _Resolver) -> FhirEntry:
    root = "Claim"
    positions: dict[str, str] = {}
    event: dict[str, Any] = {}
    identifier = _get(claim, "identifier", 0, "value")
    event["claim_id"] = identifier if identifier is not None else claim.get("id")
    positions["claim_id"] = f"{root}.identifier[0].value" if identifier is not None else f"{root}.id"
    info = {str(_get(item, "category", "coding", 0, "code")): (number, item)
            for number, item in enumerate(claim.get("supportingInfo", ()) or ()) if isinstance(item, dict)}  # fmt: skip
    kind = _get(claim, "type", "coding", 0, "code")
    positions["claim_type"] = f"{root}.type.coding[0].code"
    if kind == "institutional":
        bill = _get(info.get("typeofbill", (0, None))[1], "code", "coding", 0, "code")
        event["claim_type"] = (
            "inpatient" if isinstance(bill, str) and bill.lstrip("0").startswith("11") else "outpatient"
        )
        if "typeofbill" in info:
            positions["claim_type"] = f"{root}.supportingInfo[{info['typeofbill'][0]}].code.coding[0].code"
    else:
        event["claim_type"] = "professional"
    submitter = resolve.identifier(claim.get("enterer"), None)
    key = "enterer" if submitter else "provider"
    submitter = submitter or resolve.identifier(claim.get("provider"), None)
    event["submitter_id"] = submitter[0] if submitter else None
    positions["submitter_id"] = f"{root}.{key}" + (submitter[1] if submitter else "")
    event["submitted_at"] = _instant(claim.get("created"))
    positions["submitted_at"] = f"{root}.created"
    event["patient"] = _patient(claim, "patient", resolve, root, positions)
    npi = resolve.identifier(claim.get("provider"))
    event["billing_provider"] = {"npi": npi[0]} if npi else {}
    positions["billing_provider.npi"] = f"{root}.provider" + (npi[1] if npi else "")
    event["diagnoses"], sequences = _diagnoses(claim, root, positions, event)
    team = _CareTeam(claim, root, resolve)
    event["lines"], place = _lines(claim, root, positions, sequences, team)
    if place is not None:
        event["place_of_service"] = place
    _payer_fields(claim, root, resolve, info, team, positions, event)
    if event["claim_type"] == "inpatient":
        _stay(claim, root, info, positions, event)
    event = {key: value for key, value in event.items() if value is not None}
    return FhirEntry("claim", event, positions, claim)


def _diagnoses(claim: dict[str, Any], root: str, positions: dict[str, str],
               event: dict[str, Any]) -> tuple[list[dict[str, str]], dict[Any, int]]:  # fmt: skip
    """The claim's diagnoses (principal first, then by sequence) and, for each diagnosis sequence, its
    1-based place in that list (what a line's diagnosisSequence points at)."""
    listed = []
    for number, diagnosis in enumerate(claim.get("diagnosis", ()) or ()):
        if not isinstance(diagnosis, dict):
            continue
        types = {str(_get(kind, "coding", 0, "code")) for kind in diagnosis.get("type", ()) or ()}
        coded = _coding(diagnosis.get("diagnosisCodeableConcept"), (ICD10CM,))
        where = f"{root}.diagnosis[{number}].diagnosisCodeableConcept"
        entry = (coded, where, diagnosis.get("sequence"))
        if "admitting" in types:
            if coded is not None:
                event["admitting_diagnosis"] = coded[0]
                positions["admitting_diagnosis.code"] = f"{where}.coding[{coded[1]}].code"
                positions["admitting_diagnosis.system"] = f"{where}.coding[{coded[1]}].system"
            continue
        sequence = diagnosis.get("sequence")
        rank = (0 if "principal" in types else 1, sequence if isinstance(sequence, int) else number)
        listed.append((rank, entry))
    listed.sort(key=lambda item: item[0])
    diagnoses, sequences = [], {}
    for index, (_, (coded, where, sequence)) in enumerate(listed):
        sequences[sequence] = index + 1
        chosen = coded[1] if coded else 0
        positions[f"diagnoses[{index}]"] = positions[f"diagnoses[{index}].code"] = f"{where}.coding[{chosen}].code"
        positions[f"diagnoses[{index}].system"] = f"{where}.coding[{chosen}].system"
        diagnoses.append(coded[0] if coded else {})
    positions["diagnoses"] = f"{root}.diagnosis"
    return diagnoses, sequences


def _lines(claim: dict[str, Any], root: str, positions: dict[str, str], sequences: dict[Any, int],
           team: _CareTeam) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    lines, places = [], []
    for number, item in enumerate(claim.get("item", ()) or ()):
        if not isinstance(item, dict):
            continue
        where, index = f"{root}.item[{number}]", len(lines)
        prefix = f"lines[{index}]"
        line: dict[str, Any] = {"line_number": item.get("sequence")}
        positions[prefix] = positions[f"{prefix}.line_number"] = f"{where}.sequence"
        revenue = _get(item, "revenue", "coding", 0, "code")
        if revenue is not None:
            line["revenue_code"] = revenue
            positions[f"{prefix}.revenue_code"] = f"{where}.revenue.coding[0].code"
        coded = _coding(item.get("productOrService"), (CPT, HCPCS))
        chosen = coded[1] if coded else 0
        line.update(coded[0] if coded else {})
        positions[f"{prefix}.code"] = f"{where}.productOrService.coding[{chosen}].code"
        positions[f"{prefix}.system"] = f"{where}.productOrService.coding[{chosen}].system"
        modifiers = [_get(modifier, "coding", 0, "code") for modifier in item.get("modifier", ()) or ()]
        line["modifiers"] = [modifier for modifier in modifiers if modifier is not None]
        positions[f"{prefix}.modifiers"] = f"{where}.modifier"
        for j in range(len(modifiers)):
            positions[f"{prefix}.modifiers[{j}]"] = f"{where}.modifier[{j}].coding[0].code"
        quantity = _get(item, "quantity", "value")
        line["units"] = quantity if quantity is not None else 1
        positions[f"{prefix}.units"] = f"{where}.quantity.value"
        if "servicedDate" in item:
            line["service_date"] = _date(item["servicedDate"])
            positions[f"{prefix}.service_date"] = f"{where}.servicedDate"
        elif _get(item, "servicedPeriod", "start") is not None:
            line["service_date"] = _date(item["servicedPeriod"]["start"])
            positions[f"{prefix}.service_date"] = f"{where}.servicedPeriod.start"
        pointers = item.get("diagnosisSequence", ()) or ()
        line["diagnosis_pointers"] = [sequences.get(pointer, pointer) for pointer in pointers]
        positions[f"{prefix}.diagnosis_pointers"] = f"{where}.diagnosisSequence"
        for j in range(len(pointers)):
            positions[f"{prefix}.diagnosis_pointers[{j}]"] = f"{where}.diagnosisSequence[{j}]"
        charge = _line_charge(item, where)
        if charge is not None:
            line["charge"], positions[f"{prefix}.charge"] = charge
        places.append(_place_of_service(item.get("locationCodeableConcept"), f"{where}.locationCodeableConcept"))
        rendering = team.item_rendering(item.get("careTeamSequence"))
        if rendering is not None:
            line["rendering_provider"], positions[f"{prefix}.rendering_provider.npi"] = rendering
            positions[f"{prefix}.rendering_provider"] = positions[f"{prefix}.rendering_provider.npi"]
        lines.append(line)
    return lines, _places(lines, places, positions)


def _places(lines: list[dict[str, Any]], places: list[tuple[str, str] | None],
            positions: dict[str, str]) -> str | None:  # fmt: skip
    """R4 has no claim-level place of service: when every item names the same one, it is the claim's (as an
    837P's CLM05-1, which its lines do not repeat); otherwise each item that names one keeps its own (SV105)."""
    codes = {place[0] for place in places if place is not None}
    if lines and len(codes) == 1 and None not in places:
        code, positions["place_of_service"] = places[0]  # type: ignore[misc]
        return code
    for index, (line, place) in enumerate(zip(lines, places, strict=True)):
        if place is not None:
            line["place_of_service"], positions[f"lines[{index}].place_of_service"] = place
    return None


def _stay(claim: dict[str, Any], root: str, info: dict[str, tuple[int, Any]], positions: dict[str, str],
          event: dict[str, Any]) -> None:  # fmt: skip
    if "admissionperiod" in info:
        number, item = info["admissionperiod"]
        event["admission_date"] = _date(_get(item, "timingPeriod", "start"))
        event["discharge_date"] = _date(_get(item, "timingPeriod", "end"))
        positions["admission_date"] = f"{root}.supportingInfo[{number}].timingPeriod.start"
        positions["discharge_date"] = f"{root}.supportingInfo[{number}].timingPeriod.end"
    if "discharge-status" in info:
        number, item = info["discharge-status"]
        event["discharge_status"] = _get(item, "code", "coding", 0, "code")
        positions["discharge_status"] = f"{root}.supportingInfo[{number}].code.coding[0].code"
    procedures = []
    for number, procedure in enumerate(claim.get("procedure", ()) or ()):
        coded = _coding(_get(procedure, "procedureCodeableConcept"), (ICD10PCS,))
        where, index = f"{root}.procedure[{number}]", len(procedures)
        chosen = coded[1] if coded else 0
        positions[f"procedures[{index}]"] = positions[f"procedures[{index}].code"] = (
            f"{where}.procedureCodeableConcept.coding[{chosen}].code")  # fmt: skip
        positions[f"procedures[{index}].system"] = f"{where}.procedureCodeableConcept.coding[{chosen}].system"
        positions[f"procedures[{index}].date"] = f"{where}.date"
        procedures.append({**(coded[0] if coded else {}), "date": _date(_get(procedure, "date"))})
    event["procedures"] = procedures
    event.setdefault("lines", [])


def _order(requests: list[tuple[dict[str, Any], str]], resolve: _Resolver) -> FhirEntry:
    first, root = requests[0]
    positions: dict[str, str] = {}
    requisition = _get(first, "requisition", "value")
    placer = next((number for number, identifier in enumerate(first.get("identifier", ()) or ())
                   if _get(identifier, "type", "coding", 0, "code") == "PLAC"), None)  # fmt: skip
    if requisition is not None:
        order_id, positions["order_id"] = requisition, f"{root}.requisition.value"
    elif placer is not None:
        order_id, positions["order_id"] = first["identifier"][placer].get("value"), f"{root}.identifier[{placer}].value"
    elif _get(first, "identifier", 0, "value") is not None:
        order_id, positions["order_id"] = first["identifier"][0]["value"], f"{root}.identifier[0].value"
    else:
        order_id, positions["order_id"] = first.get("id"), f"{root}.id"
    lab = resolve.identifier(_get(first, "performer", 0), None)
    positions["lab_id"] = f"{root}.performer[0]" + (lab[1] if lab else "")
    npi = resolve.identifier(first.get("requester"))
    positions["ordering_provider.npi"] = f"{root}.requester" + (npi[1] if npi else "")
    event: dict[str, Any] = {
        "order_id": order_id,
        "lab_id": lab[0] if lab else None,
        "ordering_provider": {"npi": npi[0]} if npi else {},
        "patient": _patient(first, "subject", resolve, root, positions),
    }
    member = _order_member(first, root, resolve, positions)
    if member is not None:
        event["member"] = member
    collected, where = _collection(first, root, resolve)
    if collected is not None:
        event["collection_date"] = _date(collected)
    positions["collection_date"] = where
    tests, diagnoses = [], []
    for request, request_root in requests:
        coded = _coding(request.get("code"), (LOINC, CPT, HCPCS))
        chosen = coded[1] if coded else 0
        prefix = f"tests[{len(tests)}]"
        positions[prefix] = positions[f"{prefix}.code"] = f"{request_root}.code.coding[{chosen}].code"
        positions[f"{prefix}.system"] = f"{request_root}.code.coding[{chosen}].system"
        tests.append(coded[0] if coded else {})
        for number, reason in enumerate(request.get("reasonCode", ()) or ()):
            found = _coding(reason, (ICD10CM,))
            if found is None or found[0] in diagnoses:
                continue
            prefix = f"diagnoses[{len(diagnoses)}]"
            positions[prefix] = positions[f"{prefix}.code"] = (
                f"{request_root}.reasonCode[{number}].coding[{found[1]}].code"
            )
            positions[f"{prefix}.system"] = f"{request_root}.reasonCode[{number}].coding[{found[1]}].system"
            diagnoses.append(found[0])
    positions["tests"], positions["diagnoses"] = f"{root}.code", f"{root}.reasonCode"
    event["tests"], event["diagnoses"] = tests, diagnoses
    event = {key: value for key, value in event.items() if value is not None}
    return FhirEntry("order", event, positions, first)


def _order_member(request: dict[str, Any], root: str, resolve: _Resolver,
                  positions: dict[str, str]) -> dict[str, Any] | None:  # fmt: skip
    """An order's member (optional): from the first Coverage of ``insurance``, else the subject's identifier of
    type MB/MI; None when neither gives a member id."""
    coverage = None
    for number, reference in enumerate(_each(request.get("insurance"))):
        target = resolve(reference)
        if target is not None and target.get("resourceType") == "Coverage":
            coverage = target, f"{root}.insurance[{number}].resolve()"
            break
    found: dict[str, str] = {}
    member = _member(coverage, (resolve(request.get("subject")), f"{root}.subject.resolve()"), resolve, found)
    if "id" not in member:
        return None
    found.setdefault("member", found["member.id"])
    positions.update(found)
    return member


def _collection(request: dict[str, Any], root: str, resolve: _Resolver) -> tuple[Any, str]:
    if "occurrenceDateTime" in request:
        return request["occurrenceDateTime"], f"{root}.occurrenceDateTime"
    if _get(request, "occurrencePeriod", "start") is not None:
        return request["occurrencePeriod"]["start"], f"{root}.occurrencePeriod.start"
    specimen = resolve(_get(request, "specimen", 0))
    if _get(specimen, "collection", "collectedDateTime") is not None:
        return specimen["collection"]["collectedDateTime"], f"{root}.specimen[0].resolve().collection.collectedDateTime"
    return None, f"{root}.occurrenceDateTime"


# Answers.


def build_fhir_response(parsed: ParsedFhir, decisions: Sequence[dict[str, Any]], *, created_at: datetime) -> dict:
    """The answer to ``parsed``: ``decisions`` are the decision records of its entries, in order. A
    ClaimResponse for a Claim, an OperationOutcome for a ServiceRequest, a collection Bundle of them for a
    Bundle; an OperationOutcome with a fatal issue for a body that could not be read."""
    if parsed.error is not None:
        return operation_outcome_for_error(parsed.error)
    if len(decisions) != len(parsed.entries):
        raise ValueError(f"{len(decisions)} decisions for {len(parsed.entries)} entries")
    answers = [build_claim_response(entry, decision, created_at=created_at) if entry.kind == "claim"
               else build_operation_outcome(entry, decision)
               for entry, decision in zip(parsed.entries, decisions, strict=True)]  # fmt: skip
    if not parsed.bundle:
        return answers[0]
    return {"resourceType": "Bundle", "type": "collection", "timestamp": _timestamp(created_at),
            "entry": [{"resource": answer} for answer in answers]}  # fmt: skip


def build_claim_response(entry: FhirEntry, decision: dict[str, Any], *, created_at: datetime) -> dict[str, Any]:
    """The ClaimResponse (R4) to one Claim's decision record."""
    claim, outcome = entry.resource, decision["outcome"]
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "status": "active",
        "type": claim.get("type") or {"coding": [{"system": CLAIM_TYPE, "code": "professional"}]},
        "use": "claim",
        "patient": _portable(claim.get("patient"), claim),
        "created": _timestamp(created_at),
        "insurer": claim.get("insurer") or {"display": "unknown"},
        "outcome": {"accepted": "complete", "needs_review": "queued", "returned": "error"}[outcome],
        "disposition": _disposition(decision),
    }
    if isinstance(decision.get("claim_control_number"), str):
        response["identifier"] = [{"system": CLAIM_CONTROL_NUMBER_SYSTEM, "value": decision["claim_control_number"]}]
    if isinstance(claim.get("id"), str):
        response["request"] = {"reference": f"Claim/{claim['id']}"}
    elif isinstance(_get(claim, "identifier", 0), dict):
        response["request"] = {"identifier": claim["identifier"][0]}
    items = _items(entry, decision) if outcome != "returned" else []  # a returned claim's lines are not adjudicated
    if items:
        response["item"] = items
    errors, notes = [], []
    for reason in decision["reasons"]:
        if reason["outcome"] == "returned" and outcome == "returned":
            errors.append(_claim_error(entry, reason))
        elif reason["outcome"] == "needs_review":
            notes.append({"number": len(notes) + 1, "type": "display", "text": reason["message"]})
    if errors:
        response["error"] = errors
    if notes:
        response["processNote"] = notes
    return response


def _portable(reference: Any, claim: dict[str, Any]) -> dict[str, Any]:
    """A Reference that means the same outside the Claim: a contained resource (``#patient``) becomes its
    first identifier, since the ClaimResponse does not contain it."""
    if not isinstance(reference, dict):
        return {"display": "unknown"}
    target = reference.get("reference")
    if isinstance(target, str) and target.startswith("#"):
        contained = _Resolver(claim, {})(reference)
        identifier = _get(contained, "identifier", 0)
        return {"identifier": identifier} if isinstance(identifier, dict) else {"display": "unknown"}
    return reference


def _disposition(decision: dict[str, Any]) -> str:
    outcome, count = decision["outcome"], len(decision["reasons"])
    if outcome == "accepted":
        denied = decision.get("lines_denied")
        return f"Accepted; lines denied: {', '.join(map(str, denied))}" if denied else "Accepted"
    if outcome == "needs_review":
        return f"Held for review: {count} reason(s)"
    return f"Returned: {count} reason(s) to correct"


def _claim_error(entry: FhirEntry, reason: dict[str, Any]) -> dict[str, Any]:
    stc = reason["stc"]
    error: dict[str, Any] = {"code": {
        "coding": [{"system": RULES_SYSTEM, "code": reason["id"]}, {"system": X12_CLAIM_STATUS, "code": stc["status"]}],
        "text": reason["message"],
    }}  # fmt: skip
    sequence = _item_sequence(entry, reason.get("line_number"))
    if sequence is not None:
        error["itemSequence"] = sequence
    expression = position_of(entry.positions, reason["field"])
    if expression is not None:
        error["extension"] = [{"url": ERROR_EXPRESSION, "valueString": expression}]
    return error


def _item_sequence(entry: FhirEntry, line_number: Any) -> int | None:
    for item in entry.resource.get("item", ()) or ():
        if isinstance(item, dict) and item.get("sequence") == line_number and isinstance(line_number, int):
            return line_number
    return None


def _items(entry: FhirEntry, decision: dict[str, Any]) -> list[dict[str, Any]]:
    """An item per line of the claim: eligible, or denied with its CARC and RARC as the reason."""
    denied: dict[Any, dict[str, Any]] = {}
    for reason in decision["reasons"]:
        if reason["outcome"] == "denied":
            denied.setdefault(reason.get("line_number"), reason)
    items = []
    for line in entry.event.get("lines", ()):
        sequence = line.get("line_number")
        if not isinstance(sequence, int) or sequence < 1:
            continue
        adjudication: dict[str, Any] = {"category": {"coding": [{"system": ADJUDICATION, "code": "eligible"}]}}
        reason = denied.get(sequence)
        if reason is not None:
            codings = [{"system": X12_CARC, "code": reason["carc"]}] if reason.get("carc") else []
            codings += [{"system": X12_RARC, "code": reason["rarc"]}] if reason.get("rarc") else []
            adjudication["reason"] = {"coding": codings, "text": reason["message"]} if codings else {
                "text": reason["message"]}  # fmt: skip
        items.append({"itemSequence": sequence, "adjudication": [adjudication]})
    return items


def build_operation_outcome(entry: FhirEntry, decision: dict[str, Any]) -> dict[str, Any]:
    """The OperationOutcome (R4) to one order's decision record: an issue per reason, or one informational
    issue when the order is accepted."""
    issues = []
    for reason in decision["reasons"]:
        hl7 = reason["hl7"]
        issue: dict[str, Any] = {
            "severity": "error" if reason["outcome"] == "returned" else "warning",
            "code": ISSUE_TYPE.get(hl7["condition"], "business-rule"),
            "details": {"coding": [{"system": RULES_SYSTEM, "code": reason["id"]},
                                   {"system": HL7_CONDITION, "code": hl7["condition"]}],
                        "text": reason["message"]},
        }  # fmt: skip
        expression = position_of(entry.positions, reason["field"])
        if expression is not None:
            issue["expression"] = [expression]
        issues.append(issue)
    if not issues:
        order_id = entry.event.get("order_id")
        issues.append({"severity": "information", "code": "informational",
                       "details": {"text": f"Order {order_id} accepted"}})  # fmt: skip
    return {"resourceType": "OperationOutcome", "issue": issues}


def operation_outcome_for_error(error: FhirError) -> dict[str, Any]:
    """The OperationOutcome to a body that could not be read: one fatal issue."""
    issue: dict[str, Any] = {"severity": "fatal", "code": error.code, "diagnostics": error.message}
    if error.expression:
        issue["expression"] = [error.expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
