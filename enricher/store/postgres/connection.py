"""The PostgreSQL server behind one store URL: a connection pool (SQLAlchemy, psycopg 3), write
transactions that nested blocks join, reads on the pool in autocommit, the Alembic migrations
(enricher/store/migrations) run under a lock, and the advisory locks that give out leadership and keep
the change log in commit order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Row, make_url
from sqlalchemy.exc import SQLAlchemyError

from ...errors import EnricherError
from .. import migrations
from .lock import AdvisoryLock

POOL_SIZE = 5  # connections kept open per store (per process)
POOL_OVERFLOW = 10  # more opened under load, closed when returned
POOL_TIMEOUT = 30  # seconds a thread waits for a connection before failing


class Connection:
    """A pool of connections to one PostgreSQL database (and schema: the URL's search_path), safe to
    share across threads: a transaction belongs to the thread that opened it."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        self.where = parsed.render_as_string(hide_password=True)  # for messages: never the password
        self._local = threading.local()
        self.engine = create_engine(
            parsed.set(drivername="postgresql+psycopg"), pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
            pool_timeout=POOL_TIMEOUT, pool_pre_ping=True,
        )
        self._reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        try:
            with self._reads.connect() as connection:
                self.namespace = connection.execute(text("SELECT current_database() || '.' || current_schema()")).scalar()
            self._migrate()
        except SQLAlchemyError as exc:
            self.close()
            raise EnricherError(f"cannot open the database: {exc.orig or exc}", where=self.where) from None

    def close(self) -> None:
        """Close every pooled connection (a held leadership lock keeps its own)."""
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[SAConnection]:
        """Run the block as one transaction on this thread's connection; a nested block joins the outer one."""
        current = getattr(self._local, "connection", None)
        if current is not None:
            yield current
            return
        with self.engine.begin() as connection:
            self._local.connection, self._local.held = connection, set()
            try:
                yield connection
            finally:
                self._local.connection = None

    def _rows(self, statement: Any) -> list[Row]:
        """Every row of a read, in this thread's transaction if one is open, else on its own."""
        current = getattr(self._local, "connection", None)
        if current is not None:
            return current.execute(statement).all()
        with self._reads.connect() as connection:
            return connection.execute(statement).all()

    def _first(self, statement: Any) -> Row | None:
        """The first row of a read, or None."""
        rows = self._rows(statement)
        return rows[0] if rows else None

    def _scalar(self, statement: Any) -> Any:
        """The first column of the first row of a read, or None."""
        row = self._first(statement)
        return row[0] if row else None

    @contextmanager
    def _streamed(self, statement: Any, batch: int = 1000) -> Iterator[Any]:
        """The rows of a large read, fetched BATCH at a time through a server-side cursor."""
        with self.engine.connect() as connection:
            yield connection.execution_options(yield_per=batch).execute(statement)

    def _lock_name(self, name: str) -> str:
        """An advisory lock's name, of this database and schema only."""
        return f"enricher {self.namespace} {name}"

    def _hold(self, db: SAConnection, name: str) -> None:
        """Wait for the transaction-level advisory lock NAME (once per transaction); the commit or
        rollback releases it."""
        held = getattr(self._local, "held", None)
        if held is None or name not in held:
            db.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(self._lock_name(name), 0))))
        if held is not None:
            held.add(name)

    def _migrate(self) -> None:
        """Apply the revisions the database lacks, one process at a time, in one transaction (PostgreSQL's
        DDL is transactional: a failed migration leaves nothing behind)."""
        with self.engine.begin() as db:
            self._hold(db, "migrate")
            at = migrations.current(db)
            migrations.refuse_unknown(at, self.where)
            if at != migrations.head():
                migrations.upgrade(db)

    @property
    def schema_version(self) -> int:
        """How many migrations the database has applied, counted as SQLite counts them (the baseline
        revision stands for SQLite's first six)."""
        with self._reads.connect() as connection:
            return migrations.version_number(migrations.current(connection))

    def leader(self, role: str) -> AdvisoryLock:
        """The lock that makes one process, of all those on this database and schema, the one that does
        ROLE (``jobs``, a follower's name): a session-level advisory lock."""
        return AdvisoryLock(self._reads, self._lock_name(f"leader {role}"))
