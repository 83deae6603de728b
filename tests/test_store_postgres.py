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

from enricher import follow
from enricher.errors import EnricherError
from enricher.jobs.thread import ThreadQueue
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


def end_session_holding(lock_name: str) -> None:
    """End, from a connection of its own, the server session that holds advisory lock LOCK_NAME (as a
    server restart or a broken network would), and wait until the server has let the lock go."""
    import psycopg
    from conftest import POSTGRES_SERVER

    holder = """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
        AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, 0)"""
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        [(pid,)] = admin.execute(holder, (lock_name,)).fetchall()
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        deadline = time.monotonic() + 30
        while admin.execute(holder, (lock_name,)).fetchall() and time.monotonic() < deadline:
            time.sleep(0.02)


def test_a_leader_whose_session_ends_notices_and_another_takes_over(url):
    with open_store(url) as one, open_store(url) as two:
        first, second = one.leader("jobs"), two.leader("jobs")
        assert first.acquire() and first.confirm() and not second.acquire()
        end_session_holding(first.name)
        assert first.held  # it cannot know before it looks
        assert not first.confirm() and not first.held  # it looks, and lets go
        assert second.acquire() and second.confirm()
        assert not first.acquire()  # it retries, in vain while the other leads
        second.release()
        assert first.acquire() and first.confirm()  # and leads again once the lock is free
        first.release()


class Recorder:
    """A change-log consumer that notes what it was given, its position in memory."""

    def __init__(self, name: str):
        self.name, self.seqs = name, []

    def position(self, store) -> int:
        return self.seqs[-1] if self.seqs else 0

    def apply(self, store, changes) -> None:
        self.seqs.extend(change.seq for change in changes)


def wait_until(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_a_follower_whose_lock_session_ends_stops_following_and_another_takes_over(url, monkeypatch):
    monkeypatch.setattr(follow, "LEADER_RETRY_SECONDS", 0.05)  # the contender tries often
    with open_store(url) as one, open_store(url) as two:
        first, second = Recorder("first"), Recorder("second")
        # the first follows only when woken, so the contender, trying every 0.05 s, gets the lock first
        leading = follow.FollowerThread(one, first, interval=600, leader="test")
        contender = follow.FollowerThread(two, second, interval=0.05, leader="test")
        leading.start()
        try:
            assert wait_until(lambda: leading.leads)
            contender.start()
            one.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
            leading.wake()
            assert wait_until(lambda: first.seqs == [1]) and not contender.leads and second.seqs == []

            end_session_holding(leading._leader.name)
            assert wait_until(lambda: contender.leads)
            leading.wake()  # its next round finds the lock gone, and taken
            assert wait_until(lambda: not leading.leads)
            one.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1), machine(2)])
            assert wait_until(lambda: second.seqs == [1, 2])
            leading.wake()
            time.sleep(0.5)
            assert first.seqs == [1] and not leading.leads  # it stopped acting
        finally:
            leading.stop(30)
            contender.stop(30)


def test_a_job_runner_whose_lock_session_ends_leaves_the_jobs_to_the_one_that_takes_over(url, config):
    with open_store(url) as one, open_store(url) as two:
        runner = ThreadQueue(config, one, enricher_factory=lambda config: pytest.fail("no job may run here"))
        other = ThreadQueue(config, two, enricher_factory=lambda config: pytest.fail("no job may run here"))
        assert runner.acquire() and runner.holds_lock and not other.acquire()
        end_session_holding(one.leader("jobs").name)
        job = one.create_job({"manifest": "https://example.org/m.json"})
        assert other.acquire() and other.holds_lock
        assert runner.run_pending() == 0 and not runner.holds_lock  # it noticed before claiming anything
        assert not runner.acquire() and one.job(job.id).state == "queued"


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


def test_a_bulk_write_of_ten_times_the_annotations_leaves_the_container_total_and_page_start_as_cheap(url):
    """Right after a bulk write of 3,000 annotations, reading the total of every annotation and the
    start of its first page touches about the pages it did after 300: the trigger-kept counts
    (container_counts, page_blocks) take one new row version per statement, not one per annotation,
    whose dead versions every read stepped over until VACUUM reclaimed them (10x the pages at 10x the
    annotations while autovacuum is off or not yet round). Counted in pages (tests/visits.py), never
    timed: plans step over dead versions without counting them as rows."""
    from visits import postgres_pages

    def reads(store) -> int:
        return postgres_pages(store, lambda: (store.count(None), store.page(None, 0, 1)))

    with open_store(url) as store:
        store.seed_machine_annotations(KEY, MODEL, [machine(n) for n in range(300)])
        small = reads(store)
        store.seed_machine_annotations(KEY, MODEL, [machine(n) for n in range(300, 3300)])
        assert store.count(KEY) == 3300
        bulk = reads(store)
        assert bulk <= small + 2, (small, bulk)
