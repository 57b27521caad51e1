"""The duplicate window of one partition on local disk: an LMDB environment, with its checkpoint.

A ``duplicates.Store`` for ``SeenClaims``: the worker keeps a window per partition of the claims it checks
here instead of in memory, so a window of 150 million entries costs disk, not memory, and a restart reopens
it instead of reading the whole changelog again. One environment (a directory: ``data.mdb`` and
``lock.mdb``) per partition.

**Segments: the time index.** Entries go to the segment of the newest submission time taken so far; a
segment spans half the window (``SEGMENTS``), and each has two databases: ``entries.<n>`` (control number ->
submission time, member hash, claim id, source, what it replaced, and per line its number, service and exact
hashes and modifier flags: ``_pack``) and ``lines.<n>``, the line index (service hash -> one value per line
held with it, LMDB's sorted duplicates: submission time, exact hash, line number, flags, control number). An
entry's lines are in its own segment. A lookup asks the live segments newest first. Removing an entry (a
change without one: a void, a replacement, a tombstone read from the changelog) or putting one under a
control number already held (a replay) deletes the held entry and each of its lines from the index. Expiry
is a range delete by time: a segment whose every entry is more than a window behind the newest submission
time is dropped whole, in the write that moved the newest time on, without touching its entries one by one
(deleting them one by one rewrote a page for each: the most a window's entries cost). So the store holds
between one window and one and a half; ``meta`` holds the format, the window, the newest time, the live
segments and the ``Checkpoint``. A store of another ``FORMAT`` (an older one, keyed by claim id) is emptied
on opening and rebuilt from the changelog, whose older records ``Seen.from_record`` ignores.

**One write, all or nothing.** Every ``take`` is one LMDB write transaction: the changes, the segments it
drops and the checkpoint commit together, so the checkpoint always describes what the store holds.

**No fsync per write, and no trust after a machine crash.** A write transaction that ``fsync``\\ ed its
pages cost 18-26 µs an entry (a random key rewrites a 4 KiB page, and every page was flushed per batch); the
store is opened ``sync=False``. A process crash loses nothing then (the pages are in the kernel's cache),
but a machine crash may leave a torn file. So before the first write after opening, the store leaves an
``unsynced`` file naming the machine's boot (Linux's boot id), and removes it only after a clean close has
synced every page: a store that still has one from another boot is emptied on opening and rebuilt from the
changelog. Where there is no boot id, writes are synced.

**No PHI.** The store holds what an entry holds: hashes of the member and of the services, the claim id,
control numbers and where the claim was read.

**Memory.** LMDB maps the file; every page a lookup or a write reads is mapped into the process (the kernel
maps up to 16 around it: 64 KiB), and would stay counted in its resident memory. The store lets go of them
(``madvise(MADV_DONTNEED)``: they stay in the kernel's page cache) once the process's resident file pages have
grown by ``MAPPED_MAX`` since it last did, which it looks at every ``CHECK_EVERY`` lookups or entries written,
and at the end of every write: so a worker holds about ``MAPPED_MAX`` of each store's pages at most, however
large the store.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import mmap
import os
import shutil
import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lmdb
import orjson

from processor.engine.duplicates import Change, HeldLine, Seen, SeenLine, held_lines

log = logging.getLogger(__name__)

# 3: entries by control number and lines by service hash (2: by claim id and content fingerprint).
FORMAT = b"3"
# The most the data file may grow to: address space only (the file holds what is written), as LMDB needs it.
MAP_SIZE = 1 << 40
# Segments a window spans: more makes the store's excess over the window smaller, and a lookup that finds
# nothing asks each live one (a window and a segment: three with 2).
SEGMENTS = 2
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# The most of the store's pages the process keeps mapped before it lets them go (see the module's docstring).
# Less costs more per lookup and write, in page faults that map the B-trees' upper pages again: in a store of
# 10 million entries, 64 MB took 8 % more page faults to restore 100,000 records than letting go every 500
# writes (150 MB), and no CPU time that the noise showed; 32 MB took 12 % more, and letting go every 100
# writes (30 MB) cost 10 µs more a write (50 instead of 40) and 11 µs more a claim's two lookups.
MAPPED_MAX = 64 << 20
# Lookups or entries written between two looks at the process's resident file pages (``/proc/self/statm``,
# about 1.5 µs a look); one lookup or write maps at most about 300 KB.
CHECK_EVERY = 25
_MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE
UNSYNCED = "unsynced"

_AT = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How much of the changelog partition ``partition`` of ``topic`` the store holds: every committed record
    below ``offset`` (a lower bound: it may hold some after). ``anchor_offset`` and ``anchor_digest`` name a
    record the store holds (its offset, and a digest of its key and value), which a restore looks up to tell
    this topic from another of the same name (deleted and created again); None when none was read yet."""

    topic: str
    partition: int
    offset: int
    anchor_offset: int | None = None
    anchor_digest: str | None = None

    def as_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, value: bytes | None) -> Checkpoint | None:
        if value is None:
            return None
        try:
            return cls(**orjson.loads(value))
        except (orjson.JSONDecodeError, TypeError):
            return None


