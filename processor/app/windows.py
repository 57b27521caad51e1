"""The duplicate windows: one ``SeenClaims`` per assigned claims partition, kept in a compacted changelog topic.

Each window's changes go to its changelog partition (the claims partition's number) in the same delivery as
the decisions (``routing.Router.route`` adds them), so the changelog holds what the committed decisions saw.
When a claims partition is assigned, its window is rebuilt by reading its changelog partition to the end;
when it is revoked, the window is dropped. With ``duplicate_window_days`` 0 there are no windows.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from processor.config import Settings
from processor.engine.duplicates import SeenClaims
from processor.kafka.clients import client_options
from processor.kafka.reading import Records, read_to_end

log = logging.getLogger(__name__)


class DuplicateWindows:
    """The windows of the claims partitions this worker owns, by partition number."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._windows: dict[int, SeenClaims] = {}
        self._changelog: AIOKafkaConsumer | None = None

    def get(self, partition: int) -> SeenClaims | None:
        """The window of claims partition ``partition``; None when windows are off or it is not assigned."""
        return self._windows.get(partition)

    async def start(self) -> None:
        if self.settings.duplicate_window_days > 0:
            self._changelog = AIOKafkaConsumer(
                **client_options(self.settings, "seen-claims"),
                group_id=None,
                isolation_level="read_committed",
                enable_auto_commit=False,
            )
            await self._changelog.start()

    async def stop(self) -> None:
        if self._changelog is not None:
            await self._changelog.stop()

    async def restore(self, assigned: list[TopicPartition]) -> None:
        """Rebuild the windows of the newly assigned claims partitions from their changelog."""
        reader = self._changelog
        claims, changelog = self.settings.topics.claims, self.settings.topics.seen_claims
        wanted = [TopicPartition(changelog, tp.partition) for tp in assigned if tp.topic == claims]
        if reader is None or not wanted:
            return
        windows = {tp.partition: SeenClaims(self.settings.duplicate_window_days * 86_400_000) for tp in wanted}

        def take(tp: TopicPartition, records: Records) -> None:
            for entry in records:
                windows[tp.partition].apply_record(entry.value)

        await read_to_end(reader, wanted, take, max_records=10_000)
        self._windows.update(windows)
        log.info("duplicate window rebuilt for %d claims partition(s): %d claims", len(windows),
                 sum(len(w) for w in windows.values()))  # fmt: skip

    def drop(self, revoked: list[TopicPartition]) -> None:
        """Forget the windows of revoked claims partitions."""
        for tp in revoked:
            if tp.topic == self.settings.topics.claims:
                self._windows.pop(tp.partition, None)
