"""``processor load ncci-ptp`` and ``processor load mue`` on fixtures shaped exactly like CMS's files, through
the real broker; then the three cases of issue 12 come out as CMS's editors answer them: the line is denied,
the claim accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.code_table.cms_files import ReleaseCode
from processor.code_table.releases import Release, merge_release
from processor.engine import decide
from tests.conftest import a_claim
from tests.integration.conftest import load_table, table_on_topic
from tests.integration.test_hcpcs_load import processor_load

pytestmark = pytest.mark.kafka

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cms"
PRACTITIONER_PTP = sorted(str(p) for p in (FIXTURES / "ncci").glob("ccipra-v321r0-f?.txt"))
PRACTITIONER_MUE = FIXTURES / "mue" / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"
DAY = "2026-02-02"

# The claims' diagnoses (FY2026) and the CPT codes they bill (a payer's own CPT rows: CPT is AMA material).
DIAGNOSES = merge_release({}, Release("ICD-10-CM FY2026", "2025-10-01", "2026-09-30"), {
    "E119": ReleaseCode(True, "Type 2 diabetes mellitus without complications"),
    "I10": ReleaseCode(True, "Essential (primary) hypertension"),
})  # fmt: skip
CPT = "system,code,description,billable,valid_from,valid_to\n" + "".join(
    f"CPT,{code},,true,2020-01-01,\n" for code in ("93000", "93005", "20610", "20552", "99213")
)


def line(code: str, number: int, modifiers: tuple[str, ...] = ()) -> dict:
    return {"line_number": number, "code": code, "system": "CPT", "modifiers": list(modifiers), "units": 1,
            "service_date": DAY, "diagnosis_pointers": [1]}  # fmt: skip


async def test_cms_ptp_and_mue_files_load_and_deny_lines_as_cms_does(settings, tmp_path):
    await load_table(settings, DIAGNOSES)
    codes = tmp_path / "cpt.csv"
    codes.write_text(CPT)
    processor_load(settings, "csv", str(codes))
    ptp = processor_load(
        settings, "ncci-ptp", *PRACTITIONER_PTP, "--table", "practitioner", "--first-day", "2026-01-01"
    )
    mue = processor_load(settings, "mue", str(PRACTITIONER_MUE), "--table", "practitioner", "--first-day", "2026-01-01")
    again = processor_load(
        settings, "mue", str(PRACTITIONER_MUE), "--table", "practitioner", "--first-day", "2026-01-01"
    )
    assert "published 0 code-table records" in again.stderr, again.stderr  # nothing changed
    assert "published 0" not in ptp.stderr and "published 0" not in mue.stderr
    table = await table_on_topic(settings)

    def decided(lines: list[dict]):
        return decide(a_claim(submitted_at=f"{DAY}T10:00:00Z", lines=lines), "claim", table)

    # 93000's MUE is 1 a day (MAI 3): three lines of one unit each on one date pass it; all three are denied.
    mue_split = decided([line("93000", n) for n in (1, 2, 3)])
    assert (mue_split.outcome, mue_split.lines_denied) == ("accepted", [1, 2, 3])
    assert {r.id for r in mue_split.reasons} == {"units.over_mue"}
    # 20610/20552, modifier indicator 1: RT on both lines names one site, so the pair is not bypassed.
    same_site = decided([line("20610", 1, ("RT",)), line("20552", 2, ("RT",))])
    assert (same_site.outcome, same_site.lines_denied) == ("accepted", [2])
    assert [r.id for r in same_site.reasons] == ["ncci.modifier_required"]
    assert "Misuse of column two code with column one code" in same_site.reasons[0].message
    assert decided([line("20610", 1, ("LT",)), line("20552", 2, ("RT",))]).reasons == ()
    # 93000/93005, modifier indicator 0: the bundled column-2 line is denied, the claim goes on.
    bundled = decided([line("93000", 1), line("93005", 2)])
    assert (bundled.outcome, bundled.lines_denied) == ("accepted", [2])
    assert [(r.id, r.outcome) for r in bundled.reasons] == [("ncci.bundled", "denied")]
    record = bundled.as_record({}, f"{DAY}T10:00:00.000Z")
    assert record["reasons"][0]["adjustment"] == {"group": "CO", "carc": "236", "rarc": None}
