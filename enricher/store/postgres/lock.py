"""Leadership for the PostgreSQL backend: a session-level advisory lock (``pg_try_advisory_lock``) on a
connection the lock object holds. The server drops it when that session ends, so when the holding
process dies (or loses the server) another one takes over; no file is involved. The holder finds out
that its session ended (a server restart, the network, ``pg_terminate_backend``) with ``confirm``, one
round trip on that connection, which every act of leadership calls first."""

from __future__ import annotations

import logging

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


class AdvisoryLock:
    """An advisory lock on NAME (hashed by the server), taken without waiting on a connection of its own."""

    def __init__(self, engine: Engine, name: str):
        self._engine = engine
        self.name = name
        self._connection: Connection | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock, as far as it knows (``confirm`` asks the server)."""
        return self._connection is not None

    def confirm(self) -> bool:
        """Whether this object still holds the lock: its session, which holds it, still answers. A dead
        session took the lock with it (another process may hold it now): the lock is let go here."""
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError as exc:
            log.warning("lost the leadership lock %r with its connection: %s", self.name, getattr(exc, "orig", exc))
            self._drop()
            return False

    def acquire(self) -> bool:
        """Take the lock without waiting, or confirm it is still held; return whether this object holds it now."""
        if self.confirm():
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
            try:
                self._connection.execute(select(func.pg_advisory_unlock(func.hashtextextended(self.name, 0))))
            except SQLAlchemyError:
                pass  # the session is gone already, and the lock with it
            finally:
                self._drop()

    def _drop(self) -> None:
        """Close the lock's connection for good (never back to the pool)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.invalidate()
            connection.close()
