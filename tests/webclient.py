"""Helpers for the web tests: the real app under a real WSGI server on loopback, and an HTTP client
that checks every response it gets against our OpenAPI document."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import httpx
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.serving import make_server

from enricher.web import create_app

WRITER = "curator"
SECRET = "s3cret-curator"
TOKENS = [f"{WRITER}:{SECRET}", "bare-secret"]
AUTH = {"Authorization": f"Bearer {SECRET}"}
ANNO = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'


class _Switch:
    """A WSGI app that forwards to one set later: the server must exist (and know its port) before the
    app, whose base URL names that port."""

    app: Any = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class LiveServer:
    """create_app(overrides) served by werkzeug's threaded server on 127.0.0.1, port chosen by the OS."""

    def __init__(self, folder: Path, **overrides: Any) -> None:
        switch = _Switch()
        self.server = make_server("127.0.0.1", 0, switch, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        settings = {"database": str(folder / "enricher.sqlite3"), "base_url": self.url, "tokens": TOKENS, "job_worker": False}
        self.app = switch.app = create_app({**settings, **overrides})
        self.config = self.app.extensions["enricher"].config
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def store(self):
        """A Store on the server's database, for seeding (the store is not under test here)."""
        from enricher.store import open_store

        return open_store(self.config.database)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        runner = self.app.extensions.get("enricher.jobs")
        if runner is not None:
            runner.stop()
        self.app.extensions["enricher"].close()


@contextmanager
def live_server(tmp_path: Path, **overrides: Any) -> Iterator[LiveServer]:
    """Serve a fresh app on a fresh database under TMP_PATH."""
    server = LiveServer(tmp_path, **overrides)
    try:
        yield server
    finally:
        server.close()


@lru_cache(maxsize=None)
def openapi():
    """Our OpenAPI document, loaded by openapi-core."""
    from openapi_core import Config, OpenAPI

    from enricher.web.openapi import spec

    def as_json(data: bytes, **parameters: str) -> Any:  # parameters: the media type's, such as profile
        return json.loads(data)

    def as_text(data: bytes, **parameters: str) -> str:
        return data.decode(parameters.get("charset", "utf-8"))

    readers = {"application/ld+json": as_json, "application/problem+json": as_json, "text/turtle": as_text}
    return OpenAPI.from_dict(spec(), config=Config(extra_media_type_deserializers=readers))


@dataclass
class _Request:
    """An httpx request as openapi-core reads one."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: Any


@dataclass
class _Response:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


def check_against_openapi(response: httpx.Response) -> None:
    """Fail unless RESPONSE is one our OpenAPI document describes (status, headers, body schema)."""
    from openapi_core.datatypes import RequestParameters

    request = response.request
    url = urlsplit(str(request.url))
    parameters = RequestParameters(
        query=ImmutableMultiDict(httpx.QueryParams(url.query).multi_items()),
        header=Headers(list(request.headers.items())),
        cookie=ImmutableMultiDict(),
    )
    ours = _Request(
        f"{url.scheme}://{url.netloc}", url.path, request.method.lower(), _sent(request),
        request.headers.get("Content-Type", "").lower(), parameters,
    )
    headers = Headers(list(response.headers.multi_items()))
    data = response.content if request.method != "HEAD" else None
    theirs = _Response(response.status_code, response.headers.get("Content-Type", "").lower(), headers, data or None)
    from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
    from openapi_core.templating.responses.exceptions import ResponseNotFound

    try:
        openapi().validate_response(ours, theirs)
    except PathNotFound:
        assert response.status_code == 404, f"{url.path} is not in the OpenAPI document"
    except OperationNotFound:
        assert response.status_code == 405, f"{request.method} {url.path} is not in the OpenAPI document"
    except ResponseNotFound:  # a 405 may match a templated path of other methods
        assert response.status_code == 405, f"{response.status_code} to {request.method} {url.path} is undocumented"


def _sent(request: httpx.Request) -> bytes | None:
    try:
        return request.content or None
    except httpx.RequestNotRead:  # streamed: gone
        return None


class Client:
    """An httpx client on a LiveServer; every response is checked against the OpenAPI document."""

    def __init__(self, server: LiveServer, check: bool = True) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.check = check

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, url, **kwargs)
        if self.check and response.status_code != 304 and method not in ("HEAD", "OPTIONS"):
            check_against_openapi(response)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str, document: Any = None, *, headers: dict | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **_body(document, {**AUTH, **(headers or {})}), **kwargs)

    def put(self, url: str, document: Any = None, *, headers: dict | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **_body(document, {**AUTH, **(headers or {})}), **kwargs)

    def delete(self, url: str, *, headers: dict | None = None, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, headers={**AUTH, **(headers or {})}, **kwargs)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _body(document: Any, headers: dict) -> dict:
    if document is None:
        return {"headers": headers}
    return {"content": json.dumps(document).encode(), "headers": {"Content-Type": ANNO, **headers}}


def links(response: httpx.Response) -> list[str]:
    """Every Link header value, one entry per link."""
    return [part.strip() for value in response.headers.get_list("Link") for part in value.split(",")]


GENERATOR_SHA = "ab" * 32


def seed(server: LiveServer, document: dict, per_canvas: Sequence[int], label: str = "dog") -> tuple[str, Any]:
    """Store DOCUMENT (a manifest) and PER_CANVAS[i] machine annotations of class LABEL on canvas i, built
    by annotate.build_annotation as a job would; return the manifest key and the parsed Manifest."""
    from enricher.annotate import Generator, build_annotation, manifest_key
    from enricher.detect import Detection
    from enricher.manifest import parse_manifest

    url = document.get("id") or document["@id"]
    manifest = parse_manifest(document, url)
    key = manifest_key(manifest.id)
    mapping = _vocabulary().lookup(label)
    generator = Generator("0.1.0", "test-model.pt", GENERATOR_SHA)
    with server.store() as store:
        store.save_manifest(key, manifest.id, url, manifest.label, document)
        for canvas, count in zip(manifest.canvases, per_canvas):
            annotations = [
                build_annotation(
                    canvas=canvas, manifest=manifest, detection=Detection(label, 0.5 + i / (2 * count + 2), (i, i, 40, 30)),
                    mapping=mapping, generator=generator, created="2026-01-01T00:00:00Z", config=server.config,
                )
                for i in range(count)
            ]
            store.replace_machine_annotations(key, canvas.id, GENERATOR_SHA, annotations)
    return key, manifest


@lru_cache(maxsize=None)
def _vocabulary():
    from enricher.vocab import Vocabulary

    return Vocabulary.load()


JOB_SECONDS = 300  # a ceiling for a job, not a measure


def run_job(client: Client, params: dict, seconds: float = JOB_SECONDS) -> dict:
    """Post PARAMS to /jobs and poll the job until it has left the queue and stopped running; return it."""
    job = client.post("/jobs", params).json()
    deadline = time.monotonic() + seconds
    while (job := client.get(job["id"]).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"the job did not finish: {job}"
        time.sleep(0.1)
    return job
