"""The PostgreSQL backend beyond the store contract: leadership on advisory locks, errors that name the
server (never its password), and no file anywhere in this mode. The migration history, which every
backend runs: tests/test_store_schema.py."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
from sqlalchemy import create_engine, text
from test_store_contract import CANVAS, KEY, MODEL, machine

from enricher.errors import EnricherError
from enricher.store import open_store


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
