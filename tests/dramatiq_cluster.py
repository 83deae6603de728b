"""Helpers for the distributed-queue tests: the brokers (skipped, naming the service, when one is not
running; failing under CI), and a cluster of real processes on one store: `enricher serve` under
gunicorn and `enricher worker` processes, each in a working directory of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pika
import pytest
import redis
from conftest import process_environment, unavailable
from factories import make_manifest
from private_servers import free_port
from sampledata import SAMPLES, SCENES, specs

from enricher.datafiles import DEMO_WEIGHTS, PROJECT_ROOT
from enricher.imageserver import serve_images
from enricher.jobs.dramatiq import QUEUE, open_broker

BASE_URL = "https://enricher.test/"
SECRET = "s3cret"
WAIT_SECONDS = 240  # generous bounds for a loaded 2-core machine; reaching one fails the test
BROKERS = {
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ on 127.0.0.1:5672"),
    "redis": ("redis://127.0.0.1:6379/3", "Redis on 127.0.0.1:6379"),
}
LIMITS_URL = "redis://127.0.0.1:6379/3"


def reachable(name: str, url: str | None = None) -> str:
    """The URL of broker NAME (or URL, another database of it), emptied of messages left by earlier tests;
    unavailable() when it is down."""
    default, service = BROKERS[name]
    url = url or default
    try:
        if name == "rabbitmq":
            pika.BlockingConnection(pika.URLParameters(url)).close()
        else:
            redis.Redis.from_url(url).ping()
    except Exception as exc:  # whatever the client raises, the service is not there
        unavailable(f"{service} is not running ({exc.__class__.__name__}): the distributed job tests need it")
    broker = open_broker(url)
    broker.declare_queue(QUEUE)
    broker.flush_all()
    broker.close()
    return url


def redis_limits() -> str:
    """The Redis of the host limits, with no limits left by earlier tests."""
    client = redis.Redis.from_url(LIMITS_URL)
    try:
        keys = client.keys("enricher:host:*")
    except redis.RedisError as exc:
        unavailable(f"Redis on 127.0.0.1:6379 is not running ({exc.__class__.__name__}): the host limits need it")
    if keys:
        client.delete(*keys)
    return LIMITS_URL


@contextmanager
def served_book(folder: Path, canvases: int) -> Iterator[str]:
    """Serve a manifest of CANVASES canvases (the sample scenes over and over) from FOLDER on the IIIF
    reference image server, which also serves the images; yield its URL."""
    with serve_images(SAMPLES, documents=folder) as base:
        scenes = specs(SCENES)
        document = make_manifest(3, [scenes[n % len(scenes)] for n in range(canvases)], f"{base}/iiif/3",
                                 manifest_id="https://example.org/book/manifest.json")
        (folder / "book.json").write_text(json.dumps(document))
        yield f"{base}/manifests/book.json"


def environment(**settings) -> dict[str, str]:
    """The environment of a cluster process: this checkout first on the path, settings as ENRICHER_*."""
    env = process_environment()
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    base = {"weights": DEMO_WEIGHTS, "base_url": BASE_URL, "allow_private": "true", "batch": 1, "backoff": 0.01,
            "tokens": f"tester:{SECRET}", "inference_threads": 1}  # four processes share two cores
    env.update({f"ENRICHER_{k.upper()}": str(v) for k, v in {**base, **settings}.items()})
    return env


def enricher(*args: str) -> list[str]:
    return [sys.executable, "-c", "from enricher.cli import main; main()", *args]


class Cluster:
    """WEB `enricher serve` processes (one gunicorn worker each, no job runner) and WORKERS `enricher
    worker` processes, each in its own folder under ROOT, on one store (DATABASE: a file or a URL) and
    one broker."""

    def __init__(self, root: Path, database: Path | str, broker: str, workers: int = 2, web: int = 1, **settings):
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.settings = {"database": database, "broker": broker, **settings}
        self.urls = [f"http://127.0.0.1:{free_port()}" for _ in range(web)]
        self.url = self.urls[0] if self.urls else ""
        for n, url in enumerate(self.urls):
            port = url.rsplit(":", 1)[1]
            self._start(root / ("web" if n == 0 else f"web-{n}"), enricher("serve", "--port", port, "--workers", "1"),
                        job_worker="false")
        self.workers = [self._start(root / f"worker-{n}", enricher("worker")) for n in range(workers)]
        for url in self.urls:
            self._wait_for_web(url)

    def _start(self, folder: Path, command: list[str], **settings) -> subprocess.Popen:
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "log.txt"
        self.logs.append(log)
        process = subprocess.Popen(command, cwd=folder, env=environment(**self.settings, **settings),
                                   stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def _wait_for_web(self, url: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            self.check()
            try:
                if httpx.get(url + "/jobs", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"enricher serve did not answer: {self.output()}")

    def check(self) -> None:
        """Fail when a process of the cluster died on its own."""
        for process in self.processes:
            if process.poll() is not None and process.returncode != -signal.SIGKILL:
                pytest.fail(f"a cluster process ended with {process.returncode}: {self.output()}")

    def output(self) -> str:
        return "\n".join(f"--- {log}\n{log.read_text()[-3000:]}" for log in self.logs if log.exists())

    def submit(self, manifest: str) -> str:
        """POST a job; return its URL."""
        answer = httpx.post(self.url + "/jobs", json={"manifest": manifest},
                            headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)
        assert answer.status_code == 202, answer.text
        return answer.headers["Location"].replace(BASE_URL.rstrip("/"), self.url)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(predicate, what: str, cluster: Cluster | None = None):
    deadline = time.monotonic() + WAIT_SECONDS
    while not (value := predicate()):
        if cluster is not None:
            cluster.check()
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}" + (f": {cluster.output()}" if cluster else ""))
        time.sleep(0.1)
    return value


def documents(store) -> dict[str, dict]:
    """Every live annotation: id -> document without ``created`` and ``wasGeneratedBy`` (the time and the
    job of the run)."""
    varying = {"created", "wasGeneratedBy"}
    return {a.id: {k: v for k, v in a.document.items() if k not in varying} for a in store.page(None, 0, 100_000)}


def created_once(store) -> bool:
    """Whether the change log created each annotation exactly once and changed none."""
    kinds = Counter((c.kind, c.anno_id) for c in store.changes(0, 1_000_000))
    return all(count == 1 for count in kinds.values()) and {kind for kind, _ in kinds} == {"Create"}
