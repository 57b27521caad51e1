"""The X12 837 health care claim in: 005010X222A1 (837P, professional) and 005010X223A2 (837I, institutional).

``parse_837(raw)`` reads an interchange and gives, per claim (2300 loop), a claim event in the claim schema
and the position of every value it took (``positions``: ``lines[2].code`` → ``2400 SV1-01-2 (segment 41)``),
so a reason on a field names the loop, segment and element the submitter must fix; plus the envelope and
what the 999 and the 277CA answering it need. One interchange may hold many groups, transactions and claims.

What maps where:

- ``claim_id``: CLM01 (the patient control number, which a 277CA echoes in TRN02).
- ``claim_type``: 837P is ``professional``; an 837I is ``inpatient`` for type of bill 11x (CLM05-1 facility
  type 11, the inpatient stay CMS's MCE edits) and ``outpatient`` otherwise (13x hospital outpatient and the
  other institutional bills, whose revenue-code lines the engine checks as outpatient lines).
- ``submitter_id``: 1000A NM109; ``submitted_at``: BHT04 and BHT05 (X12 carries no time zone: read as UTC).
- ``patient``: DMG of 2010CA when the claim sits under a patient level (HL 23), else of 2010BA.
- ``member``: ``id`` 2010BA NM1*IL NM109 (a subscriber level without one gives a claim without ``member``,
  which the engine returns); ``relationship`` PAT01 of the patient level (01 spouse, 19 child, 20 employee,
  53 life_partner, 21 unknown, any other code other), else SBR02 18 ``self``; ``payer_id`` 2010BB NM1*PR NM109.
- ``billing_provider.npi``: 2010AA NM109; ``rendering_provider.npi``: NM1*82 NM109 of 2310B (837P) or 2310D
  (837I); ``referring_provider.npi``: NM1*DN NM109 of 2310A (837P) or 2310F (837I).
- ``charge``: CLM02, as a decimal string with two decimals (``125.5`` is ``125.50``; an amount the schema
  cannot take, negative or not a number, as written). ``place_of_service`` (837P) or ``facility_type``
  (837I): CLM05-1. ``frequency``: CLM05-3, 7 ``replacement``, 8 ``void``, any other ``original`` (1, the
  default, is left out). ``replaces``: REF*F8; ``prior_authorization``: REF*G1.
- ``diagnoses``: HI, ABK principal first then ABF (and ABN external cause) in order; BK/BF/BN (ICD-9-CM) keep
  their system, which the engine returns; ABJ is the ``admitting_diagnosis``; BBR and BBQ are the stay's
  ICD-10-PCS ``procedures`` with their dates.
- ``lines``: LX01 line number; SV1 (837P: HC code, modifiers, charge SV102, units SV104, place of service
  SV105 where it differs from CLM05-1, pointers SV107) or SV2 (837I: revenue code SV201, HC code SV202,
  charge SV203, units SV205); date of service DTP*472 (an 837I line without one takes the statement's first
  day); ``rendering_provider.npi`` NM1*82 NM109 of 2420A (837P) or 2420C (837I). HC codes of five
  characters ending in a digit, F, T or U are CPT; other HC codes HCPCS. An institutional line with no HCPCS
  code (room and board) carries nothing to check and is left out, though its charge is in CLM02: such a
  claim's event then carries no ``charge`` (its balance cannot be checked from the lines the event holds).
- Inpatient stay: ``admission_date`` DTP*435, ``discharge_date`` the statement's last day (DTP*434),
  ``discharge_status`` CL103.

The reader is this module's own (``x12.py`` splits the segments); it checks what breaks the structure: the
envelopes (a TA1, 999 AK9 or IK5 rejection), unknown segment ids and claims outside a subscriber or patient
level (IK3, rejecting the transaction set, whose claims are then not decided), and notes a date that is not
on the calendar (IK4 code 8: the transaction set is accepted with errors noted, and the engine returns the
claim with ``date.invalid``). Full implementation-guide validation is pyx12's (``x12_validation.py``), off
the hot path: 5 to 8 ms a claim against 60 to 75 µs here (``python -m processor.formats.measure``; pyx12's
reader alone, segments without the map, costs 120 to 220 µs a claim and maps nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processor.code_systems import CPT, HCPCS, ICD10CM, ICD10PCS
from processor.formats.x12 import (
    EnvelopeError,
    InterchangeHeader,
    RawGroup,
    RawInterchange,
    RawTransaction,
    X12Position,
    is_date,
    position,
    read_interchange,
)

ICD9CM = "ICD-9-CM"
PROFESSIONAL_IG = "005010X222A1"
INSTITUTIONAL_IG = "005010X223A2"
SUPPORTED_IGS = frozenset({PROFESSIONAL_IG, "005010X223A1", INSTITUTIONAL_IG, "005010X223A3"})

# HI qualifiers (code list 1270): the diagnosis roles and the procedure codes a claim event carries.
_PRINCIPAL = {"ABK": ICD10CM, "BK": ICD9CM}
_OTHER = {"ABF": ICD10CM, "BF": ICD9CM, "ABN": ICD10CM, "BN": ICD9CM}  # ABN/BN: external cause of injury
_ADMITTING = {"ABJ": ICD10CM, "BJ": ICD9CM}
_PRINCIPAL_PROCEDURE = {"BBR": ICD10PCS, "BR": ICD9CM}
_OTHER_PROCEDURE = {"BBQ": ICD10PCS, "BQ": ICD9CM}

# The segments of the 837P and 837I (both implementation guides); anything else is not in the transaction set.
SEGMENTS_837 = frozenset({
    "AMT", "BHT", "CAS", "CL1", "CLM", "CN1", "CR1", "CR2", "CR3", "CRC", "CTP", "CUR", "DMG", "DTP", "FRM", "HCP",
    "HI", "HL", "K3", "LIN", "LQ", "LX", "MEA", "MIA", "MOA", "N3", "N4", "NM1", "NTE", "OI", "PAT", "PER", "PRV",
    "PS1", "PWK", "QTY", "REF", "SBR", "SE", "ST", "SV1", "SV2", "SV5", "SVD",
})  # fmt: skip
# Data element reference numbers of the dates a note can name (999 IK402).
_DATE_ELEMENTS = {"DTP": "1251", "DMG": "1251", "BHT": "373", "HI": "1251"}


@dataclass(frozen=True, slots=True)
class Party:
    """An organization or person named in an NM1: name and identifier (with its qualifier)."""

    name: str
    id: str
    qualifier: str = "46"
    entity_type: str = "2"  # NM102: 1 person, 2 organization
    first_name: str = ""


@dataclass(frozen=True, slots=True)
class LineSource:
    """A service line as submitted, for the 277CA's 2220D loop."""

    line_number: Any
    procedure: tuple[str, ...]  # SV101 / SV202 components: qualifier, code, modifiers
    charge: str
    units: str
    revenue_code: str
    service_date: str  # CCYYMMDD
    control_number: str  # REF*6R


