"""Abuse limits over real HTTP: writes and job submissions past a client's or a token's bucket answer
429 with Retry-After as problem+json (checked against the OpenAPI document) and change nothing; reads
and SPARQL by POST are not counted; X-Forwarded-For counts only behind trusted proxies; IPv6 clients
count by /64; and the buckets hold across two ``enricher serve`` processes on one database.

The rates are one a minute or slower, so no test depends on how fast it runs."""

from __future__ import annotations

import re
from contextlib import ExitStack

import httpx
import pytest
from factories import make_manifest
from test_web_serve import enricher_serve
from webclient import AUTH, Client, live_server, seed

from enricher.errors import ConfigError
from enricher.web import create_app
from enricher.web.limits import WRITES
from enricher.web.openapi import spec

SLOW = 1.0  # units a minute: a refused client waits a minute
NOTE = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "bodyValue": "a note"}
JOB = {"manifest": "https://example.org/iiif/manifest.json"}
OTHER = {"Authorization": "Bearer bare-secret"}  # webclient.TOKENS' second token, named token-<hash>
GUESS = {"Authorization": "Bearer guess"}


def assert_too_many(response: httpx.Response, *words: str) -> dict:
    """RESPONSE is a 429 problem with a Retry-After in whole seconds; its detail names every one of WORDS."""
    assert response.status_code == 429, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 429 and problem["type"].endswith("/too-many-requests")
    assert 1 <= int(response.headers["Retry-After"]) <= 60  # a minute at most: the rates here are one a minute
    assert all(word in problem["detail"] for word in words), problem["detail"]
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]  # pages on other origins read it
    return problem


@pytest.fixture
def note_to(tmp_path):
    """Serve a seeded manifest with the limits given: serve(**settings) returns a client, the
    manifest's container and a note to post to it."""
    with ExitStack() as stack:

        def serve(**settings):
            server = stack.enter_context(live_server(tmp_path, **settings))
            key, manifest = seed(server, make_manifest(3, [("a", 1000, 800)], "https://images.example.org/iiif"), [1])
            note = {**NOTE, "target": manifest.canvases[0].id}
            return stack.enter_context(Client(server)), f"/{key}/annotations/", note

        yield serve


def test_every_write_declares_its_429_in_the_openapi_document():
    for path, operations in spec()["paths"].items():
        for method, operation in operations.items():
            if method.upper() in WRITES and path not in ("/sparql", "/oai"):  # their POST only reads
                assert "429" in operation["responses"], f"{method.upper()} {path} does not declare 429"


def test_writes_past_the_burst_answer_429_and_change_nothing(note_to):
    client, container, note = note_to(write_burst=3, write_rate=SLOW)
    assert [client.post(container, note).status_code for _ in range(3)] == [201] * 3
    refused = client.post(container, note)
    problem = assert_too_many(refused, "client 127.0.0.1", "3 at once", "1 a minute", "write_burst", "write_rate")
    assert f"try again in {refused.headers['Retry-After']} s" in problem["detail"]
    assert problem["instance"].endswith(container)
    assert client.get(container).json()["total"] == 4  # the seeded machine annotation and three notes
    # reads and SPARQL queries by POST are not writes
    assert client.get(container).status_code == 200
    query = client.request("POST", "/sparql", data={"query": "ASK {}"})
    assert query.status_code == 200
    # every kind of write is counted: PUT and DELETE too
    first = client.get(container).json()["first"]["items"][0]
    assert client.delete(first["id"], headers={"If-Match": '"x"'}).status_code == 429


def test_a_write_to_no_route_is_not_counted(note_to):
    client, container, note = note_to(write_burst=1, write_rate=SLOW)
    assert [client.post("/nowhere", note).status_code for _ in range(3)] == [404] * 3
    assert client.post(container, note).status_code == 201


