"""The PostgreSQL backend beyond the store contract: leadership on advisory locks, the Alembic
migrations and the one schema definition they share with SQLite, errors that name the server (never
its password), and no file anywhere in this mode."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from test_store_contract import CANVAS, KEY, MODEL, machine

from enricher.errors import EnricherError
from enricher.store import open_store
from enricher.store.migrations import BASELINE_VERSION, alembic_config, revisions
from enricher.store.records import NUMBERED_TABLES
from enricher.store.sqlite.schema import MIGRATIONS
from enricher.store.tables import metadata


@pytest.fixture
def url(tmp_path):
    from conftest import fresh_postgres_schema

    with fresh_postgres_schema(tmp_path) as url:
        yield url


def _hold_leadership(url: str, started) -> None:
    """Another process: take the jobs role and keep it until killed."""
    with open_store(url) as store:
        lock = store.leader("jobs")
        started.put(lock.acquire())
        time.sleep(120)


def test_one_process_leads_a_role_until_it_releases_or_dies(url):
    context = multiprocessing.get_context("spawn")
    started = context.Queue()
    other = context.Process(target=_hold_leadership, args=(url, started))
    other.start()
    try:
        assert started.get(timeout=60) is True
        with open_store(url) as store:
            mine, follower = store.leader("jobs"), store.leader("discovery")
            assert not mine.acquire() and not mine.held
            assert follower.acquire() and follower.held  # another role is free
            other.kill()  # the server ends the dead process's session, and with it the lock
            other.join(30)
            deadline = time.monotonic() + 30  # the server notices the closed connection a moment later
            while not mine.acquire() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert mine.held
            with open_store(url) as second:
                rival = second.leader("jobs")
                assert not rival.acquire()
                mine.release()
                assert not mine.held and rival.acquire()
                rival.release()
            follower.release()
    finally:
        other.kill()
        other.join(30)


def test_roles_of_one_schema_do_not_block_another_schema(url, tmp_path):
    from conftest import fresh_postgres_schema

    with fresh_postgres_schema(tmp_path / "other") as elsewhere, open_store(url) as one, open_store(elsewhere) as two:
        first, second = one.leader("jobs"), two.leader("jobs")
        assert first.acquire() and second.acquire()
        first.release()
        second.release()


def test_nothing_is_written_to_disk(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_store(url) as store:
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
        lock = store.leader("jobs")
        assert lock.acquire()
        lock.release()
    assert os.listdir(tmp_path) == []


def test_migrations_make_the_one_schema_definition_and_count_like_sqlite(url):
    with open_store(url) as store:
        assert store.schema_version == BASELINE_VERSION + len(revisions()) - 1 == len(MIGRATIONS)
    with open_store(url) as again:  # opening again applies nothing twice
        assert again.schema_version == len(MIGRATIONS)
        with again.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_sqlites_migrations_arrive_at_the_same_schema(tmp_path):
    """SQLite keeps its own history (sqlite/schema.py); it must end where tables.py is, but for the
    insertion numbers that SQLite keeps in the rowid, and for what SQLAlchemy does not read back from
    SQLite: a primary key's NOT NULL, a foreign key's ON DELETE (checked here by pragma instead)."""
    path = tmp_path / "enricher.sqlite3"
    open_store(path).close()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
        cascade = connection.exec_driver_sql("PRAGMA foreign_key_list(job_canvases)").all()
    engine.dispose()
    assert [(row[2], row[3], row[4], row[6]) for row in cascade] == [("jobs", "job_id", "id", "CASCADE")]

    def unread(difference) -> bool:
        if isinstance(difference, list):  # column changes: only primary keys reported nullable
            return all(d[0] == "modify_nullable" and metadata.tables[d[2]].c[d[3]].primary_key for d in difference)
        kind, what = difference[0], difference[-1] if difference[0] == "add_column" else difference[1]
        if kind == "add_column":
            return difference[2] in NUMBERED_TABLES and what.name == "number"
        if kind == "add_constraint":
            return what.table.name in NUMBERED_TABLES and [c.name for c in what.columns] == ["number"]
        return kind in ("remove_fk", "add_fk") and what.table.name == "job_canvases"

    assert [d for d in differences if not unread(d)] == []
    assert len([d for d in differences if not isinstance(d, list) and d[0] == "add_column"]) == len(NUMBERED_TABLES)


def test_a_newer_schema_is_refused(url):
    open_store(url).close()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from-the-future'"))
    engine.dispose()
    with pytest.raises(EnricherError, match="newer than this software") as caught:
        open_store(url)
    assert caught.value.where == url


def test_a_server_that_does_not_answer_is_named_without_its_password(closed_port):
    with pytest.raises(EnricherError, match="cannot open the database") as caught:
        open_store(f"postgresql://enricher:s3cret@127.0.0.1:{closed_port}/enricher?connect_timeout=5")
    assert str(closed_port) in caught.value.where and "s3cret" not in str(caught.value)


def test_the_search_revision_indexes_the_annotations_already_stored(url):
    with open_store(url) as store:
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1), machine(2, label="cat")])
        with store.engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0004")  # as a store before the search index was
    with open_store(url) as upgraded:
        assert upgraded.schema_version == len(MIGRATIONS)
        assert [a.id for a in upgraded.search(KEY, ["class:dog"])] == [machine(1)["id"]]
        assert upgraded.term_counts(KEY, ["class:dog", "class:cat"]) == {"class:dog": 1, "class:cat": 1}
