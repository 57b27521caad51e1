"""The duplicate window on local disk through the real broker: a restarted worker reopens its window from the
store's checkpoint and reads only the changelog's tail; one whose state directory was emptied rebuilds the
window from the changelog. Either way a claim sent before the restart is still found again."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import orjson
import pytest

from processor.app.window_store import WindowStore
from processor.config import Settings
from processor.engine.duplicates import member_hash
from tests.conftest import SMALL_TABLE, a_claim
from tests.integration.conftest import load_table, produce, read_all, running_worker

pytestmark = pytest.mark.kafka

FIRST = a_claim(claim_id="DUP-1")


async def decide_the_first_claim(settings: Settings) -> int:
    """A worker decides ``FIRST`` and stops; the partition of the window that took it (of claims by member)."""
    await load_table(settings, SMALL_TABLE)
    async with running_worker(settings):
        await produce(settings, settings.topics.claims, [FIRST], key=b"DUP-1")
        await read_all(settings, [settings.topics.accepted], 1)
    return int(member_hash(FIRST).hex()[:8], 16) % settings.partitions


async def send_it_again(settings: Settings) -> dict[str, dict]:
    """A new worker on the same settings gets ``FIRST`` again and the same claim under another id: their
    decisions, by event id; and the worker's account of how it restored each window."""
    t = settings.topics
    async with running_worker(settings) as worker:
        await produce(settings, t.claims, [FIRST], key=b"DUP-1")
        await produce(settings, t.claims, [a_claim(claim_id="DUP-2")], key=b"DUP-1")
        found = await read_all(settings, [t.accepted, t.returned, t.needs_review], 3)
        restored = dict(worker.windows.restored)
    again = [orjson.loads(r.value) for r in found if r.topic != t.accepted]
    assert sorted((d["event_id"], [r["id"] for r in d["reasons"]]) for d in again) == [
        ("DUP-1", ["claim.duplicate"]),  # every line of it repeats FIRST's, for the same member
        ("DUP-2", ["claim.duplicate"]),
    ]
    first = [orjson.loads(r.value)["event_id"] for r in found if r.topic == t.accepted]
    assert first == ["DUP-1"]  # the first one, decided before the restart
    return restored


@pytest.fixture
def window_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, duplicate_window_days=30)


async def test_a_restarted_worker_reopens_its_window_from_the_checkpoint(window_settings):
    settings = window_settings
    partition = await decide_the_first_claim(settings)
    store = WindowStore.open(_store_path(settings, partition), 30 * 86_400_000)
    try:
        checkpoint = store.checkpoint()
        assert len(store) == 1  # FIRST's entry, on disk once its transaction committed
        assert checkpoint is not None and checkpoint.anchor_offset is not None
        assert checkpoint.offset == checkpoint.anchor_offset + 1  # after the last changelog record written
    finally:
        store.close()
    restored = await send_it_again(settings)
    assert restored[partition].from_checkpoint
    assert restored[partition].records_read == 0  # the store had it all: nothing read but the tail, empty


async def test_a_worker_with_an_emptied_state_dir_rebuilds_its_window_from_the_changelog(window_settings):
    settings = window_settings
    partition = await decide_the_first_claim(settings)
    shutil.rmtree(settings.state_dir)
    restored = await send_it_again(settings)
    assert not restored[partition].from_checkpoint
    assert restored[partition].records_read == 1
    assert _store_path(settings, partition).is_dir()  # and it is on disk again


def _store_path(settings: Settings, partition: int) -> Path:
    return Path(settings.state_dir) / settings.group_id / f"{settings.topics.seen_members}-{partition}"
