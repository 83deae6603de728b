"""SPARQL answers stream: an answer larger than a chunk is never whole in the process, reaches the
client chunked and byte for byte as the buffered one, stops when its reader stops, and a cap or the
timeout reached after the first chunk ends it with the error (under gunicorn: the connection closes
without the closing chunk); before the first chunk they are problems, as ever. Embedded and remote."""

from __future__ import annotations

import threading
import time
import tracemalloc

import httpx
import pytest
from test_remote_index import remote, triplestore  # noqa: F401 - the `oxigraph serve` fixture
from test_web_serve import enricher_serve
from webclient import live_server

from enricher.errors import QueryTimeout, ResultTooLarge
from enricher.index import Index
from enricher.produced import CHUNK, produced

WIDE = 10 * 2**15  # characters of each value wide() makes: more than a chunk


def wide(rows: int, construct: bool = False) -> str:
    """ROWS rows (or triples) of WIDE characters each, made by the query itself (no data needed)."""
    doubled = " ".join(f"BIND(CONCAT(?a{i}, ?a{i}) AS ?a{i + 1})" for i in range(15))
    where = (f'VALUES ?n {{ {" ".join(map(str, range(rows)))} }} BIND("0123456789" AS ?a0) {doubled} '
             f'BIND(CONCAT(STR(?n), SUBSTR(?a15, STRLEN(STR(?n)) + 1)) AS ?v)')
    if construct:
        return f"CONSTRUCT {{ ?s <http://e/p> ?v }} WHERE {{ {where} BIND(IRI(CONCAT('http://e/', STR(?n))) AS ?s) }}"
    return f"SELECT ?v WHERE {{ {where} }}"


def test_a_large_answer_is_never_whole_in_memory():
    index = Index()
    tracemalloc.start()
    try:
        answer = index.query(wide(100, construct=True), format="ntriples", timeout=None)
        assert not answer.whole
        size = sum(len(chunk) for chunk in answer.chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 100 * WIDE and peak < size / 4, (size, peak)  # the queue's few chunks, not the answer
    index.close()


@pytest.mark.parametrize("name", ["json", "tsv", "csv", "xml"])
def test_a_cap_reached_after_the_first_chunk_ends_the_answer_with_the_refusal(name):
    index = Index()
    at_cap = index.query(wide(3), format=name, max_rows=3, timeout=None)
    assert not at_cap.whole and at_cap.body == index.query(wide(3), format=name, timeout=None).body
    past_cap = index.query(wide(4), format=name, max_rows=3, timeout=None)
    assert not past_cap.whole and next(past_cap.chunks)  # the first chunk went out
    with pytest.raises(ResultTooLarge, match="more than 3 rows"):
        b"".join(past_cap.chunks)
    with pytest.raises(ResultTooLarge, match="more than 2 triples"):
        index.query(wide(3, construct=True), format="turtle", max_triples=2, timeout=None).body
    index.close()


def test_a_reader_that_stops_stops_the_query_and_frees_its_slot():
    index = Index(slots=1)
    answer = index.query(wide(1000), format="tsv", timeout=None)
    assert next(answer.chunks) and index.running == 1
    answer.close()
    deadline = time.monotonic() + 30  # a bound on a hang, not a timing: the producer stops at its next write
    while index.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert index.running == 0
    assert index.query("ASK {}", timeout=1).body  # the only slot is free again
    index.close()


def test_past_the_deadline_after_the_first_chunk_the_reader_gets_the_timeout():
    release = threading.Event()

    def produce(output) -> None:
        output.write(b"x" * CHUNK)
        release.wait(30)
        output.write(b"never read")

    chunks = produced(produce, name="test", deadline=time.monotonic() + 0.5, join=False,
                      late=lambda: QueryTimeout("too late"))
    assert next(chunks) == b"x" * CHUNK
    with pytest.raises(QueryTimeout, match="too late"):
        next(chunks)
    release.set()


def test_under_gunicorn_a_late_cap_closes_the_connection_and_an_early_one_is_a_problem(tmp_path):
    with enricher_serve(tmp_path, "--workers", "1", ENRICHER_SPARQL_MAX_ROWS="3") as served:
        with httpx.Client(base_url=served.url, timeout=120) as client:
            whole = client.post("sparql", data={"query": wide(3)}, headers={"Accept": "text/tab-separated-values"})
            assert whole.status_code == 200 and "content-length" not in whole.headers
            assert len(whole.text.splitlines()) == 4 and len(whole.content) > 3 * WIDE
            with pytest.raises(httpx.RemoteProtocolError):  # the body ends without its closing chunk
                client.post("sparql", data={"query": wide(4)})
            small = "SELECT ?n WHERE { VALUES ?n { 1 2 3 4 } }"
            refused = client.post("sparql", data={"query": small})
            assert refused.status_code == 422 and refused.headers["Content-Type"] == "application/problem+json"
            fits = client.post("sparql", data={"query": small + " LIMIT 3"})
            assert fits.status_code == 200 and fits.headers["Content-Length"] == str(len(fits.content))
        assert "ResultTooLarge" in served.log.read_text()  # the late refusal is in the log


def test_the_remote_index_streams_the_triplestores_answer_through(tmp_path, triplestore):  # noqa: F811
    with live_server(tmp_path, **remote(triplestore)) as server:
        index = server.app.extensions["enricher"].index()
        reference = Index()
        for name in ("json", "tsv"):
            answer = index.query(wide(3), format=name, max_rows=3, timeout=60)
            assert not answer.whole and answer.body == reference.query(wide(3), format=name, timeout=None).body
            past_cap = index.query(wide(4), format=name, max_rows=3, timeout=60)
            assert not past_cap.whole
            with pytest.raises(ResultTooLarge):
                past_cap.body
        triples = index.query(wide(3, construct=True), format="ntriples", timeout=60)
        assert not triples.whole and triples.body == reference.query(wide(3, construct=True), format="ntriples").body
        reference.close()