@dataclass(frozen=True, slots=True)
class ClaimSource:
    """What a 277CA repeats of a claim that the claim event does not carry: the patient's name and member id
    (protected health information: never logged, so kept out of ``repr``), the billing provider, the charge,
    the service dates and the lines."""

    patient: Party = field(repr=False)
    billing_provider: Party
    charge: str
    service_from: str  # CCYYMMDD
    service_to: str
    bill_type: str | None
    clearinghouse_trace: str | None
    lines: tuple[LineSource, ...] = ()
    submitted: str = ""  # BHT04, CCYYMMDD, when on the calendar


@dataclass(frozen=True, slots=True)
class Claim837:
    """One claim of an 837: its event (claim schema), the X12 position of each of its fields, the
    transaction set it came in (ST02) and what the 277CA repeats of it."""

    event: dict[str, Any] = field(repr=False)
    positions: dict[str, X12Position] = field(repr=False)
    transaction: str
    source: ClaimSource = field(repr=False)


@dataclass(frozen=True, slots=True)
class SegmentNote:
    """A 999 IK3 (and its IK4 when an element is named): a segment in error, its loop and the code of what is
    wrong; ``claim_id`` (the CLM01 of the claim it is in) gives the 999's CTX business unit context."""

    segment: str
    ordinal: int
    loop: str | None
    code: str  # IK304
    element: int | None = None
    component: int | None = None
    data_element: str | None = None
    element_code: str | None = None  # IK403
    value: str | None = field(default=None, repr=False)  # IK404: a copy of the bad element
    claim_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Transaction837:
    """An 837 transaction set: its control number (ST02), implementation guide, the submitter (1000A) and
    receiver (1000B), BHT03 (the batch reference a 277CA echoes), its claims, the segment notes of its 999
    and the errors that rejected it (then it has no claims)."""

    control_number: str
    implementation: str
    reference: str
    submitter: Party
    receiver: Party
    claims: tuple[Claim837, ...]
    notes: tuple[SegmentNote, ...] = ()
    errors: tuple[EnvelopeError, ...] = ()

    @property
    def variant(self) -> str:
        return "837P" if self.implementation.startswith("005010X222") else "837I"

    @property
    def acknowledgment(self) -> str:
        """IK501: R rejected, E accepted with errors noted, A accepted."""
        return "R" if self.errors else ("E" if self.notes else "A")


@dataclass(frozen=True, slots=True)
class Group837:
    """A functional group (GS..GE) of 837 transaction sets."""

    functional_id: str
    control_number: str
    version: str
    transactions: tuple[Transaction837, ...]
    errors: tuple[EnvelopeError, ...] = ()

    @property
    def acknowledgment(self) -> str:
        """AK901: R rejected (the group, or every transaction set), P partially accepted, E accepted with
        errors noted, A accepted."""
        codes = [transaction.acknowledgment for transaction in self.transactions]
        if self.errors or not codes or all(code == "R" for code in codes):
            return "R"
        if "R" in codes:
            return "P"
        return "E" if "E" in codes else "A"