def record_digest(key: bytes | None, value: bytes | None) -> str:
    """What a checkpoint's anchor remembers of a changelog record: a digest of its key and value."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (key, value):
        digest.update(b"-" if part is None else b"+%d:" % len(part) + part)
    return digest.hexdigest()


def _boot_id() -> str | None:
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


class WindowStore:
    """The LMDB store of one partition's window (see the module's docstring). Not thread-safe: the worker's
    event loop is its only user."""

    def __init__(self, path: Path, window_ms: int) -> None:
        self.path = path
        self.window_ms = window_ms
        self.span_ms = -(-window_ms // SEGMENTS)
        self._boot = _boot_id()
        path.mkdir(parents=True, exist_ok=True)
        unsynced = path / UNSYNCED
        if unsynced.exists() and unsynced.read_text().strip() != self._boot:
            raise lmdb.CorruptedError("written without a sync before the machine restarted")
        self._env = lmdb.open(str(path), map_size=MAP_SIZE, max_dbs=64, metasync=False, sync=self._boot is None,
                              readahead=False)  # fmt: skip
        self._env.reader_check()  # free the reader slots of a process that died holding them
        self._written = False
        self._meta = self._env.open_db(b"meta")
        with self._env.begin(write=True) as txn:
            expected = FORMAT + b":%d:%d" % (window_ms, SEGMENTS)
            stored = txn.get(b"format", db=self._meta)
            if stored is None:
                txn.put(b"format", expected, db=self._meta)
            elif stored != expected:
                raise lmdb.IncompatibleError(f"window store {stored!r}, expected {expected!r}")
            newest = txn.get(b"newest", db=self._meta)
            segments = orjson.loads(txn.get(b"segments", b"[]", db=self._meta))
        self._newest_ms = None if newest is None else _AT.unpack(newest)[0]
        self._segments: dict[int, tuple[Any, Any]] = {n: self._open_segment(n) for n in segments}
        self._reader = self._env.begin()
        self._map = _mapping(path / "data.mdb")
        self._resident = _ResidentFiles.open() if self._map is not None and _libc is not None else None
        # The process's resident file pages when this store last let go of its own.
        self._mapped_since = 0 if self._resident is None else self._resident.pages()
        self._touches = 0  # lookups and entries written since the last look at them

    @classmethod
    def open(cls, path: Path, window_ms: int) -> WindowStore:
        """The store at ``path``, made empty first when it cannot be trusted or opened (torn by a machine
        crash, damaged, or of another format or window)."""
        try:
            return cls(path, window_ms)
        except lmdb.Error as err:
            log.warning("window store %s cannot be used (%s: %s); starting it empty", path, type(err).__name__, err)
            shutil.rmtree(path, ignore_errors=True)
            return cls(path, window_ms)

    def emptied(self) -> WindowStore:
        """Delete everything (the files too) and return the empty store that takes this one's place."""
        self.close(sync=False)
        shutil.rmtree(self.path, ignore_errors=True)
        return WindowStore(self.path, self.window_ms)

    def close(self, sync: bool = True) -> None:
        """Close the store. With ``sync``, what it wrote is synced to disk first and the store says so, so that
        it is trusted after the machine restarts (the worker's stop syncs; a revocation, which the same worker
        may undo a moment later, does not: a machine crash after it costs a rebuild from the changelog)."""
        self._reader.abort()
        if self._written and sync:
            self._env.sync(True)
            _remove_durably(self.path / UNSYNCED)
        self._env.close()
        if self._resident is not None:
            self._resident.close()

    def __len__(self) -> int:
        """The entries kept."""
        return sum(int(self._reader.stat(entries)["entries"]) for entries, _ in self._segments.values())

    def checkpoint(self) -> Checkpoint | None:
        return Checkpoint.from_bytes(self._reader.get(b"checkpoint", db=self._meta))

    def entry(self, control_number: str) -> Seen | None:
        self._touched()
        key = _key(control_number)
        for entries, _ in reversed(self._segments.values()):
            value = self._reader.get(key, db=entries)
            if value is not None:
                return _unpack(control_number, value)
        return None

    def lines(self, service: bytes) -> Sequence[HeldLine]:
        self._touched()
        found: list[HeldLine] = []
        for _, lines in reversed(self._segments.values()):
            if self._reader.get(service, db=lines) is None:  # most services are new: no cursor for them
                continue
            with self._reader.cursor(lines) as cursor:
                if cursor.set_key(service):
                    found.extend(_held(value) for value in cursor.iternext_dup())
        return found

    def take(self, changes: Sequence[Change], note: object = None) -> None:
        """Apply ``changes`` in order, drop the segments that left the window, keep ``note`` (a
        ``Checkpoint``)."""
        if not self._written and self._boot is not None:
            _write_durably(self.path / UNSYNCED, self._boot)  # before the first write that is not synced
            self._written = True
        newest = self._newest_ms
        segments = dict(self._segments)
        with self._env.begin(write=True) as txn:
            for change in changes:
                self._touched()
                key = _key(change.control_number)
                for entries, lines in segments.values():
                    _remove(txn, key, entries, lines)
                seen = change.seen
                if seen is None:
                    continue
                if newest is None or seen.at_ms > newest:
                    newest = seen.at_ms
                number = newest // self.span_ms
                if number not in segments:
                    segments[number] = self._open_segment(number, txn)
                entries, lines = segments[max(segments)]
                txn.put(key, _pack(seen), db=entries)
                for service, held in held_lines(seen):
                    txn.put(service, _held_value(held), db=lines)
            if newest is not None:
                horizon = newest - self.window_ms
                for number in [n for n in segments if (n + 1) * self.span_ms - 1 < horizon]:
                    for db in segments.pop(number):
                        txn.drop(db, delete=True)  # every entry in it was submitted before the horizon
                txn.put(b"newest", _AT.pack(newest), db=self._meta)
            txn.put(b"segments", orjson.dumps(sorted(segments)), db=self._meta)
            if isinstance(note, Checkpoint):
                txn.put(b"checkpoint", note.as_bytes(), db=self._meta)
        self._newest_ms = newest
        self._segments = dict(sorted(segments.items()))
        self._reader.abort()
        self._reader = self._env.begin()
        self._release_pages()

    def _touched(self) -> None:
        """A lookup or an entry written: every ``CHECK_EVERY``, let the store's pages go if too many are mapped."""
        self._touches += 1
        if self._touches >= CHECK_EVERY:
            self._touches = 0
            if self._resident is not None and self._resident.pages() - self._mapped_since > MAPPED_MAX // _PAGE:
                self._release_pages()

    def _release_pages(self) -> None:
        """Drop the store's pages from the process's resident memory: they stay in the kernel's page cache, and
        a later read maps them again. Without it every page a lookup or a write ever read stays resident in the
        worker, which after a while is the whole file (2 GB for 10 million entries), counted in its RSS."""
        if self._map is not None and _libc is not None:
            used = (self._env.info()["last_pgno"] + 1) * self._env.stat()["psize"]
            _libc.madvise(ctypes.c_void_p(self._map[0]), ctypes.c_size_t(min(used, self._map[1])), _MADV_DONTNEED)
        if self._resident is not None:
            self._mapped_since = self._resident.pages()

    def _open_segment(self, number: int, txn: lmdb.Transaction | None = None) -> tuple[Any, Any]:
        """The ``entries`` and ``lines`` databases of segment ``number`` (made in ``txn`` if new)."""
        entries = self._env.open_db(b"entries.%d" % number, txn=txn)
        return entries, self._env.open_db(b"lines.%d" % number, txn=txn, dupsort=True)


