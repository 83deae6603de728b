"""The whole flow in the scaled mode: two `enricher serve` processes (gunicorn) and two `enricher worker`
processes, each in a working directory of its own, share nothing but PostgreSQL, a broker (Redis), an
``oxigraph serve`` triplestore behind /sparql (the remote index, fed by the pusher) and the IIIF
server. A job over a manifest of 40 canvases ends with the annotations, annotation pages, container,
SPARQL counts and Change Discovery creations of the embedded run of the same manifest (SQLite, the
thread queue, the embedded index), read through each web process.

What is compared leaves out what differs from run to run by nature: each annotation's ``created`` and
``wasGeneratedBy`` (its time and job), the order of a container's items (the order they were stored
in) and the Updates of the Change Discovery stream and its times (how many depends on how the
follower's rounds fell between the writes)."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack

import httpx
import pytest
from conftest import BOOK_CANVASES, fresh_postgres_schema, unavailable
from dramatiq_cluster import BASE_URL, Cluster, reachable, wait_for
from test_dramatiq import documents
from test_push import OXIGRAPH, OxigraphServer
from test_remote_index import counts, remote
from webclient import live_server

from enricher.store import open_store

CANVAS_COUNT = BOOK_CANVASES
REDIS = "redis://127.0.0.1:6379/11"  # a database of its own: the broker's queue is emptied before the run
VARYING = {"created", "wasGeneratedBy", "endTime", "modified"}


def stable(value):
    """VALUE without the fields that vary per run (VARYING), lists of identified objects in id order."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        items = [stable(item) for item in value]
        if all(isinstance(item, dict) and "id" in item for item in items):
            items.sort(key=lambda item: item["id"])
        return items
    return value


def snapshot(url: str, job: dict) -> dict:
    """What the service at URL serves after JOB: its enriched manifest's annotation pages, its container
    (every item), the SPARQL counts and the Change Discovery creations."""

    def get(link: str) -> dict:
        response = httpx.get(link.replace(BASE_URL.rstrip("/"), url.rstrip("/")), timeout=60)
        assert response.status_code == 200, (link, response.text)
        return response.json()

    (result,) = job["results"]
    manifest = get(result["manifest"])
    pages = {canvas["id"]: stable(get(canvas["annotations"][-1]["id"])) for canvas in manifest["items"]}
    container = get(result["annotations"])
    activities = walk(get, get(url.rstrip("/") + "/activity/all-changes"), "orderedItems")
    return {
        "pages": pages,
        "container": stable({k: v for k, v in container.items() if k not in ("first", "last")}),
        "container items": stable(walk(get, container, "items")),
        "sparql": counts(url),
        "created": Counter((a["object"]["id"], a["object"]["type"]) for a in activities if a["type"] == "Create"),
        "changed": {a["object"]["id"] for a in activities},
    }


def walk(get, collection: dict, key: str) -> list[dict]:
    """Every item of COLLECTION's pages, from its first one along ``next``."""
    items: list[dict] = []
    page = collection.get("first")
    while page:
        if isinstance(page, str) or key not in page:
            page = get(page if isinstance(page, str) else page["id"])
        items += page[key]
        page = page.get("next")
    return items


def finished(url: str) -> dict:
    return wait_for(lambda: (job := httpx.get(url, timeout=30).json())["state"] not in ("queued", "running") and job,
                    "the job")


@pytest.fixture(scope="module")
def embedded(embedded_book, tmp_path_factory) -> tuple[dict, dict]:
    """The annotations of the embedded run of the book (conftest), and its snapshot as a web process over
    its database serves it (with the embedded index)."""
    with live_server(tmp_path_factory.mktemp("embedded-web"), base_url=BASE_URL,
                     database=str(embedded_book.database)) as server:
        job = httpx.get(f"{server.url}jobs/{embedded_book.job}", timeout=30).json()
        assert (job["state"], job["progress"]) == ("done", {"done": CANVAS_COUNT, "total": CANVAS_COUNT}), job
        with server.store() as store:
            return documents(store), snapshot(server.url, job)


def test_two_web_and_two_worker_processes_serve_what_the_embedded_run_serves(book, embedded, tmp_path):
    if OXIGRAPH is None:
        unavailable("the oxigraph server is missing (pip install oxigraph)")
    with ExitStack() as stack:
        database = stack.enter_context(fresh_postgres_schema(tmp_path))
        triplestore = OxigraphServer(tmp_path / "triplestore", "--union-default-graph")
        triplestore.start()
        stack.callback(triplestore.stop)
        cluster = Cluster(tmp_path, database, reachable("redis", REDIS), web=2, **remote(triplestore))
        stack.callback(cluster.stop)
        job = finished(cluster.submit(book))
        assert (job["state"], job["progress"], job["errors"]) == (
            "done", {"done": CANVAS_COUNT, "total": CANVAS_COUNT}, []), cluster.output()
        annotations, served = embedded
        with open_store(database) as store:
            assert documents(store) == annotations
        for url in cluster.urls:  # each web process serves the same, SPARQL from the triplestore
            wait_for(lambda url=url: counts(url) == served["sparql"], "the triplestore to hold the job's annotations",
                     cluster)
            scaled = snapshot(url, job)
            for part, expected in served.items():
                assert scaled[part] == expected, part
        assert served["sparql"]["annotations"] == len(annotations) > 0
        assert sum(len(page["items"]) for page in served["pages"].values()) == len(annotations)
