"""What the worker reports as it runs, in the manner of Faust's sensors: the worker calls a ``Sensor`` at each
point worth counting, and knows nothing of how it is counted. ``Sensor`` itself ignores everything; the
Prometheus sensor (``app.metrics.Metrics``) counts it. Every hook is called on the worker's event loop and
must return at once. Nothing passed to a sensor carries event content: kinds, outcomes, rule ids, topics and
partition numbers only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from processor.code_table.table import CodeTable


@dataclass(slots=True)
class BatchTally:
    """What one input partition's share of a batch decided; reported once the batch is delivered."""

    kind: str
    timestamps: list[int] = field(default_factory=list)  # the input records' Kafka timestamps (ms)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    denied: Counter[str] = field(default_factory=Counter)  # claim lines denied, by rule id
    dead: int = 0


# Where a batch's time goes, from the oldest record's Kafka timestamp to its decision being committed:
PHASES = (
    "queued",  # the oldest record's timestamp to the start of deciding (in Kafka, the fetch, the batch before)
    "fetch_wait",  # one getmany call (the worker waiting for records)
    "decide",  # deciding the batch (with turns given to the event loop: the transaction in flight goes on)
    "decide_work",  # of which the deciding's own work, without what ran at the turns it gave the event loop
    "settle_wait",  # waiting for the batch in flight to be delivered (the next one is decided by then)
    "window_commit",  # the duplicate windows keeping a delivered batch's claims (their store's commit)
    "deliver",  # a batch's whole delivery, from its start to its settling (every transaction of it)
    "txn_begin_send",  # exactly-once, per transaction: begin and queue the records (no round trip)
    "txn_offsets",  # send_offsets_to_transaction: AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit
    "txn_commit",  # commit_transaction: the records' produce acknowledged, then EndTxn
)


class Sensor:
    """The hooks the worker calls; this base ignores them all."""

    def on_inputs(self, topics: Iterable[str]) -> None:
        """The input topics are known (before anything is consumed)."""

    def on_ready(self, ready: bool) -> None:
        """The worker started (True) or stopped (False) consuming with a loaded code table."""

    def on_table_changed(self, table: CodeTable, records_read: int, updated_at: float, invalid: int) -> None:
        """The code table changed: its size, the code-table records read, the newest record's time (s), and the
        records skipped as invalid."""

    def on_batch_delivered(self, tallies: dict[TopicPartition, BatchTally], delivered_ms: float) -> None:
        """A batch's decisions and offsets are delivered (committed, or acknowledged at least once): what each
        partition's share decided; ``delivered_ms`` is when, in ms since the epoch."""

    def on_lag(self, tp: TopicPartition, lag: int) -> None:
        """``lag`` records of ``tp`` are not yet decided and committed."""

    def on_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """The worker gave up these partitions."""

    def on_phase(self, phase: str, seconds: float) -> None:
        """One batch (or one transaction of it) spent ``seconds`` in ``phase``, one of ``PHASES``."""
