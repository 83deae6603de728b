"""Raw rows in and out, for ``enricher migrate`` only: every column as stored (seq, numbers, ETags,
documents), so a copy answers exactly as the original does."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from sqlalchemy import func, select, text

from ...errors import EnricherError
from ..records import COPIED_TABLES
from ..tables import metadata

BATCH = 1000  # rows per INSERT statement (one VALUES list: the count triggers run once per statement)


def _table(name: str):
    if name not in COPIED_TABLES:
        raise EnricherError(f"{name!r} is not a table a store copies; known: {', '.join(COPIED_TABLES)}")
    return metadata.tables[name]


class Rows:
    """Export and import of raw rows (a mixin of PostgresStore)."""

    def export_rows(self, table: str) -> Iterator[dict]:
        """For migration only: every row of TABLE (records.COPIED_TABLES) as column -> value, in the
        order of its primary key."""
        chosen = _table(table)
        with self._streamed(select(chosen).order_by(*chosen.primary_key.columns)) as rows:
            yield from (dict(row._mapping) for row in rows)

    def import_rows(self, table: str, rows: Iterable[dict]) -> int:
        """For migration only: insert rows as export_rows gives them into TABLE, which must be empty;
        its sequences then continue after the highest number imported. Return how many."""
        chosen = _table(table)
        count = 0
        with self.transaction() as db:
            if db.execute(select(text("1")).select_from(chosen).limit(1)).first() is not None:
                raise EnricherError(f"table {table} of the target store is not empty", where=self.where)
            rows = iter(rows)
            while batch := list(islice(rows, BATCH)):
                # RETURNING lets SQLAlchemy send the batch as one multi-row INSERT (insertmanyvalues)
                db.execute(chosen.insert().returning(*chosen.primary_key.columns), batch)
                count += len(batch)
            for column in chosen.columns:
                if column.autoincrement is True or column.identity is not None:
                    db.execute(select(func.setval(
                        func.pg_get_serial_sequence(table, column.name),
                        select(func.coalesce(func.max(column), 0) + 1).scalar_subquery(), False,
                    )))
        return count
