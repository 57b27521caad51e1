"""Events written in submitters' formats: professional claims as an X12 837P interchange, a lab order as an
HL7 v2 ORM^O01 message. For the benchmark (``processor.bench.formats_alone``) and tests, which decide the same
content as JSON events and as documents; not for sending to anyone (the names and addresses are made up).

What ``read_record`` reads back is the event given, but for what the format itself says:

- 837P: ``claim_type`` is ``professional``; ``submitted_at`` is the transaction set's BHT04-05, one for the
  interchange (``write_837p`` takes the latest of its claims'); an ICD code of the well-formed ``A00.0`` shape
  is written without its decimal point, as the implementation guide asks (any other, a malformed one, as it
  is, so it stays malformed); a line's CPT or HCPCS code goes under SV101's HC, which does not tell them
  apart: the reader goes by the code's shape (a malformed CPT code, ``9921``, comes back as HCPCS). The
  claims' order is kept; consecutive claims of one billing provider share its HL 20 level. Each claim's
  subscriber is its patient (SBR02 18, no HL 23).
- ORM^O01: nothing changes. One message per order (one patient); one ORC/OBR group per test, all with the
  order's placer number (ORC-2), which the reader takes as one order; the diagnoses are DG1s of the first.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        hl += 1
        writer.segment("HL", str(hl), str(billing_hl), "22", "0")
        writer.segment("SBR", "P", "18", "", "", "", "", "", "", "CI")
        writer.segment("NM1", "IL", "1", "DOE", "PAT", "", "", "", "MI", f"M{claim.get('claim_id', '')}"[:20])
        patient = claim.get("patient") or {}
        writer.segment("DMG", "D8", _day(patient.get("birth_date", "")), str(patient.get("sex", "")))
        writer.segment("NM1", "PR", "2", "BENCH PAYER", "", "", "", "", "PI", _RECEIVER)
        lines = claim.get("lines") or []
        charge = f"{len(lines) * 100}"
        writer.segment("CLM", str(claim.get("claim_id", "")), charge, "", "", ("11", "B", "1"), "Y", "A", "Y", "Y")
        composites = []
        for index, diagnosis in enumerate(claim.get("diagnoses") or []):
            qualifiers = _PRINCIPAL if index == 0 else _OTHER
            system = diagnosis.get("system", "")
            composites.append((qualifiers.get(system, system), _x12_icd(str(diagnosis.get("code", "")))))
        for start in range(0, len(composites), 12):  # HI holds 12 codes; a second HI goes on
            writer.segment("HI", *composites[start : start + 12])
        for line in lines:
            writer.segment("LX", str(line.get("line_number", "")))
            procedure = ("HC", str(line.get("code", "")), *[str(m) for m in line.get("modifiers") or []][:4])
            pointers = [str(p) for p in line.get("diagnosis_pointers") or []][:4]
            writer.segment("SV1", procedure, _LINE_CHARGE, "UN", str(line.get("units", "")), "", "", pointers)
            writer.segment("DTP", "472", "D8", _day(line.get("service_date", "")))
    writer.close_transaction("0001")
    writer.segment("GE", "1", gs06)
    writer.segment("IEA", "1", isa13)
    return writer.text().encode("ascii", "replace")


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
