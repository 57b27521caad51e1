"""The Prometheus sensor: the worker's reports (``app.sensor``) as Prometheus metrics, served by ``app.health``.

Labels carry bounded values only (kind, outcome, reason id, topic, partition): never patient data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from processor.app.sensor import PHASES, BatchTally, Sensor
from processor.code_table.table import CodeTable
from processor.engine.rules import DECISION_OUTCOMES, RULES

KINDS = ("claim", "order")
# Produce-to-acknowledged-decision latency; the 100 ms goal sits on a bucket boundary.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A batch's phases take from under a millisecond (a transaction's local steps) to the commit interval and more.
PHASE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 10.0)


def end_of_day(day: str) -> float:
    """00:00 UTC of the day after ``day`` (YYYY-MM-DD), in seconds since the epoch: the end of that day."""
    return (datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1)).timestamp()


class Metrics(Sensor):
    """The processor's metrics, in their own registry (one per worker, so tests can run several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "processor_events_consumed", "Records read from the input topics.", ["kind"], registry=r
        )
        self.decisions = Counter(
            "processor_decisions", "Decisions published, by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.reasons = Counter(
            "processor_reasons", "Reasons given in published decisions, by rule id.", ["kind", "reason"], registry=r
        )
        self.lines_denied = Counter(
            "processor_lines_denied",
            "Claim lines denied by a payment edit (the claim goes on), by rule id.",
            ["reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "processor_dead_letters", "Records sent to the dead-letter topic, by source topic.", ["topic"], registry=r
        )
        self.latency = Histogram(
            "processor_decision_latency_seconds",
            "Time from an event's Kafka timestamp to the broker's acknowledgement of its decision.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "processor_batch_records", "Records per batch taken from Kafka.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000), registry=r,
        )  # fmt: skip
        self.phases = Histogram(
            "processor_batch_phase_seconds",
            "Time a batch (per transaction for the txn_ phases) spent in each phase of the worker's loop.",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.code_table_codes = Gauge(
            "processor_code_table_codes", "Code versions in the loaded code table.", registry=r
        )
        self.code_table_offset = Gauge(
            "processor_code_table_offset", "Code-table topic records read (the table version).", registry=r
        )
        self.code_table_updated = Gauge(
            "processor_code_table_last_update_timestamp_seconds",
            "Kafka timestamp of the newest code-table record read (when the table content last changed).",
            registry=r,
        )
        self.code_table_invalid = Gauge(
            "processor_code_table_invalid_records", "Code-table records skipped as invalid.", registry=r
        )
        self.code_table_covered_until = Gauge(
            "processor_code_table_covered_until_seconds",
            "End of the last date of service (00:00 UTC of the day after it) that the loaded releases of a code "
            "system cover; later dates of service go to review.",
            ["system"],
            registry=r,
        )
        self.lag = Gauge(
            "processor_consumer_lag",
            "Records on an input partition not yet decided and committed (high watermark - committed offset).",
            ["topic", "partition"],
            registry=r,
        )
        self.ready = Gauge("processor_ready", "1 when the code table is loaded and the worker consumes.", registry=r)
        self._covered_systems: set[str] = set()
        # Create every labelled series up front, so dashboards and alerts see zeros, not gaps.
        for kind in KINDS:
            self.consumed.labels(kind)
            for outcome in DECISION_OUTCOMES:
                self.decisions.labels(kind, outcome.value)
        for phase in PHASES:
            self.phases.labels(phase)
        for rule_id, rule in RULES.items():
            for kind in KINDS:
                self.reasons.labels(kind, rule_id)
            if rule.lines:
                self.lines_denied.labels(rule_id)

    def on_inputs(self, topics: Iterable[str]) -> None:
        for topic in topics:  # a dead-letter series from the start, so increase() sees the first one
            self.dead_letters.labels(topic)

    def on_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def on_table_changed(self, table: CodeTable, records_read: int, updated_at: float, invalid: int) -> None:
        self.code_table_codes.set(len(table))
        self.code_table_offset.set(records_read)
        self.code_table_updated.set(updated_at)
        self.code_table_invalid.set(invalid)
        covered = table.covered_until()
        for system in self._covered_systems - covered.keys():  # a system whose releases were all deleted
            self.code_table_covered_until.remove(system)
        for system, last_day in covered.items():
            self.code_table_covered_until.labels(system).set(end_of_day(last_day))
        self._covered_systems = set(covered)

    def on_batch_delivered(self, tallies: dict[TopicPartition, BatchTally], delivered_ms: float) -> None:
        records = 0
        for tp, tally in tallies.items():
            self.consumed.labels(tally.kind).inc(len(tally.timestamps))
            records += len(tally.timestamps)
            for timestamp in tally.timestamps:
                self.latency.observe(max(0.0, (delivered_ms - timestamp) / 1000))
            for outcome, n in tally.outcomes.items():
                self.decisions.labels(tally.kind, outcome).inc(n)
            for reason_id, n in tally.reasons.items():
                self.reasons.labels(tally.kind, reason_id).inc(n)
            for reason_id, n in tally.denied.items():
                self.lines_denied.labels(reason_id).inc(n)
            if tally.dead:
                self.dead_letters.labels(tp.topic).inc(tally.dead)
        self.batch_size.observe(records)

    def on_lag(self, tp: TopicPartition, lag: int) -> None:
        self.lag.labels(tp.topic, str(tp.partition)).set(lag)

    def on_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            with contextlib.suppress(KeyError):
                self.lag.remove(tp.topic, str(tp.partition))

    def on_phase(self, phase: str, seconds: float) -> None:
        self.phases.labels(phase).observe(seconds)
