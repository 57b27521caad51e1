"""The duplicate windows: one ``SeenClaims`` per assigned partition of the claims it checks, kept on local
disk and in a compacted changelog topic. Those are the partitions of ``claims_by_member`` (the member
check, where claims are partitioned by member: ``routing.Router``) with its changelog ``seen_members``; with
duplicate scope "partition", the claims topic's own with ``seen_claims``. "Claims partition" below is either.

Each window's changes go to its changelog partition (the claims partition's number) in the same delivery as
the decisions (``routing.Router.route`` adds them), so the changelog holds what the committed decisions saw.
The worker keeps each window in an LMDB store under ``state_dir`` (``app.window_store``), so its size costs
disk, not memory, and a restart on the same directory reopens it. The contract:

- A change (an entry, or the removal of a claim replaced or voided) reaches the store only once the batch
  that made it is delivered: until then it is pending in the window's overlay, which lookups consult too.
  ``settled`` (called by the worker for every settled batch) commits a claims partition's pending changes up
  to the batch's end together with the checkpoint, in one LMDB write; a partition whose delivery failed drops
  all its pending changes (its records are decided again, from the same offsets). The checkpoint is the
  changelog offset after the batch's last changelog record, which the delivery reports
  (``PartitionBatch.written``): every committed changelog record below it is in the store, which is what
  makes it a lower bound. (A failed delivery is taken as not committed: the worker's rewind, which decides
  the records again, rests on the same premise.)
- On assignment a window is restored: its store's checkpoint is checked against the changelog (the same
  topic and partition; an offset not past the end; the record it names, its anchor, still there with the
  same key and value, which tells this topic from one deleted and created again under its name), then the
  changelog is read from the checkpoint to the end into the store: an entry is kept under its control number
  (the record's key), a tombstone removes the claim of its key (replaced or voided). Reading a record the
  store already took leaves it as it was (an entry replaces itself, a removal finds nothing), so a
  checkpoint below what the store holds costs only time. A store with no checkpoint, or one that fails the
  check, is emptied and rebuilt from the whole changelog, as one with its anchor compacted or aged away is.
- On revocation the store is closed and its files kept, for the next assignment of the partition.

With ``duplicate_window_days`` 0 there are no windows.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from processor.app.window_store import Checkpoint, WindowStore, record_digest
from processor.config import Settings
from processor.engine.duplicates import Change, SeenClaims, change_of_record
from processor.kafka.clients import client_options
from processor.kafka.delivery import PartitionBatch
from processor.kafka.reading import Records, read_to_end, record_at

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# Changelog records taken into a store in one LMDB write: a write holds the pages it changes in memory until
# it commits, one or two pages (4 KiB each) per entry in a large store.
RESTORE_WRITE = 2_000


@dataclass(frozen=True, slots=True)
class Restored:
    """How a window was last restored: from its store's checkpoint (or rebuilt from the changelog's first
    record), how many changelog records that read, and in how many seconds (all the assignment's windows)."""

    from_checkpoint: bool
    records_read: int
    seconds: float


class DuplicateWindows:
    """The windows of the claims partitions this worker owns, by partition number."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.window_ms = settings.duplicate_window_days * DAY_MS
        # The input topic whose partitions have windows, and their changelog (partition by partition).
        self.claims, self.changelog = settings.topics.windowed(settings.member_check)
        self._windows: dict[int, SeenClaims] = {}
        self._stores: dict[int, WindowStore] = {}
        self._reader: AIOKafkaConsumer | None = None
        self.restored: dict[int, Restored] = {}

    def get(self, tp: TopicPartition) -> SeenClaims | None:
        """The window of input partition ``tp``; None for a partition without one (another topic, not assigned,
        or windows are off)."""
        return self._windows.get(tp.partition) if tp.topic == self.claims else None

    def path(self, partition: int) -> Path:
        """The directory of the store of claims partition ``partition``."""
        changelog = f"{self.changelog}-{partition}"
        return Path(self.settings.state_dir) / _directory_name(self.settings.group_id) / _directory_name(changelog)

    async def start(self) -> None:
        if self.settings.duplicate_window_days > 0:
            self._reader = AIOKafkaConsumer(
                **client_options(self.settings, "seen-claims"),
                group_id=None,
                isolation_level="read_committed",
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a checkpoint that retention overtook reads from the first record
            )
            await self._reader.start()

    async def stop(self) -> None:
        for partition in list(self._stores):
            self._close(partition, sync=True)
        if self._reader is not None:
            await self._reader.stop()

    async def restore(self, assigned: list[TopicPartition]) -> None:
        """Open the stores of the newly assigned claims partitions and bring them up to their changelog's end."""
        reader = self._reader
        claims, changelog = self.claims, self.changelog
        wanted = [TopicPartition(changelog, tp.partition) for tp in assigned if tp.topic == claims]
        if reader is None or not wanted:
            return
        started = time.monotonic()
        first, end = await reader.beginning_offsets(wanted), await reader.end_offsets(wanted)
        stores: dict[int, WindowStore] = {}
        start: dict[TopicPartition, int] = {}
        checkpointed: dict[TopicPartition, bool] = {}
        for tp in wanted:
            self._close(tp.partition)
            store = WindowStore.open(self.path(tp.partition), self.window_ms)
            resume = await self._resume_offset(reader, store, tp, first[tp], end[tp])
            if resume is None and (len(store) or store.checkpoint() is not None):
                store = store.emptied()
            stores[tp.partition], start[tp] = store, first[tp] if resume is None else resume
            checkpointed[tp] = resume is not None
        read = dict.fromkeys(wanted, 0)

        def take(tp: TopicPartition, records: Records) -> None:
            for first in range(0, len(records), RESTORE_WRITE):
                chunk = records[first : first + RESTORE_WRITE]
                # An entry is kept under its control number; a tombstone removes the claim of its key.
                changes = [change for record in chunk if (change := change_of_record(record.key, record.value))]
                last = chunk[-1]
                anchor = record_digest(last.key, last.value)
                checkpoint = Checkpoint(changelog, tp.partition, last.offset + 1, last.offset, anchor)
                stores[tp.partition].take(changes, checkpoint)
            read[tp] += len(records)

        positions = await read_to_end(reader, wanted, take, max_records=10_000, start=start)
        seconds = time.monotonic() - started
        for tp in wanted:
            store = stores[tp.partition]
            checkpoint = store.checkpoint() or Checkpoint(changelog, tp.partition, positions[tp])
            store.take((), replace(checkpoint, offset=max(checkpoint.offset, positions[tp])))
            self._stores[tp.partition] = store
            self._windows[tp.partition] = SeenClaims(self.window_ms, store, staged=True)
            self.restored[tp.partition] = Restored(checkpointed[tp], read[tp], seconds)
        log.info("duplicate window restored for %d claims partition(s) in %.2f s: %d changelog records read "
                 "after the checkpoints, %d claims in the windows", len(wanted), seconds,
                 sum(read.values()), sum(len(stores[tp.partition]) for tp in wanted))  # fmt: skip

    async def _resume_offset(
        self, reader: AIOKafkaConsumer, store: WindowStore, tp: TopicPartition, first: int, end: int
    ) -> int | None:
        """Where to read ``tp`` from into ``store``: its checkpoint, when it checks out; None: from the first."""
        checkpoint = store.checkpoint()
        why = None
        if checkpoint is None or checkpoint.anchor_offset is None:
            why = "no checkpoint"
        elif (checkpoint.topic, checkpoint.partition) != (tp.topic, tp.partition):
            why = f"a checkpoint of {checkpoint.topic}-{checkpoint.partition}"
        elif checkpoint.offset > end:
            why = f"checkpoint {checkpoint.offset} past the changelog's end {end}: another topic of that name"
        elif checkpoint.anchor_offset < first:
            why = f"its anchor {checkpoint.anchor_offset} is before the changelog's first record {first}"
        else:
            record = await record_at(reader, tp, checkpoint.anchor_offset)
            if record is None or record.offset != checkpoint.anchor_offset:
                why = f"its anchor {checkpoint.anchor_offset} is gone from the changelog (compacted)"
            elif record_digest(record.key, record.value) != checkpoint.anchor_digest:
                why = f"its anchor {checkpoint.anchor_offset} is another record: another topic of that name"
        if why is not None:
            if len(store):
                log.warning("duplicate window store of %s rebuilt from the whole changelog: %s", tp, why)
            return None
        assert checkpoint is not None
        return max(checkpoint.offset, first)

    def settled(self, parts: list[PartitionBatch], rewound: set[TopicPartition]) -> None:
        """A batch's delivery is over (its partitions ``rewound`` failed): commit each delivered claims
        partition's pending changes up to the batch's end, with the checkpoint its changelog reached (its
        anchor the last of them: the delivery wrote each change as one changelog record, in order,
        ``duplicates.changelog_records``); drop every pending change of a partition that failed."""
        claims, changelog = self.claims, self.changelog
        for part in parts:
            window = self._windows.get(part.tp.partition) if part.tp.topic == claims else None
            if window is None:
                continue
            if part.tp in rewound:
                window.rollback()
                continue
            pending = window.pending()
            count = 0
            while count < len(pending) and _input_offset(pending[count]) < part.next_offset:
                count += 1
            last = part.written.get((changelog, part.tp.partition))
            note = None
            if last is not None and count:
                anchor = pending[count - 1]
                digest = record_digest(anchor.key, anchor.value)
                note = Checkpoint(changelog, part.tp.partition, last + 1, last, digest)
            window.commit(count, note)

    def drop(self, revoked: list[TopicPartition]) -> None:
        """Close the windows of revoked claims partitions; their stores stay on disk for a later assignment."""
        for tp in revoked:
            if tp.topic == self.claims:
                self._close(tp.partition)

    def _close(self, partition: int, sync: bool = False) -> None:
        self._windows.pop(partition, None)
        store = self._stores.pop(partition, None)
        if store is not None:
            store.close(sync)


def _input_offset(change: Change) -> int:
    """The offset of the record (of the partition the window checks) a change was made at: the worker's
    ``seen_at`` is ``<partition>:<offset>``, and ``<partition>:<offset>:<index>`` for a claim of a record that
    holds several (an 837 interchange)."""
    return int(change.source.split(":")[1])


def _directory_name(name: str) -> str:
    """``name`` (a group id, a topic) as one safe path component."""
    quoted = urllib.parse.quote(name, safe="")
    return quoted.replace(".", "%2E") if set(quoted) <= {"."} else quoted
