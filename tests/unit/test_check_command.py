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
    assert out[0]["code_table_version"].startswith("file:ICD-10-CM FY2025+FY2026")


def test_without_cpt_rows_a_cpt_line_goes_to_review(tmp_path):
    out = run_check(tmp_path, [orjson.dumps(a_claim())])
    assert out[0]["outcome"] == "needs_review"
    assert [r["id"] for r in out[0]["reasons"]] == ["procedure.system_not_loaded"]
