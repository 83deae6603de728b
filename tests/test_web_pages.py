"""Built container pages kept as files (enricher.web.pages), over real HTTP on every store backend:
a kept page changes with a write, representations and formats never mix, a conditional GET is answered
304, the materializer writes every page ahead of its request, and the files stay within their budget."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from factories import make_manifest
from webclient import ANNO, AUTH, live_server, seed

from enricher.web.pages import Materializer, PageFiles, cache_folder

PAGE_SIZE = 4
PER_CANVAS = (5, 4)  # 9 annotations: pages of 4, 4 and 1
TURTLE = "text/turtle"


@pytest.fixture
def server(tmp_path, store_url):
    with live_server(tmp_path, page_size=PAGE_SIZE, database=store_url, page_cache=str(tmp_path / "pages")) as server:
        document = make_manifest(3, [("a", 1000, 800), ("b", 1000, 800)], "https://images.example.org/iiif")
        server.key, server.manifest = seed(server, document, PER_CANVAS)
        yield server


def kept(server) -> list:
    """The page files of the server."""
    folder = cache_folder(server.config)
    return sorted(folder.glob("*.page")) if folder.is_dir() else []


def page(server, index: int, key: str | None = None) -> str:
    container = f"{server.url}{key}/annotations/" if key else f"{server.url}annotations/"
    return f"{container}?iris=0&page={index}"


def test_a_kept_page_changes_after_a_write(client, server):
    url = page(server, 2, server.key)
    before = client.get(url)
    assert before.status_code == 200 and len(before.json()["items"]) == 1
    assert kept(server), "the page was not kept"
    assert client.get(url).content == before.content  # now from its file
    added = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "motivation": "commenting",
             "body": {"type": "TextualBody", "value": "a hat", "format": "text/plain"},
             "target": f"{server.manifest.canvases[1].id}#xywh=10,20,30,40"}
    assert client.post(f"{server.url}{server.key}/annotations/", added, headers=AUTH).status_code == 201
    for address in (url, page(server, 2)):  # the manifest's container and that of everything
        after = client.get(address)
        assert after.status_code == 200
        assert after.headers["ETag"] != before.headers["ETag"]
        assert "a hat" in json.dumps(after.json()["items"][-1])
        assert after.json()["partOf"]["total"] == sum(PER_CANVAS) + 1


def test_a_kept_page_changes_after_a_delete(client, server):
    url = page(server, 0, server.key)
    before = client.get(url)
    first = before.json()["items"][0]["id"]
    deleted = client.delete(first, headers=AUTH)
    assert deleted.status_code == 204
    after = client.get(url)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert first not in {item["id"] for item in after.json()["items"]}


REPRESENTATIONS = (
    ({}, "?iris=0&page=1", ANNO),
    ({}, "?iris=1&page=1", ANNO),
    ({"Accept": TURTLE}, "?iris=0&page=1", TURTLE),
    ({"Accept": TURTLE}, "?iris=1&page=1", TURTLE),
    ({}, "?iris=0", ANNO),
    ({"Prefer": 'return=representation;include="http://www.w3.org/ns/ldp#PreferMinimalContainer"'}, "?iris=0", ANNO),
    ({"Accept": TURTLE}, "", TURTLE),
)


def test_representations_never_mix(client, server):
    container = f"{server.url}{server.key}/annotations/"
    first = [client.get(container + query, headers=headers) for headers, query, _ in REPRESENTATIONS]
    again = [client.get(container + query, headers=headers) for headers, query, _ in REPRESENTATIONS]
    for (headers, query, media_type), one, two in zip(REPRESENTATIONS, first, again):
        assert one.status_code == two.status_code == 200, (headers, query)
        assert one.headers["Content-Type"].startswith(media_type) and two.headers["Content-Type"] == one.headers["Content-Type"]
        assert two.content == one.content and two.headers["ETag"] == one.headers["ETag"], (headers, query)
    assert len({r.headers["ETag"] for r in first}) == len(REPRESENTATIONS)
    assert len({r.content for r in first}) == len(REPRESENTATIONS)


def test_conditional_get_of_a_kept_page(client, server):
    url = page(server, 1)
    got = client.get(url)
    etag = got.headers["ETag"]
    unchanged = client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["ETag"] == etag
    with server.store() as store:  # a job's write, not through the web
        store.delete(got.json()["items"][0]["id"], None)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_pages_past_the_end_are_not_kept(client, server):
    assert client.get(page(server, 3, server.key)).status_code == 404
    assert client.get(page(server, 3, server.key)).status_code == 404
    assert client.get(f"{server.url}{server.key}/annotations/?page=x").status_code == 400


def test_the_materializer_writes_every_page_ahead(client, server):
    here = server.app.extensions["enricher"]
    materializer = Materializer(here.store(), here.pages(), lambda store: here.page_builder(store, here.base, PAGE_SIZE))
    assert materializer.round() == 0  # the first round only notes where the change log is
    assert materializer.round() == 3 + 3  # everything's pages and the manifest's
    assert materializer.round() == 0  # nothing changed since
    files = set(kept(server))
    assert len(files) == 6
    for index in range(3):
        for key in (None, server.key):
            response = client.get(page(server, index, key))
            assert here.pages().path(response.headers["ETag"]) in files
            assert here.pages().path(response.headers["ETag"]).read_bytes() == response.content
    assert set(kept(server)) == files  # every GET was answered from a file


def test_no_files_without_a_budget(tmp_path, store_url):
    with live_server(tmp_path, page_size=PAGE_SIZE, database=store_url, page_cache=str(tmp_path / "pages"),
                     page_cache_bytes=0) as server:
        document = make_manifest(3, [("a", 1000, 800)], "https://images.example.org/iiif")
        seed(server, document, (6,))
        assert httpx.get(page(server, 1)).json()["startIndex"] == PAGE_SIZE
        assert kept(server) == []


def test_files_stay_within_the_budget(tmp_path):
    files = PageFiles(tmp_path / "pages", "salt", budget=10_000)
    paths = [files.put(f'"{n}"', bytes(1000)) for n in range(30)]
    for n, path in enumerate(paths):  # written a second apart, oldest first
        os.utime(path, (n, n))
    assert sum(p.stat().st_size for p in paths) == 30_000
    removed = files.sweep(used=set(paths), now=0.0)
    left = list((tmp_path / "pages").glob("*.page"))
    assert removed == 20 and sum(p.stat().st_size for p in left) <= 10_000
    assert files.path('"29"').read_bytes() == bytes(1000)  # the newest stay
    stale = files.sweep(used=set(), now=10**6)  # long after: nothing in use is kept
    assert stale == 10 and files.open('"29"') is None


def test_the_same_etag_of_another_service_is_another_file(tmp_path):
    one, other = PageFiles(tmp_path, "db one", 10**6), PageFiles(tmp_path, "db two", 10**6)
    one.put('"x"', b"one")
    assert other.open('"x"') is None and one.path('"x"').read_bytes() == b"one"
