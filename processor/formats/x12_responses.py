"""The X12 answers to an 837 interchange: the 999 implementation acknowledgment (005010X231A1) and the 277CA
claim acknowledgment (005010X214).

The 999 says whether each transaction set was read: IK5 A accepted, E accepted with errors noted (a date not
on the calendar: IK3 and IK4 name the segment, its loop, the element and the copy of it, with the CLM01 of
the claim it is in as CTX), R rejected (its envelope or a segment broke it: its claims are not decided), and
AK9 sums it up for the group (A, E, P partially accepted, R). An interchange whose envelope could not be read
gets a TA1 (R and the note code) instead, and nothing in it is decided.

The 277CA answers every claim decided, one 2200D per claim under its billing provider (2000C), in the
decision's terms: STC01 of each reason that returned the claim (A3, A6, A7, A8 with status and entity, from
``engine/answers.py`` through the decision record) and action code U, or A2 with the pend status for a claim
held for review, or A2:20 accepted for processing (a claim whose line is denied is accepted here; the denial
is the 835's), action code WQ. STC12 says where and what: the 837 position of the field (loop, segment,
element, segment number) and the reason's message. A claim taken into adjudication (accepted, or held for
review) and given a payer claim control number (the decision record's ``claim_control_number``) says it in
REF*1K, for a later replacement or void to name in its REF*F8. A reason on a line also answers in a 2220D
service line (SVC, STC, REF*FJ line item control number, DTP). The information source is the 837's receiver (1000B), the
information receiver its submitter (1000A), and the counts and amounts accepted and rejected are summed per
submitter and per provider.

Both are pure functions of the parse and the decision records; the caller gives the control number and the
time, so the same input always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from processor.engine.rules import ACCEPTED_FOR_PROCESSING, ACCEPTED_INTO_ADJUDICATION
from processor.formats.positions import position_of
from processor.formats.x12 import Element, Separators, clean_text, is_date, write_interchange
from processor.formats.x12_837 import Claim837, Parsed837, Party, Transaction837

IMPLEMENTATION_999 = "005010X231A1"
IMPLEMENTATION_277CA = "005010X214"
STC12_LIMIT = 264  # free-form message text: AN 1/264
_ACCEPTED = f"{ACCEPTED_INTO_ADJUDICATION}:{ACCEPTED_FOR_PROCESSING}"  # A2:20 accepted for processing
_RECEIVED = "A1:19:PR"  # acknowledgment / receipt: the payer acknowledges receipt
# 2100D NM109, the patient's member id, is required (2 to 80 characters): a claim that gave none (returned for
# it) is answered with zeros, which no payer issues as a member id.
_NO_MEMBER_ID = "00"


def build_999(parsed: Parsed837, *, control_number: int, created_at: datetime) -> str:
    """The 999 answering ``parsed``, one 999 transaction set per functional group read; or, when the
    interchange envelope itself is broken (nothing in it is read), a TA1 rejecting it."""
    if parsed.errors or not parsed.groups:
        return _ta1(parsed, control_number, created_at)
    transactions = []
    for number, group in enumerate(parsed.groups, start=1):
        segments: list[tuple[str, list[Element]]] = [
            ("ST", ["999", f"{number:04d}", IMPLEMENTATION_999]),
            ("AK1", [group.functional_id, group.control_number, group.version]),
        ]
        for transaction in group.transactions:
            segments.extend(_ak2(transaction))
        received = len(group.transactions)
        accepted = sum(1 for t in group.transactions if t.acknowledgment != "R") if not group.errors else 0
        segments.append(("AK9", [group.acknowledgment, str(received), str(received), str(accepted),
                                 *[error.code for error in group.errors[:5]]]))  # fmt: skip
        transactions.append((f"{number:04d}", segments))
    return write_interchange(parsed.header, control_number, created_at, ("FA", IMPLEMENTATION_999, transactions))


def _ta1(parsed: Parsed837, control_number: int, created_at: datetime) -> str:
    """An interchange holding only a TA1: R with the note code of what broke the envelope (A 000 for an
    interchange that holds no group at all). Without a readable ISA the TA1 cannot name the interchange."""
    header = parsed.header
    code, ack = (parsed.errors[0].code, "R") if parsed.errors else ("000", "A")
    if header is not None:
        ta1 = [header.control_number, header.date, header.time, ack, code]
    else:
        ta1 = ["000000000", created_at.strftime("%y%m%d"), created_at.strftime("%H%M"), ack, code]
    return write_interchange(header, control_number, created_at, None, prefix=[("TA1", ta1)])


def _ak2(transaction: Transaction837) -> list[tuple[str, list[Element]]]:
    segments: list[tuple[str, list[Element]]] = [
        ("AK2", ["837", transaction.control_number, transaction.implementation])
    ]
    for note in transaction.notes:
        segments.append(("IK3", [note.segment, str(note.ordinal), (note.loop or "")[:4], note.code]))
        if note.claim_id:
            segments.append(("CTX", [("CLM01", note.claim_id)]))
        if note.element is not None:
            where = (str(note.element), str(note.component)) if note.component else str(note.element)
            segments.append(("IK4", [where, note.data_element or "", note.element_code or "", note.value or ""]))
    for error in transaction.errors:
        if error.level == "segment" and error.segment and error.ordinal:
            segments.append(("IK3", [error.segment, str(error.ordinal), "", error.code]))
    codes = []
    for error in transaction.errors:
        code = "5" if error.level == "segment" else error.code  # IK502 5: one or more segments in error
        if code not in codes:
            codes.append(code)
    segments.append(("IK5", [transaction.acknowledgment, *codes[:5]]))
    return segments


def build_277ca(
    parsed: Parsed837, decisions: Sequence[dict[str, Any]], *, control_number: int, created_at: datetime
) -> str | None:
    """The 277CA answering the claims of ``parsed``: ``decisions`` are their decision records
    (``schemas/decision.schema.json``), one per claim, in the order of ``parsed.claims``. One 277 transaction
    set per 837 transaction set that was read; None when no claim was (the 999 says why)."""
    claims = parsed.claims
    if len(decisions) != len(claims):
        raise ValueError(f"{len(decisions)} decisions for {len(claims)} claims")
    by_transaction: dict[str, list[tuple[Claim837, dict[str, Any]]]] = {}
    for claim, decision in zip(claims, decisions, strict=True):
        by_transaction.setdefault(claim.transaction, []).append((claim, decision))
    header = parsed.header
    seps = header.separators if header else Separators()
    transactions = []
    for group in parsed.groups:
        for transaction in group.transactions:
            decided = by_transaction.get(transaction.control_number)
            if not decided:
                continue
            number = f"{len(transactions) + 1:04d}"
            trace = clean_text(f"{header.control_number if header else ''}-{transaction.control_number}", seps, 50)
            transactions.append((number, _transaction_277ca(transaction, decided, number, trace, created_at, seps)))
    if not transactions:
        return None
    return write_interchange(header, control_number, created_at, ("HN", IMPLEMENTATION_277CA, transactions))


def _transaction_277ca(
    transaction: Transaction837,
    decided: list[tuple[Claim837, dict[str, Any]]],
    number: str,
    trace: str,
    created_at: datetime,
    seps: Separators,
) -> list[tuple[str, list[Element]]]:
    day, clock = created_at.strftime("%Y%m%d"), created_at.strftime("%H%M")
    payer, submitter = transaction.receiver, transaction.submitter
    segments: list[tuple[str, list[Element]]] = [
        ("ST", ["277", number, IMPLEMENTATION_277CA]),
        ("BHT", ["0085", "08", trace, day, clock, "TH"]),
        ("HL", ["1", "", "20", "1"]),
        ("NM1", ["PR", "2", _name(payer.name, seps), "", "", "", "", "46", _id(payer.id, seps)]),
        ("TRN", ["1", trace]),
        ("DTP", ["050", "D8", day]),
        ("DTP", ["009", "D8", day]),
        ("HL", ["2", "1", "21", "1"]),
        ("NM1", ["41", submitter.entity_type if submitter.entity_type in ("1", "2") else "2",
                 _name(submitter.name, seps), clean_text(submitter.first_name, seps, 35), "", "", "", "46",
                 _id(submitter.id, seps)]),
        ("TRN", ["2", clean_text(transaction.reference, seps, 50) or "0"]),
        ("STC", [_composite(_RECEIVED), day, "WQ", _amount(_total(decided))]),
        *_counts("90", "AA", decided),
    ]  # fmt: skip
    hl = 2
    providers: dict[tuple[str, ...], list[tuple[Claim837, dict[str, Any]]]] = {}
    for claim, decision in decided:
        provider = claim.source.billing_provider
        key = (provider.id, provider.name, provider.first_name, provider.entity_type)
        providers.setdefault(key, []).append((claim, decision))
    for claims in providers.values():
        hl += 1
        provider_hl = hl
        provider = claims[0][0].source.billing_provider
        segments += [
            ("HL", [str(provider_hl), "2", "19", "1"]),
            ("NM1", ["85", provider.entity_type if provider.entity_type in ("1", "2") else "2",
                     _name(provider.name, seps), clean_text(provider.first_name, seps, 35), "", "", "",
                     provider.qualifier if provider.qualifier in ("FI", "SV", "XX") else "XX",
                     _id(provider.id, seps)]),
            ("TRN", ["1", "0"]),
            ("STC", [_composite(_RECEIVED), "", "WQ", _amount(_total(claims))]),
            *_counts("QA", "QC", claims),
        ]  # fmt: skip
        for claim, decision in claims:
            hl += 1
            segments += _claim_2000d(claim, decision, hl, provider_hl, day, seps)
    return segments


def _claim_2000d(
    claim: Claim837, decision: dict[str, Any], hl: int, parent: int, day: str, seps: Separators
) -> list[tuple[str, list[Element]]]:
    source, patient = claim.source, claim.source.patient
    segments: list[tuple[str, list[Element]]] = [
        ("HL", [str(hl), str(parent), "PT"]),
        ("NM1", ["QC", "1", _name(patient.name, seps), clean_text(patient.first_name, seps, 35), "", "", "",
                 "II" if patient.qualifier == "II" else "MI", clean_text(patient.id, seps, 80) or _NO_MEMBER_ID]),
        ("TRN", ["2", _id(str(claim.event.get("claim_id", "")), seps)]),
    ]  # fmt: skip
    returned = decision["outcome"] == "returned"
    action = "U" if returned else "WQ"
    for composite, message in _claim_statuses(claim, decision, seps):
        # STC01, date, action code, charge; STC05 to STC11 unused; STC12 the free-form message
        segments.append(("STC", [composite, day, action, _amount(source.charge), *[""] * 7, message]))
    if number := decision.get("claim_control_number"):  # the payer claim control number of a claim taken in
        segments.append(("REF", ["1K", clean_text(str(number), seps, 50) or "0"]))
    if source.clearinghouse_trace:
        segments.append(("REF", ["D9", _id(source.clearinghouse_trace, seps)]))
    if source.bill_type:
        segments.append(("REF", ["BLT", source.bill_type]))
    segments.append(_service_dates(source.service_from, source.service_to, source.submitted or day))
    if returned:
        segments += _service_lines(claim, decision, day)
    return segments


def _claim_statuses(claim: Claim837, decision: dict[str, Any], seps: Separators) -> list[tuple[list[str], str]]:
    """The STC01 composites of a claim and the STC12 text of each: one STC a reason (a reason that did not
    decide the claim's outcome adds nothing), with where in the 837 and what to do."""
    outcome = decision["outcome"]
    if outcome == "accepted":
        return [(_composite(_ACCEPTED), "")]
    statuses: list[tuple[list[str], str]] = []
    for reason in decision["reasons"]:
        if reason["outcome"] != outcome:
            continue
        stc = reason["stc"]
        composite = [stc["category"], stc["status"]] + ([stc["entity"]] if stc.get("entity") else [])
        position = position_of(claim.positions, reason["field"])
        where = f"{position}: " if position is not None else ""
        statuses.append((composite, clean_text(where + reason["message"], seps, STC12_LIMIT)))
    return statuses or [(_composite(_ACCEPTED), "")]


def _service_lines(claim: Claim837, decision: dict[str, Any], day: str) -> list[tuple[str, list[Element]]]:
    """A 2220D per claim line a returning reason names: the line as submitted and up to three STC01s."""
    by_line: dict[Any, list[list[str]]] = {}
    for reason in decision["reasons"]:
        number = reason.get("line_number")
        if reason["outcome"] != "returned" or number is None:
            continue
        stc = reason["stc"]
        composite = [stc["category"], stc["status"]] + ([stc["entity"]] if stc.get("entity") else [])
        if composite not in by_line.setdefault(number, []):
            by_line[number].append(composite)
    segments: list[tuple[str, list[Element]]] = []
    lines = {line.line_number: line for line in claim.source.lines}
    for number, composites in by_line.items():
        line = lines.get(number)
        if line is None:
            continue
        procedure = list(line.procedure) if len(line.procedure) > 1 and line.procedure[1] else ["NU", line.revenue_code]
        segments.append(("SVC", [procedure, _amount(line.charge), "", line.revenue_code, "", "", line.units]))
        # one STC a line: STC01, and STC10 and STC11 for a second and third status
        segments.append(("STC", [composites[0], day, "U", *[""] * 6, *composites[1:3]]))
        if line.control_number:
            segments.append(("REF", ["FJ", line.control_number]))
        if is_date(line.service_date):
            segments.append(("DTP", ["472", "D8", line.service_date]))
    return segments


def _service_dates(first: str, last: str, fallback: str) -> tuple[str, list[Element]]:
    """The claim's service dates (DTP*472, required): a date not on the calendar cannot be written back, so
    what is left of the period, else the day the claim was submitted."""
    first, last = (first if is_date(first) else last), (last if is_date(last) else first)
    if not is_date(first):
        return ("DTP", ["472", "D8", fallback])
    if first != last:
        return ("DTP", ["472", "RD8", f"{first}-{last}"])
    return ("DTP", ["472", "D8", first])


def _counts(accepted_code: str, rejected_code: str, decided: list[tuple[Claim837, dict[str, Any]]]) -> list:
    """QTY and AMT of the claims accepted (into adjudication, held for review too) and rejected."""
    accepted = [claim for claim, decision in decided if decision["outcome"] != "returned"]
    rejected = [claim for claim, decision in decided if decision["outcome"] == "returned"]
    segments: list[tuple[str, list[Element]]] = []
    if accepted:
        segments.append(("QTY", [accepted_code, str(len(accepted))]))
    if rejected:
        segments.append(("QTY", [rejected_code, str(len(rejected))]))
    if accepted:
        segments.append(("AMT", ["YU", _amount(_sum(accepted))]))
    if rejected:
        segments.append(("AMT", ["YY", _amount(_sum(rejected))]))
    return segments


def _total(decided: list[tuple[Claim837, dict[str, Any]]]) -> Decimal:
    return _sum([claim for claim, _ in decided])


def _sum(claims: list[Claim837]) -> Decimal:
    total = Decimal(0)
    for claim in claims:
        try:
            total += Decimal(claim.source.charge or "0")
        except InvalidOperation:
            continue
    return total


def _amount(value: Decimal | str) -> str:
    """An X12 R amount: no trailing zeros after the point."""
    try:
        number = Decimal(value) if isinstance(value, str) else value
    except InvalidOperation:
        return "0"
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _composite(text: str) -> list[str]:
    return text.split(":")


def _name(name: str, seps: Separators) -> str:
    return clean_text(name, seps, 60) or "UNKNOWN"


def _id(value: str, seps: Separators) -> str:
    return clean_text(value, seps, 80) or "0"


__all__ = ["IMPLEMENTATION_277CA", "IMPLEMENTATION_999", "Party", "build_277ca", "build_999"]
