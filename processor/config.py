"""Settings: one typed object, filled from defaults, then the environment, then the command line.

Every field can be set by an environment variable ``PROCESSOR_<FIELD>`` (upper case), except the broker
address, which uses the variable Kafka users already know: ``KAFKA_BOOTSTRAP_SERVERS``. The defaults run
against a local broker with no further setting.
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

    def with_prefix(self, prefix: str) -> Topics:
        """The same topics with names prefixed (tests use a fresh prefix per test)."""
        return Topics(**{f.name: prefix + getattr(self, f.name) for f in dataclasses.fields(self)})

    def outputs(self) -> list[str]:
        """The topics the worker writes."""
        return [self.accepted, self.returned, self.needs_review, self.dead_letter]


@dataclass(frozen=True)
class Settings:
    """Everything the worker and the commands need to know."""

    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "medical-coding"
    client_id: str = "medical-coding-processor"
    topics: Topics = field(default_factory=Topics)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9400
    # How many records the worker takes in one batch, and how long it waits for a batch to fill.
    batch_max_records: int = 2000
    batch_timeout_ms: int = 200
    # Producer batching: how long a send may wait to fill a batch, and the largest batch.
    linger_ms: int = 5
    max_batch_bytes: int = 1_048_576
    # Partitions for topics that the processor creates (more partitions, more workers in the group).
    partitions: int = 6
    # "exactly_once" (decisions and offsets in one Kafka transaction) or "at_least_once".
    processing_guarantee: str = "exactly_once"
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
            if f.name != "topics" and name in env:
                values[f.name] = int(env[name]) if f.type == "int" else env[name]
        topic_names = {
            t.name: env[f"PROCESSOR_TOPIC_{t.name.upper()}"]
            for t in dataclasses.fields(Topics)
            if f"PROCESSOR_TOPIC_{t.name.upper()}" in env
        }
        topics = Topics(**topic_names)
        prefix = env.get("PROCESSOR_TOPIC_PREFIX")
        values["topics"] = topics.with_prefix(prefix) if prefix else topics
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
