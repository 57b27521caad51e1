"""The duplicate window on disk (``app.window_store``): it keeps what the in-memory window keeps (one table of
cases run against both), keeps only what was committed, forgets what left the window through its time index,
reopens with its checkpoint, and is rebuilt from a changelog with tombstones."""

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
from processor.engine.duplicates import (
    Change,
    HeldLine,
    MemoryStore,
    Seen,
    SeenClaims,
    SeenLine,
    changelog_records,
    entry,
)
from processor.kafka.delivery import PartitionBatch
from tests.unit.test_duplicates import CASES, DAY_MS, FIRST, HELD, a_line, billed, summary

WINDOW = 30 * DAY_MS
START = 1_760_000_000_000


def h(n: int) -> str:
    """A hash as the window makes them: 32 hex digits."""
    return f"{n:032x}"


def seen(number: str, *services: int, at: int = START, member: int = 1, claim_id: str = "", exact: int = 0,
         replaces: str | None = None) -> Seen:  # fmt: skip
    """An entry of control number ``number`` billing a line per service hash ``services`` (exact hash
    ``exact`` + the service)."""
    lines = tuple(SeenLine(i + 1, h(s), h(exact + s), repeat=i == 1, anatomic=i == 2) for i, s in enumerate(services))
    return Seen(number, claim_id or f"CLM-{number}", at, f"0:{number}", h(member), lines, replaces)


def put(*entries: Seen) -> list[Change]:
    return [Change(e.control_number, e, e.source) for e in entries]


def removed(number: str) -> Change:
    return Change(number, None, "0:99")


@pytest.fixture(params=["memory", "lmdb"])
def any_store(request, tmp_path):
    """Each kind of ``Store``: what one does, the other does."""
    if request.param == "memory":
        yield MemoryStore(WINDOW)
        return
    opened = WindowStore.open(tmp_path / "claims-seen-0", WINDOW)
    yield opened
    opened.close()


@pytest.fixture
def store(tmp_path):
    opened = WindowStore.open(tmp_path / "claims-seen-0", WINDOW)
    yield opened
    opened.close()


