"""Shared fixtures: the real Kafka broker for the session, and small code tables for the engine."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from processor.code_systems import normalize
from processor.code_table.ncci_mue import PtpEdit, ptp_set_records_of
from processor.code_table.table import MCE, MCE_AGE, MUE, NCCI, RELEASE, SUPPORTS, CodeTable, policy_record, record_key


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """The bootstrap address of a real Apache Kafka broker for the whole test session.

    ``KAFKA_BOOTSTRAP_SERVERS`` names an existing cluster; ``PROCESSOR_TEST_BROKER=testcontainers`` uses
    testcontainers' Kafka module where a Docker daemon is reachable; otherwise (and in CI) the project's
    own ``LocalBroker`` runs Kafka from the official jars.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif os.environ.get("PROCESSOR_TEST_BROKER") == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        if shutil.which("java") is None:
            pytest.fail("Java 17+ is needed to run the Kafka broker for the integration tests")
        from processor.kafka.broker import LocalBroker

        broker = LocalBroker()
        broker.start()
        try:
            yield broker.bootstrap_servers
        finally:
            broker.remove()


def rows(*specs: tuple[str, str, bool, str, str | None]) -> list[tuple[str, dict]]:
    """Code-table records from ``(system, code, billable, valid_from, valid_to)`` tuples."""
    return [
        (
            record_key(system, code, valid_from),
            {
                "system": system,
                "code": code,
                "billable": billable,
                "valid_from": valid_from,
                "valid_to": valid_to,
                "description": f"{system} {code}",
            },
        )
        for system, code, billable, valid_from, valid_to in specs
    ]


def with_attributes(records: list[tuple[str, dict]], **attributes: object) -> list[tuple[str, dict]]:
    """The same records with edit attributes (age, sex, manifestation, crosswalk...)."""
    return [(key, {**record, "attributes": dict(attributes)}) for key, record in records]


# A few real codes with their real FY2025/FY2026 validity, and demo procedure/test codes.
SMALL_TABLE = [
    *rows(
        ("ICD-10-CM", "E11", False, "2024-10-01", None),
        ("ICD-10-CM", "E11.9", True, "2024-10-01", None),
        ("ICD-10-CM", "E11.A", True, "2025-10-01", None),
        ("ICD-10-CM", "B88.0", True, "2024-10-01", "2025-09-30"),
        ("ICD-10-CM", "B88.0", False, "2025-10-01", None),
        ("ICD-10-CM", "B88.01", True, "2025-10-01", None),
        ("ICD-10-CM", "S52.521A", True, "2024-10-01", None),
        ("ICD-10-CM", "I10", True, "2024-10-01", None),
        ("ICD-10-PCS", "0DTJ4ZZ", True, "2024-10-01", None),
        ("HCPCS", "J1100", True, "2024-01-01", None),
        ("CPT", "99213", True, "2024-01-01", None),
        ("CPT", "83036", True, "2024-01-01", None),
        ("LOINC", "4548-4", True, "2024-01-01", None),
    ),
    # Codes that CMS's MCE lists flag (their flags are in SMALL_POLICY), and codes without flags.
    *rows(
        ("ICD-10-CM", "Z00.00", True, "2024-10-01", None),
        ("ICD-10-CM", "Z51.89", True, "2024-10-01", None),
        ("ICD-10-CM", "Z34.00", True, "2024-10-01", None),
        ("ICD-10-CM", "M80.021P", True, "2024-10-01", None),
        ("ICD-10-CM", "N39.0", True, "2024-10-01", None),
        ("ICD-10-PCS", "00F3XZZ", True, "2024-10-01", None),
        ("ICD-10-PCS", "02WA3QZ", True, "2024-10-01", None),
    ),
    # A payer's own age and sex edits on ICD-10-CM codes, and the tabular's notes.
    *with_attributes(
        rows(("ICD-10-CM", "O80", True, "2024-10-01", None)), age_min=9, age_max=64, age_edit="maternity", sex="F"
    ),
    *with_attributes(rows(("ICD-10-CM", "Z38.00", True, "2024-10-01", None)), age_min=0, age_max=0, age_edit="newborn"),
    *with_attributes(rows(("ICD-10-CM", "P22.0", True, "2024-10-01", None)), age_min=0, age_max=0, age_edit="newborn"),
    *with_attributes(rows(("ICD-10-CM", "G63", True, "2024-10-01", None)), manifestation=True, code_first=True),
    *with_attributes(rows(("ICD-10-CM", "E08.9", True, "2024-10-01", None)), code_first=True),
    *rows(("ICD-10-CM", "W19.XXXA", True, "2024-10-01", None)),
    # Hand-written payer rows, codes only: a deleted CPT code (99201 ended 2020-12-31), a non-billable
    # HCPCS code, a test the lab no longer runs, a payer's own age and sex edits.
    *rows(
        ("CPT", "99201", True, "2020-01-01", "2020-12-31"),
        ("HCPCS", "A9270", False, "2024-01-01", None),
        ("LOINC", "2093-3", True, "2020-01-01", "2024-12-31"),
        ("LOINC", "24331-1", False, "2024-01-01", None),
        ("CPT", "93000", True, "2024-01-01", None),
        ("CPT", "93005", True, "2024-01-01", None),
        ("CPT", "20610", True, "2024-01-01", None),
        ("CPT", "20552", True, "2024-01-01", None),
        ("CPT", "36415", True, "2024-01-01", None),
    ),
    *with_attributes(rows(("CPT", "55700", True, "2024-01-01", None)), sex="M"),
    *with_attributes(rows(("CPT", "99381", True, "2024-01-01", None)), age_min=0, age_max=0),
    *with_attributes(rows(("HCPCS", "G0103", True, "2024-01-01", None)), sex="M"),
    # HCPCS Level II modifiers (CMS's file): GD ended 2019-12-31.
    *rows(
        ("HCPCS-MODIFIER", "RT", True, "2000-01-01", None),
        ("HCPCS-MODIFIER", "LT", True, "2000-01-01", None),
        ("HCPCS-MODIFIER", "XS", True, "2015-01-01", None),
        ("HCPCS-MODIFIER", "XE", True, "2015-01-01", None),
        ("HCPCS-MODIFIER", "GD", True, "2008-01-01", "2019-12-31"),
    ),
    # CMS's place of service codes (11 office, 22 on campus outpatient hospital, 81 independent laboratory; 10,
    # telehealth in the patient's home, from 2022-01-01).
    *rows(
        ("POS", "11", True, "2003-10-16", None),
        ("POS", "22", True, "2003-10-16", None),
        ("POS", "81", True, "2003-10-16", None),
        ("POS", "10", True, "2022-01-01", None),
    ),
    # A payer's internal codes and their cross-reference to external codes.
    *with_attributes(rows(("ACME-INTERNAL", "X100", True, "2024-01-01", None)), maps_to="99213", maps_to_system="CPT"),
    *rows(("ACME-INTERNAL", "X200", True, "2024-01-01", None)),
    *with_attributes(rows(("ACME-INTERNAL", "X300", True, "2024-01-01", None)), maps_to="CPT:99999"),
]


