"""Pushing changes to an external triplestore: a real ``oxigraph serve`` process, stopped in the middle
while changes go on, restarted on the same port and data: afterwards it holds exactly what the store
holds. With both protocols (Graph Store Protocol and SPARQL Update)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from click.testing import CliRunner
from real_annotations import comment, corrected, machine_annotations, manifest
from test_dump import canonical, fill

from enricher import rdf
from enricher.cli import main
from enricher.config import Config
from enricher.errors import FetchError, InputError
from enricher.index import TERMS_GRAPH, VOCABULARY_GRAPH
from enricher.push import Pusher
from enricher.statistics import STATISTICS_GRAPH, statistics_ntriples
from enricher.store import Store, open_store
from enricher.vocab import Vocabulary

BASE = "https://enricher.example.org/"
OXIGRAPH = shutil.which("oxigraph")


@pytest.fixture(autouse=True)
def _oxigraph_installed() -> None:
    """The oxigraph server is a test dependency: fail under CI when it is missing, else skip."""
    if OXIGRAPH is None:
        message = "the oxigraph server is missing (pip install oxigraph)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

ENDPOINTS = {"gsp": "store", "update": "update"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Wait until CONDITION holds; fail naming WHAT after DEADLINE seconds (a hang guard, not a timing test)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


class OxigraphServer:
    """``oxigraph serve`` on a loopback port with its data in a folder, started with OPTIONS; can be
    stopped and started again."""

    def __init__(self, location: Path, *options: str):
        self.location, self.options, self.port = location, options, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, protocol: str) -> str:
        return f"{self.base}/{ENDPOINTS[protocol]}"

    def start(self) -> None:
        command = [OXIGRAPH, "serve", "--location", str(self.location), "--bind", f"127.0.0.1:{self.port}",
                   *self.options]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self._answers, f"oxigraph to listen on {self.base}")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"oxigraph serve ended: {self.process.stderr.read().decode(errors='replace')}")
        try:
            return httpx.get(self.base + "/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def graphs(self) -> dict[str, ox.Dataset]:
        """Every named graph the server holds, canonicalized."""
        response = httpx.get(self.base + "/store", headers={"Accept": "application/n-quads"}, timeout=30)
        response.raise_for_status()
        return _by_graph(ox.parse(response.content, format=ox.RdfFormat.N_QUADS))


def _by_graph(quads) -> dict[str, ox.Dataset]:
    graphs: dict[str, list[ox.Quad]] = {}
    for quad in quads:
        assert isinstance(quad.graph_name, ox.NamedNode), quad  # nothing lands in the default graph
        graphs.setdefault(quad.graph_name.value, []).append(quad)
    return {name: canonical(quads) for name, quads in graphs.items()}


def expected(store: Store) -> dict[str, ox.Dataset]:
    """The store's live annotations, one graph each, as their current documents say, and the statistics
    graph with the store's class counts."""
    quads, offset = [], 0
    while page := store.page(None, offset, 100):
        for stored in page:
            quads += rdf.annotation_quads(stored.document)
        offset += len(page)
    statistics = ox.parse(statistics_ntriples(store.class_counts(), Vocabulary.load()), format=ox.RdfFormat.N_TRIPLES)
    quads += [ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(STATISTICS_GRAPH)) for t in statistics]
    return _by_graph(quads)


@pytest.fixture(scope="module")
def parsed():
    return manifest()


@pytest.fixture(scope="module")
def machine(config, parsed):
    return machine_annotations(config(base_url=BASE), Vocabulary.load(), parsed)


@pytest.fixture
def server(tmp_path) -> Iterator[OxigraphServer]:
    server = OxigraphServer(tmp_path / "remote")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    with open_store(tmp_path / "enricher.sqlite3") as store:
        yield store


def pusher_for(store: Store, server: OxigraphServer, protocol: str) -> Pusher:
    return Pusher(store, server.endpoint(protocol), protocol, interval=0.05, max_backoff=0.4, timeout=5)


@pytest.mark.parametrize("protocol", ["gsp", "update"])
def test_an_outage_in_the_middle_loses_nothing(store, server, protocol, machine, parsed):
    key = fill(store, parsed, machine[:5])  # canvases 0 and 1
    pusher = pusher_for(store, server, protocol)
    try:
        assert pusher.drain() == 5 and pusher.pending() == 0
        assert server.graphs() == expected(store)

        server.stop()
        # while it is down: a person corrects one and deletes one, a re-run adds canvases 2 and 3
        edited = store.get(machine[0]["id"])
        store.update(edited.id, corrected(edited.document), edited.etag, "curator")
        store.delete(machine[1]["id"], None)
        fill(store, parsed, machine[5:])
        waiting = pusher.pending()
        assert waiting == 2 + len(machine[5:])
        with pytest.raises(FetchError) as caught:
            pusher.push_once()
        assert caught.value.where == server.endpoint(protocol)
        pusher.start()
        wait_for(lambda: pusher.status()["failures"] >= 3, "the pusher to retry")
        status = pusher.status()
        assert status["pending"] == waiting and "cannot be reached" in status["error"]
        # more changes while it keeps failing: the backlog grows
        store.create(key, comment(parsed, f"{BASE}{key}/annotations/note1"), "curator")
        assert pusher.pending() == waiting + 1

        server.start()  # the same port and data
        pusher.wake()
        wait_for(lambda: pusher.pending() == 0, "the backlog to drain")
        pusher.stop()
        assert pusher.status()["failures"] == 0 and pusher.status()["error"] is None
        remote = server.graphs()
        assert remote == expected(store)
        assert machine[1]["id"] not in remote and f"{BASE}{key}/annotations/note1" in remote
        assert len(remote) - 1 == store.count(None) == len(machine) - 1 + 1  # and the statistics graph
    finally:
        pusher.close()


