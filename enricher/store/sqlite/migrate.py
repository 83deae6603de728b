"""The one migration history (enricher/store/migrations) run on a SQLite file: Alembic on a connection
of its own inside ``BEGIN IMMEDIATE``, so processes opening one new file at once set it up one after
another, and a file made before the history adopted first (legacy.py). A file already at the newest
revision costs one read: Alembic and SQLAlchemy are imported only when there is something to do."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ...errors import EnricherError
from .. import migrations
from . import legacy


def revision(db: sqlite3.Connection) -> str | None:
    """The revision of the history the file is at (None: none, a new file or one of the old migrations)."""
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return None
    return row[0] if row else None


def migrate(db: sqlite3.Connection, connect: Callable[[], sqlite3.Connection], where: str) -> None:
    """Bring the file that DB is open on to the newest revision, unless it is there; CONNECT opens
    another connection to it, set up as DB is, for Alembic to run on. WHERE names the file in errors.

    Raises EnricherError for a file newer than this software, or when a revision fails.
    """
    at = revision(db)
    if at == migrations.head():
        return
    migrations.refuse_unknown(at, where)
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    def plain() -> sqlite3.Connection:
        connection = connect()
        connection.row_factory = None  # SQLAlchemy reads tuples
        return connection

    engine = create_engine("sqlite://", creator=plain, poolclass=NullPool)
    # the driver runs in autocommit (isolation_level None): the transaction is begun here, and IMMEDIATE
    # takes the write lock at once, so a second process waits rather than migrating the same file
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    try:
        with engine.begin() as connection:
            driver = connection.connection.driver_connection
            at = revision(driver)  # again, under the lock: another process may have migrated the file
            migrations.refuse_unknown(at, where)
            if at == migrations.head():
                return
            if at is None and (adopted := legacy.adopt(driver, where)) is not None:
                migrations.stamp(connection, adopted)
            migrations.upgrade(connection)
            driver.execute(f"PRAGMA user_version = {legacy.ON_HISTORY}")
    except SQLAlchemyError as exc:
        raise EnricherError(f"cannot migrate the database: {getattr(exc, 'orig', None) or exc}", where=where) from None
    finally:
        engine.dispose()
