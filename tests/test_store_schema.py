"""The one schema and its one history: every backend, made by the Alembic history in
enricher/store/migrations, is what enricher/store/tables.py defines; SQLite files made before the
history (its own migrations, ``PRAGMA user_version`` 1 to 10) are adopted with every row, id, ETag and
order intact; and a file already at the newest revision opens without loading Alembic.

tests/fixtures/stores/version-10.sqlite3 was written through the store by enricher at commit 1513518
(the last before the history), version-6.sqlite3 by that commit's migrations 1 to 6 holding the same
rows of the tables they made."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from test_store_contract import CANVAS, KEY, MODEL, OTHER, machine

from enricher.errors import EnricherError
from enricher.store import open_store
from enricher.store.migrations import alembic_config, head, revisions, version_number
from enricher.store.sqlite.legacy import ON_HISTORY
from enricher.store.tables import metadata

FIXTURES = Path(__file__).parent / "fixtures" / "stores"
NEWEST = version_number(head())
NUMBERED = ("manifests", "evaluations", "calibrations")  # numbered by their rowid before the history


def engine(url: str) -> Engine:
    """A SQLAlchemy engine on the store at URL, for looking at its schema from outside."""
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def differences(url: str) -> list:
    """What Alembic finds between the database at URL and tables.py."""
    outside = engine(url)
    try:
        with outside.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        outside.dispose()


def test_every_backend_made_by_the_history_is_the_schema_definition(store_url):
    with open_store(store_url) as store:
        assert store.schema_version == NEWEST == 10 + len(revisions()) - 5
    with open_store(store_url) as again:  # opening again applies nothing twice
        assert again.schema_version == NEWEST
    assert differences(store_url) == []


def test_a_revision_runs_on_the_data_already_there(store_url):
    with open_store(store_url) as store:
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1), machine(2, label="cat")])
    outside = engine(store_url)
    with outside.begin() as connection:
        command.downgrade(alembic_config(connection), "0004")  # as a store before the search index was
    outside.dispose()
    with open_store(store_url) as upgraded:
        assert upgraded.schema_version == NEWEST
        assert [a.id for a in upgraded.search(KEY, ["class:dog"])] == [machine(1)["id"]]
        assert upgraded.term_counts(KEY, ["class:dog", "class:cat"]) == {"class:dog": 1, "class:cat": 1}
        assert [(c.concept, c.model_sha256, c.live) for c in upgraded.class_counts()] == [
            ("cat", MODEL, 1), ("dog", MODEL, 1)]


def test_the_revisions_are_the_version_files_in_order():
    """Stores read the history's order from the file names (cheaply); it must be Alembic's own."""
    walked = [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    assert revisions() == tuple(reversed(walked)) and head() == walked[0]


def test_an_up_to_date_file_opens_without_loading_alembic(tmp_path):
    path = tmp_path / "enricher.sqlite3"
    open_store(path).close()
    code = ("import sys; from enricher.store import open_store; open_store(sys.argv[1]).close(); "
            "print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def _raw(path: Path) -> dict:
    """What an old file holds, read without enricher: rows of every table, the numbered ones by rowid."""
    db = sqlite3.connect(path)
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    held = {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in tables if table not in NUMBERED}
    for table in NUMBERED:
        held[table] = db.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall()
    db.close()
    return held


def _structure(path: Path) -> tuple[set, set]:
    """A file's tables, indexes and triggers by name, and its triggers' SQL with the spacing evened out."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
    db.close()
    return ({row[:3] for row in rows}, {re.sub(r"\s+", " ", row[3]) for row in rows if row[0] == "trigger"})


@pytest.mark.parametrize("version", [6, 10])
def test_an_old_file_is_adopted_with_every_row_id_and_etag(version, tmp_path):
    path = tmp_path / "enricher.sqlite3"
    shutil.copy(FIXTURES / f"version-{version}.sqlite3", path)
    before = _raw(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == version

    with open_store(path) as store:
        assert store.schema_version == NEWEST
        after = _raw(path)
        for table, rows in before.items():
            if table in NUMBERED:  # the rowid is now the column number too
                assert [(*row[1:], row[0]) for row in rows] == [row[1:] for row in after[table]]
            else:  # columns revisions added come after the old ones
                assert [row[:len(rows[0])] for row in after[table]] == rows if rows else not after[table], table
        for row in store.export_rows("annotations"):
            stored = store.get(row["id"])
            assert (stored.seq, stored.etag, stored.text) == (row["seq"], row["etag"], row["document"])
        assert [m.key for m in store.manifests()] == [OTHER, KEY]  # insertion order, not the keys' order
        assert [e.id for e in store.evaluations()] == ["e1", "e2"]  # created alike: the later one first
        assert store.count(KEY) == 5 and store.term_counts(KEY, ["class:dog", "class:cat"]) == {
            "class:dog": 3, "class:cat": 1}  # the search index, made by revision 0005 from a file at 6
        assert [job.state for job in store.jobs()] == ["queued", "running"]

        store.save_manifest("new", "https://example.org/m3", "https://example.org/m3.json", "Three", {})
        store.save_evaluation("e3", MODEL, KEY, {"map": 0.7}, "2026-01-01T00:00:00Z")
        assert [m.key for m in store.manifests()] == [OTHER, KEY, "new"]
        assert store.evaluations()[0].id == "e3"
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(n) for n in range(2)])
        assert store.count(KEY) == 3
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == ON_HISTORY

    fresh = tmp_path / "fresh.sqlite3"
    open_store(fresh).close()
    assert _structure(path) == _structure(fresh)

    def read_differently(difference) -> bool:
        """What SQLAlchemy reads back otherwise from the old migrations' SQL: a rowid key's NOT NULL
        (implied), an inline foreign key's ON DELETE (checked by pragma instead)."""
        if isinstance(difference, list):
            return all(d[0] == "modify_nullable" and metadata.tables[d[2]].c[d[3]].primary_key for d in difference)
        return difference[0] in ("remove_fk", "add_fk") and difference[1].table.name == "job_canvases"

    assert [d for d in differences(f"sqlite:///{path}") if not read_differently(d)] == []
    cascade = sqlite3.connect(path).execute("PRAGMA foreign_key_list(job_canvases)").fetchall()
    assert [(row[2], row[3], row[4], row[6]) for row in cascade] == [("jobs", "job_id", "id", "CASCADE")]


def test_a_file_of_an_unknown_version_is_refused(tmp_path):
    path = tmp_path / "odd.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {ON_HISTORY + 1}")
    connection.close()
    with pytest.raises(EnricherError, match="schema version 12, which this software does not know") as caught:
        open_store(path)
    assert caught.value.where == str(path)