@pytest.mark.parametrize("protocol", ["gsp", "update"])
def test_an_annotation_the_target_refuses_is_skipped_not_retried_forever(store, server, protocol, machine, parsed):
    key = fill(store, parsed, machine[:3])
    refused = comment(parsed, f"{BASE}{key}/annotations/bad%zz")  # an IRI the server will not take
    store.create(key, refused, "curator")
    pusher = pusher_for(store, server, protocol)
    try:
        assert pusher.drain() == 4 and pusher.pending() == 0
        assert pusher.skipped == [refused["id"]]
        assert set(server.graphs()) == {a["id"] for a in machine[:3]} | {STATISTICS_GRAPH}
    finally:
        pusher.close()


def test_a_pushed_change_twice_changes_nothing(store, server, machine, parsed):
    fill(store, parsed, machine[:3])
    pusher = pusher_for(store, server, "gsp")
    try:
        pusher.drain()
        before = server.graphs()
        store.move_cursor(pusher.name, 0)  # as if the process died before it recorded the delivery
        assert pusher.pending() == 3
        pusher.drain()
        assert server.graphs() == before == expected(store)
    finally:
        pusher.close()


def test_one_process_per_database_pushes(store, server):
    first, second = (pusher_for(store, server, "gsp") for _ in range(2))
    try:
        first.start()
        wait_for(lambda: first.holds_lock, "the first pusher to take the lock")
        assert not second.acquire()
        first.stop()  # its process ends or stops pushing: another takes over
        assert second.acquire() and second.holds_lock
    finally:
        first.close()
        second.close()
    assert not [t for t in threading.enumerate() if t.name == "enricher-push"]


def test_settings_and_bad_targets(store):
    settings = {"push_url": "", "push_protocol": "gsp", "push_interval": 2.0, "timeout": 3.0,
                "base_url": "https://annotations.example.org", "vocab": []}
    assert Pusher.from_config(Config(settings), store) is None
    wanted = {**settings, "push_url": "http://127.0.0.1:1/update", "push_protocol": "update"}
    pusher = Pusher.from_config(Config(wanted), store)
    try:
        assert (pusher.url, pusher.protocol, pusher.interval) == ("http://127.0.0.1:1/update", "update", 2.0)
        assert pusher.base == "https://annotations.example.org/"  # names the calibrations annotations carry
    finally:
        pusher.close()
    with pytest.raises(InputError) as caught:
        Pusher(store, "http://127.0.0.1:1/store", "webdav")
    assert caught.value.where == "http://127.0.0.1:1/store"
    with pytest.raises(InputError):
        Pusher(store, "ftp://example.org/store")


def test_load_index_fills_the_triplestore_at_once_and_the_pusher_goes_on_after_it(tmp_path, store, server, machine,
                                                                                   parsed):
    fill(store, parsed, machine[:5])
    env = {"ENRICHER_DATABASE": str(tmp_path / "enricher.sqlite3"), "ENRICHER_BASE_URL": BASE,
           "ENRICHER_INDEX": "remote", "ENRICHER_INDEX_URL": server.base + "/query",
           "ENRICHER_PUSH_URL": server.endpoint("gsp")}
    load = lambda url: CliRunner().invoke(main, ["load-index", "--url", url], env=env)  # noqa: E731
    pusher = pusher_for(store, server, "gsp")
    try:
        down = load("http://127.0.0.1:1/store")
        assert down.exit_code == 1 and "cannot be reached" in down.output
        assert pusher.pending() == 5  # a failed load moves nothing
        loaded = load(server.endpoint("gsp"))
        assert loaded.exit_code == 0, loaded.output
        graphs, annotations = server.graphs(), expected(store)
        assert {name: graphs[name] for name in annotations} == annotations
        assert set(graphs) - set(annotations) == {VOCABULARY_GRAPH, TERMS_GRAPH}
        assert pusher.pending() == 0  # what the load sent is not sent again
        store.delete(machine[0]["id"], None)
        assert pusher.drain() == 1
    finally:
        pusher.close()
    assert server.graphs().keys() == set(expected(store)) | {VOCABULARY_GRAPH, TERMS_GRAPH}
