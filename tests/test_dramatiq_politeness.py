"""Politeness across the cluster, with two `enricher worker` processes on a real broker and the host
limits on Redis: an image host limited to 2 requests per second never sees more than 2 in any
one-second window, nor two at once with a concurrency of 1; a 429 with Retry-After keeps every worker
away from the host for that long; and a slow host does not hold up the canvases of another."""

from __future__ import annotations

import json
import shutil
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import HOLD_SECONDS
from dramatiq_cluster import Cluster, reachable, redis_limits, wait_for
from factories import make_manifest
from sampledata import SAMPLES, SCENES, specs

from enricher.imageserver import write_static_tree
from enricher.jobs.dramatiq import DramatiqQueue
from enricher.store import open_store

RETRY_AFTER = 2  # seconds
# one tile per scene: a canvas is an info.json and one image, as the counts below assume (at the
# generator's 256 pixels each scene was 20 tiles, minutes of requests at 2 a second)
TILE_SIZE = 2048


class LoggingHost:
    """A level-0 IIIF tree of the sample scenes, with a manifest of COUNT canvases, on a loopback port
    of its own; it logs when each request arrives and how many are in flight, answers one path 429 once,
    takes DELAY seconds per answer, and answers nothing but the manifest before HELD is set, if given."""

    def __init__(self, root: Path, count: int, delay: float = 0.0, held: threading.Event | None = None):
        self.arrivals: list[tuple[float, str]] = []
        self.in_flight = self.most_in_flight = 0
        self.throttled: set[str] = set()  # paths to answer 429 once
        self.throttled_at: float | None = None
        lock, host = threading.Lock(), self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    arrived = time.time()
                    host.arrivals.append((arrived, self.path))
                    host.in_flight += 1
                    host.most_in_flight = max(host.most_in_flight, host.in_flight)
                    throttle = self.path in host.throttled
                    host.throttled.discard(self.path)
                try:
                    if held is not None and self.path != "/manifest.json":
                        held.wait(HOLD_SECONDS)
                    time.sleep(delay)
                    if throttle:
                        host.throttled_at = arrived
                        self.send_response(429)
                        self.send_header("Retry-After", str(RETRY_AFTER))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        super().do_GET()
                finally:
                    with lock:
                        host.in_flight -= 1

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        images = root / "images"
        images.mkdir()
        for name in SCENES:
            shutil.copy(SAMPLES / name, images / name)
        write_static_tree(images, root / "3", f"{self.url}/3", "3.0", tile_size=TILE_SIZE)
        scenes = specs(SCENES)
        document = make_manifest(3, [scenes[n % len(scenes)] for n in range(count)], f"{self.url}/3",
                                 manifest_id=f"{self.url}/manifest.json", level=0)
        (root / "manifest.json").write_text(json.dumps(document))
        self.manifest = f"{self.url}/manifest.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hosts(tmp_path):
    made: list[LoggingHost] = []

    def make(count: int, delay: float = 0.0, held: threading.Event | None = None) -> LoggingHost:
        root = tmp_path / f"host-{len(made)}"
        root.mkdir()
        made.append(LoggingHost(root, count, delay, held))
        return made[-1]

    yield make
    for host in made:
        host.close()


# Each cluster run takes minutes on two cores, so each runs on one broker: the limits live in Redis
# whatever the broker, and the message handling is tested on both in test_dramatiq.py.


def submit(database: Path, broker: str, manifest: str) -> str:
    """Queue a job as the web process does (a queue in this process only sends); return its id."""
    from enricher.config import load_config

    with open_store(database) as store:
        queue = DramatiqQueue(load_config({"broker": broker, "database": str(database)}, env={}), store)
        try:
            return queue.submit({"manifest": manifest, "canvases": []}).id
        finally:
            queue.stop()


def job_now(database: Path, job_id: str):
    with open_store(database) as store:
        return store.job(job_id)


def finished(database: Path, job_id: str):
    job = job_now(database, job_id)
    return job if job.state in ("done", "failed", "cancelled") else None


def test_a_host_sees_at_most_its_rate_and_concurrency_and_a_429_pauses_every_worker(hosts, tmp_path):
    broker, limits = reachable("rabbitmq"), redis_limits()
    host = hosts(count=10, delay=0.3)
    host.throttled.add("/3/scene-2/info.json")  # the first canvas of scene-2 asks for it after a few requests
    database = tmp_path / "shared.sqlite3"
    cluster = Cluster(tmp_path, database, broker, web=False, host_rate=2, host_concurrency=1, limits_url=limits,
                      message_canvases=1)
    try:
        job_id = submit(database, broker, host.manifest)
        job = wait_for(lambda: finished(database, job_id), "the job", cluster)
    finally:
        cluster.stop()
    assert (job.state, job.done, job.total, job.errors) == ("done", 10, 10, [])
    times = sorted(t for t, _ in host.arrivals)
    assert len(times) >= 21  # the manifest, then an info.json and an image per canvas, and the retried one
    crowded = [(a, b) for a, b in zip(times, times[2:]) if b - a < 1.0]
    assert not crowded, f"3 requests within one second: {crowded}"
    assert host.most_in_flight == 1
    assert host.throttled_at is not None, "the 429 was never sent: nothing was tested"
    after = [t for t in times if t > host.throttled_at]
    assert after and after[0] >= host.throttled_at + RETRY_AFTER - 0.01  # no worker came back earlier
    assert [p for _, p in host.arrivals].count("/3/scene-2/info.json") >= 2  # and the canvas got its answer


def test_a_slow_host_does_not_hold_up_another(hosts, tmp_path):
    broker, limits = reachable("redis"), redis_limits()
    # the slow host answers its images only once the fast host's job ended: it is slower than the other
    # whatever the machine's speed, rather than by a delay a loaded machine could outlast
    answering = threading.Event()
    slow, fast = hosts(count=6, held=answering), hosts(count=6)
    database = tmp_path / "shared.sqlite3"
    cluster = Cluster(tmp_path, database, broker, web=False, host_concurrency=1, limits_url=limits, message_canvases=1)
    try:
        slow_job = submit(database, broker, slow.manifest)
        wait_for(lambda: len(slow.arrivals) >= 2, "the slow host's first canvas", cluster)
        fast_job = submit(database, broker, fast.manifest)  # queued behind the slow host's six canvases
        try:
            fast_done = wait_for(lambda: finished(database, fast_job), "the fast host's job", cluster)
            slow_state = job_now(database, slow_job)
        finally:
            answering.set()
        slow_done = wait_for(lambda: finished(database, slow_job), "the slow host's job", cluster)
    finally:
        cluster.stop()
    assert fast_done.state == slow_done.state == "done"
    assert slow_state.state == "running" and slow_state.done < 6  # the fast one ended while the slow one went on
