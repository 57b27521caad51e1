"""Settings: one typed object, filled from defaults, then the environment, then the command line.

Every field can be set by an environment variable ``PROCESSOR_<FIELD>`` (upper case), except the Kafka
client settings, which use the names Kafka users already know: ``KAFKA_BOOTSTRAP_SERVERS``,
``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``,
``KAFKA_SSL_CAFILE``, ``KAFKA_SSL_CERTFILE``, ``KAFKA_SSL_KEYFILE`` (the ``security.protocol``,
``sasl.mechanism``, ... of the Java client). The defaults run against a local broker with no further
setting. Secrets are never printed: ``repr`` leaves the password out, and so do the errors.

A value the processor cannot run with stops it at start, not at the first record: building ``Settings``
checks every enumerated and every numeric setting and raises ``SettingsError`` naming the environment
variable and what it accepts (``PROCESSOR_PROCESSING_GUARANTEE=exactly-once`` would otherwise be a typo
that quietly changes the guarantee).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, TypeVar

_Member = TypeVar("_Member", bound=Enum)


class SettingsError(ValueError):
    """A setting the processor cannot start with. The message names the setting by its environment variable
    and says what it accepts; it never carries a secret."""


class Guarantee(StrEnum):
    """What the worker promises for each input record. A ``StrEnum``: it equals its string value."""

    EXACTLY_ONCE = "exactly_once"  # decisions and offsets committed in one Kafka transaction
    AT_LEAST_ONCE = "at_least_once"  # decisions sent, then offsets committed: a crash may repeat a batch


class DuplicateScope(StrEnum):
    """Where a member's other claims are looked for, to find the lines of a claim that repeat them."""

    # Every claims partition: a claim's decision goes through the member check (``claims_by_member``,
    # partitioned by member) before it is published.
    TOPIC = "topic"
    # The claim's own partition only: no second step, but repeats keyed to other partitions go unseen.
    PARTITION = "partition"


def _env_name(setting: str) -> str:
    """The environment variable of a ``Settings`` field."""
    return f"PROCESSOR_{setting.upper()}"


def _one_of(kind: type[_Member], name: str, value: object) -> _Member:
    """``value`` as a member of ``kind``, or a SettingsError naming ``name`` and the allowed values."""
    try:
        return kind(value)
    except (ValueError, TypeError):
        allowed = ", ".join(str(member.value) for member in kind)
        raise SettingsError(f"{name} must be one of {allowed}, not {value!r}") from None


def _whole_number(name: str, value: object, low: int, high: int | None) -> int:
    """``value`` (an int, or a string from the environment) checked against ``low`` and ``high``."""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{name} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        limits = f"at least {low}" if high is None else f"between {low} and {high}"
        raise SettingsError(f"{name} must be {limits}, not {value}")
    return value


def _number(default: int, low: int, high: int | None = None) -> Any:
    """A whole-number field that must lie between ``low`` and ``high`` (None: no upper limit)."""
    return field(default=default, metadata={"range": (low, high)})


