"""SASL against a real broker that demands credentials, and no patient data in the logs."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest

from processor.app.processes import run_until_stopped
from processor.config import Security, Settings, Topics
from processor.kafka.broker import LocalBroker
from processor.kafka.clients import KafkaAccessError, check_access
from tests.conftest import SMALL_TABLE, a_claim
from tests.integration.conftest import load_table, produce, read_all
from tests.integration.exactly_once import start_worker, wait_for_log

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def sasl_broker():
    broker = LocalBroker(sasl_users={"coder": "coder-secret"})
    broker.start()
    yield broker
    broker.remove()


def sasl_settings(broker: LocalBroker, mechanism: str, password: str) -> Settings:
    return Settings(
        bootstrap_servers=broker.sasl_bootstrap_servers,
        topics=Topics().with_prefix(f"sasl-{mechanism.lower()}-"),
        group_id=f"sasl-{mechanism.lower()}",
        metrics_host="127.0.0.1",
        metrics_port=0,
        partitions=1,
        security=Security("SASL_PLAINTEXT", mechanism, "coder", password),
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_the_worker_decides_through_a_sasl_listener(sasl_broker, mechanism):
    settings = sasl_settings(sasl_broker, mechanism, "coder-secret")
    await load_table(dataclasses.replace(settings), SMALL_TABLE)  # the loader authenticates too
    stop = asyncio.Event()
    worker = asyncio.create_task(run_until_stopped(settings, stop))
    try:
        # The test's own producer and reader use the plaintext listener of the same broker.
        plain = dataclasses.replace(settings, bootstrap_servers=sasl_broker.bootstrap_servers, security=Security())
        await produce(plain, settings.topics.claims, [a_claim()])
        found = await read_all(plain, [settings.topics.accepted], 1)
    finally:
        stop.set()
        assert await worker == 0
    assert orjson.loads(found[0].value)["event_id"] == "CLM-1"


async def test_wrong_credentials_give_a_clear_error(sasl_broker):
    settings = sasl_settings(sasl_broker, "SCRAM-SHA-256", "not-the-password")
    with pytest.raises(KafkaAccessError) as raised:
        await check_access(settings)
    message = str(raised.value)
    assert "refused the login of user 'coder'" in message and "KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message and "not-the-password" not in repr(settings)


async def test_a_worker_with_wrong_credentials_exits_with_the_reason(sasl_broker, tmp_path):
    settings = sasl_settings(sasl_broker, "PLAIN", "wrong")
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log, KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", KAFKA_SASL_MECHANISM="PLAIN",
                          KAFKA_SASL_USERNAME="coder", KAFKA_SASL_PASSWORD="wrong")  # fmt: skip
    assert worker.wait(60) == 1
    text = log.read_text()
    assert "refused the login of user 'coder'" in text and "wrong" not in text.replace("'wrong'", "")


async def test_no_patient_data_in_the_logs(settings, tmp_path):
    """A worker at debug level decides claims full of patient data; its log holds none of it."""
    await load_table(settings, SMALL_TABLE)
    birth_dates = [f"19{40 + i}-0{1 + i % 9}-1{i % 9}" for i in range(20)]
    claims = [a_claim(claim_id=f"PHI-{i}", patient={"birth_date": d, "sex": "F"}, diagnoses=[
        {"code": "E11", "system": "ICD-10-CM"}]) for i, d in enumerate(birth_dates)]  # fmt: skip
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        wait_for_log(log, "assigned")
        await produce(settings, settings.topics.claims, [*claims, b'{"claim_id": "PHI-X", "patient": {"birth'])
        await read_all(settings, [settings.topics.returned, settings.topics.dead_letter], len(claims) + 1)
    finally:
        worker.terminate()
        worker.wait(60)
    text = log.read_text()
    assert "assigned" in text  # the log did record the run
    for value in [*birth_dates, "PHI-", "birth"]:
        assert value not in text, value
