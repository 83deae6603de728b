"""Errors over real HTTP: problem+json with the right status everywhere, a pointer for bad body fields,
no stack trace; bearer tokens on writes; CORS; and the OpenAPI document itself."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate
from webclient import AUTH, SECRET, Client, live_server

from enricher.web.openapi import spec

PROBLEM_FIELDS = {"type", "title", "status", "detail"}
JOB = {"manifest": "https://example.org/iiif/manifest.json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("web-errors"), max_body=2000) as server:
        yield server


def assert_problem(response, status: int, pointer: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert PROBLEM_FIELDS <= problem.keys() and problem["status"] == status
    assert problem["type"].startswith("https://w3id.org/enricher/problems/")
    if pointer is not None:
        assert problem["pointer"] == pointer
    assert "Traceback" not in response.text
    return problem


def test_openapi_document_is_valid_openapi_3_1():
    document = spec()
    assert document["openapi"].startswith("3.1")
    validate(document)


def _template(rule: str) -> str:
    # /<key:key>/pages/<int:index>.json -> /{key}/pages/{index}.json
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def test_every_route_and_method_is_documented(server):
    documented = {(path, method.upper()) for path, item in spec()["paths"].items() for method in item if method != "parameters"}
    served = {
        (_template(rule.rule), method)
        for rule in server.app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served <= documented, served - documented
    assert {(p, m) for p, m in documented if m not in ("HEAD", "OPTIONS")} == served
    for path in ("/annotations/", "/{key}/annotations/", "/{key}/annotations/{aid}"):
        assert {(path, "HEAD"), (path, "OPTIONS")} <= documented


def test_openapi_is_served_with_the_public_base_url(client, server):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json()["servers"] == [{"url": server.url}]
    assert response.json()["paths"].keys() == spec()["paths"].keys()


def test_unknown_route_is_a_problem(client):
    problem = assert_problem(client.get("/no/such/thing", headers={"Accept": "text/html"}), 404)
    assert problem["instance"].endswith("/no/such/thing")


def test_wrong_method_is_a_problem_with_allow(client):
    response = client.request("POST", "/annotations/", headers=AUTH, json={})
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    "headers, error",
    [({}, None), ({"Authorization": "Bearer wrong"}, "invalid_token"), ({"Authorization": "Basic Y3VyYXRvcjp4"}, None)],
)
def test_writes_need_a_bearer_token(client, headers, error):
    response = client.request("POST", "/jobs", json=JOB, headers=headers)
    assert_problem(response, 401)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="enricher"')
    assert ("invalid_token" in challenge) == (error is not None)


@pytest.mark.parametrize("given", [SECRET[:-1], SECRET + "x", SECRET.upper(), SECRET[1:], SECRET + "\u00e9"])
def test_a_near_miss_of_a_secret_is_not_a_token(client, given):
    headers = {"Authorization": f"Bearer {given}".encode("utf-8")}
    response = client.request("POST", "/jobs", json=JOB, headers=headers)
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_bare_secret_is_a_token_too(client):
    response = client.request("POST", "/jobs", content=b"[", headers={"Authorization": "Bearer bare-secret", "Content-Type": "application/json"})
    assert_problem(response, 400)  # past authentication, stopped at the body


def test_invalid_json_names_line_and_column(client):
    response = client.post("/jobs", headers={"Content-Type": "application/json"}, content=b'{"manifest":\n  nope}')
    problem = assert_problem(response, 400)
    assert "line 2 column 3" in problem["detail"]


def test_wrong_content_type_is_415(client):
    response = client.request("POST", "/jobs", content=b"manifest=x", headers={**AUTH, "Content-Type": "text/plain"})
    assert "text/plain" in assert_problem(response, 415)["detail"]


def test_oversize_body_is_413(client):
    big = {"manifest": "https://example.org/" + "x" * 3000}
    assert_problem(client.post("/jobs", big), 413)


def test_oversize_body_without_length_is_413(client):
    chunks = (b'{"manifest": "' + b"x" * 1000 + b'"}' for _ in range(3))
    response = client.request("POST", "/jobs", content=chunks, headers={**AUTH, "Content-Type": "application/json"})
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"manifest": "ftp://example.org/m.json"}, "/manifest"),
        ({}, "/manifest"),
        ({**JOB, "conf": 2}, "/conf"),
        ({**JOB, "iou": "high"}, "/iou"),
        ({**JOB, "canvases": [0, True]}, "/canvases/1"),
        ({**JOB, "canvases": "all"}, "/canvases"),
        ({**JOB, "region": "xywh=1,2"}, "/region"),
        ({**JOB, "tiled": "sometimes"}, "/tiled"),
        ({**JOB, "colour": "red"}, "/colour"),
    ],
)
def test_bad_job_fields_are_named_by_pointer(client, body, pointer):
    assert_problem(client.post("/jobs", body), 422, pointer)


def test_a_job_request_must_be_an_object(client):
    assert_problem(client.post("/jobs", ["https://example.org/m.json"]), 400)


def test_internal_errors_are_problems_without_a_trace(tmp_path):
    with live_server(tmp_path) as server:

        def explode():
            raise RuntimeError("secret internals at /srv/enricher/app.py line 12")

        server.app.add_url_rule("/explode", view_func=explode)
        client = Client(server, check=False)
        response = client.get("/explode")
        problem = assert_problem(response, 500)
        assert "secret" not in response.text and "/srv/" not in response.text
        assert re.search(r"the log names it [0-9a-f]{32}", problem["detail"])
        client.close()


def test_reads_are_open_to_every_origin(client):
    response = client.get("/openapi.json", headers={"Origin": "https://viewer.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Allow", "Content-Location", "ETag", "Link", "Location", "Vary"} <= exposed


def test_errors_are_readable_cross_origin(client):
    response = client.get("/nowhere", headers={"Origin": "https://viewer.example"})
    assert response.status_code == 404 and response.headers["Access-Control-Allow-Origin"] == "*"


def test_preflight_allows_writes_with_tokens(client):
    response = client.options(
        "/jobs",
        headers={"Origin": "https://viewer.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "prefer"} <= allowed


def test_our_json_ld_context_is_served(client):
    response = client.get("/context.jsonld")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/ld+json"
    assert "confidence" in response.json()["@context"]


def test_a_broken_database_is_a_500_problem_naming_no_path(tmp_path):
    database = tmp_path / "broken.sqlite3"
    database.write_bytes(b"this is not a database, it is a text file " * 100)
    with live_server(tmp_path, database=str(database)) as server, Client(server, check=False) as client:
        response = client.get(f"{'0' * 16}/annotations/")
        problem = assert_problem(response, 500)
        assert str(tmp_path) not in response.text and "database" not in problem["detail"]
