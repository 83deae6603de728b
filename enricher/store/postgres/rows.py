"""Raw rows in and out, for ``enricher migrate`` only: every column as stored (seq, numbers, ETags,
documents), so a copy answers exactly as the original does."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain

from psycopg import sql
from sqlalchemy import func, select, text

from ...errors import EnricherError
from ..records import COPIED_TABLES
from ..tables import metadata


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
        its sequences then continue after the highest number imported. Return how many.

        The rows stream in one ``COPY ... FROM STDIN`` (a multi-row INSERT spent most of its time in the
        driver's parsing of its own query text), so the count triggers run once, over all of them; the
        table is analyzed after, so the planner knows its size before autovacuum (if on) comes round."""
        chosen = _table(table)
        with self.transaction() as db:
            if db.execute(select(text("1")).select_from(chosen).limit(1)).first() is not None:
                raise EnricherError(f"table {table} of the target store is not empty", where=self.where)
            count = _copy(db.connection.driver_connection, table, rows)
            for column in chosen.columns:
                if column.autoincrement is True or column.identity is not None:
                    db.execute(select(func.setval(
                        func.pg_get_serial_sequence(table, column.name),
                        select(func.coalesce(func.max(column), 0) + 1).scalar_subquery(), False,
                    )))
            db.execute(text(f"ANALYZE {chosen.name}"))
        return count


def _copy(connection, table: str, rows: Iterable[dict]) -> int:
    """COPY ROWS into TABLE on the psycopg CONNECTION (in its open transaction); return how many."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    names = list(first)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
    count = 0
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for count, row in enumerate(chain([first], rows), 1):
            copy.write_row([row[name] for name in names])
    return count
