"""The distributed job queue on real brokers (RabbitMQ and Redis): two `enricher worker` processes and
a gunicorn web process on one SQLite file end a job of 40 canvases with exactly the annotations of an
embedded run, also when one worker is killed with SIGKILL mid-job; a message delivered twice makes no
duplicate; a message that gives up ends in the dead-letter queue and in the job's errors."""

from __future__ import annotations

import signal

import httpx
import pika
import pytest
import redis
from click.testing import CliRunner
from conftest import BOOK_CANVASES
from dramatiq import Message
from dramatiq_cluster import (
    BASE_URL,
    BROKERS,
    Cluster,
    created_once,
    documents,
    reachable,
    wait_for,
)

from enricher.annotate import manifest_key
from enricher.cli import main
from enricher.errors import BrokerError, ConfigError
from enricher.fetch import Fetcher
from enricher.jobs.dramatiq import CANVASES, QUEUE, DramatiqQueue, messages
from enricher.jobs.run import plan_job
from enricher.pipeline import Enricher
from enricher.store import open_store

CANVAS_COUNT = BOOK_CANVASES


@pytest.fixture(params=sorted(BROKERS))
def broker(request) -> str:
    """The URL of each broker, emptied."""
    return reachable(request.param)


@pytest.fixture(scope="module")
def settings(config):
    """The settings of every run here (batch 1, as the workers' environment has it)."""
    from enricher.datafiles import DEMO_WEIGHTS

    return config(weights=str(DEMO_WEIGHTS), base_url=BASE_URL, batch=1)


@pytest.fixture(scope="module")
def embedded(embedded_book) -> dict[str, dict]:
    """The annotations of the embedded run of the book (conftest): id -> document without its time."""
    with open_store(embedded_book.database) as store:
        found = documents(store)
    assert len(found) >= CANVAS_COUNT
    return found


def job_state(url: str) -> dict:
    return httpx.get(url, timeout=30).json()


# The two cluster runs take minutes each on two cores: each runs on one broker (the messages' handling is
# tested on both by the in-process tests below), the kill on Redis, whose redelivery of a dead worker's
# messages (its heartbeat) is the one enricher tunes.
def test_two_workers_end_a_job_with_the_annotations_of_an_embedded_run(book, embedded, tmp_path):
    database = tmp_path / "shared.sqlite3"
    cluster = Cluster(tmp_path, database, reachable("rabbitmq"))
    try:
        job = cluster.submit(book)
        done = wait_for(lambda: (state := job_state(job))["state"] in ("done", "failed") and state, "the job", cluster)
    finally:
        cluster.stop()
    assert (done["state"], done["progress"], done["errors"]) == ("done", {"done": CANVAS_COUNT, "total": CANVAS_COUNT}, [])
    with open_store(database) as store:
        assert documents(store) == embedded
        assert created_once(store)
    logs = cluster.output()
    assert "enricher worker: 2 threads (inference threads: 1)" in logs and "guest" not in logs  # the broker's password stays out of logs


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(book, embedded, tmp_path):
    database = tmp_path / "shared.sqlite3"
    cluster = Cluster(tmp_path, database, reachable("redis"))
    try:
        job = cluster.submit(book)
        wait_for(lambda: job_state(job)["progress"]["done"] >= 6, "six canvases", cluster)
        assert job_state(job)["progress"]["done"] < CANVAS_COUNT, "the job ended before the kill: nothing was tested"
        cluster.workers[0].send_signal(signal.SIGKILL)  # no cleanup: its messages in flight are redelivered
        cluster.workers[0].wait()
        done = wait_for(lambda: (state := job_state(job))["state"] in ("done", "failed") and state, "the job", cluster)
    finally:
        cluster.stop()
    assert (done["state"], done["progress"]["done"], done["errors"]) == ("done", CANVAS_COUNT, [])
    with open_store(database) as store:
        assert documents(store) == embedded
        assert created_once(store)


@pytest.fixture
def in_process(broker, settings, demo_detector, tmp_path):
    """A DramatiqQueue with its workers in this process (demo model), on a fresh store."""
    store = open_store(tmp_path / "enricher.sqlite3")
    queue = DramatiqQueue(settings.replace(broker=broker, worker_threads=2), store,
                          enricher_factory=lambda config, fetcher: Enricher(config, detector=demo_detector, fetcher=fetcher))
    yield queue
    queue.stop(timeout=60)
    store.close()


def planned_job(queue: DramatiqQueue, manifest: str):
    """A running job whose plan is stored (total, manifest) but whose canvases no message carries yet."""
    store = queue.store
    job = store.create_job({"manifest": manifest})
    store.claim_job()
    with Fetcher(queue.config) as fetcher:
        (manifest_, key, canvases), *_ = plan_job(store.job(job.id), store, queue.config, fetcher)
    return job.id, key, [canvas.id for canvas in canvases]


def deliver(queue: DramatiqQueue, *messages: Message) -> None:
    """Enqueue MESSAGES as they are (the same one twice is a redelivery) and wait until the workers
    have handled every one."""
    for message in messages:
        queue.broker.enqueue(message)
    queue.start()
    queue.broker.join(QUEUE, timeout=1000 * 240)
    queue._worker.join()