@pytest.mark.parametrize(("why", "claim", "source", "control_number", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_store_judges_as_the_memory_window(any_store, why, claim, source, control_number, expected):
    window = SeenClaims(WINDOW, any_store, staged=True)
    window.check(FIRST, "0:1", HELD)
    window.commit()
    verdict, _ = window.check(claim, source, control_number)
    assert summary(verdict) == expected
    window.commit()
    if expected is not None and expected[2] is not None:  # replaced or voided: gone from the store
        assert any_store.entry(HELD) is None


def held(entry_: Seen, index: int = 0) -> HeldLine:
    line = entry_.lines[index]
    return HeldLine(entry_.control_number, entry_.at_ms, line.line_number, bytes.fromhex(line.exact), line.repeat,
                    line.anatomic)  # fmt: skip


A, B = seen("0-1", 7, 8, 9), seen("0-2", 7, exact=100, at=START + DAY_MS)
STORE_CASES = [
    # (why, changes taken (in one write each), control number -> entry expected, service -> lines expected)
    ("an entry is kept with its lines, each by its service", [put(A)], {"0-1": A},
     {7: [held(A, 0)], 8: [held(A, 1)], 9: [held(A, 2)]}),
    ("two claims of one service: both lines, oldest first", [put(A), put(B)], {"0-1": A, "0-2": B},
     {7: [held(A), held(B)]}),
    ("a removal takes the entry and its lines", [put(A, B), [removed("0-1")]], {"0-1": None, "0-2": B},
     {7: [held(B)], 8: [], 9: []}),
    ("an entry under a control number held replaces it, lines and all (a replay, a restore read again)",
     [put(A), put(seen("0-1", 5))], {"0-1": seen("0-1", 5)}, {7: [], 8: [], 5: [held(seen("0-1", 5))]}),
    ("removing what is not held changes nothing", [put(A), [removed("9-9")]], {"0-1": A}, {7: [held(A)]}),
    ("a removal then an entry in one write: a replacement", [put(A), [removed("0-1"), *put(B)]],
     {"0-1": None, "0-2": B}, {7: [held(B)], 8: []}),
    ("an entry that replaced another keeps what it replaced", [put(seen("0-3", 4, replaces="0-1"))],
     {"0-3": seen("0-3", 4, replaces="0-1")}, {4: [held(seen("0-3", 4))]}),
]  # fmt: skip


@pytest.mark.parametrize(("why", "writes", "entries", "lines"), STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_every_store_keeps_entries_by_control_number_and_lines_by_service(any_store, why, writes, entries, lines):
    for changes in writes:
        any_store.take(changes)
    for number, expected in entries.items():
        assert any_store.entry(number) == expected
    for service, expected in lines.items():
        assert sorted(any_store.lines(bytes.fromhex(h(service))), key=lambda x: x.at_ms) == expected
    assert len(any_store) == sum(1 for e in entries.values() if e is not None)


def test_an_entry_reads_back_as_it_was_taken(store):
    stay = billed("CLM-S", lines=[]) | {"claim_type": "inpatient", "admission_date": "2025-10-01"}
    long_id = "CLM-" + "é" * 60  # UTF-8 beyond ASCII
    entries = [
        seen("0-1", 1, 2, 3, at=-10 * DAY_MS),  # times before 1970 too
        seen("0-2:x", 4, at=-DAY_MS, claim_id=long_id, replaces="7-" + "9" * 90),
        dataclasses.replace(entry(stay, "0:3:1", "0-3-1"), at_ms=0),  # a stay: line 0
        Seen("0-4", "CLM-4", 0, "0:4", h(1), ()),  # no lines
    ]
    store.take(put(*entries))
    for kept in entries:
        assert store.entry(kept.control_number) == kept
    assert store.entry("0-9") is None and store.lines(bytes(16)) == []
    assert len(store) == 4
    store.take(put(seen("0-5", 5, at=45 * DAY_MS)))  # the segment of the others is a window behind
    assert store.entry("0-1") is None and store.lines(bytes.fromhex(h(1))) == [] and len(store) == 1


@pytest.mark.parametrize("kind", ["memory", "lmdb"])
def test_what_left_the_window_is_deleted_and_what_is_in_it_is_kept(tmp_path, kind):
    """Four months a day at a time: the store holds a window, and at most a segment (half a window) more: a
    segment leaves whole once all of it is a window behind the newest claim."""
    any_store = MemoryStore(WINDOW) if kind == "memory" else WindowStore.open(tmp_path / "s", WINDOW)
    per_day = 50
    for day in range(120):
        any_store.take(put(*(seen(f"{day}-{n}", day * per_day + n, at=START + day * DAY_MS) for n in range(per_day))))
    window = SeenClaims(WINDOW, any_store)
    newest = START + 119 * DAY_MS
    assert window._held_entry("89-1", newest) is not None and window._held_lines(bytes.fromhex(h(89 * per_day + 3)),
                                                                                 newest)  # fmt: skip
    assert window._held_entry("70-1", newest) is None and not window._held_lines(bytes.fromhex(h(70 * per_day + 1)),
                                                                                 newest)  # fmt: skip
    if kind == "lmdb":
        assert 30 * per_day <= len(any_store) <= 46 * per_day
        assert any_store.entry("70-1") is None  # deleted, not only out of reach
        any_store.close()


def test_pending_changes_are_seen_at_once_but_reach_the_store_only_when_committed(store):
    window = SeenClaims(WINDOW, store, staged=True)
    window.check(FIRST, "0:1", HELD)
    window.check(billed("CLM-2", a_line(1, code="85025")), "0:2", "0-2")
    assert window.check(FIRST, "0:7", "0-7")[0].resent  # the overlay answers
    assert len(store) == 0
    window.commit(1, Checkpoint("claims-seen", 0, 11, 10, "d"))
    assert store.entry(HELD) is not None and store.entry("0-2") is None
    assert [c.control_number for c in window.pending()] == ["0-2"]
    window.rollback()  # its delivery failed: it is decided again
    assert window.pending() == [] and window.check(billed("CLM-3", a_line(1, code="85025")), "0:3", "0-3")[0] is None
    assert store.checkpoint() == Checkpoint("claims-seen", 0, 11, 10, "d")


def test_a_replacement_committed_replaces_the_claim_on_disk(store):
    window = SeenClaims(WINDOW, store, staged=True)
    window.check(FIRST, "0:1", HELD)
    window.commit()
    verdict, kept = window.check(billed("CLM-1", a_line(1, charge="90"), frequency="replacement", replaces=HELD),
                                 "0:2", "0-2")  # fmt: skip
    window.commit()
    assert verdict.replaced == HELD and store.entry(HELD) is None and store.entry("0-2") == kept
    assert window.check(billed("CLM-3", a_line(2, code="80053", charge="25")), "0:3", "0-3")[0] is None
    assert window.check(billed("CLM-4", a_line(1, charge="90")), "0:4", "0-4")[0].resent


def test_the_store_reopens_with_its_entries_and_checkpoint_and_a_note_alone_moves_it(tmp_path):
    path = tmp_path / "claims-seen-3"
    store = WindowStore.open(path, WINDOW)
    assert store.checkpoint() is None
    store.take(put(seen("3-5", 1)), Checkpoint("claims-seen", 3, 8, 7, "abc"))
    store.take((), Checkpoint("claims-seen", 3, 9, 7, "abc"))  # nothing new: only the checkpoint moves
    store.close()
    reopened = WindowStore.open(path, WINDOW)
    try:
        assert reopened.checkpoint() == Checkpoint("claims-seen", 3, 9, 7, "abc")
        assert reopened.entry("3-5") == seen("3-5", 1)
        emptied = reopened.emptied()
        assert len(emptied) == 0 and emptied.checkpoint() is None
    finally:
        emptied.close()


def test_a_store_of_the_previous_format_is_emptied_for_a_rebuild(tmp_path):
    """Format 2 kept claims by id and content fingerprint: its entries mean nothing to this window, and its
    checkpoint must not let a restore skip the changelog's records."""
    path = tmp_path / "claims-seen-0"
    store = WindowStore.open(path, WINDOW)
    store.take(put(seen("0-1", 1)), Checkpoint("claims-seen", 0, 9, 8, "abc"))
    store.close()
    env = lmdb.open(str(path), max_dbs=64)
    with env.begin(write=True) as txn:
        txn.put(b"format", b"2:%d:%d" % (WINDOW, window_store.SEGMENTS), db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(lmdb.IncompatibleError):
        WindowStore(path, WINDOW)
    reopened = WindowStore.open(path, WINDOW)
    assert len(reopened) == 0 and reopened.checkpoint() is None and reopened.entry("0-1") is None
    reopened.close()


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


@dataclasses.dataclass
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


class Reader:
    """The changelog reader as ``restore`` uses it: its offsets (the records come through ``read_to_end``)."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records

    async def beginning_offsets(self, partitions):
        return dict.fromkeys(partitions, 0)

    async def end_offsets(self, partitions):
        return dict.fromkeys(partitions, len(self.records))

    async def stop(self):
        pass


async def test_a_window_is_restored_from_a_changelog_with_tombstones(tmp_path, monkeypatch):
    window = SeenClaims(WINDOW)
    written = []
    for claim, source, number in (
        (FIRST, "0:1", HELD),
        (billed("CLM-2", a_line(1, code="85025")), "0:2", "0-2"),
        (billed("CLM-3", a_line(1, code="36415")), "0:3", "0-3"),
        (billed("CLM-2", frequency="void", replaces="0-2"), "0:4", "0-4"),
        (billed("CLM-3", a_line(1, code="36415", charge="12"), frequency="replacement", replaces="0-3"), "0:5", "0-5"),
    ):  # fmt: skip
        written += changelog_records(*window.check(claim, source, number))
    records = [Record(offset, key, value) for offset, (key, value) in enumerate([*written, (b"junk", b"{")])]

    async def read_to_end(reader, wanted, take, max_records, start):
        assert start == dict.fromkeys(wanted, 0)  # no checkpoint: from the first record
        for tp in wanted:
            take(tp, records)
        return dict.fromkeys(wanted, len(records))

    monkeypatch.setattr("processor.app.windows.read_to_end", read_to_end)
    windows = DuplicateWindows(Settings(state_dir=str(tmp_path)))
    windows._reader = Reader(records)
    tp = TopicPartition(windows.claims, 0)
    await windows.restore([tp])
    try:
        restored = windows.get(tp)
        store = windows._stores[0]
        assert {n for n in (HELD, "0-2", "0-3", "0-4", "0-5") if store.entry(n)} == {HELD, "0-5"}
        assert store.entry("0-5") == window.store.entry("0-5")
        last = records[-1]
        assert store.checkpoint() == Checkpoint(windows.changelog, 0, len(records), last.offset,
                                                record_digest(last.key, last.value))  # fmt: skip
        assert restored.check(billed("CLM-9", a_line(1, code="85025")), "0:9", "0-9")[0] is None  # voided
        again, _ = restored.check(billed("CLM-9", a_line(1, code="36415", charge="12")), "0:10", "0-10")
        assert again.resent and again.lines[0].control_number == "0-5"
    finally:
        await windows.stop()


def settled_batch(topic: str, first: int, next_offset: int, written: dict | None = None) -> PartitionBatch:
    return PartitionBatch(TopicPartition(topic, 0), first, next_offset, written=written or {})


@pytest.mark.parametrize(
    ("scope", "claims", "changelog"),
    [("topic", "claims-by-member", "claims-by-member-seen"), ("partition", "claims", "claims-seen")],
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
    claims_ = [billed(f"CLM-{n}", a_line(1, code="85025"), member={"id": f"M{n}"}) for n in range(5)]
    for offset, claim in zip(range(5, 10), claims_, strict=True):  # batch k: 5-7; the next, decided: 8-9
        window.check(claim, f"0:{offset}", f"0-{offset}")
        if offset == 7:  # and a void of 0-7 in the same record
            window.check(billed("CLM-2", member={"id": "M2"}, frequency="void", replaces="0-7"), "0:7:1", "0-7-1")
    windows.settled([settled_batch(claims, 5, 8, {(changelog, 0): 41, ("decisions.accepted", 0): 90})], set())
    assert len(store) == 2 and [c.source for c in window.pending()] == ["0:8", "0:9"]  # 0-7 voided in the batch
    # The checkpoint's anchor is the batch's last changelog record: the void's tombstone.
    assert store.checkpoint() == Checkpoint(changelog, 0, 42, 41, record_digest(b"0-7", None))
    windows.settled([settled_batch(claims, 8, 10)], {TopicPartition(claims, 0)})  # its delivery failed
    assert window.pending() == [] and len(store) == 2
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
    assert DuplicateWindows(settings).path(4) == tmp_path / "payer%2Fa" / "claims-by-member-seen-4"
    by_partition = dataclasses.replace(settings, duplicate_scope="partition")
    assert DuplicateWindows(by_partition).path(4) == tmp_path / "payer%2Fa" / "claims-seen-4"


CHANGELOG = TopicPartition("claims-by-member-seen", 0)
ANCHOR = Record(41, b"CLM-2", b'{"claim_id": "CLM-2"}')
GOOD = Checkpoint("claims-by-member-seen", 0, 42, 41, record_digest(ANCHOR.key, ANCHOR.value))

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
            store.take(put(seen("0-7", 2)), checkpoint)
        assert await windows._resume_offset(None, store, CHANGELOG, *offsets) == expected
    finally:
        store.close()


def test_a_store_left_unsynced_by_another_boot_of_the_machine_is_started_empty(tmp_path, monkeypatch):
    """Writes are not synced one by one: a machine crash may tear the file, so a store that was written and
    not closed cleanly before the machine restarted is not trusted; a process crash leaves it whole."""
    monkeypatch.setattr("processor.app.window_store._boot_id", lambda: "boot-1")
    path = tmp_path / "claims-seen-0"
    store = WindowStore.open(path, WINDOW)
    store.take(put(seen("0-1", 1)))
    assert (path / "unsynced").read_text() == "boot-1"
    store._env.close()  # the process dies: no clean close
    again = WindowStore.open(path, WINDOW)  # the same boot: the kernel had every page
    assert again.entry("0-1") is not None
    again._env.close()
    monkeypatch.setattr("processor.app.window_store._boot_id", lambda: "boot-2")
    rebooted = WindowStore.open(path, WINDOW)
    assert len(rebooted) == 0 and not (path / "unsynced").exists()
    rebooted.take(put(seen("0-2", 2)))
    rebooted.close()  # a clean close syncs and says so
    assert not (path / "unsynced").exists()
    monkeypatch.setattr("processor.app.window_store._boot_id", lambda: "boot-3")
    trusted = WindowStore.open(path, WINDOW)
    assert trusted.entry("0-2") is not None
    trusted.close()


def test_a_store_of_another_window_length_is_started_empty(tmp_path):
    path = tmp_path / "claims-seen-0"
    store = WindowStore.open(path, WINDOW)
    store.take(put(seen("0-1", 1)))
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
        store.take(put(*(seen(f"0-{n}", n, at=START + n) for n in range(first, first + 5_000))))
    monkeypatch.setattr(window_store, "MAPPED_MAX", mapped_max)
    monkeypatch.setattr(window_store, "CHECK_EVERY", 5)
    let_go = WindowStore._release_pages
    resident = []  # just before each release: the most since the one before

    def releasing(self: WindowStore) -> None:
        resident.append(resident_store_pages(path))
        let_go(self)

    monkeypatch.setattr(WindowStore, "_release_pages", releasing)
    for n in range(0, 40_000, 37):
        assert store.entry(f"0-{n}") is not None and store.lines(bytes.fromhex(h(n)))
    resident.append(resident_store_pages(path))
    store.take(put(*(seen(f"0-{n}", n * 7919, at=START + n) for n in range(40_000, 41_000))))
    size = (path / "data.mdb").stat().st_size
    store.close()
    if most_resident is None:
        assert max(resident) > size / 2
    else:
        assert len(resident) > 10 and max(resident) <= most_resident < size / 3