@dataclass(frozen=True, slots=True)
class Parsed837:
    """An 837 interchange as read: its ISA (None when unreadable), groups, and the interchange errors a TA1
    reports. ``claims`` are the claims of every accepted transaction set, in order."""

    header: InterchangeHeader | None
    groups: tuple[Group837, ...]
    errors: tuple[EnvelopeError, ...] = ()

    @property
    def claims(self) -> list[Claim837]:
        return [claim for group in self.groups for transaction in group.transactions for claim in transaction.claims]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [claim.event for claim in self.claims]

    @property
    def failure(self) -> str | None:
        """Why (part of) the interchange could not be read, for a dead letter: the first error, which names
        segments, counts and control numbers, never content. None when everything was read."""
        for error in self.errors:
            return f"X12 interchange rejected (TA1 {error.code}): {error.message}"
        for group in self.groups:
            for error in group.errors:
                return f"X12 group {group.control_number} rejected (AK9 {error.code}): {error.message}"
            for transaction in group.transactions:
                for error in transaction.errors:
                    where = f" at {error.segment} (segment {error.ordinal})" if error.ordinal else ""
                    return (f"X12 transaction set {transaction.control_number} rejected ({error.level} error "
                            f"{error.code}){where}: {error.message}")  # fmt: skip
        return None


def parse_837(raw: bytes) -> Parsed837:
    """Read an 837P or 837I interchange into claim events with their positions. Never raises: what breaks
    the structure is in the errors of the interchange, group or transaction set (which then yields no
    claims), for the TA1 / 999 to report."""
    interchange: RawInterchange = read_interchange(raw)
    if interchange.header is None or interchange.errors:  # a TA1 rejects the whole interchange
        return Parsed837(interchange.header, (), tuple(interchange.errors))
    groups = tuple(_read_group(group, interchange) for group in interchange.groups)
    return Parsed837(interchange.header, groups, tuple(interchange.errors))


def _read_group(group: RawGroup, interchange: RawInterchange) -> Group837:
    errors = list(group.errors)
    if group.functional_id != "HC":
        errors.append(EnvelopeError("group", "1", f"functional group {group.functional_id!r} is not HC (claims)"))
    elif group.version not in SUPPORTED_IGS:
        errors.append(EnvelopeError("group", "2", f"version {group.version!r} is not 837P or 837I of 005010"))
    if errors:
        transactions = tuple(_rejected(transaction, []) for transaction in group.transactions)
    else:
        component = interchange.separators.component
        transactions = tuple(_read_transaction(transaction, component) for transaction in group.transactions)
    return Group837(group.functional_id, group.control_number, group.version, transactions, tuple(errors))


def _rejected(raw: RawTransaction, errors: list[EnvelopeError]) -> Transaction837:
    return Transaction837(raw.control_number, raw.implementation, "", Party("", ""), Party("", ""), (), (),
                          tuple(errors or raw.errors))  # fmt: skip


def _read_transaction(raw: RawTransaction, component: str) -> Transaction837:
    errors = list(raw.errors)
    if raw.identifier != "837":
        errors.append(EnvelopeError("transaction", "1", f"transaction set {raw.identifier!r} is not an 837", "ST", 1))
    elif raw.implementation not in SUPPORTED_IGS:
        errors.append(EnvelopeError("transaction", "1", f"implementation {raw.implementation!r} is not supported",
                                    "ST", 1))  # fmt: skip
    if errors:
        return _rejected(raw, errors)
    reader = _Reader(raw, component)
    reader.read()
    if reader.errors:
        return _rejected(raw, reader.errors)
    return Transaction837(raw.control_number, raw.implementation, reader.reference, reader.submitter, reader.receiver,
                          tuple(reader.claims), tuple(reader.notes))  # fmt: skip


@dataclass(slots=True)
class _Person:
    """A subscriber (2010BA) or patient (2010CA) as read so far."""

    loop: str
    name: Party
    birth_date: str = ""
    sex: str = ""
    dmg: int = 0  # ordinal of its DMG segment
    ordinal: int = 0  # ordinal of its NM1 segment (0: the level has none)


_Coded = tuple[dict[str, str], dict[str, X12Position]]  # a code's values and their positions


@dataclass(slots=True)
class _Line:
    values: dict[str, Any]
    positions: dict[str, X12Position]
    source: dict[str, Any]


@dataclass(slots=True)
class _Claim:
    """A claim being read: the CLM and what follows it up to the next HL or the SE."""

    clm: list[str]
    positions: dict[str, X12Position]
    patient: _Person
    subscriber: _Person
    billing: Party
    billing_position: X12Position | None
    principal: _Coded | None = None
    others: list[_Coded] = field(default_factory=list)
    admitting: _Coded | None = None
    principal_procedure: _Coded | None = None
    procedures: list[_Coded] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    statement: tuple[str, str, X12Position] | None = None  # first and last day (CCYYMMDD), where
    admission: tuple[str, X12Position] | None = None
    discharge_status: tuple[str, X12Position] | None = None
    clearinghouse_trace: str | None = None
    member: dict[str, str] = field(default_factory=dict)
    place: str = ""  # CLM05-1: the place of service (837P) or facility type (837I)
    references: dict[str, tuple[str, X12Position]] = field(default_factory=dict)  # replaces, prior_authorization
    providers: dict[str, tuple[str, X12Position]] = field(default_factory=dict)  # rendering_provider, ...


def _get(elements: list[str], index: int) -> str:
    """Element ``index`` (1-based, as X12 numbers them), '' when absent."""
    return elements[index] if index < len(elements) else ""


