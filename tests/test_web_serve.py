"""``enricher serve``: the real command, gunicorn with two worker processes on a socket the test binds,
settings from a file and from ENRICHER_* variables; the protocol's compare-and-swap holds across
processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import process_environment
from factories import make_manifest
from webclient import ANNO, AUTH, SECRET, WRITER, seed

START_SECONDS = 60


class Served:
    """What seed() needs of a server: its URL, config and a Store."""

    def __init__(self, url: str, database: Path):
        from enricher.config import load_config

        self.url = url
        self.config = load_config({"database": str(database), "base_url": url}, env={})

    def store(self):
        from enricher.store import open_store

        return open_store(self.config.database)


@contextmanager
def enricher_serve(folder: Path, *options: str, **env: str) -> Iterator[Served]:
    """Run ``enricher serve`` with OPTIONS and ENRICHER_* variables ENV (the writer's token and no job
    worker unless given) on FOLDER's database, on a socket the test binds; wait until it answers, and
    kill it on leaving unless it ended."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    database = folder / "enricher.sqlite3"
    command = [
        sys.executable, "-c", "from enricher.cli import main; main()", "serve", *options,
        "--bind", f"fd://{listener.fileno()}", "--database", str(database), "--base-url", url,
    ]
    variables = process_environment()
    variables.update({"ENRICHER_TOKENS": f"{WRITER}:{SECRET}", "ENRICHER_JOB_WORKER": "false", **env})
    log_path = folder / f"gunicorn-{url.rsplit(':', 1)[1].strip('/')}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, pass_fds=[listener.fileno()], env=variables, stdout=log,
                                   stderr=subprocess.STDOUT)
        listener.close()  # gunicorn holds its own copy
        try:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    if httpx.get(url, timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"enricher serve did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            served = Served(url, database)
            served.process, served.log = process, log_path
            yield served
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    settings = folder / "settings.toml"
    settings.write_text('page_size = 2\nmax_body = 50000\n')
    with enricher_serve(folder, "--config", str(settings), "--workers", "2") as served:
        manifest = make_manifest(3, [("a", 1000, 800)], "https://images.example.org/iiif")
        served.key, served.manifest = seed(served, manifest, (5,))
        yield served


def test_gunicorn_serves_the_app_with_settings_from_file_and_environment(gunicorn):
    with httpx.Client(base_url=gunicorn.url) as client:
        response = client.get(f"{gunicorn.key}/annotations/")
        assert response.status_code == 200 and response.headers["Server"].startswith("gunicorn")
        body = response.json()
        assert body["id"] == f"{gunicorn.url}{gunicorn.key}/annotations/?iris=0"
        assert len(body["first"]["items"]) == 2 and body["last"].endswith("page=2")  # page_size from the file
        canvas = gunicorn.manifest.canvases[0].id
        note = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "bodyValue": "x", "target": canvas}
        posted = client.post(f"{gunicorn.key}/annotations/", json=note, headers=AUTH)  # the token from the environment
        assert posted.status_code == 201 and posted.json()["creator"]["nickname"] == WRITER


def test_twenty_puts_with_one_etag_across_worker_processes(gunicorn):
    canvas = gunicorn.manifest.canvases[0].id
    note = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "bodyValue": "x", "target": canvas}
    created = httpx.post(f"{gunicorn.url}{gunicorn.key}/annotations/", json=note, headers=AUTH)
    url, etag, document = created.json()["id"], created.headers["ETag"], created.json()
    start, results = threading.Barrier(20), {}

    def put(n: int) -> None:
        body = {**document, "body": [{"type": "TextualBody", "value": f"version {n}"}]}
        with httpx.Client(timeout=60) as client:
            start.wait()
            results[n] = client.put(url, json=body, headers={**AUTH, "If-Match": etag, "Content-Type": ANNO})

    threads = [threading.Thread(target=put, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results.values()) == [200] + [412] * 19
    (winner,) = [n for n, r in results.items() if r.status_code == 200]
    final = httpx.get(url)
    assert final.json()["body"][0]["value"] == f"version {winner}"
    assert final.headers["ETag"] == results[winner].headers["ETag"]


def test_sigterm_stops_gunicorn_cleanly(gunicorn):
    gunicorn.process.send_signal(signal.SIGTERM)
    assert gunicorn.process.wait(timeout=60) == 0, gunicorn.log.read_text()
