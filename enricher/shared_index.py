"""The RDF index on disk, shared by every process of the instance, none of which holds a copy in
memory: a process's memory does not grow with the number of annotations.

Oxigraph's on-disk store (RocksDB) takes one writing process at a time, and a read-only opening
while another process writes is undefined behaviour; so a readers-writer lock on files
(enricher.rwlock, ``{path}.lock`` and ``{path}.gate``) keeps the two apart:

- a read (a query, a dump's checkpoint) holds the lock shared for its length, so it sees one state
  of the index, through a read-only opening the process keeps until a writer changes
  ``{path}.generation`` (opening it anew costs tens of milliseconds at 100,000 annotations); the
  opening sits idle, never read, while a writer writes. Its RocksDB caches fill as queries read
  (Oxigraph sizes them, pyoxigraph offers no setting: 32 MiB of blocks, 128 MiB of strings, and the
  tables' indexes), so the process drops the opening after a read that left it READER_BUDGET larger
  than when it opened, and the next read opens the index anew with empty caches;
- a write (applying at most TRANSACTION change-log entries, in one transaction) holds it
  exclusively, opens the index for writing, applies, flushes, moves the change-log position
  (``{path}.seq``) past the entries and closes, so a reader waits for one such write at most.
  Whichever process finds the index behind the change log before a read applies the missing
  entries, and one follower thread in the instance (leadership role ``index``) applies them every
  few seconds meanwhile;
- a dump holds the lock shared only while it takes a checkpoint of the index (hard links, in
  ``{path}.snapshots/``) and then streams that, so a slow client does not hold up writes;
- a build (the first use, or ``enricher reindex``) fills a new index beside it (``{path}.new``),
  without the lock, and swaps it in under the exclusive lock; a process killed meanwhile leaves
  the index as it was. One build at a time: ``{path}.build`` is flocked around it.
- a compaction does the same from a checkpoint of the index: each write adds a few small RocksDB
  tables that only an open writer would merge, so the follower thread, once a write leaves
  COMPACT_AFTER more tables than the last build or compaction did, merges them in a copy
  (``Store.optimize()``) and swaps it in; the entries written meanwhile are applied again. At 10,000
  annotations 600 small writes left 22 more tables and the queries 1.37 times as slow; compacted,
  1.08 (benchmarks/bench_index_disk.py).

A write is one Oxigraph transaction, and the position moves only after it is flushed, so a
process killed mid-write leaves a consistent index whose position may lag: the entries are
applied again, which changes nothing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pyoxigraph as ox

from . import heap
from .errors import EnricherError, QueryTimeout
from .follow import FollowerThread
from .index import DEFAULT_TIMEOUT, Index, write_dump
from .rwlock import FileRWLock, LockTimeout
from .statistics import stated

if TYPE_CHECKING:
    from .store import Change, ClassCount, Store

LEADER = "index"  # the leadership role of the follower thread
TRANSACTION = 100  # change-log entries a transaction applies: what a write holds in memory at once
COMPACT_AFTER = 8  # RocksDB tables the writes may add before the follower compacts the index
READER_BUDGET = 32 * 2**20  # bytes a read-only opening's caches may add to the process before it is dropped


class SharedIndex(Index):
    """The on-disk index at PATH, opened for each write and read through an opening kept until the next
    one; thread-safe, and safe across processes. WAIT is the longest a read or a write waits for the
    lock (None: for ever)."""

    def __init__(self, path: str | Path, *, vocab: Sequence[str | Path] = (), base: str | None = None,
                 wait: float | None = DEFAULT_TIMEOUT):
        super().__init__(path, vocab=vocab, base=base)
        self.extra_vocab, self.wait = vocab, wait
        self._rw = FileRWLock(self.path)
        self._writer: ox.Store | None = None  # while this process writes (under self._lock)
        self._reader: tuple[str, ox.Store, int] | None = None  # the read-only opening, its generation, the
        # process's resident bytes when it opened
        self._opening = threading.Lock()

    def _open(self) -> None:
        return None  # opened per read and per write: ``store`` stays None

    def close(self) -> None:
        """Refuse further queries."""
        self._closed = True
        with self._opening:
            self._reader = None

    # ---- reading and writing under the lock ---------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[ox.Store]:
        with self._locked(self._rw.shared):
            generation = _read(self._generation_file())
            with self._opening:
                if self._reader is None or self._reader[0] != generation:
                    self._reader = None  # drops the opening of an older generation, which nobody reads now
                    self._reader = (generation, self._open_read_only(self.path), heap.resident())
                opening = self._reader
            yield opening[1]
            self._shed(opening)
            del opening  # the last reference goes under the lock

    def _shed(self, opening: tuple[str, ox.Store, int]) -> None:
        """Stop keeping OPENING (closed once no thread reads it) when the process grew past READER_BUDGET
        since it opened. Memory freed but not yet handed back counts too (the web endpoint trims the
        heap once the answer is sent): a read that needed that much likely filled the caches."""
        if heap.resident() - opening[2] > READER_BUDGET:
            with self._opening:
                if self._reader is opening:
                    self._reader = None

    def _generation_file(self) -> Path:
        return self.path.with_name(self.path.name + ".generation")

    @contextmanager
    def _writing(self) -> Iterator[ox.Store]:
        with self._lock:
            if self._writer is not None:  # a write within a write (apply -> _replace)
                yield self._writer
                return
            with self._locked(self._rw.exclusive):
                if not self.path.is_dir():
                    raise EnricherError("the RDF index is missing; run `enricher reindex`", where=str(self.path))
                self._writer = self._open_writable(self.path)
                try:
                    yield self._writer
                    self._writer.flush()
                finally:
                    self._writer = None  # drops RocksDB's own lock, before ours
                    _write(self._generation_file(), uuid.uuid4().hex)  # readers open the index anew

    def _restate(self, counts: list[ClassCount]) -> None:
        """Outside a write, look under the shared lock first: taking the index exclusively makes every
        process open it anew, which a check that finds the graph current (each process's first use) need not."""
        if self._writer is None:
            with self._reading() as reader:
                current = stated(reader) == set(counts)
                del reader  # before the lock goes
            if current:
                return
        super()._restate(counts)

    def _replace(self, current, removed) -> None:
        with self._lock, self._writing():  # the outer write: the inner one's reference is gone before the lock
            super()._replace(current, removed)

    @contextmanager
    def _locked(self, take) -> Iterator[None]:
        try:
            with take(self.wait):
                yield
        except LockTimeout:
            raise QueryTimeout(f"the RDF index stayed busy for {self.wait} s; try again later",
                               where=str(self.path)) from None

    @staticmethod
    def _open_read_only(path: Path) -> ox.Store:
        try:
            return ox.Store.read_only(str(path))
        except OSError as exc:
            raise EnricherError(f"cannot read the RDF index: {exc}", where=str(path)) from None

    @staticmethod
    def _open_writable(path: Path) -> ox.Store:
        try:
            return ox.Store(str(path))
        except OSError as exc:  # another program holds it, or it is not an index
            raise EnricherError(f"cannot open the RDF index: {exc}", where=str(path)) from None

    # ---- following the change log ---------------------------------------------------------------------

    def position(self, store: Store) -> int:
        """The change-log position the index on disk holds (any process may have moved it)."""
        self.seq = self._read_seq()
        return self.seq

    def apply(self, store: Store, changes: Sequence[Change]) -> None:
        """Apply CHANGES, TRANSACTION at a time, each in a write of its own (so that readers wait for one
        at most), leaving out those another process has applied meanwhile."""
        for start in range(0, len(changes), TRANSACTION):
            batch = changes[start:start + TRANSACTION]
            with self._lock, self._writing():
                if self._read_seq() < batch[-1].seq:
                    self._apply(store, batch)

    def _set_seq(self, seq: int) -> None:
        self.seq = seq
        if self._writer is not None:  # after the data: a crash in between re-applies changes, which is harmless
            self._writer.flush()
            _write(self._seq_file(), str(seq))

    def refresh(self, store: Store) -> int:
        """On first use build the index when it is missing, empty or made from another database; then
        apply what the change log gained."""
        with self._lock:
            if not self._checked:
                with self._building():
                    if not self.path.is_dir() or self._read_seq() == 0 or self._read_seq() > store.last_change():
                        self._build(store)
                    else:
                        self.restate(store)  # an index made before the statistics graph was, or left behind
                self._checked = True
            return self.sync(store)

    def follower(self, store: Store, interval: float) -> FollowerThread:
        """The thread that applies the change log every INTERVAL seconds, in one process of the instance,
        and compacts the index once the writes have fragmented it."""
        return FollowerThread(store, _Compacting(self), interval=interval, leader=LEADER)

    def fragmented(self) -> bool:
        """Whether the writes since the last build or compaction left COMPACT_AFTER more tables (an index
        built before tables were counted counts from now)."""
        built = _read(self._tables_file())
        if not built.isdigit():
            _write(self._tables_file(), str(_tables(self.path)))
            return False
        return _tables(self.path) > int(built) + COMPACT_AFTER

    def compact(self, store: Store) -> None:
        """Merge the index's tables in a checkpoint beside it, without the lock, swap that in, and apply
        what the change log gained meanwhile. The process's other threads read and write meanwhile."""
        with self._building():
            fresh = self.path.with_name(self.path.name + ".new")
            _remove(fresh)
            with self._reading() as reader:
                seq = self._read_seq()
                reader.backup(str(fresh))
                del reader
            _write(_seq_file(fresh), str(seq))
            compacted = ox.Store(str(fresh))
            compacted.optimize()
            compacted.flush()
            del compacted  # drops RocksDB's own lock on FRESH
            with self._lock:
                self._swap(fresh)
                self.sync(store)

    def _tables_file(self) -> Path:
        return self.path.with_name(self.path.name + ".tables")

    # ---- building --------------------------------------------------------------------------------------

    def build(self, source: Store | Iterable[dict]) -> int:
        """Build a new index from SOURCE beside this one and swap it in (see the module's docstring);
        return how many annotations it holds."""
        with self._lock, self._building():
            loaded = self._build(source)
            self._checked = True
            return loaded

    def _build(self, source: Store | Iterable[dict]) -> int:
        fresh = self.path.with_name(self.path.name + ".new")
        _remove(fresh)  # what a killed build left
        built = Index(fresh, vocab=self.extra_vocab, base=self.base)
        try:
            loaded = built.build(source)
        finally:
            built.close()
            del built  # drops RocksDB's own lock on FRESH
        self._swap(fresh)
        if hasattr(source, "changes"):
            self.sync(source)  # what was written during the build
        return loaded

    def _swap(self, fresh: Path) -> None:
        """Put the index FRESH (with its position) in place of this one, under the exclusive lock."""
        old = self.path.with_name(self.path.name + ".old")
        with self._locked(self._rw.exclusive):
            _remove(old)
            if self.path.exists():
                self.path.rename(old)
            fresh.rename(self.path)
            _seq_file(fresh).replace(self._seq_file())
            _write(self._tables_file(), str(_tables(self.path)))
            _write(self._generation_file(), uuid.uuid4().hex)
        _remove(old)

    @contextmanager
    def _building(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".build"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # closing the file lets go
            yield

    # ---- the dataset -----------------------------------------------------------------------------------

    def write_dump(self, output: IO[bytes], format: str) -> None:
        """Write every quad to OUTPUT from a checkpoint of the index, taken under the lock."""
        folder = self.path.with_name(self.path.name + ".snapshots")
        folder.mkdir(exist_ok=True)
        _remove_orphans(folder)
        snapshot = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=folder))
        try:
            snapshot.rmdir()  # the checkpoint makes its folder itself
            self._checkpoint(snapshot)
            write_dump(self._open_read_only(snapshot), output, format)
        finally:
            _remove(snapshot)

    def _checkpoint(self, snapshot: Path) -> None:
        with self._reading() as store:
            store.backup(str(snapshot))
            del store


class _Compacting:
    """The index as the follower thread feeds it: each apply is followed by a compaction when due."""

    def __init__(self, index: SharedIndex):
        self.index, self.name = index, index.name

    def position(self, store: Store) -> int:
        return self.index.position(store)

    def apply(self, store: Store, changes: Sequence[Change]) -> None:
        self.index.apply(store, changes)
        if self.index.fragmented():
            self.index.compact(store)


def _tables(path: Path) -> int:
    """How many RocksDB tables (``*.sst``) the index at PATH holds."""
    return sum(1 for _ in path.glob("*.sst"))


def _seq_file(path: Path) -> Path:
    return path.with_name(path.name + ".seq")


def _write(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    _seq_file(path).unlink(missing_ok=True)


def _remove_orphans(folder: Path) -> None:
    """Remove the checkpoints of dumps whose process has ended (killed mid-dump)."""
    for snapshot in folder.iterdir():
        pid = snapshot.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(snapshot)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
