"""What OAI-PMH harvests (enricher.harvest decides it from the change log): a record per enriched
manifest at its place in the harvest order, with its datestamp, deleted flag and sets."""

from __future__ import annotations

from collections.abc import Mapping

from ..records import HarvestRecord, HarvestSet


class Harvest:
    """OAI-PMH records and sets (a mixin of SQLiteStore)."""

    def save_harvest_record(self, key: str, datestamp: str, deleted: bool, sets: Mapping[str, str]) -> HarvestRecord:
        """Move record KEY to the end of the harvest order with DATESTAMP (raised to the latest datestamp
        where it is earlier: the log's clock may step back a second between writers, and a harvest from a
        date must not miss a record placed after it), its deleted flag and its SETS (spec -> name)."""
        with self.transaction() as db:
            latest = db.execute("SELECT max(datestamp) FROM harvest_records").fetchone()[0]
            stamp = max(datestamp, latest or datestamp)
            db.execute("DELETE FROM harvest_records WHERE key = ?", (key,))
            db.execute("INSERT INTO harvest_records (key, datestamp, deleted) VALUES (?, ?, ?)", (key, stamp, int(deleted)))
            db.execute("DELETE FROM harvest_members WHERE key = ?", (key,))
            db.executemany("INSERT INTO harvest_members (key, spec) VALUES (?, ?)", [(key, spec) for spec in sets])
            db.executemany(
                "INSERT INTO harvest_sets (spec, name) VALUES (?, ?) ON CONFLICT (spec) DO UPDATE SET name = excluded.name",
                list(sets.items()),
            )
        return self.harvest_record(key)

    def harvest_record(self, key: str) -> HarvestRecord | None:
        """Record KEY, deleted or not; None when it was never harvestable."""
        row = self.db.execute("SELECT key, position, datestamp, deleted FROM harvest_records WHERE key = ?", (key,)).fetchone()
        return self._records([row])[0] if row else None

    def harvest_records(self, after: int, upto: int, limit: int, *, since: str | None = None,
                        until: str | None = None, set_spec: str | None = None) -> list[HarvestRecord]:
        """Records at positions AFTER < p <= UPTO, in order, at most LIMIT, with datestamps from SINCE to
        UNTIL (inclusive, either open), in set SET_SPEC or a set below it (``a:b`` is below ``a``)."""
        where, args = _where(since, until, set_spec)
        rows = self.db.execute(
            f"""SELECT key, position, datestamp, deleted FROM harvest_records
            WHERE position > ? AND position <= ?{where} ORDER BY position LIMIT ?""",
            (after, upto, *args, limit),
        ).fetchall()
        return self._records(rows)

    def harvest_count(self, upto: int, *, since: str | None = None, until: str | None = None,
                      set_spec: str | None = None) -> int:
        """How many records harvest_records(0, UPTO, ...) would give without a limit."""
        where, args = _where(since, until, set_spec)
        return self.db.execute(f"SELECT count(*) FROM harvest_records WHERE position <= ?{where}", (upto, *args)).fetchone()[0]

    def harvest_position(self) -> int:
        """The position of the last record in the harvest order (0: none yet)."""
        return self.db.execute("SELECT coalesce(max(position), 0) FROM harvest_records").fetchone()[0]

    def harvest_sets(self) -> list[HarvestSet]:
        """Every set that has held a record, by spec."""
        return [HarvestSet(spec, name) for spec, name in self.db.execute("SELECT spec, name FROM harvest_sets ORDER BY spec")]

    def earliest_datestamp(self) -> str | None:
        """The earliest datestamp of a record, deleted ones included (None: no record yet)."""
        return self.db.execute("SELECT min(datestamp) FROM harvest_records").fetchone()[0]

    def _records(self, rows) -> list[HarvestRecord]:
        if not rows:
            return []
        keys = [row[0] for row in rows]
        sets: dict[str, list[str]] = {}
        for key, spec in self.db.execute(
            f"SELECT key, spec FROM harvest_members WHERE key IN ({','.join('?' * len(keys))}) ORDER BY spec", keys
        ):
            sets.setdefault(key, []).append(spec)
        return [HarvestRecord(key, position, datestamp, bool(deleted), tuple(sets.get(key, ())))
                for key, position, datestamp, deleted in rows]


def _where(since: str | None, until: str | None, set_spec: str | None) -> tuple[str, tuple]:
    where, args = "", ()
    if since is not None:
        where, args = where + " AND datestamp >= ?", (*args, since)
    if until is not None:
        where, args = where + " AND datestamp <= ?", (*args, until)
    if set_spec is not None:
        where += """ AND key IN (SELECT key FROM harvest_members WHERE spec = ?
            OR substr(spec, 1, length(?) + 1) = ? || ':')"""
        args = (*args, set_spec, set_spec, set_spec)
    return where, args
