"""SASL and TLS against a real broker that demands them, and no patient data in the logs.

One broker for the module listens four ways: PLAINTEXT (the tests' own producer and reader), SASL_PLAINTEXT
(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), SSL with a client certificate required, and SASL_SSL. The test makes
its own certificate authority, broker and client certificates with ``openssl`` and the broker's PKCS12
truststore with ``keytool`` (Java's).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from processor.app.processes import run_until_stopped
from processor.config import Security, Settings, Topics
from processor.kafka.broker import BrokerTls, LocalBroker
from processor.kafka.clients import KafkaAccessError, check_access
from tests.conftest import SMALL_TABLE, a_claim
from tests.integration.conftest import load_table, produce, read_all
from tests.integration.exactly_once import start_worker, wait_for_log

pytestmark = pytest.mark.kafka

PASSWORD = "coder-secret"
STORE_PASSWORD = "store-secret"


@dataclasses.dataclass(frozen=True)
class Certificates:
    """A test certificate authority, and what the broker and a client hold of it."""

    ca: Path  # the authority's certificate (PEM): the clients' KAFKA_SSL_CAFILE
    client_cert: Path  # a client certificate the authority signed (PEM), and its key
    client_key: Path
    broker: BrokerTls  # the broker's PKCS12 keystore (its key and certificate) and truststore (the authority)


def make_certificates(folder: Path) -> Certificates:
    """A CA, a broker certificate for 127.0.0.1 and localhost, and a client certificate, all valid for a day."""

    def run(*command: str) -> None:
        subprocess.run(command, cwd=folder, check=True, capture_output=True)

    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj"]
    ca = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]
    run("openssl", "req", "-x509", *new_key, "/CN=test CA", *ca, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1")
    extensions = {
        "broker": "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        "client": "extendedKeyUsage=clientAuth\n",
    }
    for name, extension in extensions.items():
        (folder / f"{name}.ext").write_text(extension)
        run("openssl", "req", *new_key, f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        signed_by_ca = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"]
        signed = ["-extfile", f"{name}.ext", "-out", f"{name}.pem"]
        run("openssl", "x509", "-req", "-in", f"{name}.csr", *signed_by_ca, *signed)
    keystore = ["-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem", "-name", "broker"]
    run("openssl", "pkcs12", "-export", *keystore, "-out", "keystore.p12", "-passout", f"pass:{STORE_PASSWORD}")
    truststore = ["-keystore", "truststore.p12", "-storetype", "PKCS12", "-storepass", STORE_PASSWORD]
    run("keytool", "-importcert", "-noprompt", "-alias", "test-ca", "-file", "ca.pem", *truststore)
    broker = BrokerTls(folder / "keystore.p12", folder / "truststore.p12", STORE_PASSWORD)
    return Certificates(folder / "ca.pem", folder / "client.pem", folder / "client.key", broker)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    missing = [tool for tool in ("openssl", "keytool") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the TLS tests make their certificates with {' and '.join(missing)}: install it")
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure_broker(certificates):
    broker = LocalBroker(sasl_users={"coder": PASSWORD}, tls=certificates.broker)
    broker.start()
    yield broker
    broker.remove()


def secure_settings(broker: LocalBroker, security: Security, name: str) -> Settings:
    """Settings for ``broker``'s listener of ``security.protocol``, with topics and group of their own."""
    addresses = {"SASL_PLAINTEXT": broker.sasl_bootstrap_servers, "SSL": broker.ssl_bootstrap_servers,
                 "SASL_SSL": broker.sasl_ssl_bootstrap_servers}  # fmt: skip
    return Settings(
        bootstrap_servers=addresses[security.protocol],
        topics=Topics().with_prefix(f"{name}-"),
        group_id=name,
        metrics_host="127.0.0.1",
        metrics_port=0,
        partitions=1,
        security=security,
    )


def sasl_settings(broker: LocalBroker, mechanism: str, password: str) -> Settings:
    security = Security("SASL_PLAINTEXT", mechanism, "coder", password)
    return secure_settings(broker, security, f"sasl-{mechanism.lower()}")


def ways_in(certificates: Certificates) -> dict[str, Security]:
    """Every way the worker may connect, by name: SASL over plaintext with each mechanism, TLS with a client
    certificate, and SCRAM-SHA-512 over TLS."""
    tls = {"ssl_cafile": str(certificates.ca)}
    return {
        **{f"sasl-{m.lower()}": Security("SASL_PLAINTEXT", m, "coder", PASSWORD) for m in Security.MECHANISMS},
        "ssl": Security(
            "SSL", ssl_certfile=str(certificates.client_cert), ssl_keyfile=str(certificates.client_key), **tls
        ),
        "sasl-ssl-scram-sha-512": Security("SASL_SSL", "SCRAM-SHA-512", "coder", PASSWORD, **tls),
    }


@pytest.mark.parametrize("way", ["sasl-plain", "sasl-scram-sha-256", "sasl-scram-sha-512", "ssl",
                                 "sasl-ssl-scram-sha-512"])  # fmt: skip
async def test_the_worker_decides_through_every_secured_listener(secure_broker, certificates, way, tmp_path):
    settings = secure_settings(secure_broker, ways_in(certificates)[way], way)
    settings = dataclasses.replace(settings, state_dir=str(tmp_path / "state"))
    await load_table(dataclasses.replace(settings), SMALL_TABLE)  # the loader authenticates too
    stop = asyncio.Event()
    worker = asyncio.create_task(run_until_stopped(settings, stop))
    try:
        # The test's own producer and reader use the plaintext listener of the same broker.
        plain = dataclasses.replace(settings, bootstrap_servers=secure_broker.bootstrap_servers, security=Security())
        await produce(plain, settings.topics.claims, [a_claim()])
        found = await read_all(plain, [settings.topics.accepted], 1)
    finally:
        stop.set()
        assert await worker == 0
    assert orjson.loads(found[0].value)["event_id"] == "CLM-1"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        pytest.param({"ssl_cafile": None}, "CERTIFICATE_VERIFY_FAILED", id="the system's CAs do not know the broker"),
        pytest.param({"ssl_certfile": None, "ssl_keyfile": None}, "closed", id="the broker wants a client certificate"),
    ],
)
async def test_tls_without_the_right_files_is_refused(secure_broker, certificates, change, refusal):
    security = dataclasses.replace(ways_in(certificates)["ssl"], **change)
    with pytest.raises(KafkaAccessError, match=f"cannot reach Kafka at .*{refusal}"):
        await check_access(secure_settings(secure_broker, security, "refused"))


async def test_wrong_credentials_give_a_clear_error(secure_broker):
    settings = sasl_settings(secure_broker, "SCRAM-SHA-256", "not-the-password")
    with pytest.raises(KafkaAccessError) as raised:
        await check_access(settings)
    message = str(raised.value)
    assert "refused the login of user 'coder'" in message and "KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message and "not-the-password" not in repr(settings)


async def test_a_worker_with_wrong_credentials_exits_with_the_reason(secure_broker, tmp_path):
    settings = sasl_settings(secure_broker, "PLAIN", "wrong")
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
