"""Shared fixtures: the real Kafka broker for the session, and small code tables for the engine."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from processor.code_table.table import CodeTable, record_key


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


# A few real codes with their real FY2025/FY2026 validity, and demo procedure/test codes.
SMALL_TABLE = rows(
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
    ("ACME-INTERNAL", "X100", True, "2024-01-01", None),
)


@pytest.fixture
def small_table() -> CodeTable:
    return CodeTable("test").load(SMALL_TABLE)


def a_claim(**changes: object) -> dict:
    """A valid claim (for SMALL_TABLE) with top-level fields replaced by ``changes``."""
    claim = {
        "claim_id": "CLM-1",
        "submitter_id": "SUB-1",
        "submitted_at": "2025-11-03T10:00:00Z",
        "patient": {"birth_date": "1961-04-12", "sex": "F"},
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