def _mce(system: str, code: str, *flags: str, cms_sex: str | None = None) -> tuple[str, dict]:
    attributes: dict = {"system": system, "code": normalize(system, code), "flags": sorted(flags)}
    if cms_sex:
        attributes["cms_sex"] = cms_sex
    return policy_record(MCE, f"{system}:{normalize(system, code)}", "2024-10-01", "2026-09-30", attributes)


# The policy records of the small table: releases loaded and the dates each covers, CMS's MCE lists (their
# real flags for these codes), coverage, NCCI, MUE.
SMALL_POLICY = [
    policy_record(RELEASE, "MCE:FY2025", "2024-10-01", "2025-09-30", {"system": "MCE"}, "MCE FY2025"),
    policy_record(RELEASE, "MCE:FY2026", "2025-10-01", "2026-09-30", {"system": "MCE"}, "MCE FY2026"),
    *(
        policy_record(MCE_AGE, group, "2024-10-01", "2026-09-30", {"group": group, "age_min": low, "age_max": high})
        for group, low, high in (("newborn", 0, 0), ("pediatric", 0, 17), ("maternity", 9, 64), ("adult", 15, 124))
    ),
    _mce("ICD-10-CM", "E11.9", "qadm"),
    _mce("ICD-10-CM", "I10", "qadm"),
    _mce("ICD-10-CM", "Z00.00", "adult", "unacceptable"),
    _mce("ICD-10-CM", "Z51.89", "reqsdx", "unacceptable"),
    _mce("ICD-10-CM", "Z34.00", "maternity", "unacceptable", cms_sex="F"),
    _mce("ICD-10-CM", "M80.021P", "adult"),
    _mce("ICD-10-CM", "W19.XXXA", "ecodepdx"),
    _mce("ICD-10-CM", "G63", "manifestation"),
    _mce("ICD-10-PCS", "00F3XZZ", "noncovered"),
    _mce("ICD-10-PCS", "02WA3QZ", "lcov"),
    # Releases loaded, with the dates each covers: ICD-10-CM FY2025 and FY2026, HCPCS for 2024-2026, POS to 2025.
    policy_record(RELEASE, "ICD-10-CM:FY2025", "2024-10-01", "2025-09-30", {"system": "ICD-10-CM"}, "ICD-10-CM FY2025"),
    policy_record(RELEASE, "ICD-10-CM:FY2026", "2025-10-01", "2026-09-30", {"system": "ICD-10-CM"}, "ICD-10-CM FY2026"),
    policy_record(RELEASE, "HCPCS:2024-2026", "2024-01-01", "2026-12-31", {"system": "HCPCS"}, "HCPCS 2024-2026"),
    policy_record(RELEASE, "POS:2003-2025", "2003-10-16", "2025-12-31", {"system": "POS"}, "POS 2003-2025"),
    # Policy rows: HbA1c is covered for diabetes (NCD 190.21: E08-E13); hand-written NCCI pairs and an MUE.
    policy_record(
        SUPPORTS, "CPT:83036>E08-E13", "2024-01-01", None, {"system": "CPT", "code": "83036", "diagnoses": "E08-E13"}
    ),
    policy_record(
        SUPPORTS,
        "LOINC:4548-4>E08-E13",
        "2024-01-01",
        None,
        {"system": "LOINC", "code": "4548-4", "diagnoses": "E08-E13"},
    ),
    policy_record(
        NCCI, "93000/93005", "2024-01-01", None, {"column1": "93000", "column2": "93005", "modifier_indicator": "0"}
    ),
    policy_record(
        NCCI, "20610/20552", "2024-01-01", None, {"column1": "20610", "column2": "20552", "modifier_indicator": "1"}
    ),
    policy_record(
        NCCI, "99213/36415", "2024-01-01", None, {"column1": "99213", "column2": "36415", "modifier_indicator": "9"}
    ),
    policy_record(MUE, "36415", "2024-01-01", None, {"code": "36415", "max_units": 2}),
    # CMS's own table shapes (processor/code_table/ncci_mue.py): a per-day MUE (MAI 2) and a pair of the
    # hospital outpatient table only, in the @ncci-set record `processor load ncci-ptp` publishes.
    policy_record(
        MUE,
        "J1100",
        "2024-01-01",
        None,
        {"code": "J1100", "max_units": 1, "mai": 2, "table": "practitioner", "rationale": "Prescribing Information"},
    ),
    *ptp_set_records_of(
        "hospital",
        "93000",
        [PtpEdit("93000", "36415", "2024-01-01", None, "0", "Misuse of column two code with column one code")],
    ),
]


