"""``processor load hcpcs`` on CMS's real, unmodified 2020 HCPCS file, through the real broker: a code CMS
terminated but still lists is accepted before its termination date and returned after it. Also
``processor load icd10pcs-order`` on rows of CMS's ICD-10-PCS order file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from processor.code_table.cms_files import HCPCS_MODIFIER, ReleaseCode
from processor.code_table.releases import Release, merge_release
from processor.engine import decide
from tests.conftest import a_claim
from tests.integration.conftest import load_table, table_on_topic
from tests.integration.test_commands import env_for

pytestmark = pytest.mark.kafka

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cms"
HCPCS_2020 = FIXTURES / "hcpcs-2020" / "HCPC2020_ANWEB_w_disclaimer.txt"
PCS_2023 = FIXTURES / "icd10pcs-2023" / "icd10pcs_order_2023.txt"

# The claims' diagnoses, E11.9 and I10, must be judged valid on every date below, or the claim goes to review
# (diagnosis.date_not_covered) whatever its HCPCS line says: the default table covers 2024-10-01 on only.
# Both codes are valid in every fiscal year since FY2016, so a release covering FY2018 to FY2020
# (2017-10-01 to 2020-09-30) with just these two codes is true to ICD-10-CM for the dates used here.
DIAGNOSES = merge_release({}, Release("ICD-10-CM FY2018-FY2020", "2017-10-01", "2020-09-30"), {
    "E119": ReleaseCode(True, "Type 2 diabetes mellitus without complications"),
    "I10": ReleaseCode(True, "Essential (primary) hypertension"),
})  # fmt: skip


def processor_load(settings, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "processor", "load", *args], env=env_for(settings),
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def hcpcs_claim(code: str, day: str) -> dict:
    """A valid professional claim (tests/conftest.py) whose one line bills HCPCS ``code`` on ``day``."""
    claim = a_claim(submitted_at=f"{day}T10:00:00Z")
    claim["lines"][0].update(code=code, system="HCPCS", service_date=day)
    return claim


async def test_a_terminated_code_in_the_real_file_is_valid_only_up_to_its_termination(settings):
    await load_table(settings, DIAGNOSES)
    loaded = processor_load(settings, "hcpcs", str(HCPCS_2020), "--first-day", "2020-01-01")
    assert "6710 codes (605 with a termination date), 369 modifiers; skipped 9 lines" in loaded.stderr
    again = processor_load(settings, "hcpcs", str(HCPCS_2020), "--first-day", "2020-01-01")
    assert "published 0 code-table records" in again.stderr  # loading the same file again changes nothing

    table = await table_on_topic(settings)
    # J9310 (rituximab, 100 mg): added 1999-01-01, terminated 2018-12-31, still listed in the 2020 file.
    cases = [
        ("J9310", "2018-06-01", "accepted", []),
        ("J9310", "2020-03-01", "returned", ["procedure.not_valid_on_date"]),
        ("J1100", "2020-03-01", "accepted", []),  # dexamethasone: valid since 1982
    ]
    for code, day, outcome, reasons in cases:
        decision = decide(hcpcs_claim(code, day), "claim", table)
        assert (decision.outcome.value, [r.id for r in decision.reasons]) == (outcome, reasons), (code, day)
    # The modifiers are a system of their own, with their dates: GD ended 2019-12-31 (action code D).
    [gd] = table.versions(HCPCS_MODIFIER, "GD")
    assert (gd.valid_from, gd.valid_to, gd.attributes["action_code"]) == ("2008-01-01", "2019-12-31", "D")
    assert table.covers_date(HCPCS_MODIFIER, "2020-03-01")


async def test_load_icd10pcs_order_publishes_a_release_with_descriptions(settings):
    processor_load(settings, "icd10pcs-order", str(PCS_2023), "--release", "FY2023", "--first-day", "2022-10-01")
    table = await table_on_topic(settings)
    assert table.releases("ICD-10-PCS") == [("ICD-10-PCS FY2023", "2022-10-01", "2023-09-30")]
    [version] = table.versions("ICD-10-PCS", "0016070")
    long = "Bypass Cerebral Ventricle to Nasopharynx with Autologous Tissue Substitute, Open Approach"
    assert (version.valid_from, version.billable, version.description) == ("2022-10-01", True, long)
    assert not table.versions("ICD-10-PCS", "001")[0].billable  # the table header row
