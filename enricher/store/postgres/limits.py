"""Token buckets of the rate limits, in the database so that every process on it counts together."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from ..tables import rate_buckets
from ..writes import take_units


class Limits:
    """Token buckets (a mixin of PostgresStore)."""

    def take(self, buckets: Sequence[tuple[str, float, float]], now: float) -> tuple[str, float] | None:
        """Take one unit from each token bucket (name, refill per second, capacity; a new one is full) at
        time NOW (seconds) if every one holds a unit, and return None; else take none and return the
        bucket to wait longest for and the seconds until it holds one."""
        b = rate_buckets.c
        with self.transaction() as db:
            self._hold(db, "rate buckets")  # a new bucket has no row to lock: takers queue on this lock instead
            db.execute(delete(rate_buckets).where(b.full_at <= now))
            names = [name for name, _, _ in buckets]
            held = {name: (tokens, updated) for name, tokens, updated in db.execute(
                select(b.name, b.tokens, b.updated).where(b.name.in_(names)))}
            levels, wait = take_units(buckets, held, now)
            if levels:
                statement = insert(rate_buckets).values(
                    [{"name": n, "tokens": t, "updated": u, "full_at": f} for n, t, u, f in levels])
                db.execute(statement.on_conflict_do_update(index_elements=["name"], set_={
                    "tokens": statement.excluded.tokens, "updated": statement.excluded.updated,
                    "full_at": statement.excluded.full_at}))
            return wait