class _Reader:
    """Walks one 837 transaction set segment by segment, keeping the loop it is in and the claim being read.
    Each handler takes the segment's elements and its ordinal (ST = 1)."""

    def __init__(self, raw: RawTransaction, component: str) -> None:
        self.raw = raw
        self.component = component
        self.professional = raw.implementation.startswith("005010X222")
        self.errors: list[EnvelopeError] = []
        self.notes: list[SegmentNote] = []
        self.claims: list[Claim837] = []
        self.reference = ""
        self.submitted_at = ""
        self.submitted_day = ""
        self.header_positions: dict[str, X12Position] = {}
        self.submitter = Party("", "")
        self.receiver = Party("", "")
        self.loop: str | None = None
        self.level = ""  # HL03 of the current hierarchical level
        self.billing = Party("", "")
        self.billing_position: X12Position | None = None
        self.subscriber: _Person | None = None
        self.patient: _Person | None = None
        self.person: _Person | None = None  # whose DMG comes next
        self.subscriber_hl = 0  # ordinal of the subscriber level's HL
        self.relationship: tuple[str, X12Position] | None = None  # SBR02 of the subscriber level
        self.patient_relationship: tuple[str, X12Position] | None = None  # PAT01 of the patient level
        self.payer: tuple[str, X12Position] | None = None  # 2010BB NM1*PR NM109
        self.claim: _Claim | None = None
        self.line: _Line | None = None
        self.in_other_subscriber = False  # 2320/2330 loops of a claim

    def read(self) -> None:
        handlers = {
            "BHT": self._bht, "NM1": self._nm1, "HL": self._hl, "SBR": self._sbr, "DMG": self._dmg,
            "PAT": self._pat, "CLM": self._clm, "DTP": self._dtp, "HI": self._hi, "CL1": self._cl1, "REF": self._ref,
            "LX": self._lx, "SV1": self._sv1, "SV2": self._sv2, "SE": self._se,
        }  # fmt: skip
        known = SEGMENTS_837
        for ordinal, elements in enumerate(self.raw.segments[1:], start=2):
            segment_id = elements[0]
            handler = handlers.get(segment_id)
            if handler is not None:
                handler(elements, ordinal)
                if self.errors:
                    return
            elif segment_id not in known:
                self._segment_error(segment_id, ordinal, "6", f"segment {segment_id[:3]!r} is not in the 837")
                return
            elif segment_id == "LIN" or segment_id == "SVD":
                self.loop = "2410" if segment_id == "LIN" else "2430"

    # The hierarchy.

    def _bht(self, elements: list[str], ordinal: int) -> None:
        self.reference = _get(elements, 3)
        day, clock = _get(elements, 4), _get(elements, 5)
        self._check_date("BHT", ordinal, 4, day)
        self.submitted_day = day if is_date(day) else ""
        self.header_positions["submitted_at"] = position((None, "BHT", ordinal, 4, None, "373"))
        hhmmss = (clock + "0000")[:6] if clock.isdigit() and len(clock) >= 4 else "000000"
        self.submitted_at = f"{_date(day)}T{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:6]}Z"

    def _nm1(self, elements: list[str], ordinal: int) -> None:
        entity = _get(elements, 1)
        if self.claim is not None:  # 2310x and 2420x providers; 2330x other payers: not mapped
            self.loop = "2420" if self.line else "2330" if self.in_other_subscriber else "2310"
            self._provider(entity, _get(elements, 9), ordinal)
            return
        party = Party(_get(elements, 3), _get(elements, 9), _get(elements, 8), _get(elements, 2), _get(elements, 4))
        if entity == "41":
            self.loop, self.submitter = "1000A", party
            self.header_positions["submitter_id"] = position(("1000A", "NM1", ordinal, 9, None, "67"))
        elif entity == "40":
            self.loop, self.receiver = "1000B", party
        elif entity == "85":
            self.loop, self.billing = "2010AA", party
            self.billing_position = position(("2010AA", "NM1", ordinal, 9, None, "67"))
        elif entity == "IL":
            self.loop = "2010BA"
            self.subscriber = self.person = _Person("2010BA", party, ordinal=ordinal)
        elif entity == "QC":
            self.loop = "2010CA"
            self.patient = self.person = _Person("2010CA", party, ordinal=ordinal)
        elif entity == "PR":
            self.loop = "2010BB"
            self.payer = (party.id, position(("2010BB", "NM1", ordinal, 9, None, "67")))
        elif entity in ("87", "PE"):
            self.loop = "2010AB" if entity == "87" else "2010AC"

    def _hl(self, elements: list[str], ordinal: int) -> None:
        self._close_claim()
        self.level = _get(elements, 3)
        self.loop = {"20": "2000A", "22": "2000B", "23": "2000C"}.get(self.level, self.loop)
        if self.level == "20":
            self.billing, self.billing_position, self.subscriber, self.patient = Party("", ""), None, None, None
        elif self.level == "22":
            # the subscriber level's member as far as it goes: a level without NM1*IL gives a claim without one
            self.subscriber, self.patient, self.subscriber_hl = _Person("2010BA", Party("", "")), None, ordinal
            self.relationship = self.payer = None
        elif self.level == "23":
            self.patient = None
        self.patient_relationship = None
        self.person = None

    def _sbr(self, elements: list[str], ordinal: int) -> None:
        if self.claim is not None:
            self.in_other_subscriber, self.loop = True, "2320"
        elif self.level == "22":
            self.relationship = (_get(elements, 2), position(("2000B", "SBR", ordinal, 2, None, "1069")))

    def _pat(self, elements: list[str], ordinal: int) -> None:
        if self.claim is None and self.level == "23":  # a PAT of the subscriber level has no PAT01
            self.patient_relationship = (_get(elements, 1), position(("2000C", "PAT", ordinal, 1, None, "1069")))

    def _dmg(self, elements: list[str], ordinal: int) -> None:
        person = self.person
        if person is None or self.claim is not None:
            return
        person.dmg = ordinal
        person.birth_date = _get(elements, 2)
        person.sex = _get(elements, 3)
        self._check_date("DMG", ordinal, 2, person.birth_date)

    # The claim.

    def _clm(self, elements: list[str], ordinal: int) -> None:
        self._close_claim()
        person = self.patient if self.level == "23" else self.subscriber
        if self.subscriber is None or person is None or self.level not in ("22", "23"):
            self._segment_error("CLM", ordinal, "2", "CLM outside a subscriber or patient level")
            return
        self.loop = "2300"
        positions = {"claim_id": position(("2300", "CLM", ordinal, 1, None, "1028"))}
        if self.professional:
            positions["claim_type"] = position((None, "ST", 1, 3, None, "1705"))
        else:
            positions["claim_type"] = position(("2300", "CLM", ordinal, 5, 1, "1331"))
        self.claim = _Claim(elements, positions, person, self.subscriber, self.billing, self.billing_position)
        self.claim.member = self._member(self.subscriber, positions)
        self.claim.place = _get(elements, 5).split(self.component)[0]

    def _member(self, subscriber: _Person, positions: dict[str, X12Position]) -> dict[str, str]:
        """The claim's member: the subscriber's id (2010BA NM109), the patient's relationship to them (PAT01
        of a patient level, else SBR02 18: self) and the payer (2010BB NM109). No member without an id: the
        engine then names ``member`` missing, at the NM1*IL (or the subscriber level's HL, when it has none)."""
        if subscriber.ordinal:
            where = position(("2010BA", "NM1", subscriber.ordinal, 9, None, "67"))
        else:
            where = position(("2000B", "HL", self.subscriber_hl, 3, None, "735"))
        positions["member"] = positions["member.id"] = where
        if self.level == "23":
            said = self.patient_relationship
            relationship = _RELATIONSHIPS.get(said[0], "other") if said and said[0] else ""
        else:
            said = self.relationship
            relationship = "self" if said and said[0] == "18" else ""
        if said:
            positions["member.relationship"] = said[1]
        if self.payer:
            positions["member.payer_id"] = self.payer[1]
        if not subscriber.name.id:
            return {}
        return _present(id=subscriber.name.id, relationship=relationship, payer_id=self.payer[0] if self.payer else "")

    def _provider(self, entity: str, npi: str, ordinal: int) -> None:
        """A rendering or referring provider of the claim (2310x) or a line's rendering provider (2420x)."""
        line = self.line
        if not npi:
            return
        if line is not None:  # 2400 lines follow the 2320/2330 other subscribers' loops
            if entity == "82":
                loop = "2420A" if self.professional else "2420C"
                line.values["rendering_provider"] = {"npi": npi}
                line.positions["rendering_provider.npi"] = position((loop, "NM1", ordinal, 9, None, "67"))
                line.positions["rendering_provider"] = line.positions["rendering_provider.npi"]
        elif (name := _CLAIM_PROVIDERS.get(entity)) is not None and self.claim and not self.in_other_subscriber:
            loop = _PROVIDER_LOOPS[name, self.professional]
            self.claim.providers[name] = (npi, position((loop, "NM1", ordinal, 9, None, "67")))

    def _dtp(self, elements: list[str], ordinal: int) -> None:
        claim = self.claim
        if claim is None:
            return
        qualifier, value, loop = _get(elements, 1), _get(elements, 3), self.loop
        at = position((loop, "DTP", ordinal, 3, None, "1251"))
        if loop == "2400" and qualifier == "472" and self.line is not None:
            first = value.split("-")[0]
            self._check_date("DTP", ordinal, 3, first)
            self.line.values["service_date"] = _date(first)
            self.line.positions["service_date"] = at
            self.line.source["service_date"] = first
        elif loop == "2300" and qualifier in ("434", "472"):  # the statement (837I) or service period
            first, _, last = value.partition("-")
            for day in (first, last) if last else (first,):
                self._check_date("DTP", ordinal, 3, day)
            if qualifier == "434" or claim.statement is None:
                claim.statement = (first, last or first, at)
        elif loop == "2300" and qualifier == "435":
            self._check_date("DTP", ordinal, 3, value[:8])
            claim.admission = (value[:8], at)

    def _cl1(self, elements: list[str], ordinal: int) -> None:
        if self.claim is not None:
            self.claim.discharge_status = (_get(elements, 3), position(("2300", "CL1", ordinal, 3, None, "1352")))

    def _ref(self, elements: list[str], ordinal: int) -> None:
        if self.claim is None:
            return
        qualifier = _get(elements, 1)
        if qualifier == "D9" and self.loop == "2300":
            self.claim.clearinghouse_trace = _get(elements, 2)
        elif (name := _CLAIM_REFERENCES.get(qualifier)) is not None and self.loop == "2300":
            self.claim.references[name] = (_get(elements, 2), position(("2300", "REF", ordinal, 2, None, "127")))
        elif qualifier == "6R" and self.line is not None and self.loop == "2400":
            self.line.source["control_number"] = _get(elements, 2)

    def _hi(self, elements: list[str], ordinal: int) -> None:
        claim = self.claim
        if claim is None:
            return
        for index in range(1, len(elements)):
            parts = elements[index].split(self.component)
            qualifier = parts[0]
            if not qualifier:
                continue
            code = parts[1] if len(parts) > 1 else ""
            where = {"code": position(("2300", "HI", ordinal, index, 2, "1271")),
                     "system": position(("2300", "HI", ordinal, index, 1, "1270"))}  # fmt: skip
            if (system := _PRINCIPAL.get(qualifier)) is not None:
                claim.principal = ({"code": code, "system": system}, where)
            elif (system := _OTHER.get(qualifier)) is not None:
                claim.others.append(({"code": code, "system": system}, where))
            elif (system := _ADMITTING.get(qualifier)) is not None:
                claim.admitting = ({"code": code, "system": system}, where)
            elif (system := _PRINCIPAL_PROCEDURE.get(qualifier) or _OTHER_PROCEDURE.get(qualifier)) is not None:
                day = parts[3] if len(parts) > 3 else ""
                self._check_date("HI", ordinal, index, day, component=4)
                where["date"] = position(("2300", "HI", ordinal, index, 4, "1251"))
                coded = ({"code": code, "system": system, "date": _date(day)}, where)
                if qualifier in _PRINCIPAL_PROCEDURE:
                    claim.principal_procedure = coded
                else:
                    claim.procedures.append(coded)

    def _lx(self, elements: list[str], ordinal: int) -> None:
        if self.claim is None:
            self._segment_error("LX", ordinal, "2", "LX outside a claim")
            return
        self.loop = "2400"
        number = _number(_get(elements, 1))
        self.line = _Line({"line_number": number}, {"line_number": position(("2400", "LX", ordinal, 1, None, "554"))},
                          {"line_number": number, "procedure": (), "charge": "", "units": "", "revenue_code": "",
                           "service_date": "", "control_number": ""})  # fmt: skip
        self.claim.lines.append(self.line)

    def _sv1(self, elements: list[str], ordinal: int) -> None:
        line = self.line
        if line is None or self.loop != "2400":
            return
        self._procedure(line, elements, ordinal, "SV1", 1)
        values, positions = line.values, line.positions
        self._charge(line, _get(elements, 2), position(("2400", "SV1", ordinal, 2, None, "782")))
        place = _get(elements, 5)
        positions["place_of_service"] = position(("2400", "SV1", ordinal, 5, None, "1331"))
        if place and self.claim is not None and place != self.claim.place:  # SV105: only where not CLM05-1
            values["place_of_service"] = place
        values["units"] = _number(_get(elements, 4))
        positions["units"] = position(("2400", "SV1", ordinal, 4, None, "380"))
        pointers = [pointer for pointer in _get(elements, 7).split(self.component) if pointer]
        values["diagnosis_pointers"] = [_number(pointer) for pointer in pointers]
        positions["diagnosis_pointers"] = position(("2400", "SV1", ordinal, 7, 1, "1328"))
        for j in range(len(pointers)):
            positions[f"diagnosis_pointers[{j}]"] = position(("2400", "SV1", ordinal, 7, j + 1, "1328"))
        line.source["charge"], line.source["units"] = _get(elements, 2), _get(elements, 4)

    def _sv2(self, elements: list[str], ordinal: int) -> None:
        line = self.line
        if line is None or self.loop != "2400":
            return
        self._procedure(line, elements, ordinal, "SV2", 2)
        self._charge(line, _get(elements, 3), position(("2400", "SV2", ordinal, 3, None, "782")))
        line.values["units"] = _number(_get(elements, 5))
        line.positions["units"] = position(("2400", "SV2", ordinal, 5, None, "380"))
        line.values["revenue_code"] = _get(elements, 1)
        line.positions["revenue_code"] = position(("2400", "SV2", ordinal, 1, None, "234"))
        line.source.update(charge=_get(elements, 3), units=_get(elements, 5), revenue_code=_get(elements, 1))

    @staticmethod
    def _charge(line: _Line, value: str, where: X12Position) -> None:
        line.positions["charge"] = where
        if value:
            line.values["charge"] = _money(value)

    def _procedure(self, line: _Line, elements: list[str], ordinal: int, segment: str, index: int) -> None:
        parts = _get(elements, index).split(self.component)
        qualifier, code = parts[0], parts[1] if len(parts) > 1 else ""
        modifiers = [modifier for modifier in parts[2:6] if modifier]
        line.values["code"] = code
        line.values["system"] = _procedure_system(qualifier, code)
        line.values["modifiers"] = modifiers
        positions = line.positions
        positions["code"] = position(("2400", segment, ordinal, index, 2, "234"))
        positions["system"] = position(("2400", segment, ordinal, index, 1, "235"))
        positions["modifiers"] = position(("2400", segment, ordinal, index, 3, "1339"))
        for j in range(len(modifiers)):
            positions[f"modifiers[{j}]"] = position(("2400", segment, ordinal, index, 3 + j, "1339"))
        line.source["procedure"] = tuple(parts[:6])

    def _se(self, elements: list[str], ordinal: int) -> None:
        self._close_claim()

    def _close_claim(self) -> None:
        claim, self.claim, self.line, self.in_other_subscriber = self.claim, None, None, False
        if claim is not None:
            self.claims.append(self._claim837(claim))

    def _claim837(self, claim: _Claim) -> Claim837:
        clm, patient = claim.clm, claim.patient
        facility = _get(clm, 5).split(self.component)
        if self.professional:
            claim_type, bill_type = "professional", None
        else:
            claim_type = "inpatient" if facility[0] == "11" else "outpatient"
            bill_type = facility[0] + (facility[2] if len(facility) > 2 else "")
        positions = claim.positions
        positions.update(self.header_positions)
        event: dict[str, Any] = {
            "claim_id": _get(clm, 1),
            "claim_type": claim_type,
            "submitter_id": self.submitter.id,
            "submitted_at": self.submitted_at,
            "patient": _present(birth_date=_date(patient.birth_date), sex=patient.sex),
            "billing_provider": _present(npi=claim.billing.id),
        }
        if claim.member:
            event["member"] = claim.member
        self._claim_fields(claim, facility, event, positions)
        if patient.dmg:
            positions["patient.birth_date"] = position((patient.loop, "DMG", patient.dmg, 2, None, "1251"))
            positions["patient.sex"] = position((patient.loop, "DMG", patient.dmg, 3, None, "1068"))
        if claim.billing_position:
            positions["billing_provider.npi"] = claim.billing_position
        event["diagnoses"] = _listed("diagnoses", ([claim.principal] if claim.principal else []) + claim.others,
                                     positions)  # fmt: skip
        event["lines"] = self._lines(claim, claim_type, positions)
        if claim_type == "inpatient":
            admission, statement, status = claim.admission, claim.statement, claim.discharge_status
            event.update(_present(
                admission_date=_date(admission[0]) if admission else "",
                discharge_date=_date(statement[1]) if statement else "",
                discharge_status=status[0] if status else "",
            ))  # fmt: skip
            if admission:
                positions["admission_date"] = admission[1]
            if statement:
                positions["discharge_date"] = statement[2]
            if status:
                positions["discharge_status"] = status[1]
            if claim.admitting:
                event["admitting_diagnosis"] = claim.admitting[0]
                for key, where in claim.admitting[1].items():
                    positions[f"admitting_diagnosis.{key}"] = where
            procedures = ([claim.principal_procedure] if claim.principal_procedure else []) + claim.procedures
            event["procedures"] = _listed("procedures", procedures, positions)
        days = sorted(line.source["service_date"] for line in claim.lines if line.source["service_date"])
        first, last = (claim.statement[0], claim.statement[1]) if claim.statement else ("", "")
        subscriber = claim.subscriber.name
        source = ClaimSource(
            patient=Party(patient.name.name, subscriber.id, subscriber.qualifier or "MI", "1", patient.name.first_name),
            billing_provider=claim.billing,
            charge=_get(clm, 2),
            service_from=first or (days[0] if days else ""),
            service_to=last or (days[-1] if days else ""),
            bill_type=bill_type,
            clearinghouse_trace=claim.clearinghouse_trace,
            lines=tuple(LineSource(**line.source) for line in claim.lines),
            submitted=self.submitted_day,
        )
        for key in ("claim_id", "submitter_id"):
            if not event[key]:
                del event[key]  # an element left empty: the engine says it is missing, at its position
        return Claim837(event, positions, self.raw.control_number, source)

    def _claim_fields(self, claim: _Claim, facility: list[str], event: dict[str, Any],
                      positions: dict[str, X12Position]) -> None:  # fmt: skip
        """What a payer's front end reads of the CLM, its REFs and its providers: the charge (CLM02), the place
        of service (837P) or facility type (837I) of CLM05-1, the frequency of CLM05-3 (1, the original, is
        the default and left out), the claim replaced or voided (REF*F8), the prior authorization (REF*G1) and
        the rendering and referring providers' NPIs."""
        ordinal = claim.positions["claim_id"].ordinal
        positions["charge"] = position(("2300", "CLM", ordinal, 2, None, "782"))
        # An 837I revenue line without a HCPCS code (room and board) is left out of the event, though its charge
        # is in CLM02: the claim's charge is given only when every line is there, so that the balance the engine
        # checks is the claim's own (such a claim's balance is not checked: its lines are not in the contract).
        whole = self.professional or all(line.values.get("code") for line in claim.lines)
        if (charge := _get(claim.clm, 2)) and whole:
            event["charge"] = _money(charge)
        place = "place_of_service" if self.professional else "facility_type"
        positions[place] = position(("2300", "CLM", ordinal, 5, 1, "1331"))
        if facility[0]:
            event[place] = facility[0]
        positions["frequency"] = position(("2300", "CLM", ordinal, 5, 3, "1325"))
        frequency = facility[2] if len(facility) > 2 else ""
        if frequency and frequency != "1":
            event["frequency"] = _FREQUENCIES.get(frequency, "original")
        for name, (value, where) in (claim.references | claim.providers).items():
            positions[name] = where
            if name in claim.providers:
                positions[f"{name}.npi"] = where
                event[name] = {"npi": value}
            elif value:
                event[name] = value

    def _lines(self, claim: _Claim, claim_type: str, positions: dict[str, X12Position]) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for line in claim.lines:
            values = line.values
            if not self.professional:
                if not values.get("code"):
                    continue  # a revenue line without a HCPCS code: nothing to check
                if "service_date" not in values and claim.statement:
                    values["service_date"] = _date(claim.statement[0])
                    line.positions["service_date"] = claim.statement[2]
                    line.source["service_date"] = claim.statement[0]
            prefix = f"lines[{len(lines)}]"
            lines.append({key: values[key] for key in _LINE_KEYS if key in values})
            for key, where in line.positions.items():
                positions[f"{prefix}.{key}"] = where
            positions[prefix] = line.positions["line_number"]
        return lines

    # Notes and errors.

    def _check_date(self, segment: str, ordinal: int, element: int, value: str, component: int | None = None) -> None:
        """Note a date that is not on the calendar (999 IK4 code 8); the event keeps it for the engine."""
        if value and not is_date(value):
            loop = self.loop if segment != "BHT" else None
            claim_id = _get(self.claim.clm, 1) if self.claim else None
            self.notes.append(SegmentNote(segment, ordinal, loop, "8", element, component, _DATE_ELEMENTS[segment],
                                          "8", value, claim_id))  # fmt: skip

    def _segment_error(self, segment: str, ordinal: int, code: str, message: str) -> None:
        self.errors.append(EnvelopeError("segment", code, message, segment[:3], ordinal))