def test_a_message_delivered_twice_makes_no_duplicate(in_process, book, embedded):
    job_id, key, ids = planned_job(in_process, book)
    message = Message(queue_name=QUEUE, actor_name=CANVASES, args=(job_id, key, ids[:2]), kwargs={}, options={})
    deliver(in_process, message, message)
    store = in_process.store
    assert store.done_canvases(job_id) == {(key, ids[0]), (key, ids[1])}
    stored = documents(store)
    assert stored and stored == {i: d for i, d in embedded.items() if d["target"]["source"]["id"] in ids[:2]}
    assert created_once(store)
    assert (store.job(job_id).state, store.job(job_id).done) == ("running", 2)  # 38 canvases to go


def test_messages_of_a_cancelled_job_do_nothing(in_process, book):
    job_id, key, ids = planned_job(in_process, book)
    in_process.cancel(job_id)
    deliver(in_process, Message(queue_name=QUEUE, actor_name=CANVASES, args=(job_id, key, ids[:2]), kwargs={}, options={}))
    job = in_process.store.job(job_id)
    assert (job.state, job.done, job.total) == ("cancelled", 0, CANVAS_COUNT)
    assert in_process.store.count(None) == 0


def test_a_job_is_cut_into_messages_that_shrink_towards_its_end():
    todo = [("a", [f"a{n}" for n in range(30)]), ("b", [f"b{n}" for n in range(10)])]
    cut = list(messages(todo, 8))
    assert [key for key, _ in cut] == sorted(key for key, _ in cut)  # each manifest's canvases in order
    assert [c for _, part in cut for c in part] == todo[0][1] + todo[1][1]  # each canvas once
    assert [len(part) for _, part in cut] == [8, 8, 6, 5, 3, 3, 2, 2, 1, 1, 1]  # a quarter of what is left
    assert [len(part) for _, part in messages([("a", todo[0][1])], 100)] == [8, 6, 4, 3, 3, 2, 1, 1, 1, 1]


def dead_letters(url: str) -> int:
    """How many messages the broker's dead-letter queue of QUEUE holds."""
    if url.startswith("amqp"):
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            return connection.channel().queue_declare(f"{QUEUE}.XQ", passive=True).method.message_count
        finally:
            connection.close()
    return redis.Redis.from_url(url).zcard(f"dramatiq:{QUEUE}.XQ")


def test_a_message_that_gives_up_lands_in_the_dead_letter_queue_and_the_job_errors(in_process, book, broker):
    job_id, key, ids = planned_job(in_process, book)
    with in_process.store.transaction():  # every canvas but the last is done
        for canvas_id in ids[:-1]:
            in_process.store.mark_canvas_done(job_id, key, canvas_id, None)
    before = dead_letters(broker)
    # a message naming a manifest the store does not hold cannot run: an input error, not retried
    lost = Message(queue_name=QUEUE, actor_name=CANVASES, args=(job_id, "0" * 16, [ids[-1]]), kwargs={}, options={})
    deliver(in_process, lost)
    assert dead_letters(broker) == before + 1
    job = in_process.store.job(job_id)
    assert [e["canvas"] for e in job.errors] == [ids[-1]]
    assert "cannot run" in job.errors[0]["error"] and "0" * 16 in job.errors[0]["error"]
    assert (job.state, job.done) == ("done", CANVAS_COUNT)  # the last canvas ended the job, with its error


def test_a_job_whose_manifest_cannot_be_read_fails_with_the_reason(in_process, closed_port):
    url = f"http://127.0.0.1:{closed_port}/manifest.json"
    job = in_process.submit({"manifest": url})
    in_process.start()
    failed = wait_for(lambda: (found := in_process.store.job(job.id)).state != "queued" and found.state != "running" and found,
                      "the job to fail")
    assert failed.state == "failed" and url in failed.error and "cannot connect" in failed.error
    assert manifest_key(url) not in failed.manifests


def test_a_job_sent_to_a_broker_that_does_not_answer_fails_with_a_503(settings, closed_port, tmp_path):
    with open_store(tmp_path / "enricher.sqlite3") as store:
        queue = DramatiqQueue(settings.replace(broker=f"amqp://guest:s3cret@127.0.0.1:{closed_port}/"), store)
        with pytest.raises(BrokerError) as raised:
            queue.submit({"manifest": "https://example.org/manifest.json"})
        queue.stop(timeout=1)
        assert raised.value.status == 503 and f"127.0.0.1:{closed_port}" in str(raised.value)
        assert "s3cret" not in str(raised.value)
        (job,) = store.jobs()
        assert job.state == "failed" and "broker" in job.error


@pytest.mark.parametrize(("settings_", "expected"), [
    ({}, "enricher worker needs a broker"),
    ({"ENRICHER_BROKER": "http://127.0.0.1:5672/"}, "amqp:// (RabbitMQ) or redis:// (Redis)"),
    ({"ENRICHER_BROKER": "redis://127.0.0.1:6379/3", "ENRICHER_HOST_RATE": "2",
      "ENRICHER_LIMITS_URL": "", "ENRICHER_WEIGHTS": "/nowhere/weights.pt"}, "/nowhere/weights.pt"),
])
def test_a_worker_that_cannot_start_says_why_in_one_line(settings_, expected, tmp_path, monkeypatch):
    for name, value in {"ENRICHER_DATABASE": str(tmp_path / "enricher.sqlite3"), **settings_}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("enricher: error: ") and expected in lines[0], result.output


def test_host_limits_without_redis_name_the_setting(settings, tmp_path):
    with open_store(tmp_path / "enricher.sqlite3") as store:
        with pytest.raises(ConfigError) as raised:
            DramatiqQueue(settings.replace(broker="amqp://guest:guest@127.0.0.1:5672/", host_rate=2), store)
    assert raised.value.where == "limits_url"