def _key(control_number: str) -> bytes:
    return control_number.encode("utf-8", "surrogatepass")


def _remove(txn: lmdb.Transaction, key: bytes, entries: Any, lines: Any) -> None:
    """Delete the entry of ``key`` from one segment, and each of its lines from the segment's line index."""
    value = txn.get(key, db=entries)
    if value is None:
        return
    seen = _unpack(key.decode("utf-8", "surrogatepass"), bytes(value))
    for service, held in held_lines(seen):
        txn.delete(service, _held_value(held), db=lines)
    txn.delete(key, db=entries)


# An entry's value: submission time, member hash, line count, then the claim id, source and control number
# replaced (each its length first; 0xFFFF: none replaced), then per line its number, flags, service and exact.
_HEAD = struct.Struct(">q16sH")
_TEXT = struct.Struct(">H")
_LINE = struct.Struct(">HB16s16s")
_NONE = 0xFFFF
_REPEAT, _ANATOMIC = 1, 2
# A line index value: submission time, exact hash, line number, flags, then the control number.
_HELD = struct.Struct(">q16sHB")


def _pack(seen: Seen) -> bytes:
    parts = [_HEAD.pack(seen.at_ms, bytes.fromhex(seen.member), len(seen.lines))]
    for text in (seen.claim_id, seen.source, seen.replaces):
        if text is None:
            parts.append(_TEXT.pack(_NONE))
        else:
            raw = text.encode("utf-8", "surrogatepass")
            parts += (_TEXT.pack(len(raw)), raw)
    for line in seen.lines:
        flags = _REPEAT * line.repeat | _ANATOMIC * line.anatomic
        parts.append(_LINE.pack(line.line_number, flags, bytes.fromhex(line.service), bytes.fromhex(line.exact)))
    return b"".join(parts)


