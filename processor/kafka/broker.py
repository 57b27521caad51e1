"""Local Apache Kafka, run from the official jars, for the demo, the tests and the benchmark.

``LocalBroker`` is one KRaft node acting as broker and controller: it formats a fresh storage directory
(``kafka.tools.StorageTool format --standalone``), starts ``kafka.Kafka`` on free loopback ports, waits
until the broker answers a metadata request, and stops it cleanly (SIGTERM, then SIGKILL after a bound).
Users add SASL listeners; TLS files add an SSL listener (and SASL_SSL with users).

``LocalCluster`` is several such nodes in one KRaft quorum (a static ``controller.quorum.voters``), replicated
as a production cluster is: ``default.replication.factor`` 3 and ``min.insync.replicas`` 2, the consumer
offsets and transaction state topics likewise. Any node can be killed (SIGKILL) and started again on the same
ports and data, as when a broker is lost and comes back.

The jars come from Maven Central through ``deploy/kafka/pom.xml``; ``ensure_jars`` fetches them once.
``KAFKA_LIBS`` names another folder of jars: ``make test-kafka39`` runs the integration tests on Kafka 3.9 so.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
POM = REPO / "deploy" / "kafka" / "pom.xml"
DEFAULT_LIBS = REPO / "deploy" / "kafka" / "target" / "libs"
LIBS = Path(os.environ.get("KAFKA_LIBS", DEFAULT_LIBS))

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
    if LIBS != DEFAULT_LIBS:
        raise RuntimeError(f"no Kafka jars in KAFKA_LIBS={LIBS} (make test-kafka39 fetches Kafka 3.9's)")
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed to fetch the Kafka jars; install it or set KAFKA_LIBS")
    log.info("fetching the Kafka jars with Maven (once)")
    subprocess.run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"], check=True)
    return LIBS


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that nothing listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class BrokerTls:
    """The broker's TLS files: a PKCS12 keystore with its key and certificate chain, and a PKCS12 truststore
    with the certificate authority whose client certificates the SSL listener accepts; one password for both.
    The SSL listener requires a client certificate; the SASL_SSL listener authenticates by the SASL login."""

    keystore: Path
    truststore: Path
    password: str = field(repr=False)


@dataclass(frozen=True)
class _Quorum:
    """What the nodes of one cluster share: its id, its controllers and the replication it asks for."""

    cluster_id: str
    voters: str | None  # controller.quorum.voters; None: a single node that formats itself --standalone
    replicas: int  # default.replication.factor, and that of the offsets and transaction state topics
    min_insync: int


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


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
        tls: BrokerTls | None = None,
        *,
        node_id: int = 1,
        controller_port: int | None = None,
        quorum: _Quorum | None = None,
    ) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kafka-")) if workdir is None else workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        # With users, SASL listeners need SASL (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512) from them; with TLS
        # files, an SSL listener (and SASL_SSL with users) is added.
        self.sasl_users = sasl_users or {}
        self.tls = tls
        ports = iter(free_ports(5))
        self.port = port or next(ports)
        self.controller_port = controller_port or next(ports)
        self.sasl_port = next(ports) if self.sasl_users else None
        self.ssl_port = next(ports) if tls else None
        self.sasl_ssl_port = next(ports) if tls and self.sasl_users else None
        self.node_id = node_id
        self.quorum = quorum or _Quorum(_new_cluster_id(), None, replicas=1, min_insync=1)
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self._formatted = False
        self._log_start = 0  # where this launch's lines begin in the node's log (restarts append to it)

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to (PLAINTEXT)."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap_servers(self) -> str | None:
        """The address of the SASL_PLAINTEXT listener, when the broker has users."""
        return f"127.0.0.1:{self.sasl_port}" if self.sasl_port else None

    @property
    def ssl_bootstrap_servers(self) -> str | None:
        """The address of the SSL listener (client certificate required), when the broker has TLS files."""
        return f"127.0.0.1:{self.ssl_port}" if self.ssl_port else None

    @property
    def sasl_ssl_bootstrap_servers(self) -> str | None:
        """The address of the SASL_SSL listener, when the broker has users and TLS files."""
        return f"127.0.0.1:{self.sasl_ssl_port}" if self.sasl_ssl_port else None

    @property
    def log_file(self) -> Path:
        """The broker's own log: read it when the broker misbehaves."""
        return self.workdir / "broker.log"

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java") or "java"
        # C1 only (-XX:TieredStopAtLevel=1): a node lives for a test session, a demo or a bench run, and the JIT's
        # C2 compiler still took 0.7 of a core two minutes into a bench run, on machines of two cores shared with
        # what is measured. At 1,000 events/s through the aiokafka ceiling the node used 0.57 cores with it, 1.07
        # without; a production broker (not this class) keeps C2.
        return [
            java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp", f"{ensure_jars()}/*", main_class, *args,
        ]  # fmt: skip

    def _listeners(self) -> list[str]:
        ports = {"PLAINTEXT": self.port, "SASL_PLAINTEXT": self.sasl_port, "SSL": self.ssl_port,
                 "SASL_SSL": self.sasl_ssl_port}  # fmt: skip
        named = {name: port for name, port in ports.items() if port}
        listeners = ",".join(f"{name}://127.0.0.1:{port}" for name, port in named.items())
        lines = [
            f"listeners={listeners},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners={listeners}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT," + ",".join(f"{name}:{name}" for name in named),
        ]
        if self.sasl_users:
            plain_users = " ".join(f'user_{name}="{password}"' for name, password in self.sasl_users.items())
            lines.append("sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
            for listener in (name.lower() for name in named if name.startswith("SASL")):
                prefix = f"listener.name.{listener}"
                lines += [
                    f"{prefix}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
                    f"required {plain_users};",
                    f"{prefix}.scram-sha-256.sasl.jaas.config={_SCRAM_LOGIN}",
                    f"{prefix}.scram-sha-512.sasl.jaas.config={_SCRAM_LOGIN}",
                ]
        if self.tls:
            tls = self.tls
            lines += [
                "ssl.keystore.type=PKCS12",
                f"ssl.keystore.location={tls.keystore}",
                f"ssl.keystore.password={tls.password}",
                "ssl.truststore.type=PKCS12",
                f"ssl.truststore.location={tls.truststore}",
                f"ssl.truststore.password={tls.password}",
                "listener.name.ssl.ssl.client.auth=required",
            ]
        return lines

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        config = self.workdir / "server.properties"
        quorum = self.quorum
        if quorum.voters:
            controllers = f"controller.quorum.voters={quorum.voters}"
        else:
            controllers = f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}"
        replicas, min_insync = quorum.replicas, quorum.min_insync
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    controllers,
                    *self._listeners(),
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    f"default.replication.factor={replicas}",
                    f"min.insync.replicas={min_insync}",
                    f"offsets.topic.replication.factor={replicas}",
                    "offsets.topic.num.partitions=10",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min_insync}",
                    "transaction.state.log.num.partitions=10",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min_insync}",
                    "group.initial.rebalance.delay.ms=0",
                    "log.cleaner.backoff.ms=1000",
                ]
            )
            + "\n"
        )
        (self.workdir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file, level=self.log_level))
        return config

    def launch(self) -> None:
        """Format the storage (the first time) and start the node's process; ``wait_ready`` waits for it."""
        config = self._write_config()
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        if not self._formatted:
            scram = [
                arg
                for name, password in self.sasl_users.items()
                for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
            ]
            # A single node makes itself the quorum (--standalone); a cluster's nodes name theirs in the config.
            standalone = [] if self.quorum.voters else ["--standalone"]
            # --cluster-id=: a base64 id may start with "-", which would read as an option.
            cluster_id = f"--cluster-id={self.quorum.cluster_id}"
            format_command = ["format", *standalone, cluster_id, "-c", str(config), *scram]
            formatted = subprocess.run(self._java("kafka.tools.StorageTool", *format_command), capture_output=True)
            if formatted.returncode:
                output = (formatted.stdout + formatted.stderr).decode(errors="replace")[-2000:]
                raise RuntimeError(f"formatting the Kafka storage failed ({formatted.returncode}):\n{output}")
            self._formatted = True
        out = (self.workdir / "broker.out").open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(config)), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 90.0) -> str:
        """Wait until the node answers and lists itself among the cluster's brokers; its bootstrap address."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            failure = self._startup_failure()  # first: the node may exit on it, or go on half started
            if failure is not None:
                self.stop()
                raise RuntimeError(f"Kafka could not start: {failure}; see {self.log_file}")
            if self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.process.returncode}; see {self.workdir}/broker.out")
            if asyncio.run(_answers(self.bootstrap_servers, self.node_id)):
                log.info("Kafka broker %d ready at %s", self.node_id, self.bootstrap_servers)
                return self.bootstrap_servers
            time.sleep(0.2)  # between connection attempts while the JVM starts
        self.stop()
        raise TimeoutError(f"Kafka did not answer within {timeout:.0f} s; see {self.workdir}/broker.out")

    def _startup_failure(self) -> str | None:
        """The line of this launch's log that says a listener could not bind, if one does. Kafka 4.1 exits on it
        when the port is taken before it starts, but once went on half started: a node that lost its
        CONTROLLER port (taken between ``free_ports`` and the bind) answered on its broker port while its raft
        IO thread spun a whole core. Either way the port in use is the message, not an exit code."""
        try:
            with self.log_file.open("rb") as log_file:
                log_file.seek(self._log_start)
                text = log_file.read().decode(errors="replace")
        except FileNotFoundError:
            return None
        return next((line.strip() for line in text.splitlines() if "Address already in use" in line), None)

    def start(self, timeout: float = 90.0) -> str:
        """Format storage, start the broker and wait until it answers; returns the bootstrap address."""
        self.launch()
        return self.wait_ready(timeout)

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

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a lost machine would: no controlled shutdown, no leadership
        handed over. ``start()`` brings it back on the same ports and data."""
        if self.process is not None and self.process.poll() is None:
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


class LocalCluster:
    """``size`` Kafka nodes (each broker and controller) in one KRaft quorum on loopback, replicated like
    production: ``default.replication.factor`` 3 and ``min.insync.replicas`` 2 (fewer with fewer nodes),
    and so the offsets and transaction state topics. ``nodes[i].kill()`` and ``nodes[i].start()`` lose and
    bring back one broker; a majority of the nodes must run for the quorum to act.

    Like ``LocalBroker``, ``start()`` blocks: call it from a thread inside a running event loop.
    """

    def __init__(self, size: int = 3, workdir: Path | None = None, log_level: str = "WARN") -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kafka-cluster-")) if workdir is None else workdir
        controller_ports = free_ports(size)
        voters = ",".join(f"{n}@127.0.0.1:{port}" for n, port in enumerate(controller_ports, start=1))
        replicas = min(size, 3)
        quorum = _Quorum(_new_cluster_id(), voters, replicas=replicas, min_insync=max(1, replicas - 1))
        self.nodes = [
            LocalBroker(self.workdir / f"node-{n}", log_level=log_level, node_id=n, controller_port=port, quorum=quorum)
            for n, port in enumerate(controller_ports, start=1)
        ]

    @property
    def bootstrap_servers(self) -> str:
        """Every node's address: clients find the cluster through whichever is up."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def node(self, node_id: int) -> LocalBroker:
        """The node with this broker id (1 to ``size``)."""
        return self.nodes[node_id - 1]

    def start(self, timeout: float = 120.0) -> str:
        """Start every node at once (none can finish starting without a majority) and wait until each is a
        registered broker; returns the bootstrap addresses."""
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda node: node.launch(), self.nodes))
                list(pool.map(lambda node: node.wait_ready(timeout), self.nodes))
        except BaseException:
            self.stop()
            raise
        return self.bootstrap_servers

    def wait_in_sync(self, timeout: float = 90.0) -> None:
        """Wait until every partition of every topic has a leader and all its replicas in sync (after a
        broker came back: before losing another one, as an operator would)."""
        deadline = time.monotonic() + timeout
        while not asyncio.run(_all_in_sync(self.bootstrap_servers)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"partitions still under-replicated after {timeout:.0f} s")
            time.sleep(0.5)  # between metadata polls while replicas catch up

    def stop(self) -> None:
        """Stop every node cleanly."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(), self.nodes))

    def remove(self) -> None:
        """Stop every node, then delete the cluster's directory if this object created it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


async def _answers(bootstrap_servers: str, node_id: int) -> bool:
    """True when a broker at the address answers a metadata request that lists broker ``node_id``
    (registered with the controller and not fenced)."""
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
        return any(broker["node_id"] == node_id for broker in cluster.get("brokers", ()))
    except Exception:
        return False
    finally:
        await admin.close()


async def _all_in_sync(bootstrap_servers: str) -> bool:
    """True when every partition of every topic (internal ones too) has a leader and its full ISR."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    try:
        await admin.start()
        topics = await admin.describe_topics()
        return all(p["leader"] >= 0 and set(p["isr"]) == set(p["replicas"]) for t in topics for p in t["partitions"])
    except Exception:
        return False
    finally:
        await admin.close()
