"""Leadership for the PostgreSQL backend: a session-level advisory lock (``pg_try_advisory_lock``) on a
connection the lock object holds. The server drops it when that session ends, so when the holding
process dies (or loses the server) another one takes over; no file is involved."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError


class AdvisoryLock:
    """An advisory lock on NAME (hashed by the server), taken without waiting on a connection of its own."""

    def __init__(self, engine: Engine, name: str):
        self._engine = engine
        self.name = name
        self._connection: Connection | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._connection is not None

    def acquire(self) -> bool:
        """Take the lock without waiting; return whether this object holds it now."""
        if self._connection is not None:
            return True
        connection = self._engine.connect()
        try:
            taken = connection.execute(select(func.pg_try_advisory_lock(func.hashtextextended(self.name, 0)))).scalar()
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        """Let another process take the lock now; the session that held it ends rather than going back to
        the pool (where it would keep the lock should the unlock have failed)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(select(func.pg_advisory_unlock(func.hashtextextended(self.name, 0))))
            except SQLAlchemyError:
                pass  # the session is gone already, and the lock with it
            finally:
                connection.invalidate()
                connection.close()
