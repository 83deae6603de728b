"""PostgreSQL's trigger-kept counts (container_counts, page_blocks, search_counts) follow each statement,
not each row: a bulk write of N annotations updated a container's count N times, leaving N dead row
versions (spread over N / ~120 pages, each with its index entry) that every container total, page start
and search count stepped over until VACUUM reclaimed them, 10x the pages at 10x the annotations when
autovacuum is off or has not come round yet. Now each statement updates each count it changes once,
from its transition tables. SQLite keeps no row versions: its row triggers stay, and this does nothing there.

Revision ID: 0007
Revises: 0006
"""

import importlib

from alembic import op

from enricher.store.writes import PAGE_BLOCK

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# count table -> (table counted, its grouping columns, the expressions giving them, which rows count)
COUNTS = {
    "container_counts": ("annotations", ("role", "key"), ("role", "key"), "deleted = 0"),
    "page_blocks": ("annotations", ("role", "key", "block"), ("role", "key", f"seq / {PAGE_BLOCK}"), "deleted = 0"),
    "search_counts": ("search_index", ("key", "term", "motivation"), ("key", "term", "motivation"), "true"),
}
# event -> the transition tables it has, each with the sign its rows add to the count
EVENTS = {"insert": (("added", 1),), "update": (("removed", -1), ("added", 1)), "delete": (("removed", -1),)}
REFERENCING = {"added": "NEW TABLE AS added", "removed": "OLD TABLE AS removed"}
OLD_TRIGGERS = {  # revision module -> its triggers and functions on PostgreSQL, replaced here
    "0001_baseline": (("annotations_counted_insert", "annotations_counted_update"), "annotations_counted"),
    "0005_search_provenance": (("search_counted",), "search_counted"),
    "0006_page_blocks": (("annotations_blocked_insert", "annotations_blocked_update"), "annotations_blocked"),
}
OLD_TABLE = {"annotations_counted": "annotations", "search_counted": "search_index", "annotations_blocked": "annotations"}


def statement_trigger(count: str, event: str, spec: tuple | None = None) -> tuple[str, str]:
    """The function adding what one EVENT statement changed to table COUNT, and its trigger; SPEC is
    COUNT's entry of COUNTS (a later revision passes its own)."""
    table, columns, expressions, counted = spec or COUNTS[count]
    named = ", ".join(f"{expression} AS {column}" for expression, column in zip(expressions, columns))
    listed = ", ".join(columns)
    changed = " UNION ALL ".join(f"SELECT {named}, {sign} AS live FROM {transition} WHERE {counted}"
                                 for transition, sign in EVENTS[event])
    name = f"{count}_{event}"
    function = f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {count} AS counts ({listed}, live)
        SELECT {listed}, sum(live) FROM ({changed}) AS changed
        GROUP BY {listed} HAVING sum(live) <> 0 ORDER BY {listed}
        ON CONFLICT ({listed}) DO UPDATE SET live = counts.live + excluded.live;
        RETURN NULL;
    END $$"""
    transitions = " ".join(REFERENCING[transition] for transition, _ in EVENTS[event])
    trigger = (f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} REFERENCING {transitions} "
               f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    return function, trigger


def _events(count: str) -> tuple[str, ...]:
    return ("insert", "delete") if COUNTS[count][0] == "search_index" else tuple(EVENTS)  # index rows never change


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for triggers, function in OLD_TRIGGERS.values():
        for trigger in triggers:
            op.execute(f"DROP TRIGGER {trigger} ON {OLD_TABLE[function]}")
        op.execute(f"DROP FUNCTION {function}")
    for count in COUNTS:
        for event in _events(count):
            for statement in statement_trigger(count, event):
                op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for count in COUNTS:
        for event in _events(count):
            op.execute(f"DROP TRIGGER {count}_{event} ON {COUNTS[count][0]}")
            op.execute(f"DROP FUNCTION {count}_{event}")
    for module in OLD_TRIGGERS:
        revision_module = importlib.import_module(f"enricher.store.migrations.versions.{module}")
        for name in ("COUNT_TRIGGER", "BLOCK_TRIGGER"):
            for statement in getattr(revision_module, name, {}).get("postgresql", ()):
                op.execute(statement)
