"""Each process's RDF index, and how worker processes share the one on disk.

Oxigraph's on-disk store (RocksDB) admits one process at a time, and pyoxigraph 0.5 has no secondary
or safe read-only opening next to a writer; gunicorn runs several workers, each of which writes to the
store. So every process queries an in-memory index of its own, and the on-disk index (setting
``index_path``, by default next to the database: ``x.sqlite3`` -> ``x.oxigraph``) is the snapshot
they start from:

- a process loading its index takes an exclusive ``flock`` on ``{index_path}.lock``, opens the
  on-disk index, brings it up to date with the store's change log (building it when it is missing
  or was made from another database), copies it into memory and lets go: two workers starting
  together load one after the other, and the second finds the snapshot already current;
- from then on the copy follows the change log itself: every read (SPARQL, dumps, VoID) first
  applies what the log gained, so it sees each committed write of any process, the job runner's
  included, and a follower thread applies changes every few seconds meanwhile, so a query after a
  long job does not pay for all of them;
- ``enricher reindex`` rebuilds the on-disk index from the store under the same lock (after
  changing vocabulary files, say); processes load the rebuilt one when they restart.

Should the snapshot be unreadable, a process builds its copy from the store instead (slower).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ..config import Config
from ..errors import EnricherError
from ..index import Index
from ..store import Store, split_url
from ..urls import public_base

log = logging.getLogger(__name__)

FOLLOW_SECONDS = 2.0  # how often a process's index applies the change log between reads
LOCK_SUFFIX = ".lock"
T = TypeVar("T")


def index_path(config: Config) -> Path:
    """Where the on-disk index lives: setting index_path, or next to an SQLite database (elsewhere in
    the instance folder)."""
    if config.index_path:
        return Path(config.index_path)
    scheme, location = split_url(config.database)
    return Path(location if scheme == "sqlite" else "instance/enricher").with_suffix(".oxigraph")


def _index(config: Config, path: Path | None = None) -> Index:
    """An index with this service's vocabulary and base URL: on disk at PATH, else in memory."""
    return Index(path, vocab=config.vocab, base=public_base(config.base_url))


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold the on-disk index's lock (waiting for it): RocksDB takes one process at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + LOCK_SUFFIX), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _on_disk(config: Config, work: Callable[[Index], T]) -> T:
    """Run WORK on the on-disk index while holding its lock.

    Raises EnricherError when the index cannot be opened (another program holds it, or the folder is
    not an index).
    """
    with _exclusive(index_path(config)):
        return _closing(_index(config, index_path(config)), work)


def _closing(disk: Index, work: Callable[[Index], T]) -> T:
    # RocksDB lets go of its own lock only when the store is dropped, which happens as this frame (the
    # only holder of DISK) ends: before _on_disk releases our lock, so the next process can open it.
    try:
        return work(disk)
    finally:
        disk.close()


def rebuild(config: Config, store: Store) -> int:
    """Rebuild the on-disk index from STORE (vocabulary, terms, every live annotation); return how
    many annotations it holds.

    Raises EnricherError when the index cannot be opened or a vocabulary file cannot be read.
    """
    return _on_disk(config, lambda disk: disk.build(store))


def load(config: Config, store: Store) -> Index:
    """Return an in-memory index for this process, copied from the on-disk snapshot once that is up
    to date with STORE (built from STORE if the snapshot cannot be opened).

    Raises EnricherError when a vocabulary file cannot be read.
    """
    memory = _index(config)

    def copy(disk: Index) -> None:
        disk.refresh(store)
        memory.store.bulk_extend(disk.store.quads_for_pattern(None, None, None, None))
        memory.seq = disk.seq  # the copy goes on from where the snapshot stands

    try:
        _on_disk(config, copy)
    except (EnricherError, OSError) as exc:
        log.warning("cannot use the on-disk RDF index (%s); building this process's index from the store", exc)
        memory = _index(config)
    memory.refresh(store)
    return memory
