"""The SQLite backend beyond the store contract: the file's pragmas, schema migrations, errors that
name the file, query plans on the partial indexes, and processes opening one new file at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from test_store_contract import CANVAS, KEY, MODEL, fill, machine

from enricher.errors import EnricherError
from enricher.store import open_store
from enricher.store.migrations import head, version_number
from enricher.store.sqlite.annotations import BLOCKS_SQL, SEQS_SQL
from enricher.store.sqlite.legacy import STEPS

NEWEST = version_number(head())  # the schema version a current store reports


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
        assert store.schema_version == NEWEST >= 10
    with open_store(path) as again:  # opening again applies nothing twice
        assert again.schema_version == NEWEST



def test_an_old_version_database_upgrades_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    for statement in STEPS[0]:
        old.execute(statement)
    row = "INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, document, version, etag, created, modified, deleted) VALUES (?, ?, ?, ?, 'machine', ?, 1, '\"x\"', 't', 't', ?)"
    for n, deleted in ((1, 0), (2, 0), (3, 1)):
        document = {k: v for k, v in machine(n).items() if k != "@context"}
        old.execute(row, (document["id"], KEY, CANVAS, MODEL, json.dumps(document), deleted))
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()

    with open_store(path) as store:
        assert store.schema_version == NEWEST
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
    connection.execute("UPDATE alembic_version SET version_num = 'from-the-future'")
    connection.commit()
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
        "key": store.db.execute("EXPLAIN QUERY PLAN " + SEQS_SQL["annotation"]["key"], (KEY, 0, 101, 0)).fetchall(),
        "all": store.db.execute("EXPLAIN QUERY PLAN " + SEQS_SQL["annotation"]["all"], (0, 101, 0)).fetchall(),
    }
    for name, index in (("key", "annotations_live_by_key"), ("all", "annotations_live")):
        detail = " ".join(row[3] for row in plans[name])
        assert index in detail and "TEMP B-TREE" not in detail, detail
    # a container's blocks are a range of the primary key
    detail = " ".join(row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + BLOCKS_SQL["key"], ("annotation", KEY)))
    assert "PRIMARY KEY" in detail and "TEMP B-TREE" not in detail, detail


def test_search_walks_its_primary_key_in_order(store):
    fill(store, 50)
    sql = "SELECT seq FROM search_index WHERE key = ? AND term IN (?, ?) ORDER BY term, seq LIMIT ? OFFSET ?"
    detail = " ".join(row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + sql, (KEY, "a", "b", 10, 0)))
    assert "PRIMARY KEY" in detail and "TEMP B-TREE" not in detail, detail


# Each child waits for the start times it is given, then opens one new file per round and writes to it.
CHILD = """
import sys, time
from enricher.store import open_store
folder, starts = sys.argv[1], [float(t) for t in sys.argv[2:]]
for round_, start in enumerate(starts):
    time.sleep(max(0.0, start - time.time()))
    try:
        with open_store(f"{folder}/new-{round_}.sqlite3") as store:
            store.create_job({"manifest": "x"})
        print("ok", flush=True)
    except Exception as exc:
        print(f"round {round_}: {type(exc).__name__}: {exc}", flush=True)
"""


def test_four_processes_opening_one_new_database_at_once_all_succeed(tmp_path):
    """Four fresh processes (nothing forked from this one) open a new file at the same instant, 30
    times; before connection setup retried, about one round in 60 failed with 'database is locked'."""
    rounds = 30
    first = time.time() + 3.0  # time for the interpreters to start
    starts = [f"{first + 0.4 * n:.3f}" for n in range(rounds)]
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), *starts], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [child.communicate(timeout=120)[0].splitlines() for child in children]
    failures = [line for output in outputs for line in output if line != "ok"]
    assert not failures and [len(output) for output in outputs] == [rounds] * 4, failures
    for round_ in range(rounds):
        with open_store(tmp_path / f"new-{round_}.sqlite3") as store:
            assert len(store.jobs()) == 4 and store.schema_version == NEWEST


def test_a_leader_whose_lock_file_is_replaced_notices_and_another_takes_over(store):
    first, second = store.leader("jobs"), store.leader("jobs")
    assert first.acquire() and first.confirm() and not second.acquire()
    first.path.unlink()  # a clean-up removed the file: a new one is locked by nobody yet
    assert second.acquire() and second.confirm()
    assert first.held and not first.confirm() and not first.held  # it looks, and lets go
    assert not first.acquire()  # it retries, in vain while the other leads
    second.release()
    assert first.acquire() and first.confirm()
    first.release()