_LINE_KEYS = ("line_number", "revenue_code", "code", "system", "modifiers", "units", "service_date",
              "diagnosis_pointers", "charge", "place_of_service", "rendering_provider")  # fmt: skip
# PAT01 (code list 1069) of a patient level: the patient's relationship to the subscriber; any other code
# (G8 and the rest) is ``other``.
_RELATIONSHIPS = {"01": "spouse", "19": "child", "20": "employee", "53": "life_partner", "21": "unknown"}
# CLM05-3, the claim frequency type code: 7 replaces a prior claim, 8 voids one; any other is an original.
_FREQUENCIES = {"7": "replacement", "8": "void"}
# The 2300 REFs a claim event carries, and the providers of the 2310 loops (loop per 837P, 837I).
_CLAIM_REFERENCES = {"F8": "replaces", "G1": "prior_authorization"}
_CLAIM_PROVIDERS = {"82": "rendering_provider", "DN": "referring_provider"}
_PROVIDER_LOOPS = {("rendering_provider", True): "2310B", ("rendering_provider", False): "2310D",
                   ("referring_provider", True): "2310A", ("referring_provider", False): "2310F"}  # fmt: skip


def _listed(name: str, items: list[tuple[dict[str, str], dict[str, X12Position]]],
            positions: dict[str, X12Position]) -> list[dict[str, str]]:  # fmt: skip
    for index, (_, where) in enumerate(items):
        for key, at in where.items():
            positions[f"{name}[{index}].{key}"] = at
        positions[f"{name}[{index}]"] = where["code"]
    if items:
        positions[name] = items[0][1]["code"]
    return [values for values, _ in items]


