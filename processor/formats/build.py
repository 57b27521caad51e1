"""Events written in submitters' formats: professional claims as an X12 837P interchange, a lab order as an
HL7 v2 ORM^O01 message. For the benchmark (``processor.bench.formats_alone``) and tests, which decide the same
content as JSON events and as documents; not for sending to anyone (the names and addresses are made up).

What ``read_record`` reads back is the event given, but for what the format itself says:

- 837P: ``claim_type`` is ``professional``; ``submitted_at`` is the transaction set's BHT04-05, one for the
  interchange (``write_837p`` takes the latest of its claims'); an ICD code of the well-formed ``A00.0`` shape
  is written without its decimal point, as the implementation guide asks (any other, a malformed one, as it
  is, so it stays malformed); a line's CPT or HCPCS code goes under SV101's HC, which does not tell them
  apart: the reader goes by the code's shape (a malformed CPT code, ``9921``, comes back as HCPCS). The
  claims' order is kept; consecutive claims of one billing provider share its HL 20 level. A member's
  subscriber is the patient (SBR02 18) when its relationship is ``self`` or not said (read back ``self``),
  else the patient gets a patient level (HL 23, PAT01 of the relationship, NM1*QC with the patient's DMG). A
  member without a ``payer_id`` names the receiver's (PAYER01), which is read back; a claim without a member
  has an NM1*IL without an id, read back without one (pyx12 notes its missing NM108 and NM109, as it would a
  submitter's). CLM02 and SV102 are required: a claim or line without a charge gets 100.00 a line (a claim,
  the sum of its lines'), which is read back; amounts come back with two decimals (``80`` as ``80.00``). A
  claim without a place of service is written at 11 (office), read back so; a ``frequency`` of ``original``
  is CLM05-3 1, the default, read back as no frequency. A line's place of service goes in SV105 only where it
  differs from the claim's (one equal to it is not read back).
- ORM^O01: nothing changes. One message per order (one patient); one ORC/OBR group per test, all with the
  order's placer number (ORC-2), which the reader takes as one order; the diagnoses are DG1s of the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from processor.code_systems import CPT, HCPCS, ICD10CM, LOINC
from processor.formats.hl7v2 import ICD9CM, escape
from processor.formats.x12 import DEFAULT_SEPARATORS, SegmentWriter, clean_text

IMPLEMENTATION_837P = "005010X222A1"
_PRINCIPAL = {ICD10CM: "ABK", ICD9CM: "BK"}
_OTHER = {ICD10CM: "ABF", ICD9CM: "BF"}
_HL7_SYSTEMS = {LOINC: "LN", CPT: "C4", HCPCS: "HCPCS", ICD10CM: "I10C", ICD9CM: "I9C"}
_LINE_CHARGE = "100.00"
_RECEIVER = "PAYER01"
_PLACE = "11"  # office: CLM05-1 is required
_FREQUENCIES = {"replacement": "7", "void": "8"}  # CLM05-3; anything else is 1, an original claim
_RELATIONSHIPS = {"spouse": "01", "child": "19", "employee": "20", "life_partner": "53", "unknown": "21",
                  "other": "G8"}  # fmt: skip


def _day(value: Any) -> str:
    """YYYY-MM-DD as CCYYMMDD; anything else with its dashes dropped (the reader gives back what it cannot
    read as a date as it is)."""
    return str(value).replace("-", "")


def _x12_icd(code: str) -> str:
    """An ICD code as X12 writes it: no decimal point, when the code has one after its third character only."""
    return code[:3] + code[4:] if len(code) > 4 and code[3] == "." and "." not in code[4:] else code


def submitted_of(claims: Sequence[dict[str, Any]]) -> str:
    """The ``submitted_at`` an interchange of ``claims`` says for all of them: the latest of theirs."""
    return max(str(claim["submitted_at"]) for claim in claims)


def write_837p(claims: Sequence[dict[str, Any]], control_number: int = 1) -> bytes:
    """One interchange of one 837P transaction set holding ``claims`` (professional claim events of one
    submitter, ``submitter_id`` of the first), submitted at the latest of their ``submitted_at``."""
    if not claims:
        raise ValueError("an 837 needs at least one claim")
    seps = DEFAULT_SEPARATORS
    writer = SegmentWriter(seps, newline=False)
    submitter = clean_text(str(claims[0].get("submitter_id", "")), seps, 15) or "SUBMITTER"
    submitted = submitted_of(claims)  # YYYY-MM-DDTHH:MM:SSZ
    day, clock = _day(submitted[:10]), submitted[11:19].replace(":", "")
    isa13 = f"{control_number % 1_000_000_000:09d}"
    gs06 = str(control_number % 1_000_000_000)
    writer.segment("ISA", "00", " " * 10, "00", " " * 10, "ZZ", f"{submitter:<15.15}", "ZZ", f"{_RECEIVER:<15}",
                   day[2:], clock[:4], seps.repetition, "00501", isa13, "0", "P", seps.component)  # fmt: skip
    writer.segment("GS", "HC", submitter, _RECEIVER, day, clock[:4], gs06, "X", IMPLEMENTATION_837P)
    writer.segment("ST", "837", "0001", IMPLEMENTATION_837P)
    writer.segment("BHT", "0019", "00", f"B{control_number}", day, clock, "CH")
    writer.segment("NM1", "41", "2", "BENCH SUBMITTER", "", "", "", "", "46", submitter)
    writer.segment("PER", "IC", "EDI DESK", "TE", "5555550100")
    writer.segment("NM1", "40", "2", "BENCH PAYER", "", "", "", "", "46", _RECEIVER)
    hl = 0
    billing_hl = 0
    billing_npi: str | None = None
    for claim in claims:
        npi = str((claim.get("billing_provider") or {}).get("npi", ""))
        if npi != billing_npi or not billing_hl:
            hl += 1
            billing_hl, billing_npi = hl, npi
            writer.segment("HL", str(hl), "", "20", "1")
            writer.segment("NM1", "85", "2", "BENCH PRACTICE", "", "", "", "", "XX", npi)
            writer.segment("N3", "100 MAIN ST")
            writer.segment("N4", "SPRINGFIELD", "IL", "627040000")
            writer.segment("REF", "EI", "123456789")
        hl = _write_member(writer, claim, hl, billing_hl)
        lines = claim.get("lines") or []
        charges = [str(line.get("charge", _LINE_CHARGE)) for line in lines]
        charge = str(claim.get("charge", "")) or _sum(charges)
        place = str(claim.get("place_of_service", _PLACE))
        frequency = _FREQUENCIES.get(str(claim.get("frequency", "")), "1")
        writer.segment("CLM", str(claim.get("claim_id", "")), charge, "", "", (place, "B", frequency), "Y", "A", "Y",
                       "Y")  # fmt: skip
        if "prior_authorization" in claim:
            writer.segment("REF", "G1", str(claim["prior_authorization"]))
        if "replaces" in claim:
            writer.segment("REF", "F8", str(claim["replaces"]))
        composites = []
        for index, diagnosis in enumerate(claim.get("diagnoses") or []):
            qualifiers = _PRINCIPAL if index == 0 else _OTHER
            system = diagnosis.get("system", "")
            composites.append((qualifiers.get(system, system), _x12_icd(str(diagnosis.get("code", "")))))
        for start in range(0, len(composites), 12):  # HI holds 12 codes; a second HI goes on
            writer.segment("HI", *composites[start : start + 12])
        _write_provider(writer, "DN", claim.get("referring_provider"))  # 2310A
        _write_provider(writer, "82", claim.get("rendering_provider"))  # 2310B
        for line, line_charge in zip(lines, charges, strict=True):
            writer.segment("LX", str(line.get("line_number", "")))
            procedure = ("HC", str(line.get("code", "")), *[str(m) for m in line.get("modifiers") or []][:4])
            pointers = [str(p) for p in line.get("diagnosis_pointers") or []][:4]
            line_place = str(line.get("place_of_service", ""))
            writer.segment("SV1", procedure, line_charge, "UN", str(line.get("units", "")),
                           line_place if line_place != place else "", "", pointers)  # fmt: skip
            writer.segment("DTP", "472", "D8", _day(line.get("service_date", "")))
            _write_provider(writer, "82", line.get("rendering_provider"))  # 2420A
    writer.close_transaction("0001")
    writer.segment("GE", "1", gs06)
    writer.segment("IEA", "1", isa13)
    return writer.text().encode("ascii", "replace")


def _write_member(writer: SegmentWriter, claim: dict[str, Any], hl: int, billing_hl: int) -> int:
    """The claim's subscriber level (2000B: SBR, 2010BA NM1*IL with the member id, 2010BB NM1*PR with the
    payer id) and, for a patient who is not the subscriber, its patient level (2000C: PAT, 2010CA NM1*QC, the
    patient's address and DMG). Returns the last HL number used."""
    member = claim.get("member") or {}
    patient = claim.get("patient") or {}
    dmg = ("D8", _day(patient.get("birth_date", "")), str(patient.get("sex", "")))
    relationship = _RELATIONSHIPS.get(str(member.get("relationship", "self")))
    hl += 1
    writer.segment("HL", str(hl), str(billing_hl), "22", "1" if relationship else "0")
    writer.segment("SBR", "P", "" if relationship else "18", "", "", "", "", "", "", "CI")
    member_id = ("MI", str(member["id"])) if "id" in member else ()
    writer.segment("NM1", "IL", "1", "DOE", "SUBSCRIBER", "", "", "", *member_id)
    if not relationship:
        writer.segment("DMG", *dmg)
    writer.segment("NM1", "PR", "2", "BENCH PAYER", "", "", "", "", "PI", str(member.get("payer_id", _RECEIVER)))
    if relationship:
        hl += 1
        writer.segment("HL", str(hl), str(hl - 1), "23", "0")
        writer.segment("PAT", relationship)
        writer.segment("NM1", "QC", "1", "DOE", "PATIENT")
        writer.segment("N3", "100 MAIN ST")  # the patient's address: required in 2010CA
        writer.segment("N4", "SPRINGFIELD", "IL", "627040000")
        writer.segment("DMG", *dmg)
    return hl


def _write_provider(writer: SegmentWriter, entity: str, provider: dict[str, Any] | None) -> None:
    """A rendering (82) or referring (DN) provider's NM1, with the NPI (NM108 XX)."""
    if provider:
        writer.segment("NM1", entity, "1", "DOE", "JANE", "", "", "", "XX", str(provider.get("npi", "")))


def _sum(charges: list[str]) -> str:
    """The sum of the line charges (decimal strings), as a claim's CLM02; 0 for none or one not a number."""
    try:
        return f"{sum((Decimal(charge) for charge in charges), Decimal(0)):.2f}"
    except InvalidOperation:
        return "0"


def write_orm(order: dict[str, Any], control_id: str = "1", sent_at: str = "20260101000000") -> bytes:
    """One HL7 v2.5.1 ORM^O01 message holding ``order`` (an order event), segments ending in CR."""
    lab = escape(str(order.get("lab_id", "")))
    placer = escape(str(order.get("order_id", "")))
    npi = escape(str((order.get("ordering_provider") or {}).get("npi", "")))
    patient = order.get("patient") or {}
    collected = _day(order.get("collection_date", ""))
    provider = f"{npi}^DOE^JANE^^^^^^NPI^L^^^NPI" if npi else ""
    segments = [
        f"MSH|^~\\&|BENCH_EHR|BENCHCLINIC|LIS|{lab}|{sent_at}||ORM^O01^ORM_O01|{escape(control_id)}|P|2.5.1",
        f"PID|1||MRN{placer}^^^BENCHCLINIC^MR||DOE^PAT||{_day(patient.get('birth_date', ''))}"
        f"|{escape(str(patient.get('sex', '')))}",
        "PV1|1|O",
    ]
    for index, test in enumerate(order.get("tests") or [], start=1):
        system = _HL7_SYSTEMS.get(test.get("system", ""), escape(str(test.get("system", ""))))
        segments.append(f"ORC|NW|{placer}^BENCHCLINIC|||||||{sent_at}|||{provider}")
        segments.append(f"OBR|{index}|{placer}^BENCHCLINIC||{escape(str(test.get('code', '')))}^^{system}"
                        f"|||{collected}|||||||||{provider}")  # fmt: skip
        if index == 1:
            for number, diagnosis in enumerate(order.get("diagnoses") or [], start=1):
                system = _HL7_SYSTEMS.get(diagnosis.get("system", ""), escape(str(diagnosis.get("system", ""))))
                segments.append(f"DG1|{number}||{escape(str(diagnosis.get('code', '')))}^^{system}||{collected}|W")
    return ("\r".join(segments) + "\r").encode()
