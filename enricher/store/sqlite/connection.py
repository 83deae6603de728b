"""The SQLite file itself: one connection per thread (WAL, busy timeout, full sync), write
transactions (``BEGIN IMMEDIATE``, so a compare-and-swap cannot race), read snapshots, the migration
history run on the file (migrate.py), and the leadership locks beside the file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import EnricherError
from .. import migrations
from .lock import FileLock
from .migrate import migrate, revision

BUSY_TIMEOUT_MS = 30_000
SETUP_RETRY_SECONDS = 0.05  # first wait when another process holds the new file while setting it up


class Connection:
    """Connections to one SQLite file, safe to share across threads (a connection each)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self.db, self._connect, str(self.path))
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise EnricherError(f"cannot open the database: {exc}", where=str(self.path)) from None
        except EnricherError:
            self.close()
            raise

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                for thread in [t for t in self._connections if not t.is_alive()]:
                    self._connections.pop(thread).close()
                self._connections[threading.current_thread()] = connection
        return connection

    def _connect(self) -> sqlite3.Connection:
        """Open and set up a connection. Switching a new file to WAL takes a lock that SQLite does not
        wait for, so a process that starts beside another one setting the file up retries, within the
        busy timeout."""
        deadline, wait = time.monotonic() + BUSY_TIMEOUT_MS / 1000, SETUP_RETRY_SECONDS
        while True:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                connection.row_factory = sqlite3.Row
                connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                connection.execute("PRAGMA journal_mode = WAL")
                # FULL: a commit survives power loss too, not only a killed process
                connection.execute("PRAGMA synchronous = FULL")
                connection.execute("PRAGMA foreign_keys = ON")
                return connection
            except sqlite3.OperationalError as exc:
                connection.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(wait)
                wait = min(wait * 2, 1.0)

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one write transaction (BEGIN IMMEDIATE); a nested block joins the outer one."""
        db = self.db
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        db.commit()

    def _tuples(self) -> sqlite3.Cursor:
        """A cursor of this thread's connection that gives plain tuples: bulk reads of many thousand rows
        take a fraction of the time sqlite3.Row takes."""
        cursor = self.db.cursor()
        cursor.row_factory = None
        return cursor

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """Run several reads on one consistent snapshot (a read transaction never blocks writers in WAL)."""
        db = self.db
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.commit()

    @property
    def schema_version(self) -> int:
        """How many migrations the file has applied, counted as the old SQLite migrations counted."""
        return migrations.version_number(revision(self.db))

    def leader(self, role: str) -> FileLock:
        """The lock that makes one process, of all those on this database, the one that does ROLE
        (``jobs``, a follower's name): a file beside the database (``x.sqlite3.jobs.lock``)."""
        return FileLock(self.path.with_name(f"{self.path.name}.{role}.lock"))
