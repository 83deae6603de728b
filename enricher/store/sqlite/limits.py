"""Token buckets of the rate limits, in the database so that every process on it counts together."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ..writes import take_units


class Limits:
    """Token buckets (a mixin of SQLiteStore)."""

    def take(self, buckets: Sequence[tuple[str, float, float]], now: float) -> tuple[str, float] | None:
        """Take one unit from each token bucket (name, refill per second, capacity; a new one is full) at
        time NOW (seconds) if every one holds a unit, and return None; else take none and return the
        bucket to wait longest for and the seconds until it holds one."""
        with self._unsynced() as db:
            db.execute("DELETE FROM rate_buckets WHERE full_at <= ?", (now,))
            names = [name for name, _, _ in buckets]
            held = {row[0]: (row[1], row[2]) for row in db.execute(
                f"SELECT name, tokens, updated FROM rate_buckets WHERE name IN ({','.join('?' * len(names))})", names)}
            levels, wait = take_units(buckets, held, now)
            db.executemany(
                """INSERT INTO rate_buckets (name, tokens, updated, full_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated,
                full_at = excluded.full_at""",
                levels,
            )
            return wait

    @contextmanager
    def _unsynced(self) -> Iterator[sqlite3.Connection]:
        """A write transaction committed without waiting for the disk: a bucket's level needs no
        durability (a crash forgets a few seconds of counting), and a write request already syncs once."""
        db = self.db
        level = db.execute("PRAGMA synchronous").fetchone()[0]
        db.execute("PRAGMA synchronous = NORMAL")
        try:
            with self.transaction() as transaction:
                yield transaction
        finally:
            db.execute(f"PRAGMA synchronous = {int(level)}")
