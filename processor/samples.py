"""Realistic sample claims and lab orders, for the demo and the benchmark (and as examples of the contracts).

Claims carry about three diagnoses and three lines; orders one to three tests. One claim in ten is an
inpatient stay (837I: admission and discharge dates, ICD-10-PCS procedures, no lines), one in ten an
outpatient claim (lines with revenue codes); the rest are professional. A share of the events carries the
mistakes that payers and labs see every day: header codes, malformed codes, a code used on a date it is not
valid, an unknown code system, a bad NPI (billing or rendering), an unbalanced total charge, no member id, an
unknown place of service, an order without a diagnosis; on a stay, a principal diagnosis
CMS's code editor does not accept, a secondary repeating the principal, a discharge before the admission.
Providers come from a pool of 500 (made-up NPIs), as a payer hears from the same offices all day, and
patients from a pool of 20,000 members (a member id, the subscriber's birth date and sex; one claim in five is
for a dependent child of the subscriber), so that a member's claims come back as they do at a payer. A claim
carries what a payer's front end reads: the member, the place of service (837P) or facility type (837I), the
charges as decimal strings (the claim's the sum of its lines'), and now and then a rendering or referring
provider and a prior authorization. Codes are real: ICD-10-CM and ICD-10-PCS from the default table;
procedures and tests from the demo rows (``demo-codes.csv``). Patient data is made up.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from processor.code_systems import luhn_check_digit

# Billable ICD-10-CM codes valid in FY2025, FY2026 and FY2027.
DIAGNOSES = [
    "E11.9", "I10", "J06.9", "R05.9", "E78.5", "K21.9", "F41.1", "N39.0", "J45.909", "M25.561",
    "Z23", "R07.9", "E66.9", "G43.909", "L03.115", "S52.521A", "E11.65", "I48.91", "M17.11", "R10.9",
]  # fmt: skip
PROCEDURES = [("CPT", "99213"), ("CPT", "99214"), ("CPT", "99203"), ("CPT", "36415"), ("CPT", "93000"),
              ("HCPCS", "J1100"), ("HCPCS", "G0008"), ("HCPCS", "J3420")]  # fmt: skip
TESTS = [("LOINC", "4548-4"), ("LOINC", "2345-7"), ("LOINC", "718-7"), ("LOINC", "2093-3"),
         ("LOINC", "24323-8"), ("CPT", "83036"), ("CPT", "80053"), ("CPT", "85025")]  # fmt: skip

# Principal diagnoses of inpatient stays that CMS's MCE accepts, and ICD-10-PCS procedures valid in FY2025-27.
ADMISSIONS = ["I50.9", "J18.9", "N17.9", "I21.4", "K35.80", "A41.9", "J44.1", "I63.9"]
ICD_PROCEDURES = ["0DTJ4ZZ", "5A1955Z", "02HV33Z", "0BH17EZ", "3E0336Z", "30233N1", "4A023N7", "B2111ZZ"]
REVENUE_CODES = ["0300", "0450", "0510", "0636", "0730"]
# What an office charges for each procedure (made up), and where professional services are given (CMS POS).
PRICES = {"99213": "95.00", "99214": "140.00", "99203": "120.00", "36415": "12.50", "93000": "45.00",
          "J1100": "8.25", "G0008": "30.00", "J3420": "15.75"}  # fmt: skip
PLACES = ["11", "11", "11", "11", "22", "19", "02", "10", "81"]
MEMBERS = 20_000

# The mistakes: (what is wrong, how to make it).
HEADERS = ["E11", "I25", "M54.5", "J45", "S52.521"]
MALFORMED = ["E11..9", "EE119", "1234", "Z0000000"]
# Dates of service on both sides of each fiscal year's first day, and in the current one (FY2027).
SERVICE_DAYS = ["2024-11-14", "2025-03-03", "2025-06-20", "2025-09-30", "2025-10-01", "2026-01-15", "2026-05-02",
                "2026-09-30", "2026-10-01", "2026-11-15", "2027-01-20"]  # fmt: skip


def npi(rng: random.Random) -> str:
    """A valid, made-up NPI."""
    body = "1" + "".join(rng.choice("0123456789") for _ in range(8))
    return body + str(luhn_check_digit("80840" + body))


# The providers who send claims and orders: a payer or a lab hears from the same offices all day.
PROVIDERS = [npi(random.Random(n)) for n in range(500)]


def _patient(rng: random.Random) -> dict[str, Any]:
    year = rng.randint(1940, 2020)
    return {"birth_date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "sex": rng.choice("MFU")}


def _member(rng: random.Random, adults_only: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """A member of the pool and the patient a claim is for: the subscriber, or one time in five a child of
    theirs. The same member always has the same subscriber and children (their own seeded facts)."""
    number = rng.randrange(MEMBERS)
    facts = random.Random(number)
    member: dict[str, Any] = {"id": f"W{100_000_000 + number * 4_973:09d}", "payer_id": "PAYER01"}
    subscriber = _patient(facts)
    subscriber["birth_date"] = f"{facts.randint(1940, 2000)}{subscriber['birth_date'][4:]}"
    children = [_patient(facts) for _ in range(facts.randint(0, 3))]
    if children and not adults_only and rng.random() < 0.2:
        member["relationship"] = "child"
        return member, {**rng.choice(children)}
    member["relationship"] = "self"
    return member, subscriber


def _charge_lines(lines: list[dict[str, Any]]) -> str:
    """Gives each line its charge (the code's price times its units) and returns the claim's: their sum."""
    total = Decimal(0)
    for line in lines:
        charge = Decimal(PRICES.get(line["code"], "50.00")) * line["units"]
        line["charge"] = f"{charge:.2f}"
        total += charge
    return f"{total:.2f}"


def claim(rng: random.Random, number: int, bad: bool) -> dict[str, Any]:
    """One claim (professional, outpatient or an inpatient stay); ``bad`` makes one realistic mistake on it."""
    kind = rng.random()
    if kind < 0.1:
        return stay(rng, number, bad)
    day = rng.choice(SERVICE_DAYS)
    diagnoses = [{"code": c, "system": "ICD-10-CM"} for c in rng.sample(DIAGNOSES, rng.choice((2, 3, 3, 4)))]
    lines = []
    for i, (system, code) in enumerate(rng.sample(PROCEDURES, rng.choice((2, 3, 3, 4))), start=1):
        pointers = sorted(rng.sample(range(1, len(diagnoses) + 1), rng.randint(1, len(diagnoses))))
        lines.append({"line_number": i, "code": code, "system": system, "modifiers": [], "units": 1,
                      "service_date": day, "diagnosis_pointers": pointers})  # fmt: skip
    member, patient = _member(rng)
    event = {
        "claim_id": f"CLM{number:09d}",
        "submitter_id": f"SUB{rng.randint(1, 40):04d}",
        "submitted_at": f"{day}T{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}:00Z",
        "patient": patient,
        "member": member,
        "billing_provider": {"npi": rng.choice(PROVIDERS)},
        "diagnoses": diagnoses,
        "lines": lines,
        "charge": _charge_lines(lines),
    }
    if kind < 0.2:
        event["claim_type"] = "outpatient"
        event["facility_type"] = "13"
        for line in lines:
            line["revenue_code"] = rng.choice(REVENUE_CODES)
    else:
        event["place_of_service"] = rng.choice(PLACES)
        if rng.random() < 0.3:
            event["rendering_provider"] = {"npi": rng.choice(PROVIDERS)}
        if rng.random() < 0.1:
            event["referring_provider"] = {"npi": rng.choice(PROVIDERS)}
    if rng.random() < 0.05:
        event["prior_authorization"] = f"PA{rng.randrange(10**7):07d}"
    if bad:
        _spoil_claim(rng, event)
    return event


def stay(rng: random.Random, number: int, bad: bool) -> dict[str, Any]:
    """One inpatient claim (837I): the stay, its diagnoses (principal first) and ICD-10-PCS procedures."""
    discharge = rng.choice(SERVICE_DAYS)
    admission = (date.fromisoformat(discharge) - timedelta(days=rng.randint(0, 6))).isoformat()
    secondary = rng.sample(DIAGNOSES, rng.randint(1, 3))
    diagnoses = [{"code": c, "system": "ICD-10-CM"} for c in [rng.choice(ADMISSIONS), *secondary]]
    procedures = [{"code": c, "system": "ICD-10-PCS", "date": rng.choice((admission, discharge))}
                  for c in rng.sample(ICD_PROCEDURES, rng.randint(0, 2))]  # fmt: skip
    member, patient = _member(rng, adults_only=True)  # adults: the MCE's lists hold
    event = {
        "claim_id": f"CLM{number:09d}",
        "claim_type": "inpatient",
        "facility_type": "11",
        "submitter_id": f"SUB{rng.randint(1, 40):04d}",
        "submitted_at": f"{discharge}T{rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}:00Z",
        "patient": patient,
        "member": member,
        "charge": f"{rng.randint(4_000, 60_000)}.00",
        "billing_provider": {"npi": rng.choice(PROVIDERS)},
        "admission_date": admission,
        "discharge_date": discharge,
        "discharge_status": rng.choice(("01", "01", "01", "06", "03")),
        "diagnoses": diagnoses,
        "procedures": procedures,
    }
    if bad:
        mistake = rng.randrange(4)
        if mistake == 0:  # a routine exam is no reason for an inpatient stay
            diagnoses[0]["code"] = "Z00.00"
        elif mistake == 1:
            diagnoses.append(dict(diagnoses[0]))
        elif mistake == 2:  # a fall is the external cause, not the principal diagnosis
            diagnoses.insert(0, {"code": "W19.XXXA", "system": "ICD-10-CM"})
        else:
            event["admission_date"] = (date.fromisoformat(discharge) + timedelta(days=2)).isoformat()
    return event


def _spoil_claim(rng: random.Random, event: dict[str, Any]) -> None:
    mistake = rng.randrange(10)
    if mistake == 0:
        event["diagnoses"][0]["code"] = rng.choice(HEADERS)
    elif mistake == 1:
        event["diagnoses"][-1]["code"] = rng.choice(MALFORMED)
    elif mistake == 2:  # E11.A exists from FY2026 only: wrong on a FY2025 date of service
        event["diagnoses"][0]["code"] = "E11.A"
        for line in event["lines"]:
            line["service_date"] = "2025-09-30"
        event["submitted_at"] = max(event["submitted_at"], "2025-09-30T17:00:00Z")  # billed after the service
    elif mistake == 3:
        event["diagnoses"][0]["system"] = "ICD-9-CM"
    elif mistake == 4:
        npi_ = event["billing_provider"]["npi"]
        event["billing_provider"]["npi"] = npi_[:9] + str((int(npi_[9]) + 1) % 10)
    elif mistake == 5:
        event["lines"][0]["code"] = "9921"
    elif mistake == 6:  # the total left as it was before a line's charge changed
        event["charge"] = f"{Decimal(event['charge']) + 10:.2f}"
    elif mistake == 7:
        event.pop("member")  # the insurance card not read
    elif mistake == 8 and "place_of_service" in event:
        event["place_of_service"] = "00"  # no such place of service
    else:
        npi_ = event["billing_provider"]["npi"]  # the rendering provider's NPI typed one digit off
        event["rendering_provider"] = {"npi": npi_[:9] + str((int(npi_[9]) + 3) % 10)}


def order(rng: random.Random, number: int, bad: bool) -> dict[str, Any]:
    """One lab order; ``bad`` makes one realistic mistake on it."""
    event = {
        "order_id": f"ORD{number:09d}",
        "lab_id": f"LAB{rng.randint(1, 5):02d}",
        "ordering_provider": {"npi": rng.choice(PROVIDERS)},
        "patient": _patient(rng),
        "collection_date": rng.choice(SERVICE_DAYS),
        "tests": [{"code": c, "system": s} for s, c in rng.sample(TESTS, rng.randint(1, 3))],
        "diagnoses": [{"code": c, "system": "ICD-10-CM"} for c in rng.sample(DIAGNOSES, rng.randint(1, 2))],
    }
    if bad:
        mistake = rng.randrange(3)
        if mistake == 0:
            event["tests"][0]["code"] = "4548-5"  # wrong LOINC check digit: returned to the doctor
        elif mistake == 1:
            event["diagnoses"][0]["code"] = rng.choice(HEADERS)  # the lab reviews it with the doctor
        else:
            event["ordering_provider"]["npi"] = "1234567890"
    return event


def generate(
    count: int, seed: int = 7, bad_share: float = 0.2, order_share: float = 0.3
) -> list[tuple[str, dict[str, Any]]]:
    """``count`` events as ``(kind, event)``: about ``order_share`` orders, ``bad_share`` with a mistake."""
    rng = random.Random(seed)
    events = []
    for number in range(1, count + 1):
        bad = rng.random() < bad_share
        if rng.random() < order_share:
            events.append(("order", order(rng, number, bad)))
        else:
            events.append(("claim", claim(rng, number, bad)))
    return events
