"""Raw rows in and out, for ``enricher migrate`` only: every column as stored (seq, numbers, ETags,
documents), so a copy answers exactly as the original does."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from ...errors import EnricherError
from ..records import COPIED_TABLES

BATCH = 1000  # rows per executemany


def _checked(table: str) -> str:
    if table not in COPIED_TABLES:
        raise EnricherError(f"{table!r} is not a table a store copies; known: {', '.join(COPIED_TABLES)}")
    return table


class Rows:
    """Export and import of raw rows (a mixin of SQLiteStore)."""

    def export_rows(self, table: str) -> Iterator[dict]:
        """For migration only: every row of TABLE (records.COPIED_TABLES) as column -> value, in the
        order of its primary key."""
        table = _checked(table)
        info = self._tuples().execute(f"PRAGMA table_info({table})").fetchall()
        names = [row[1] for row in info]
        key = [row[1] for row in sorted(info, key=lambda row: row[5]) if row[5]]  # pk columns, in key order
        for row in self._tuples().execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY {', '.join(key)}"):
            yield dict(zip(names, row))

    def import_rows(self, table: str, rows: Iterable[dict]) -> int:
        """For migration only: insert rows as export_rows gives them into TABLE, which must be empty;
        AUTOINCREMENT continues after the highest number imported. Return how many."""
        table = _checked(table)
        count = 0
        with self.transaction() as db:
            if db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                raise EnricherError(f"table {table} of the target store is not empty", where=str(self.path))
            rows = iter(rows)
            while batch := list(islice(rows, BATCH)):
                names = list(batch[0])
                db.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                               [tuple(row[name] for name in names) for row in batch])
                count += len(batch)
        return count
