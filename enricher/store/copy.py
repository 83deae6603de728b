"""Copying a whole store into another, empty one (``enricher migrate``): every table's raw rows, in
one transaction of the target, so ids, seq numbers, ETags, the change log and Change Discovery's
stream come out identical."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import EnricherError
from .interface import Store
from .records import COPIED_TABLES


def copy_store(source: Store, target: Store, on_table: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of SOURCE into TARGET, whose tables must be empty; return the rows per table.
    ON_TABLE(table, rows) is called after each table. Nothing lands in the target unless all of it does.

    Raises EnricherError when the two schemas differ or the target holds data.
    """
    if source.schema_version != target.schema_version:
        raise EnricherError(
            f"the source store has schema version {source.schema_version}, the target {target.schema_version}: "
            "open both with the same version of enricher first"
        )
    copied = {}
    with target.transaction():
        for table in COPIED_TABLES:
            copied[table] = target.import_rows(table, source.export_rows(table))
            if on_table:
                on_table(table, copied[table])
    return copied
