"""The duplicate window on disk (``app.window_store``): it decides as the in-memory window does, keeps only what
was committed, forgets what left the window through its time index, and reopens with its checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lmdb
import pytest
from aiokafka import TopicPartition

from processor.app import window_store
from processor.app.window_store import Checkpoint, WindowStore, record_digest
from processor.app.windows import DuplicateWindows, _directory_name
from processor.config import Settings
from processor.engine import decide
from processor.engine.duplicates import Seen, SeenClaims, fingerprint
from processor.kafka.delivery import PartitionBatch
from tests.conftest import a_claim
from tests.unit.test_duplicates import DAY_MS, DUPLICATE_CASES, FIRST

WINDOW = 30 * DAY_MS
START = 1_760_000_000_000


def content(n: int) -> str:
    """A fingerprint as ``fingerprint`` makes them: 32 hex digits."""
    return f"{n:032x}"


@pytest.fixture
def store(tmp_path):
    opened = WindowStore.open(tmp_path / "claims-seen-0", WINDOW)
    yield opened
    opened.close()


@pytest.mark.parametrize(("why", "second", "source", "outcome", "rule_id"), DUPLICATE_CASES,
                         ids=[c[0] for c in DUPLICATE_CASES])  # fmt: skip
def test_the_disk_window_decides_as_the_memory_window(small_table, store, why, second, source, outcome, rule_id):
    seen = SeenClaims(WINDOW, store, staged=True)
    seen.check(FIRST, "0:1")
    seen.commit()
    duplicate, _ = seen.check(second, source)
    decision = decide(second, "claim", small_table, None, duplicate)
    assert decision.outcome == outcome
    assert [r.id for r in decision.reasons] == ([rule_id] if rule_id else [])


def test_an_entry_reads_back_as_it_was_taken(store):
    long_id = "CLM-" + "é" * 300  # 604 bytes of UTF-8: past LMDB's key limit, so keyed by a hash
    entries = [Seen("CLM-1", content(1), -10 * DAY_MS, "0:1"), Seen(long_id, content(2), -DAY_MS, "0:2")]
    store.take(entries)  # times before 1970 too
    for entry in entries:
        assert store.by_id(entry.claim_id) == entry
        assert store.by_content(entry.fingerprint) == entry
    assert store.by_id("CLM-2") is None and store.by_content(content(3)) is None
    assert store.by_content("not hex") is None
    assert len(store) == 2
    store.take([Seen("CLM-3", content(3), 45 * DAY_MS, "0:3")])  # the segment of both is a window behind
    assert store.by_id("CLM-1") is None and store.by_id(long_id) is None and len(store) == 1


def test_an_id_keeps_its_newest_entry_and_a_content_its_first_within_the_window(store):
    store.take([Seen("CLM-1", content(1), START, "0:1"), Seen("CLM-2", content(1), START + DAY_MS, "0:2")])
    store.take([Seen("CLM-1", content(2), START + 2 * DAY_MS, "0:3")])  # a corrected resubmission
    assert store.by_id("CLM-1").fingerprint == content(2)
    assert store.by_content(content(1)).claim_id == "CLM-1"  # the first stays the one a suspect names
    store.take([Seen("CLM-9", content(1), START + 40 * DAY_MS, "0:4")])  # more than a window after it
    assert store.by_content(content(1)).claim_id == "CLM-9"


def test_what_left_the_window_is_deleted_and_what_is_in_it_is_kept(store):
    """Four months a day at a time: the store holds a window, and at most a segment (half a window) more: a
    segment leaves whole once all of it is a window behind the newest claim."""
    per_day = 50
    for day in range(120):
        store.take([Seen(f"CLM-{day}-{n}", content(day * per_day + n), START + day * DAY_MS, f"0:{n}")
                    for n in range(per_day)])  # fmt: skip
        assert 31 * per_day <= len(store) <= 46 * per_day or day < 30
    assert store.by_id("CLM-89-1") is not None and store.by_content(content(89 * per_day + 3)) is not None
    assert store.by_id("CLM-70-1") is None and store.by_content(content(70 * per_day + 1)) is None


def test_an_entry_taken_again_later_outlives_its_first_time(store):
    store.take([Seen("CLM-1", content(1), START, "0:1")])
    store.take([Seen("CLM-1", content(1), START + 20 * DAY_MS, "0:2")])  # the id again, later
    store.take([Seen("CLM-2", content(2), START + 45 * DAY_MS, "0:3")])  # the first one is now out of the window
    assert store.by_id("CLM-1").at_ms == START + 20 * DAY_MS
    store.take([Seen("CLM-3", content(3), START + 65 * DAY_MS, "0:4")])  # and now the second, with its segment
    assert store.by_id("CLM-1") is None


def test_pending_entries_are_seen_at_once_but_reach_the_store_only_when_committed(store):
    seen = SeenClaims(WINDOW, store, staged=True)
    seen.remember("CLM-1", content(1), START, "0:1")
    seen.remember("CLM-2", content(2), START, "0:2")
    assert seen.match("CLM-1", content(1), START, "0:7").exact  # the overlay answers
    assert seen.match("CLM-X", content(2), START, "0:7").first_id == "CLM-2"
    assert len(store) == 0
    seen.commit(1, Checkpoint("claims-seen", 0, 11, 10, "d"))
    assert store.by_id("CLM-1") is not None and store.by_id("CLM-2") is None
    assert [s.claim_id for s in seen.pending()] == ["CLM-2"]
    assert seen.match("CLM-X", content(2), START, "0:7").first_id == "CLM-2"  # still pending, still seen
    seen.rollback()  # its delivery failed: it is decided again
    assert seen.pending() == [] and seen.match("CLM-X", content(2), START, "0:7") is None
    assert store.checkpoint() == Checkpoint("claims-seen", 0, 11, 10, "d")


def test_a_pending_content_follows_the_stores_rule():
    """The overlay keeps what the store will keep when it takes the entries: the first of a content."""
    seen = SeenClaims(WINDOW, staged=True)
    seen.remember("CLM-1", content(1), START, "0:1")
    seen.commit()
    seen.remember("CLM-2", content(1), START + DAY_MS, "0:2")
    assert seen.match("CLM-3", content(1), START + DAY_MS, "0:3").first_id == "CLM-1"
    seen.commit()
    assert seen.match("CLM-3", content(1), START + DAY_MS, "0:3").first_id == "CLM-1"


def test_the_store_reopens_with_its_entries_and_checkpoint_and_a_note_alone_moves_it(tmp_path):
    path = tmp_path / "claims-seen-3"
    store = WindowStore.open(path, WINDOW)
    assert store.checkpoint() is None
    store.take([Seen("CLM-1", content(1), START, "3:5")], Checkpoint("claims-seen", 3, 8, 7, "abc"))
    store.take((), Checkpoint("claims-seen", 3, 9, 7, "abc"))  # nothing new: only the checkpoint moves
    store.close()
    reopened = WindowStore.open(path, WINDOW)
    try:
        assert reopened.checkpoint() == Checkpoint("claims-seen", 3, 9, 7, "abc")
        assert reopened.by_id("CLM-1") == Seen("CLM-1", content(1), START, "3:5")
        emptied = reopened.emptied()
        assert len(emptied) == 0 and emptied.checkpoint() is None
    finally:
        emptied.close()


def test_a_damaged_or_foreign_store_is_started_empty(tmp_path):
    path = tmp_path / "claims-seen-0"
    path.mkdir()
    (path / "data.mdb").write_bytes(b"not an LMDB file" * 512)
    store = WindowStore.open(path, WINDOW)
    assert len(store) == 0
    store.close()
    env = lmdb.open(str(path), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"format", b"0", db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(lmdb.Error):
        WindowStore(path, WINDOW)
    WindowStore.open(path, WINDOW).close()  # open() starts it empty instead


def settled_batch(topic: str, first: int, next_offset: int, written: dict | None = None) -> PartitionBatch:
    return PartitionBatch(TopicPartition(topic, 0), first, next_offset, written=written or {})


@pytest.mark.parametrize(
    ("scope", "claims", "changelog"),
    [("topic", "claims-by-content", "claims-by-content-seen"), ("partition", "claims", "claims-seen")],
)
def test_a_delivered_batch_commits_its_entries_with_the_changelog_checkpoint_and_a_failed_one_none(
    tmp_path, scope, claims, changelog
):
    windows = DuplicateWindows(Settings(state_dir=str(tmp_path), duplicate_scope=scope))
    assert (windows.claims, windows.changelog) == (claims, changelog)
    store = WindowStore.open(windows.path(0), WINDOW)
    window = windows._windows[0] = SeenClaims(WINDOW, store, staged=True)
    windows._stores[0] = store
    assert windows.get(TopicPartition(claims, 0)) is window and windows.get(TopicPartition("lab-orders", 0)) is None
    entries = [a_claim(claim_id=f"CLM-{n}", patient={"birth_date": "1961-04-12", "sex": "F", "id": n})
               for n in range(5)]  # fmt: skip
    for offset, claim in zip(range(5, 10), entries, strict=True):  # batch k: 5-7; the next, decided: 8-9
        window.check(claim, f"0:{offset}")
    windows.settled([settled_batch(claims, 5, 8, {(changelog, 0): 41, ("decisions.accepted", 0): 90})], set())
    assert len(store) == 3 and [s.source for s in window.pending()] == ["0:8", "0:9"]
    last = Seen("CLM-2", fingerprint(entries[2]), store.by_id("CLM-2").at_ms, "0:7")
    assert store.checkpoint() == Checkpoint(changelog, 0, 42, 41, record_digest(b"CLM-2", last.as_record()))
    windows.settled([settled_batch(claims, 8, 10)], {TopicPartition(claims, 0)})  # its delivery failed
    assert window.pending() == [] and len(store) == 3
    windows.drop([TopicPartition(claims, 0)])
    assert windows.get(TopicPartition(claims, 0)) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("medical-coding", "medical-coding"), ("t1.claims-seen-0", "t1.claims-seen-0"), ("a/b", "a%2Fb"),
     ("..", "%2E%2E"), (".", "%2E")],
)  # fmt: skip
def test_group_and_topic_names_are_one_safe_directory_each(name, expected):
    assert _directory_name(name) == expected


def test_the_state_lives_under_the_state_dir_by_group_and_changelog_partition(tmp_path):
    settings = dataclasses.replace(Settings(), state_dir=str(tmp_path), group_id="payer/a")
    assert DuplicateWindows(settings).path(4) == tmp_path / "payer%2Fa" / "claims-by-content-seen-4"
    by_partition = dataclasses.replace(settings, duplicate_scope="partition")
    assert DuplicateWindows(by_partition).path(4) == tmp_path / "payer%2Fa" / "claims-seen-4"


@dataclasses.dataclass
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


CHANGELOG = TopicPartition("claims-by-content-seen", 0)
ANCHOR = Record(41, b"CLM-2", b'{"claim_id": "CLM-2"}')
GOOD = Checkpoint("claims-by-content-seen", 0, 42, 41, record_digest(ANCHOR.key, ANCHOR.value))

RESUME_CASES = [
    # (why, checkpoint, the changelog's first and end offsets, the record found at the anchor, where to resume)
    ("a checkpoint whose anchor is there resumes from it", GOOD, (0, 50), ANCHOR, 42),
    ("a checkpoint at the end resumes from the end", GOOD, (0, 42), ANCHOR, 42),
    ("no checkpoint: from the first record", None, (0, 50), ANCHOR, None),
    ("a checkpoint that read no record yet proves no topic: from the first", Checkpoint(CHANGELOG.topic, 0, 9),
     (0, 50), None, None),
    ("a checkpoint of another partition", dataclasses.replace(GOOD, partition=1), (0, 50), ANCHOR, None),
    ("a checkpoint past the end: the topic was made again", GOOD, (0, 30), ANCHOR, None),
    ("an anchor that retention deleted", GOOD, (41 + 1, 60), None, None),
    ("an anchor that compaction removed", GOOD, (0, 50), Record(43, b"CLM-3", b"{}"), None),
    ("another record at the anchor: the topic was made again", GOOD, (0, 50), Record(41, b"CLM-2", b"{}"), None),
]  # fmt: skip


@pytest.mark.parametrize(("why", "checkpoint", "offsets", "found", "expected"), RESUME_CASES,
                         ids=[c[0] for c in RESUME_CASES])  # fmt: skip
async def test_a_store_resumes_from_its_checkpoint_only_when_the_changelog_still_holds_it(
    tmp_path, monkeypatch, why, checkpoint, offsets, found, expected
):
    async def record_at(reader, tp, offset):
        assert (tp, offset) == (CHANGELOG, checkpoint.anchor_offset)
        return found

    monkeypatch.setattr("processor.app.windows.record_at", record_at)
    windows = DuplicateWindows(Settings(state_dir=str(tmp_path)))
    store = WindowStore.open(windows.path(0), WINDOW)
    try:
        if checkpoint is not None:
            store.take([Seen("CLM-2", content(2), START, "0:7")], checkpoint)
        assert await windows._resume_offset(None, store, CHANGELOG, *offsets) == expected
    finally:
        store.close()


def test_a_store_left_unsynced_by_another_boot_of_the_machine_is_started_empty(tmp_path, monkeypatch):
    """Writes are not synced one by one: a machine crash may tear the file, so a store that was written and
    not closed cleanly before the machine restarted is not trusted; a process crash leaves it whole."""
    monkeypatch.setattr("processor.app.window_store._boot_id", lambda: "boot-1")
    path = tmp_path / "claims-seen-0"
    store = WindowStore.open(path, WINDOW)
    store.take([Seen("CLM-1", content(1), START, "0:1")])
    assert (path / "unsynced").read_text() == "boot-1"
    store._env.close()  # the process dies: no clean close
    again = WindowStore.open(path, WINDOW)  # the same boot: the kernel had every page
    assert again.by_id("CLM-1") is not None
    again._env.close()
    monkeypatch.setattr("processor.app.window_store._boot_id", lambda: "boot-2")
    rebooted = WindowStore.open(path, WINDOW)
    assert len(rebooted) == 0 and not (path / "unsynced").exists()
    rebooted.take([Seen("CLM-2", content(2), START, "0:2")])
    rebooted.close()  # a clean close syncs and says so
    assert not (path / "unsynced").exists()
    monkeypatch.setattr("processor.app.window_store._boot_id", lambda: "boot-3")
    trusted = WindowStore.open(path, WINDOW)
    assert trusted.by_id("CLM-2") is not None
    trusted.close()


def test_a_store_of_another_window_length_is_started_empty(tmp_path):
    path = tmp_path / "claims-seen-0"
    store = WindowStore.open(path, WINDOW)
    store.take([Seen("CLM-1", content(1), START, "0:1")])
    store.close()
    shorter = WindowStore.open(path, 7 * DAY_MS)
    assert len(shorter) == 0
    shorter.close()


def resident_store_pages(path: Path) -> int:
    """Bytes of the store's data file resident in this process: its mapping's ``Rss`` in /proc/self/smaps."""
    smaps = Path("/proc/self/smaps").read_text()
    mapping = smaps.find(" " + str((path / "data.mdb").resolve()) + "\n")
    if mapping < 0:
        return 0
    rss = smaps.index("\nRss:", mapping) + len("\nRss:")
    return int(smaps[rss : smaps.index("kB", rss)]) * 1024


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads the process's mappings (Linux)")
@pytest.mark.parametrize(("mapped_max", "most_resident"), [(1 << 20, 2 << 20), (1 << 40, None)],
                         ids=["held-to-the-bound", "without-a-bound-most-of-the-file"])  # fmt: skip
def test_the_pages_a_store_reads_stay_resident_in_the_process_up_to_a_bound(
    tmp_path, monkeypatch, mapped_max, most_resident
):
    """A read maps 64 KiB of the file around it into the worker, counted in its RSS until the store lets go
    of them: lookups and a write spread over a store of 8 MB keep at most ``MAPPED_MAX`` (and what a few
    reads map before the next look) resident; without the bound, most of the file."""
    path = tmp_path / "claims-seen-0"
    store = WindowStore.open(path, WINDOW)
    for first in range(0, 40_000, 5_000):
        store.take([Seen(f"CLM-{n}", content(n), START + n, f"0:{n}") for n in range(first, first + 5_000)])
    monkeypatch.setattr(window_store, "MAPPED_MAX", mapped_max)
    monkeypatch.setattr(window_store, "CHECK_EVERY", 5)
    let_go = WindowStore._release_pages
    resident = []  # just before each release: the most since the one before

    def releasing(self: WindowStore) -> None:
        resident.append(resident_store_pages(path))
        let_go(self)

    monkeypatch.setattr(WindowStore, "_release_pages", releasing)
    for n in range(0, 40_000, 37):
        assert store.by_id(f"CLM-{n}") is not None and store.by_content(content(n)) is not None
    resident.append(resident_store_pages(path))
    store.take([Seen(f"CLM-{n}", content(n * 7919), START + n, "0:1") for n in range(40_000, 41_000)])
    size = (path / "data.mdb").stat().st_size
    store.close()
    if most_resident is None:
        assert max(resident) > size / 2
    else:
        assert len(resident) > 10 and max(resident) <= most_resident < size / 3