def _unpack(control_number: str, value: bytes) -> Seen:
    at_ms, member, count = _HEAD.unpack_from(value)
    at = _HEAD.size
    texts: list[str | None] = []
    for _ in range(3):
        (length,) = _TEXT.unpack_from(value, at)
        at += _TEXT.size
        if length == _NONE:
            texts.append(None)
        else:
            texts.append(value[at : at + length].decode("utf-8", "surrogatepass"))
            at += length
    claim_id, source, replaces = texts
    lines = []
    for _ in range(count):
        number, flags, service, exact = _LINE.unpack_from(value, at)
        at += _LINE.size
        lines.append(SeenLine(number, service.hex(), exact.hex(), bool(flags & _REPEAT), bool(flags & _ANATOMIC)))
    return Seen(control_number, claim_id or "", at_ms, source or "", member.hex(), tuple(lines), replaces)


def _held_value(held: HeldLine) -> bytes:
    flags = _REPEAT * held.repeat | _ANATOMIC * held.anatomic
    return _HELD.pack(held.at_ms, held.exact, held.line_number, flags) + _key(held.control_number)


def _held(value: bytes) -> HeldLine:
    at_ms, exact, number, flags = _HELD.unpack_from(value)
    control_number = value[_HELD.size :].decode("utf-8", "surrogatepass")
    return HeldLine(control_number, at_ms, number, exact, bool(flags & _REPEAT), bool(flags & _ANATOMIC))


class _ResidentFiles:
    """The process's resident pages of mapped files (and shared memory): ``/proc/self/statm``'s third field,
    read through a descriptor kept open (Linux)."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor

    @classmethod
    def open(cls) -> _ResidentFiles | None:
        try:
            return cls(os.open("/proc/self/statm", os.O_RDONLY))
        except OSError:
            return None

    def pages(self) -> int:
        return int(os.pread(self._descriptor, 128, 0).split()[2])

    def close(self) -> None:
        os.close(self._descriptor)


def _mapping(data: Path) -> tuple[int, int] | None:
    """Where this process maps ``data`` (start address and length), from ``/proc/self/maps`` (Linux)."""
    try:
        target = str(data.resolve())
        with open("/proc/self/maps") as maps:
            for line in maps:
                if line.rstrip("\n").endswith(" " + target):
                    start, end = (int(address, 16) for address in line.split()[0].split("-"))
                    return start, end - start
    except OSError:
        return None
    return None


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


_libc = _load_libc()


def _write_durably(path: Path, text: str) -> None:
    """Write ``path`` so that it is on disk, name and content, before returning."""
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    _sync_directory(path.parent)


def _remove_durably(path: Path) -> None:
    path.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _sync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
