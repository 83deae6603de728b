"""The SQLite backend beyond the store contract: the file's pragmas, schema migrations, errors that
name the file, query plans on the partial indexes, and processes opening one new file at once."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3

import pytest

from enricher.errors import EnricherError
from enricher.store import open_store
from enricher.store.sqlite.annotations import PAGE_SEQS_SQL
from enricher.store.sqlite.schema import MIGRATIONS
from test_store_contract import CANVAS, KEY, MODEL, fill, machine


@pytest.fixture
def store(tmp_path):
    with open_store(tmp_path / "db" / "enricher.sqlite3") as store:
        yield store


def test_new_file_is_wal_with_busy_timeout_and_current_schema(tmp_path):
    path = tmp_path / "a" / "b" / "enricher.sqlite3"
    with open_store(path) as store:
        assert path.is_file()
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert store.schema_version == len(MIGRATIONS) >= 2
    with open_store(path) as again:  # opening again applies nothing twice
        assert again.schema_version == len(MIGRATIONS)



def test_an_old_version_database_upgrades_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    row = "INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, document, version, etag, created, modified, deleted) VALUES (?, ?, ?, ?, 'machine', ?, 1, '\"x\"', 't', 't', ?)"
    for n, deleted in ((1, 0), (2, 0), (3, 1)):
        document = {k: v for k, v in machine(n).items() if k != "@context"}
        old.execute(row, (document["id"], KEY, CANVAS, MODEL, json.dumps(document), deleted))
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()

    with open_store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.count(KEY) == 2  # counts back-filled from the old rows
        assert store.term_counts(KEY, ["class:dog"]) == {"class:dog": 2}  # and the search index
        assert store.get(machine(1)["id"]).document["confidence"] == 0.9
        assert store.create_job({"manifest": "https://example.org/m.json"}).state == "queued"
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1), machine(4)])
        assert store.count(KEY) == 2 and store.get(machine(2)["id"]).deleted



def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite3"
    open_store(path).close()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    connection.close()
    with pytest.raises(EnricherError, match="newer than this software") as caught:
        open_store(path)
    assert caught.value.where == str(path)



def test_a_file_that_is_not_a_database_names_the_file(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EnricherError, match="cannot open the database") as caught:
        open_store(path)
    assert caught.value.where == str(path)



def test_page_queries_walk_the_partial_indexes(store):
    fill(store, 50)
    plans = {
        "key": store.db.execute("EXPLAIN QUERY PLAN " + PAGE_SEQS_SQL["key"], (KEY, 0, 101, 0)).fetchall(),
        "all": store.db.execute("EXPLAIN QUERY PLAN " + PAGE_SEQS_SQL["all"], (0, 101, 0)).fetchall(),
    }
    for name, index in (("key", "annotations_live_by_key"), ("all", "annotations_live")):
        detail = " ".join(row[3] for row in plans[name])
        assert index in detail and "TEMP B-TREE" not in detail, detail


def test_search_walks_its_primary_key_in_order(store):
    fill(store, 50)
    sql = "SELECT seq FROM search_index WHERE key = ? AND term IN (?, ?) ORDER BY term, seq LIMIT ? OFFSET ?"
    detail = " ".join(row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql, (KEY, "a", "b", 10, 0)))
    assert "PRIMARY KEY" in detail and "TEMP B-TREE" not in detail, detail


def _open_and_write(path: str, barrier, results) -> None:
    """One process: wait for the others, open the store (migrating a new file), write, report."""
    try:
        barrier.wait()
        with open_store(path) as store:
            store.create_job({"manifest": "x"})
        results.put("ok")
    except Exception as exc:  # reported to the parent, whatever it is
        results.put(f"{type(exc).__name__}: {exc}")


def test_four_processes_opening_one_new_database_at_once_all_succeed(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_ in range(30):  # before the fix about one round in 60 failed; the window is narrow
        path = str(tmp_path / f"new-{round_}.sqlite3")
        barrier, results = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_open_and_write, args=(path, barrier, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(60)
        assert outcomes == ["ok"] * 4, f"round {round_}: {outcomes}"
        with open_store(path) as store:
            assert len(store.jobs()) == 4 and store.schema_version == len(MIGRATIONS)