def _present(**values: str) -> dict[str, str]:
    """The values given, without the empty ones: an element the 837 left empty is missing from the event."""
    return {key: value for key, value in values.items() if value}


def _procedure_system(qualifier: str, code: str) -> str:
    """The code system of an SV101 / SV202 procedure: HC is HCPCS, whose Level I is CPT (5 characters, the
    last a digit or F, T, U); other qualifiers (ER jurisdiction-specific, IV, WK) keep their qualifier."""
    if qualifier != "HC":
        return qualifier or "HC"
    return CPT if len(code) == 5 and code[:4].isdigit() and (code[4].isdigit() or code[4] in "FTU") else HCPCS


def _money(value: str) -> str:
    """An X12 amount (R: ``125.5``, ``80``, ``.5``) as the schemas' decimal string with two decimals
    (``125.50``, ``80.00``, ``0.50``), by its digits, never through a float; an amount the schemas cannot take
    (negative, more than two decimals that count, letters) as it is, so that the engine names it."""
    whole, _, cents = value.partition(".")
    digits = whole + cents
    if not (digits.isascii() and digits.isdigit()):  # also '', '-5', '1.2.3', '12A'
        return value
    whole, cents = whole.lstrip("0") or "0", cents.rstrip("0")
    if len(whole) > 10 or len(cents) > 2:
        return value
    return f"{whole}.{cents:0<2}"


def _date(value: str) -> str:
    """CCYYMMDD as YYYY-MM-DD; anything else as it is (the schema then names it)."""
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


def _number(value: str) -> Any:
    """An X12 numeric (N0 or R) as an int when whole, else a float; as it is when not a number (the schema
    then names it)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number