@dataclass(frozen=True)
class Topics:
    """Topic names. Inputs: claims and lab orders. Outputs: one decision each on accepted, returned or
    needs-review, or a dead letter; for a record in a submitter's format, its answers on responses. The code
    table is a compacted topic."""

    claims: str = "claims"
    orders: str = "lab-orders"
    code_table: str = "code-table"
    accepted: str = "decisions.accepted"
    returned: str = "decisions.returned"
    needs_review: str = "decisions.needs-review"
    dead_letter: str = "dead-letter"
    # The changelog of claims seen within the duplicate window (compacted, one partition per claims partition).
    seen_claims: str = "claims-seen"
    # The answers to a record in a submitter's format (X12 999/277CA, HL7 v2 ACK, FHIR ClaimResponse...).
    responses: str = "responses"
    # Internal, with duplicate scope "topic": claims' decisions held for the member check, partitioned by
    # member (one partition per claims partition), and that check's window changelog (compacted).
    claims_by_member: str = "claims-by-member"
    seen_members: str = "claims-by-member-seen"

    def with_prefix(self, prefix: str) -> Topics:
        """The same topics with names prefixed (tests use a fresh prefix per test)."""
        return Topics(**{f.name: prefix + getattr(self, f.name) for f in dataclasses.fields(self)})

    def inputs(self) -> list[str]:
        """The topics the worker consumes."""
        return [self.claims, self.orders]

    def windowed(self, member_check: bool) -> tuple[str, str]:
        """The topic whose partitions have duplicate windows, and the windows' changelog: the member check's
        (claims by member) when it runs, else the claims topic's own."""
        return (self.claims_by_member, self.seen_members) if member_check else (self.claims, self.seen_claims)

    def outputs(self) -> list[str]:
        """The topics the worker writes."""
        return [self.accepted, self.returned, self.needs_review, self.dead_letter, self.responses]


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
            allowed = ", ".join(self.PROTOCOLS)
            raise SettingsError(f"KAFKA_SECURITY_PROTOCOL must be one of {allowed}, not {self.protocol!r}")
        if self.protocol.startswith("SASL"):
            if self.sasl_mechanism not in self.MECHANISMS:
                allowed = ", ".join(self.MECHANISMS)
                given = "unset" if self.sasl_mechanism is None else repr(self.sasl_mechanism)
                raise SettingsError(f"KAFKA_SASL_MECHANISM must be one of {allowed} with SASL, not {given}")
            if not self.sasl_username or self.sasl_password is None:
                raise SettingsError("SASL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")

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
    metrics_port: int = _number(9400, 0, 65535)
    # How many records the worker takes in one batch, and how long it waits for a batch to fill. Under a
    # backlog, exactly-once drained 18-20k/s at 2000, 21-23k at 3000, 22.5-27k at 4000 (fewer transactions a
    # record), but a larger batch holds more at once (the decisions, their copies in the record batches, the
    # produce requests): on 100,000-event runs 3000 peaked at 167-198 MB, 4000 at 175-204, 8000 at 240.
    # Below the maximum rate batches are smaller anyway, so the latency is the same.
    batch_max_records: int = _number(3000, 1)
    batch_timeout_ms: int = _number(200, 0)
    # A batch is bounded by time too: it takes at most what the worker decides in this many ms (the decide rate
    # measured as it runs), so a transaction commits about this often even under a backlog (Kafka Streams
    # commits exactly-once work every 100 ms by default).
    commit_interval_ms: int = _number(100, 1)
    # Producer batching: how long a send may wait to fill a batch, and the largest batch.
    linger_ms: int = _number(5, 0)
    max_batch_bytes: int = _number(1_048_576, 1)
    # Partitions for topics that the processor creates (more partitions, more workers in the group).
    partitions: int = _number(6, 1)
    # Replicas of each partition of the topics that the processor creates; 0: the cluster's own
    # default.replication.factor (3 on a production cluster), which is what a broker loss needs.
    replication_factor: int = _number(0, 0, 32767)
    # exactly_once (decisions and offsets in one Kafka transaction) or at_least_once.
    processing_guarantee: Guarantee = Guarantee.EXACTLY_ONCE
    # Records larger than this are dead-lettered undecoded. Keep it well under the outcome topics'
    # max.message.bytes: a decision carries its event, a dead letter the raw bytes in base64.
    max_record_bytes: int = _number(262_144, 1)
    # On SIGTERM: how long the worker may take to finish its batch, commit and close.
    shutdown_timeout_s: int = _number(30, 0)
    # Claims repeated within this many days are duplicates (exact: returned; suspect: review); 0 turns it off.
    duplicate_window_days: int = _number(30, 0)
    # "topic": suspect duplicates are looked for across every claims partition (a second step, by member);
    # "partition": within the claim's partition only (claims keyed so that repeats share a partition).
    duplicate_scope: DuplicateScope = DuplicateScope.TOPIC
    # Where the worker keeps its local state: the duplicate window of each claims partition it owns, on disk
    # (<state_dir>/<group_id>/<changelog topic>-<partition>/). A restart on the same directory reopens it.
    state_dir: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "medical-coding-processor"))
    # A TOML file that changes rule outcomes per payer (see docs/rules.md, "Configuring outcomes"); None: defaults.
    rules_file: str | None = None

    @property
    def member_check(self) -> bool:
        """Whether claims go through the member check of ``topics.claims_by_member`` before they are
        published: the duplicate window is on and its suspects are looked for across partitions."""
        return self.duplicate_window_days > 0 and self.duplicate_scope is DuplicateScope.TOPIC

    def consumed(self) -> list[str]:
        """The topics the worker consumes: the inputs, and the member check's topic when it runs."""
        return [*self.topics.inputs(), self.topics.claims_by_member] if self.member_check else self.topics.inputs()

    def __post_init__(self) -> None:
        """Coerce and check every enumerated and numeric field (a field whose default is an enum member, or
        one declared with ``_number``); strings from the environment become members and ints here, once."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, Enum):
                object.__setattr__(self, f.name, _one_of(type(f.default), _env_name(f.name), value))
            elif "range" in f.metadata:
                object.__setattr__(self, f.name, _whole_number(_env_name(f.name), value, *f.metadata["range"]))
        if not self.state_dir.strip():
            raise SettingsError(f"PROCESSOR_STATE_DIR must name a directory, not {self.state_dir!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, overridden by the environment, overridden by ``overrides`` (command-line values).
        Raises SettingsError for a value the processor cannot run with."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            values["bootstrap_servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
        for f in dataclasses.fields(cls):
            name = _env_name(f.name)
            if f.name not in ("topics", "security") and name in env:
                values[f.name] = env[name]  # a string: __post_init__ parses numbers and enumerated values
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