def test_each_token_has_a_bucket_of_its_own_beside_each_clients(note_to):
    client, container, note = note_to(write_burst=2, write_rate=SLOW, trusted_proxies=1)
    one, two, three = ({"X-Forwarded-For": f"192.0.2.{n}"} for n in (1, 2, 3))
    assert [client.post(container, note, headers=one).status_code for _ in range(2)] == [201, 201]
    # another client with the same token: the token's bucket is empty
    assert_too_many(client.post(container, note, headers=two), "token curator")
    # that client with another token, and the first client with no token left at all
    assert client.post(container, note, headers={**two, **OTHER}).status_code == 201
    assert_too_many(client.post(container, note, headers={**one, **OTHER}), "client 192.0.2.1")
    # writes without a valid token count against their client: guessing tokens is slowed down too
    guesses = [client.post(container, note, headers={**three, "Authorization": f"Bearer guess{n}"}) for n in range(3)]
    assert [g.status_code for g in guesses[:2]] == [401, 401]
    assert_too_many(guesses[2], "client 192.0.2.3")


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(note_to):
    client, container, note = note_to(write_burst=2, write_rate=SLOW)
    assert client.post(container, note, headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 201
    assert client.post(container, note, headers={"X-Forwarded-For": "192.0.2.2", **OTHER}).status_code == 201
    # a forged address changes nothing: this is still 127.0.0.1, whose bucket is empty
    assert_too_many(client.post(container, note, headers={"X-Forwarded-For": "192.0.2.3"}), "client 127.0.0.1")


def test_an_ipv6_client_counts_by_its_64_network(note_to):
    client, container, note = note_to(write_burst=1, write_rate=SLOW, trusted_proxies=1)

    def post_from(address: str, headers: dict | None = None) -> httpx.Response:
        return client.post(container, note, headers={"X-Forwarded-For": address, **(headers or {})})

    assert post_from("2001:db8:0:7::1").status_code == 201
    # another address in the same /64, with another token: the network's bucket is empty
    assert_too_many(post_from("2001:db8:0:7:ffff::2", OTHER), "client 2001:db8:0:7::/64")
    assert post_from("2001:db8:0:8::1", OTHER).status_code == 201  # the next /64 is another client
    # an IPv4 client written as IPv4-mapped IPv6 is that IPv4 client (no valid token: only it counts)
    assert post_from("192.0.2.9", GUESS).status_code == 401
    assert_too_many(post_from("::ffff:192.0.2.9", GUESS), "client 192.0.2.9")


def test_jobs_have_a_limit_of_their_own(note_to):
    client, container, note = note_to(job_burst=2, job_rate=SLOW, write_burst=10, write_rate=SLOW)
    # requests that are no job take nothing from the job buckets (they are writes, though)
    assert [client.post("/jobs", {"manifest": "nowhere"}).status_code for _ in range(3)] == [422] * 3
    jobs = [client.post("/jobs", JOB) for _ in range(2)]
    assert [job.status_code for job in jobs] == [202, 202]
    assert_too_many(client.post("/jobs", JOB), "client 127.0.0.1", "jobs", "job_burst", "job_rate")
    assert len(client.get("/jobs").json()["jobs"]) == 2
    # other writes go on, cancelling a job among them
    assert client.post(container, note).status_code == 201
    assert client.delete(jobs[0].json()["id"]).status_code == 200


def test_a_job_listing_more_canvases_than_the_cap_is_refused(note_to):
    client, _, _ = note_to(max_canvases=3)
    response = client.post("/jobs", {**JOB, "canvases": [0, 1, 2, 3]})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["pointer"] == "/canvases"
    assert "lists 4 canvases; a job may enrich at most 3 (setting max_canvases)" in problem["detail"]
    assert client.post("/jobs", {**JOB, "canvases": [0, 1, 2]}).status_code == 202


@pytest.mark.parametrize("settings, message", [
    ({"write_burst": 0}, "write_burst must be at least 1 while write_rate is on"),
    ({"job_rate": -1.0}, "job_rate must be 0 (no limit) or more"),
    ({"trusted_proxies": -1}, "trusted_proxies must be 0 or more"),
])
def test_limits_that_cannot_be_used_are_refused_at_start(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app({"database": str(tmp_path / "db.sqlite3"), **settings})
    create_app({"database": str(tmp_path / "db.sqlite3"), **settings, "write_rate": 0, "job_rate": 0,
                "trusted_proxies": 0}).extensions["enricher"].close()  # with the limits off, nothing is checked


def test_the_limits_hold_across_processes_on_one_database(tmp_path):
    limits = {"ENRICHER_JOB_BURST": "3", "ENRICHER_JOB_RATE": str(SLOW)}
    with enricher_serve(tmp_path, "--workers", "1", **limits) as first, \
            enricher_serve(tmp_path, "--workers", "1", **limits) as second:
        sent = [httpx.post(f"{server.url}jobs", json=JOB, headers=AUTH) for server in (first, second, first)]
        assert [response.status_code for response in sent] == [202, 202, 202]
        for server in (second, first):  # per process, each would still allow one or two
            refused = httpx.post(f"{server.url}jobs", json=JOB, headers=AUTH)
            assert_too_many(refused, "client 127.0.0.1", "job_burst")
