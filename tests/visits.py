"""How much work a store read does, counted, never timed: SQLite's virtual-machine steps (its progress
handler, called every step) or PostgreSQL's rows visited (every plan node's actual rows times its loops,
by EXPLAIN ANALYZE of each statement the read ran); for PostgreSQL also the pages touched (postgres_pages). One counter per backend in enricher.store.BACKENDS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from enricher.store import Store, split_url


def sqlite_steps(store: Store, read: Callable[[], Any]) -> int:
    """The virtual-machine steps READ takes on this thread's connection."""
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    store.db.set_progress_handler(step, 1)
    try:
        read()
    finally:
        store.db.set_progress_handler(None, 1)
    return steps


def postgres_rows(store: Store, read: Callable[[], Any]) -> int:
    """The rows every plan node of READ's statements visits (EXPLAIN ANALYZE of each, run again)."""
    return sum(_node_rows(plan) for plan in _plans(store, read))


def postgres_pages(store: Store, read: Callable[[], Any]) -> int:
    """The table and index pages READ's statements touch (EXPLAIN (ANALYZE, BUFFERS) of each, run
    again): dead row versions a plan steps over cost pages, though no plan node counts them as rows."""
    return sum(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] for plan in _plans(store, read, "BUFFERS, "))


def _plans(store: Store, read: Callable[[], Any], options: str = "") -> list[dict]:
    """The executed plan of each SELECT READ runs on STORE."""
    from sqlalchemy import event

    ran: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        ran.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        read()
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    plans = []
    with store.engine.connect() as connection:
        for statement, parameters in ran:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                plan = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, {options}FORMAT JSON) " + statement,
                                                  parameters).scalar()
                plans.append((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return plans


def _node_rows(node: dict) -> int:
    return node["Actual Rows"] * node["Actual Loops"] + sum(_node_rows(child) for child in node.get("Plans", ()))


COUNTERS = {"sqlite": sqlite_steps, "postgresql": postgres_rows}


def work(store: Store, read: Callable[[], Any]) -> int:
    """The work READ does on STORE, in the backend's unit (comparable between reads of one store only)."""
    return COUNTERS[split_url(store.url)[0]](store, read)
