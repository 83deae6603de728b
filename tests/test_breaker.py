"""The circuit breaker per host (enricher.breaker) on its own, in a Fetcher and in a whole pipeline run,
against real dead hosts on loopback: a closed port (refused) and a server that never answers (timeout)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from deadhosts import SilentServer
from factories import make_manifest
from sampledata import SCENES, TRUTH, recall, specs

from enricher import breaker as breaker_module
from enricher.breaker import CircuitBreaker
from enricher.datafiles import DEMO_WEIGHTS
from enricher.errors import FetchError, HostDownError
from enricher.fetch import Fetcher
from enricher.manifest import parse_manifest
from enricher.pipeline import FETCH_WORKERS, Enricher

HOST = "images.example.org:80"
DEAD_CANVASES = 24


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A server on loopback that accepts connections and never answers them."""
    server = SilentServer()
    yield server
    server.close()


class Clock:
    """The breaker's monotonic clock, moved by the test: a cool-down passes when the test says, not
    when a sleep on a loaded machine happens to end."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """enricher.breaker's clock, which only the test moves."""
    clock = Clock()
    monkeypatch.setattr(breaker_module, "time", clock)
    return clock


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.failed(HOST, "cannot connect")


def test_a_host_is_down_after_the_threshold_of_failures_in_a_row():
    breaker = CircuitBreaker(threshold=3, cooldown=60)
    fail(breaker, 2)
    breaker.allow(HOST, "http://images.example.org/a.jpg")
    breaker.allow("other.example.org:80", "http://other.example.org/a.jpg")
    fail(breaker, 1)
    assert breaker.is_down(HOST) and not breaker.is_down("other.example.org:80")
    with pytest.raises(HostDownError) as caught:
        breaker.allow(HOST, "http://images.example.org/b.jpg")
    assert caught.value.where == "http://images.example.org/b.jpg"
    assert f"host {HOST} is down: 3 connections failed in a row (last: cannot connect)" in str(caught.value)


def test_a_success_between_failures_starts_the_count_again():
    breaker = CircuitBreaker(threshold=3, cooldown=60)
    fail(breaker, 2)
    breaker.succeeded(HOST)
    fail(breaker, 2)
    assert not breaker.is_down(HOST)


def test_after_the_cooldown_one_probe_goes_and_its_outcome_decides(clock):
    breaker = CircuitBreaker(threshold=2, cooldown=0.5)
    fail(breaker, 2)
    clock.advance(0.25)
    with pytest.raises(HostDownError):
        breaker.allow(HOST, "before the cool-down ends")
    clock.advance(0.25)
    breaker.allow(HOST, "probe")  # the probe
    with pytest.raises(HostDownError):
        breaker.allow(HOST, "while the probe runs")
    fail(breaker, 1)  # the probe failed: down for another cool-down
    with pytest.raises(HostDownError, match="3 connections failed"):
        breaker.allow(HOST, "after a failed probe")
    clock.advance(0.5)
    breaker.allow(HOST, "second probe")
    breaker.succeeded(HOST)
    breaker.allow(HOST, "closed again")
    breaker.allow(HOST, "and again")


def test_threshold_zero_never_opens():
    breaker = CircuitBreaker(threshold=0, cooldown=60)
    fail(breaker, 100)
    breaker.allow(HOST, "http://images.example.org/a.jpg")
    assert not breaker.is_down(HOST)


def test_a_refusing_host_fails_fast_and_another_port_still_answers(config, stub, closed_port):
    dead = f"http://127.0.0.1:{closed_port}"
    live = stub.json("/doc.json", '{"ok": 1}')
    with Fetcher(config(retries=5, breaker_failures=3, breaker_cooldown=60)) as fetcher:
        with pytest.raises(FetchError, match=f"cannot connect to 127.0.0.1:{closed_port}") as first:
            fetcher.get_json(f"{dead}/1.json")
        assert not isinstance(first.value, HostDownError)  # it tried: 3 times, not 6, then the host was down
        with pytest.raises(HostDownError, match=f"host 127.0.0.1:{closed_port} is down") as second:
            fetcher.get_json(f"{dead}/2.json")
        assert second.value.where == f"{dead}/2.json" and "Connection refused" in str(second.value)
        assert fetcher.get_json(live) == {"ok": 1}


