"""The W3C Web Annotation Protocol, write side, over real HTTP: POST to a container, PUT with If-Match
(20 at once with the same ETag: one wins), DELETE then 410, and bad requests as problem+json."""

from __future__ import annotations

import json
import threading

import pytest
from conformance import assert_w3c_annotation
from factories import make_manifest
from webclient import ANNO, AUTH, Client, links, live_server, seed

LDP = "http://www.w3.org/ns/ldp#"
CANVAS_SIZE = (1000, 800)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-writes"), max_body=20_000) as server:
        document = make_manifest(3, [("a", *CANVAS_SIZE), ("b", *CANVAS_SIZE)], "https://images.example.org/iiif")
        server.key, server.manifest = seed(server, document, (2, 1))
        yield server


@pytest.fixture
def container(server) -> str:
    return f"{server.url}{server.key}/annotations/"


def note(server, text: str = "a dog, surely", target: object | None = None, **extra) -> dict:
    """A person's annotation on the first canvas."""
    canvas = server.manifest.canvases[0].id
    return {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "Annotation",
        "motivation": "commenting",
        "body": {"type": "TextualBody", "value": text, "format": "text/plain"},
        "target": target if target is not None else f"{canvas}#xywh=10,20,30,40",
        **extra,
    }


def assert_problem(response, status: int, pointer: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    if pointer is not None:
        assert problem["pointer"] == pointer, problem
    return problem


def total(client, container) -> int:
    return client.get(container).json()["total"]


# create

def test_post_creates_an_annotation_under_the_container(client, container, server, conformance_dir):
    before = total(client, container)
    response = client.post(container, note(server, id="urn:uuid:1234", canonical="urn:uuid:5678"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == created["id"]
    assert created["id"].startswith(container) and len(created["id"]) > len(container)
    assert response.headers["Content-Type"] == ANNO and response.headers["ETag"]
    assert links(response) == [f'<{LDP}Resource>; rel="type"']
    assert created["via"] == "urn:uuid:1234" and created["canonical"] == "urn:uuid:5678"
    assert created["creator"] == {"type": "Person", "nickname": "curator"}
    assert created["created"] and created["modified"]
    assert created["body"] == [{"type": "TextualBody", "value": "a dog, surely", "format": "text/plain"}]
    canvas = server.manifest.canvases[0]
    assert created["target"]["source"]["id"] == canvas.id
    assert created["target"]["selector"]["value"] == "xywh=10,20,30,40"
    assert_w3c_annotation(created, conformance_dir)
    fetched = client.get(created["id"])
    assert fetched.json() == created and fetched.headers["ETag"] == response.headers["ETag"]
    assert total(client, container) == before + 1


def test_a_bare_token_is_recorded_by_its_fingerprint(client, container, server):
    response = client.post(container, note(server), headers={"Authorization": "Bearer bare-secret"})
    assert response.status_code == 201
    nickname = response.json()["creator"]["nickname"]
    assert nickname.startswith("token-") and "bare-secret" not in response.text


@pytest.mark.parametrize(
    "target, value",
    [
        ("{canvas}", "xywh=0,0,1000,800"),
        ({"source": "{canvas}"}, "xywh=0,0,1000,800"),
        ({"type": "SpecificResource", "source": {"id": "{canvas}", "type": "Canvas"},
          "selector": {"type": "FragmentSelector", "value": "xywh=pixel:1,2,3,4"}}, "xywh=1,2,3,4"),
        (["{canvas}#xywh=5,6,7,8.5"], "xywh=5,6,7,9"),
        ({"id": "{canvas}#xywh=990,790,50,50"}, "xywh=990,790,10,10"),
    ],
)
def test_targets_are_brought_to_one_shape(client, container, server, target, value):
    canvas = server.manifest.canvases[0].id
    target = json.loads(json.dumps(target).replace("{canvas}", canvas))
    response = client.post(container, note(server, target=target))
    assert response.status_code == 201, response.text
    assert response.json()["target"]["selector"]["value"] == value


def test_body_value_becomes_a_textual_body(client, container, server):
    document = note(server)
    del document["body"]
    response = client.post(container, {**document, "bodyValue": "plain words"})
    assert response.status_code == 201
    assert response.json()["body"] == [{"type": "TextualBody", "value": "plain words", "format": "text/plain"}]


@pytest.mark.parametrize(
    "change, pointer",
    [
        ({"@context": "http://iiif.io/api/presentation/3/context.json"}, "/@context"),
        ({"type": "Note"}, "/type"),
        ({"target": None}, "/target"),
        ({"target": "https://elsewhere.example/canvas/9"}, "/target"),
        ({"target": {"source": "https://elsewhere.example/canvas/9"}}, "/target/source"),
        ({"target": ["{canvas}", "{canvas}"]}, "/target"),
        ({"target": "{canvas}#xywh=2000,2000,5,5"}, "/target"),
        ({"target": {"source": "{canvas}", "selector": {"type": "FragmentSelector", "value": "t=10"}}}, "/target/selector/value"),
        ({"target": {"source": "{canvas}", "selector": {"type": "CssSelector", "value": "#x"}}}, "/target/selector"),
        ({"body": {"type": "SpecificResource", "source": "http://www.wikidata.org/entity/Q144"}}, "/body/value"),
        ({"body": [{"type": "TextualBody", "value": "ok"}, {"type": "TextualBody", "value": " "}]}, "/body/1/value"),
        ({"body": ["http://www.wikidata.org/entity/Q144"]}, "/body/0"),
        ({"bodyValue": "both"}, "/bodyValue"),
    ],
)
def test_bad_annotations_name_the_field(client, container, server, change, pointer):
    canvas = server.manifest.canvases[0].id
    document = {**note(server), **json.loads(json.dumps(change).replace("{canvas}", canvas))}
    if document.get("target") is None:
        del document["target"]
    assert_problem(client.post(container, document), 422, pointer)


def test_post_problems(client, container, server):
    assert_problem(client.request("POST", container, content=b"{", headers={**AUTH, "Content-Type": ANNO}), 400)
    assert_problem(client.post(container, ["not", "an", "annotation"]), 400)
    response = client.request("POST", container, json=note(server))
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    text = client.request("POST", container, content=b"hello", headers={**AUTH, "Content-Type": "text/plain"})
    assert_problem(text, 415)
    assert_problem(client.post(container, note(server, text="x" * 30_000)), 413)
    assert_problem(client.post(f"{server.url}0123456789abcdef/annotations/", note(server)), 404)


# update

def created(client, container, server, **extra) -> tuple[str, str, dict]:
    response = client.post(container, note(server, **extra))
    assert response.status_code == 201
    return response.json()["id"], response.headers["ETag"], response.json()


def test_put_with_the_current_etag_replaces_the_annotation(client, container, server):
    url, etag, document = created(client, container, server)
    changed = {**document, "body": [{"type": "TextualBody", "value": "a wolf, in fact"}]}
    response = client.put(url, changed, headers={"If-Match": etag})
    assert response.status_code == 200, response.text
    assert response.json()["body"][0]["value"] == "a wolf, in fact"
    assert response.headers["ETag"] != etag
    assert links(response) == [f'<{LDP}Resource>; rel="type"']
    assert response.json()["modified"] >= document["modified"]
    assert response.json()["created"] == document["created"]
    fetched = client.get(url)
    assert fetched.json() == response.json() and fetched.headers["ETag"] == response.headers["ETag"]


def test_put_with_a_stale_etag_is_412(client, container, server):
    url, etag, document = created(client, container, server)
    assert client.put(url, document, headers={"If-Match": etag}).status_code == 200
    problem = assert_problem(client.put(url, document, headers={"If-Match": etag}), 412)
    assert etag in problem["detail"]


def test_put_without_if_match_is_428(client, container, server):
    url, _, document = created(client, container, server)
    assert_problem(client.put(url, document), 428)


def test_put_cannot_change_the_id_or_canonical(client, container, server):
    url, etag, document = created(client, container, server, canonical="urn:uuid:1")
    assert_problem(client.put(url, {**document, "id": url + "x"}, headers={"If-Match": etag}), 422, "/id")
    assert_problem(client.put(url, {**document, "canonical": "urn:uuid:2"}, headers={"If-Match": etag}), 422, "/canonical")


def test_put_needs_a_token(client, container, server):
    url, etag, document = created(client, container, server)
    response = client.request("PUT", url, json=document, headers={"If-Match": etag})
    assert_problem(response, 401)


def test_editing_a_machine_annotation_records_the_editor(client, container, server):
    with server.store() as store:
        machine = next(a for a in store.page(server.key, 0, 100) if a.origin == "machine")
    response = client.get(machine.id)
    document = {**response.json(), "body": [{"type": "TextualBody", "value": "a cat, not a dog", "purpose": "tagging"}]}
    updated = client.put(machine.id, document, headers={"If-Match": response.headers["ETag"]})
    assert updated.status_code == 200
    assert updated.json()["creator"] == {"type": "Person", "nickname": "curator"}
    assert updated.json()["generator"] == response.json()["generator"]
    with server.store() as store:
        assert store.get(machine.id).origin == "edited"


def test_twenty_simultaneous_puts_with_one_etag(client, container, server, conformance_dir):
    url, etag, document = created(client, container, server)
    start = threading.Barrier(20)
    results: dict[int, object] = {}

    def put(n: int) -> None:
        body = {**document, "body": [{"type": "TextualBody", "value": f"version {n}"}]}
        with Client(server) as own:
            start.wait()
            results[n] = own.put(url, body, headers={"If-Match": etag})

    threads = [threading.Thread(target=put, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [200] + [412] * 19
    (winner,) = [n for n, r in results.items() if r.status_code == 200]
    final = client.get(url)
    assert final.json()["body"] == [{"type": "TextualBody", "value": f"version {winner}"}]
    assert final.headers["ETag"] == results[winner].headers["ETag"]
    assert_w3c_annotation(final.json(), conformance_dir)
    with server.store() as store:
        assert store.get(url).version == 2


# delete

def test_delete_then_gone(client, container, server):
    url, etag, document = created(client, container, server)
    before = total(client, container)
    response = client.delete(url)
    assert response.status_code == 204 and response.content == b""
    assert_problem(client.get(url), 410)
    assert client.head(url).status_code == 410
    assert_problem(client.put(url, document, headers={"If-Match": etag}), 410)
    assert_problem(client.delete(url), 410)
    assert total(client, container) == before - 1


def test_delete_with_a_stale_etag_is_412(client, container, server):
    url, etag, document = created(client, container, server)
    client.put(url, document, headers={"If-Match": etag})
    assert_problem(client.delete(url, headers={"If-Match": etag}), 412)
    assert client.get(url).status_code == 200


def test_delete_needs_a_token(client, container, server):
    url, _, _ = created(client, container, server)
    assert_problem(client.request("DELETE", url), 401)
    assert client.get(url).status_code == 200


def test_writes_change_the_container_etag(client, container, server):
    etag = client.get(container).headers["ETag"]
    created(client, container, server)
    assert client.get(container).headers["ETag"] != etag
