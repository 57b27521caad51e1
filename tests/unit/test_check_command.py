"""``processor check``: one output line per input line, with no broker."""

import subprocess
import sys

import orjson

from tests.conftest import a_claim, an_order


def run_check(tmp_path, lines: list[bytes], *flags: str) -> list[dict]:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = subprocess.run(
        [sys.executable, "-m", "processor", "check", str(path), *flags], capture_output=True, check=True, timeout=120
    )
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_check_decides_each_line_with_the_default_table(tmp_path):
    lines = [
        orjson.dumps(a_claim()),
        orjson.dumps(a_claim(claim_id="CLM-2", diagnoses=[{"code": "E11", "system": "ICD-10-CM"}])),
        b"not json",
        orjson.dumps(an_order()),
    ]
    out = run_check(tmp_path, lines, "--demo-codes")
    assert [r["outcome"] for r in out] == ["accepted", "returned", "undecodable", "accepted"]
    assert out[1]["reasons"][0]["id"] == "diagnosis.header" and out[1]["reasons"][0]["value"] == "E11"
    assert out[2]["line"] == 3
    assert out[0]["source"] == {"line": 1} and out[0]["event"]["claim_id"] == "CLM-1"
    assert out[0]["code_table_version"].startswith("file:ICD-10-CM FY2025+FY2026+FY2027")


def test_without_cpt_rows_a_cpt_line_goes_to_review(tmp_path):
    out = run_check(tmp_path, [orjson.dumps(a_claim())])
    assert out[0]["outcome"] == "needs_review"
    assert [r["id"] for r in out[0]["reasons"]] == ["procedure.system_not_loaded"]


def _patient(age: int, sex: str, on: str = "2025-11-03") -> dict:
    return {"birth_date": f"{int(on[:4]) - age}-01-01", "sex": sex}


def _stay(principal: str, age: int, sex: str) -> dict:
    return a_claim(
        claim_type="inpatient", admission_date="2025-11-01", discharge_date="2025-11-03", discharge_status="01",
        patient=_patient(age, sex), diagnoses=[{"code": principal, "system": "ICD-10-CM"}, {"code": "I10",
        "system": "ICD-10-CM"}], lines=[], procedures=[],
    )  # fmt: skip


# The examples of issue 11, as CMS's code editor answers them (FY2026 dates of service).
ISSUE_11 = [
    ("O80 on a male patient: CMS dropped the sex edits from FY2025", "O80", 30, "M", "accepted", []),
    ("P27.1 at age 3: chapter 16 codes may be used throughout life", "P27.1", 3, "F", "accepted", []),
    ("P07.30 at age 2: not on the MCE newborn list", "P07.30", 2, "F", "accepted", []),
    ("QA0.0151 (FOXG1 syndrome), a FY2026 code", "QA0.0151", 6, "F", "accepted", []),
    ("Z34.00 at 75: maternity list", "Z34.00", 75, "F", "returned", ["diagnosis.age_conflict"]),
    ("Z36.87 at 66: maternity list", "Z36.87", 66, "F", "returned", ["diagnosis.age_conflict"]),
    ("M80.021P at age 1: adult list", "M80.021P", 1, "F", "returned", ["diagnosis.age_conflict"]),
]


def test_check_answers_the_issue_examples_as_cms_would(tmp_path):
    claims = [
        a_claim(claim_id=f"CLM-{n}", patient=_patient(age, sex), diagnoses=[{"code": code, "system": "ICD-10-CM"}])
        for n, (_why, code, age, sex, _outcome, _ids) in enumerate(ISSUE_11)
    ]
    stays = [_stay("Z00.00", 40, "M"), _stay("I50.9", 70, "F")]
    out = run_check(tmp_path, [orjson.dumps(event) for event in [*claims, *stays]], "--demo-codes")
    for (why, *_, outcome, ids), record in zip(ISSUE_11, out, strict=False):
        assert (record["outcome"], [r["id"] for r in record["reasons"]]) == (outcome, ids), why
    assert [r["id"] for r in out[-2]["reasons"]] == ["diagnosis.unacceptable_principal"]  # Z00.00 on a stay
    assert out[-1]["outcome"] == "accepted"
    for record in out:
        for reason in record["reasons"]:  # answers a 277CA allows: A categories only
            assert reason["stc"]["category"].startswith("A") and reason["category"].startswith("A")