def test_a_silent_host_gets_threshold_connections_then_one_probe_per_cooldown(config, silent_server, clock):
    settings = config(timeout=0.2, retries=3, breaker_failures=3, breaker_cooldown=0.5)
    with Fetcher(settings) as fetcher:
        with pytest.raises(FetchError, match=f"no answer within 0.2 s from 127.0.0.1:{silent_server.port}"):
            fetcher.get_json(silent_server.url("/1.json"))
        for n in range(2, 6):
            with pytest.raises(HostDownError):
                fetcher.get_json(silent_server.url(f"/{n}.json"))
        assert silent_server.accepted == 3
        clock.advance(0.5)
        with pytest.raises(FetchError, match="no answer within"):  # the probe, which fails again
            fetcher.get_json(silent_server.url("/probe.json"))
        with pytest.raises(HostDownError, match="4 connections failed in a row"):
            fetcher.get_json(silent_server.url("/after.json"))
    assert silent_server.accepted == 4


def test_threads_sharing_a_fetcher_share_its_breaker(config, silent_server):
    workers, threshold, urls = 8, 3, [silent_server.url(f"/{n}.json") for n in range(40)]
    settings = config(timeout=0.3, retries=3, breaker_failures=threshold, breaker_cooldown=60)

    def fetch(url: str) -> FetchError:
        with pytest.raises(FetchError) as caught:
            fetcher.get_json(url)
        return caught.value

    with Fetcher(settings) as fetcher, ThreadPoolExecutor(workers) as pool:
        errors = list(pool.map(fetch, urls))
    # Requests already on their way when the host went down finish that one try; none tries again.
    assert silent_server.accepted < threshold + workers
    assert sum(isinstance(e, HostDownError) for e in errors) >= len(urls) - (threshold + workers)
    assert all(f"127.0.0.1:{silent_server.port}" in e.detail and e.where in urls for e in errors)


@pytest.fixture(params=["refused", "silent"])
def dead_host(request, closed_port) -> Iterator[tuple[str, SilentServer | None]]:
    """The base URL of an image host that is down: a closed port, or a server that never answers."""
    if request.param == "refused":
        yield f"http://127.0.0.1:{closed_port}/iiif/3", None
        return
    server = SilentServer()
    yield f"http://127.0.0.1:{server.port}/iiif/3", server
    server.close()


def test_a_manifest_on_a_dead_host_fails_fast_and_its_live_canvases_are_enriched(config, demo_detector, sample_server, dead_host):
    """Live canvases first and last, 24 canvases on a dead host between them. Without the breaker each
    dead canvas would make retries + 1 = 4 connections (96 in all, each a timeout on the silent host)."""
    dead_base, silent = dead_host
    live = make_manifest(3, specs(SCENES[:2]), f"{sample_server}/iiif/3", manifest_id="http://example.org/m.json")
    dead = make_manifest(3, [("lost", 640, 480)] * DEAD_CANVASES, dead_base, manifest_id="http://example.org/dead.json")
    live["items"] = [live["items"][0], *dead["items"], live["items"][1]]
    threshold = 5
    settings = config(weights=str(DEMO_WEIGHTS), timeout=0.5, retries=3, breaker_failures=threshold, breaker_cooldown=60)
    with Fetcher(settings) as fetcher:
        result = Enricher(settings, detector=demo_detector, fetcher=fetcher).enrich(parse_manifest(live, live["id"]))
    first, *dead_results, last = result.canvases
    for item, scene in ((first, SCENES[0]), (last, SCENES[1])):
        assert item.error is None and recall(item.detections, TRUTH[scene]) >= 0.8
    dead_host_name = dead_base.split("/")[2]
    assert len(dead_results) == DEAD_CANVASES
    for item in dead_results:
        assert isinstance(item.error, FetchError) and dead_host_name in item.error.detail, item.error
    fast = sum(isinstance(item.error, HostDownError) for item in dead_results)
    assert fast >= DEAD_CANVASES - (threshold + FETCH_WORKERS)
    if silent is not None:
        assert silent.accepted < threshold + FETCH_WORKERS