@pytest.fixture
def small_table() -> CodeTable:
    return CodeTable("test").load([*SMALL_TABLE, *SMALL_POLICY])


def a_claim(**changes: object) -> dict:
    """A valid claim (for SMALL_TABLE) with top-level fields replaced by ``changes``; unless the lines are
    replaced too, the line points at every diagnosis given (a pointer must point at a diagnosis)."""
    claim = {
        "claim_id": "CLM-1",
        "submitter_id": "SUB-1",
        "submitted_at": "2025-11-03T10:00:00Z",
        "patient": {"birth_date": "1961-04-12", "sex": "F"},
        "member": {"id": "W100000001"},
        "billing_provider": {"npi": "1234567893"},
        "diagnoses": [{"code": "E11.9", "system": "ICD-10-CM"}, {"code": "I10", "system": "ICD-10-CM"}],
        "lines": [
            {
                "line_number": 1,
                "code": "99213",
                "system": "CPT",
                "modifiers": [],
                "units": 1,
                "service_date": "2025-11-03",
                "diagnosis_pointers": [1, 2],
            },
        ],
    }
    claim.update(changes)
    if "lines" not in changes and isinstance(claim["diagnoses"], list):
        claim["lines"][0]["diagnosis_pointers"] = list(range(1, min(len(claim["diagnoses"]), 12) + 1))
    return claim


def an_order(**changes: object) -> dict:
    """A valid lab order (for SMALL_TABLE) with top-level fields replaced by ``changes``."""
    order = {
        "order_id": "ORD-1",
        "lab_id": "LAB-1",
        "ordering_provider": {"npi": "1234567893"},
        "patient": {"birth_date": "1961-04-12", "sex": "F"},
        "collection_date": "2025-11-03",
        "tests": [{"code": "4548-4", "system": "LOINC"}],
        "diagnoses": [{"code": "E11.9", "system": "ICD-10-CM"}],
    }
    order.update(changes)
    return order
