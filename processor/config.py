"""Settings: one typed object, filled from defaults, then the environment, then the command line.

Every field can be set by an environment variable ``PROCESSOR_<FIELD>`` (upper case), except the Kafka
client settings, which use the names Kafka users already know: ``KAFKA_BOOTSTRAP_SERVERS``,
``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``,
``KAFKA_SSL_CAFILE``, ``KAFKA_SSL_CERTFILE``, ``KAFKA_SSL_KEYFILE`` (the ``security.protocol``,
``sasl.mechanism``, ... of the Java client). The defaults run against a local broker with no further
setting. Secrets are never printed: ``repr`` leaves the password out.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Topics:
    """Topic names. Inputs: claims and lab orders. Outputs: one decision each on accepted, returned or
    needs-review, or a dead letter. The code table is a compacted topic."""

    claims: str = "claims"
    orders: str = "lab-orders"
    code_table: str = "code-table"
    accepted: str = "decisions.accepted"
    returned: str = "decisions.returned"
    needs_review: str = "decisions.needs-review"
    dead_letter: str = "dead-letter"
    # The changelog of claims seen within the duplicate window (compacted, one partition per claims partition).
    seen_claims: str = "claims-seen"

    def with_prefix(self, prefix: str) -> Topics:
        """The same topics with names prefixed (tests use a fresh prefix per test)."""
        return Topics(**{f.name: prefix + getattr(self, f.name) for f in dataclasses.fields(self)})

    def inputs(self) -> list[str]:
        """The topics the worker consumes."""
        return [self.claims, self.orders]

    def outputs(self) -> list[str]:
        """The topics the worker writes."""
        return [self.accepted, self.returned, self.needs_review, self.dead_letter]


@dataclass(frozen=True)
class Security:
    """How the Kafka clients authenticate and encrypt: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, with
    SASL mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
    MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

    def __post_init__(self) -> None:
        if self.protocol not in self.PROTOCOLS:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(self.PROTOCOLS)}")
        if self.protocol.startswith("SASL"):
            if self.sasl_mechanism not in self.MECHANISMS:
                raise ValueError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(self.MECHANISMS)}")
            if not self.sasl_username or self.sasl_password is None:
                raise ValueError("SASL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Security:
        names = {f.name: f"KAFKA_{f.name.upper()}" for f in dataclasses.fields(cls)}
        names["protocol"] = "KAFKA_SECURITY_PROTOCOL"
        return cls(**{name: env[var] for name, var in names.items() if env.get(var)})


@dataclass(frozen=True)
class Settings:
    """Everything the worker and the commands need to know."""

    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "medical-coding"
    client_id: str = "medical-coding-processor"
    topics: Topics = field(default_factory=Topics)
    security: Security = field(default_factory=Security)
    # Static membership: a stable id per worker (e.g. the pod name) lets a restart rejoin without a rebalance.
    group_instance_id: str | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9400
    # How many records the worker takes in one batch, and how long it waits for a batch to fill. Under a
    # backlog, exactly-once drained 18-20k/s at 2000, 21-23k at 3000, 22.5-27k at 4000 (fewer transactions a
    # record), but a larger batch holds more at once (the decisions, their copies in the record batches, the
    # produce requests): on 100,000-event runs 3000 peaked at 167-198 MB, 4000 at 175-204, 8000 at 240.
    # Below the maximum rate batches are smaller anyway, so the latency is the same.
    batch_max_records: int = 3000
    batch_timeout_ms: int = 200
    # Producer batching: how long a send may wait to fill a batch, and the largest batch.
    linger_ms: int = 5
    max_batch_bytes: int = 1_048_576
    # Partitions for topics that the processor creates (more partitions, more workers in the group).
    partitions: int = 6
    # "exactly_once" (decisions and offsets in one Kafka transaction) or "at_least_once".
    processing_guarantee: str = "exactly_once"
    # Records larger than this are dead-lettered undecoded. Keep it well under the outcome topics'
    # max.message.bytes: a decision carries its event, a dead letter the raw bytes in base64.
    max_record_bytes: int = 262_144
    # On SIGTERM: how long the worker may take to finish its batch, commit and close.
    shutdown_timeout_s: int = 30
    # Claims repeated within this many days are duplicates (exact: returned; suspect: review); 0 turns it off.
    duplicate_window_days: int = 30
    # A TOML file that changes rule outcomes per payer (see README, "Configuring rules"); None: defaults.
    rules_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, overridden by the environment, overridden by ``overrides`` (command-line values)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            values["bootstrap_servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
        for f in dataclasses.fields(cls):
            name = f"PROCESSOR_{f.name.upper()}"
            if f.name not in ("topics", "security") and name in env:
                values[f.name] = int(env[name]) if f.type == "int" else env[name]
        topic_names = {
            t.name: env[f"PROCESSOR_TOPIC_{t.name.upper()}"]
            for t in dataclasses.fields(Topics)
            if f"PROCESSOR_TOPIC_{t.name.upper()}" in env
        }
        topics = Topics(**topic_names)
        prefix = env.get("PROCESSOR_TOPIC_PREFIX")
        values["topics"] = topics.with_prefix(prefix) if prefix else topics
        values["security"] = Security.from_env(env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
