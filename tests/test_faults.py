"""Faults during a running job, each on servers of the test's own (tests/private_servers.py), never on
the machine's shared ones: the job ends `done` with exactly the annotations of an uninterrupted run (no
loss, no duplicate) when PostgreSQL, the store's server, restarts mid-job under two `enricher worker`
processes or under the embedded runner, and when the RabbitMQ broker restarts mid-job under two workers.
(A killed worker: tests/test_dramatiq.py.)

What recovers them: the store's pool checks a connection before lending it (``pool_pre_ping``), so
a restart leaves no dead connection behind, and a server that is down raises StoreUnavailable; a
message whose transaction failed is retried by Dramatiq (and every write is idempotent), the embedded
runner puts its job back in the queue; Dramatiq's consumers reconnect to the broker, which redelivers
the messages that were not acknowledged, and its queues and messages are durable."""

from __future__ import annotations

import pytest
from conftest import run_embedded
from dramatiq_cluster import (
    BASE_URL,
    Cluster,
    created_once,
    documents,
    served_book,
    wait_for,
)
from private_servers import PrivatePostgres, PrivateRabbitmq

from enricher.errors import StoreUnavailable
from enricher.jobs.dramatiq import QUEUE, DramatiqQueue, open_broker
from enricher.jobs.thread import ThreadQueue
from enricher.pipeline import Enricher
from enricher.store import open_store

CANVAS_COUNT = 12
FAULT_AFTER = 3  # canvases committed before the fault: it lands mid-job
DOWN_SECONDS = 5  # how long PostgreSQL stays down: a worker's commit or read meets it
CLUSTER = {"message_canvases": 1, "worker_threads": 1}  # small messages: the fault finds some in flight


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> str:
    with served_book(tmp_path_factory.mktemp("documents"), CANVAS_COUNT) as url:
        yield url


@pytest.fixture(scope="module")
def settings(config):
    from enricher.datafiles import DEMO_WEIGHTS

    return config(weights=str(DEMO_WEIGHTS), base_url=BASE_URL, batch=1)


@pytest.fixture(scope="module")
def embedded(book, settings, demo_detector, tmp_path_factory) -> dict[str, dict]:
    """The annotations of an uninterrupted embedded run of the book."""
    database = tmp_path_factory.mktemp("embedded") / "enricher.sqlite3"
    run_embedded(book, settings, demo_detector, database)
    with open_store(database) as store:
        found = documents(store)
    assert len(found) >= CANVAS_COUNT
    return found


# the servers come first in each test's arguments: a missing one skips it before the embedded run
@pytest.fixture(scope="module")
def rabbitmq():
    """A RabbitMQ node of this module's own."""
    node = PrivateRabbitmq()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of this module's own."""
    server = PrivatePostgres()
    yield server
    server.stop()


def run_with_fault(book: str, settings, store_url: str, broker: str, folder, fault) -> tuple:
    """Run the book's job on two workers, call FAULT once FAULT_AFTER canvases are committed; return
    the finished job and the store's annotations and whether each was created once."""
    cleared = open_broker(broker)
    cleared.declare_queue(QUEUE)
    cleared.flush_all()
    cleared.close()
    cluster = Cluster(folder, store_url, broker, workers=2, web=False, **CLUSTER)
    store = open_store(store_url)
    queue = DramatiqQueue(settings.replace(broker=broker, **CLUSTER), store)
    try:
        job_id = queue.submit({"manifest": book}).id
        wait_for(lambda: store.job(job_id).done >= FAULT_AFTER, f"{FAULT_AFTER} canvases", cluster)
        # checked as the fault begins: a broker restart can take longer than the rest of the job, and
        # the canvases in flight then finish meanwhile; their acknowledgements are what the fault meets
        assert store.job(job_id).done < CANVAS_COUNT, "the job ended before the fault: nothing was tested"
        fault()
        job = wait_for(lambda: (found := store.job(job_id)).state in ("done", "failed") and found, "the job", cluster)
        return job, documents(store), created_once(store)
    finally:
        queue.stop(timeout=1)
        cluster.stop()
        store.close()


def test_a_postgresql_restart_mid_job_loses_and_duplicates_nothing(postgres, rabbitmq, book, embedded, settings,
                                                                   tmp_path):
    job, found, once = run_with_fault(book, settings, postgres.database("workers"), rabbitmq.url, tmp_path,
                                       lambda: postgres.restart(DOWN_SECONDS))
    assert (job.state, job.done, job.total, job.errors) == ("done", CANVAS_COUNT, CANVAS_COUNT, [])
    assert found == embedded
    assert once


def test_a_broker_restart_mid_job_loses_and_duplicates_nothing(rabbitmq, book, embedded, settings, tmp_path):
    job, found, once = run_with_fault(book, settings, f"sqlite:///{tmp_path}/shared.sqlite3", rabbitmq.url, tmp_path,
                                      rabbitmq.restart)
    assert (job.state, job.done, job.total, job.errors) == ("done", CANVAS_COUNT, CANVAS_COUNT, [])
    assert found == embedded
    assert once


def test_a_store_whose_server_is_down_says_so_and_comes_back_with_it(postgres):
    with open_store(postgres.database("reconnect")) as store:
        job = store.create_job({"manifest": "https://example.org/manifest.json"})
        postgres.stop_server()
        try:
            with pytest.raises(StoreUnavailable) as raised:
                store.job(job.id)
            with pytest.raises(StoreUnavailable):
                store.set_job(job.id, state="running")
        finally:
            postgres.start_server()
        assert raised.value.status == 503 and f"127.0.0.1:{postgres.port}" in str(raised.value.where)
        assert store.job(job.id).state == "queued"  # the pool lends a live connection again, the write left nothing


def test_the_embedded_runner_resumes_a_job_after_a_postgresql_restart(postgres, book, embedded, settings,
                                                                       demo_detector, caplog):
    with open_store(postgres.database("embedded")) as store:
        queue = ThreadQueue(settings, store, enricher_factory=lambda config: Enricher(config, detector=demo_detector))
        queue.start()
        try:
            job_id = queue.submit({"manifest": book}).id
            wait_for(lambda: store.job(job_id).done >= FAULT_AFTER, f"{FAULT_AFTER} canvases")
            assert store.job(job_id).done < CANVAS_COUNT, "the job ended before the fault: nothing was tested"
            postgres.restart(DOWN_SECONDS)  # checked as it begins, as in run_with_fault
            job = wait_for(lambda: (found := store.job(job_id)).state in ("done", "failed") and found, "the job")
        finally:
            queue.stop(timeout=60)
        assert (job.state, job.done, job.errors) == ("done", CANVAS_COUNT, [])
        assert "the database server cannot be reached" in caplog.text  # the runner met the server down
        assert documents(store) == embedded
        assert created_once(store)
