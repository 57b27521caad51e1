"""A local Apache Kafka broker, run from the official jars, for the demo, the tests and the benchmark.

``LocalBroker`` formats a fresh KRaft storage directory (one node acting as broker and controller,
``kafka.tools.StorageTool format --standalone``), starts ``kafka.Kafka`` on free loopback ports, waits
until the broker answers a metadata request, and stops it cleanly (SIGTERM, then SIGKILL after a bound).
The jars come from Maven Central through ``deploy/kafka/pom.xml``; ``ensure_jars`` fetches them once.

Set ``KAFKA_BOOTSTRAP_SERVERS`` to use an existing cluster instead: the demo and the test fixtures then
start nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
POM = REPO / "deploy" / "kafka" / "pom.xml"
LIBS = Path(os.environ.get("KAFKA_LIBS", REPO / "deploy" / "kafka" / "target" / "libs"))

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
"""


_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def ensure_jars() -> Path:
    """The folder of Kafka jars, fetched from Maven Central with ``mvn`` when it is missing or empty."""
    if LIBS.is_dir() and any(LIBS.glob("kafka_2.13-*.jar")):
        return LIBS
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed to fetch the Kafka jars; install it or set KAFKA_LIBS")
    log.info("fetching the Kafka jars with Maven (once)")
    subprocess.run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"], check=True)
    return LIBS


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalBroker:
    """One Kafka node (broker and controller) on loopback, in its own temporary directory.

    Use as a context manager, or call ``start()`` and ``stop()``. ``start()`` blocks until the broker
    answers, so call it from a thread (``asyncio.to_thread``) inside a running event loop.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        port: int | None = None,
        log_level: str = "WARN",
        sasl_users: dict[str, str] | None = None,
    ) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kafka-")) if workdir is None else workdir
        self.port = port or free_port()
        self.controller_port = free_port()
        self.log_level = log_level
        # With users, a second listener needs SASL (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512) from them.
        self.sasl_users = sasl_users or {}
        self.sasl_port = free_port() if self.sasl_users else None
        self.process: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def sasl_bootstrap_servers(self) -> str | None:
        """The address of the SASL_PLAINTEXT listener, when the broker has users."""
        return f"127.0.0.1:{self.sasl_port}" if self.sasl_port else None

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own log: read it when the broker misbehaves."""
        return self.workdir / "broker.log"

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp", f"{ensure_jars()}/*", main_class, *args,
        ]  # fmt: skip

    def _listeners(self) -> list[str]:
        listeners = f"PLAINTEXT://127.0.0.1:{self.port}"
        if self.sasl_port:
            listeners += f",SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
        lines = [
            f"listeners={listeners},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={listeners}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        ]
        if self.sasl_users:
            plain_users = " ".join(f'user_{name}="{password}"' for name, password in self.sasl_users.items())
            prefix = "listener.name.sasl_plaintext"
            lines += [
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                f"{prefix}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
                f"required {plain_users};",
                f"{prefix}.scram-sha-256.sasl.jaas.config={_SCRAM_LOGIN}",
                f"{prefix}.scram-sha-512.sasl.jaas.config={_SCRAM_LOGIN}",
            ]
        return lines

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        config = self.workdir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    *self._listeners(),
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=10",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.cleaner.backoff.ms=1000",
                ]
            )
            + "\n"
        )
        (self.workdir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file, level=self.log_level))
        return config

    def start(self, timeout: float = 90.0) -> str:
        """Format storage, start the broker and wait until it answers; returns the bootstrap address."""
        config = self._write_config()
        if not self._formatted:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            scram = [
                arg
                for name, password in self.sasl_users.items()
                for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
            ]
            format_command = ["format", "--standalone", "-t", cluster_id, "-c", str(config), *scram]
            subprocess.run(self._java("kafka.tools.StorageTool", *format_command), check=True, capture_output=True)
            self._formatted = True
        out = (self.workdir / "broker.out").open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(config)), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}; see {self.workdir}/broker.out")
            if asyncio.run(_answers(self.bootstrap_servers)):
                log.info("Kafka broker ready at %s", self.bootstrap_servers)
                return self.bootstrap_servers
            time.sleep(0.2)  # between connection attempts while the JVM starts
        self.stop()
        raise TimeoutError(f"Kafka did not answer within {timeout:.0f} s; see {self.workdir}/broker.out")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker: SIGTERM for a clean shutdown, SIGKILL if it has not exited within ``timeout``."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def restart(self, timeout: float = 90.0) -> None:
        """Stop the broker cleanly and start it again on the same ports and data (a broker restart)."""
        self.stop()
        self.start(timeout)

    def remove(self) -> None:
        """Stop, then delete the broker's directory if this object created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


async def _answers(bootstrap_servers: str) -> bool:
    """True when a broker at the address answers a metadata request and lists itself."""
    from aiokafka.admin import AIOKafkaAdminClient

    host, port = bootstrap_servers.split(",")[0].rsplit(":", 1)
    try:  # a plain connect first: the client would log an error for every refused attempt
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        await admin.close()
