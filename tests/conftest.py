"""Shared fixtures: real servers on loopback (the IIIF reference image server, a static level-0 tree, a
scripted stub server for faults), settings, and the conformance folder."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import (
    BaseHTTPRequestHandler,
    SimpleHTTPRequestHandler,
    ThreadingHTTPServer,
)
from pathlib import Path

import pytest
from factories import gradient_image
from sampledata import SAMPLES

from enricher.config import DEFAULT_CONFORMANCE_DIR, Config, load_config
from enricher.datafiles import DEMO_WEIGHTS
from enricher.detect import Detector
from enricher.fetch import Fetcher
from enricher.imageserver import serve_images, write_static_tree
from enricher.store import BACKENDS

# identifier -> (width, height, black mark x, y, w, h or None)
TEST_IMAGES = {"gradient": (1000, 700, (600, 200, 80, 60)), "portrait": (360, 900, None)}
# PyTorch, as before exported runtimes: outputs compared with stored expectations stay as they were;
# tests/test_runtime.py and tests/test_privacy.py run the default (an exported model)
TEST_SETTINGS = {"allow_private": True, "backoff": 0.01, "timeout": 10.0, "runtime": "torch"}


class Settings(Config):
    """Test settings: loopback allowed, short backoff; call it with overrides for a changed copy."""

    def __call__(self, **overrides) -> Config:
        return load_config({**self.as_dict(), **overrides}, env={})


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Iterator[Path]:
    """One folder of exported models for the session, so the suite exports each model once; it and
    ``runtime=torch`` are also the environment of apps and commands the tests start."""
    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENRICHER_MODEL_CACHE", str(folder))
        patch.setenv("ENRICHER_RUNTIME", TEST_SETTINGS["runtime"])
        yield folder


def process_environment() -> dict[str, str]:
    """The environment of a process a test starts: this one's, without ENRICHER_* settings except the
    session's runtime and model cache (so it runs the model as the tests do)."""
    kept = ("ENRICHER_RUNTIME", "ENRICHER_MODEL_CACHE")
    return {k: v for k, v in os.environ.items() if not k.startswith("ENRICHER_") or k in kept}


@pytest.fixture(scope="session")
def config(model_cache) -> Settings:
    """Settings for tests (environment ignored); ``config(timeout=1)`` gives a changed copy."""
    return Settings(load_config({**TEST_SETTINGS, "model_cache": str(model_cache)}, env={}).as_dict())


@pytest.fixture
def fetcher(config) -> Iterator[Fetcher]:
    """A Fetcher with the test settings."""
    with Fetcher(config) as fetcher:
        yield fetcher


def unavailable(message: str) -> None:
    """Fail under CI, where every test must run; skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The shared W3C/IIIF conformance files: fail under CI when missing, else skip."""
    path = Path(os.environ.get("ENRICHER_CONFORMANCE_DIR", DEFAULT_CONFORMANCE_DIR))
    if not (path / "web-annotation").is_dir() or not (path / "iiif" / "iiif_3_0.json").is_file():
        message = f"the W3C/IIIF conformance files are missing: looked in {path} (set ENRICHER_CONFORMANCE_DIR)"
        unavailable(message)
    return path


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """A folder of test images (TEST_IMAGES): gradients whose pixels tell their position."""
    folder = tmp_path_factory.mktemp("images")
    for identifier, (width, height, mark) in TEST_IMAGES.items():
        gradient_image(width, height, mark).save(folder / f"{identifier}.jpg", quality=95)
    return folder


@pytest.fixture(scope="session")
def iiif_server(image_dir) -> Iterator[str]:
    """Base URL of the IIIF reference server over ``image_dir`` (see enricher.imageserver for the prefixes)."""
    with serve_images(image_dir) as base:
        yield base


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


@dataclass(frozen=True)
class StaticTree:
    url: str  # base URL; services at {url}/2/{identifier} (Image API 2.1) and {url}/3/{identifier} (3.0)
    root: Path  # the files: a URL path below url is a file path below root

    def service(self, identifier: str, version: int = 3) -> str:
        return f"{self.url}/{version}/{identifier}"

    def path(self, url: str) -> Path:
        return self.root / url.removeprefix(self.url + "/")


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="session")
def static_tree(image_dir, tmp_path_factory) -> Iterator[StaticTree]:
    """A level-0 tree of ``image_dir`` written by the iiif package's static generator, served by a plain
    threaded http.server on loopback."""
    root = tmp_path_factory.mktemp("static")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    base = f"http://127.0.0.1:{server.server_port}"
    write_static_tree(image_dir, root / "2", f"{base}/2", "2.1")
    write_static_tree(image_dir, root / "3", f"{base}/3", "3.0")
    thread = _serve(server)
    yield StaticTree(base, root)
    server.shutdown()
    server.server_close()
    thread.join()


HOLD_SECONDS = 300  # the longest a held reply waits for its test


@dataclass
class Reply:
    """One scripted answer. BODY may be bytes, or an int: that many bytes streamed without Content-Length."""

    status: int = 200
    body: bytes | int = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    held: threading.Event | None = None  # answered only once the test sets it (a bound guards a hang)


class StubServer:
    """A loopback HTTP server answering GET with scripted replies per path (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.answer(self)

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = _serve(self.server)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, *replies: Reply) -> str:
        """Script the replies to PATH; return its URL."""
        self.routes[path] = list(replies)
        return self.url(path)

    def json(self, path: str, text: str) -> str:
        return self.route(path, Reply(body=text.encode(), headers={"Content-Type": "application/json"}))

    def reset(self) -> None:
        self.routes.clear()
        self.hits.clear()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        replies = self.routes.get(path) or [Reply(404, b"not found", {"Content-Type": "text/plain"})]
        reply = replies[min(self.hits[path], len(replies) - 1)]
        self.hits[path] += 1
        if reply.held is not None:
            reply.held.wait(HOLD_SECONDS)
        time.sleep(reply.delay)
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if isinstance(reply.body, int):
                handler.end_headers()
                for _ in range(reply.body // 65536):
                    handler.wfile.write(b"\0" * 65536)
                return
            if "Content-Length" not in reply.headers:
                handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first, as some tests want

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="session")
def _stub_server() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


@pytest.fixture
def stub(_stub_server) -> StubServer:
    """The scripted stub server on loopback, with no routes and no hits."""
    _stub_server.reset()
    return _stub_server


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_port
    server.server_close()
    return port


@pytest.fixture(scope="session")
def sample_server() -> Iterator[str]:
    """Base URL of the IIIF reference server over the bundled sample images."""
    with serve_images(SAMPLES) as base:
        yield base


@pytest.fixture(scope="session")
def demo_detector(config) -> Detector:
    """The demo weights, loaded once for the session."""
    return Detector(config(weights=str(DEMO_WEIGHTS)))


BOOK_CANVASES = 40  # canvases of the book the distributed and scaled runs are compared over


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Iterator[str]:
    """The URL of a manifest of BOOK_CANVASES canvases on the IIIF reference image server."""
    from dramatiq_cluster import served_book  # it imports this module

    with served_book(tmp_path_factory.mktemp("book"), BOOK_CANVASES) as url:
        yield url


@dataclass(frozen=True)
class EmbeddedRun:
    """A job run in the embedded mode (the thread queue, SQLite): its database and job id."""

    database: Path
    job: str


def run_embedded(manifest: str, settings: Config, detector: Detector, database: Path) -> str:
    """Run a job of MANIFEST in the embedded mode (the thread queue, in this process) on the SQLite file
    DATABASE, to its end; return its id."""
    from enricher.jobs.thread import ThreadQueue
    from enricher.pipeline import Enricher
    from enricher.store import open_store

    with open_store(database) as store:
        queue = ThreadQueue(settings, store, enricher_factory=lambda config: Enricher(config, detector=detector))
        job = store.create_job({"manifest": manifest})
        assert queue.acquire()
        queue.run_pending()
        queue.release()
        assert store.job(job.id).state == "done", store.job(job.id)
    return job.id


@pytest.fixture(scope="session")
def embedded_book(book, config, demo_detector, tmp_path_factory) -> EmbeddedRun:
    """One embedded run of the book with the demo weights (batch 1, as the cluster tests' processes have
    it), under the cluster tests' base URL: what the distributed and scaled runs must equal."""
    from dramatiq_cluster import BASE_URL

    database = tmp_path_factory.mktemp("embedded") / "enricher.sqlite3"
    settings = config(weights=str(DEMO_WEIGHTS), base_url=BASE_URL, batch=1)
    return EmbeddedRun(database, run_embedded(book, settings, demo_detector, database))


@pytest.fixture
def client(server):
    """An OpenAPI-checking webclient.Client on the module's ``server`` fixture (a webclient.LiveServer)."""
    from webclient import Client

    with Client(server) as client:
        yield client


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """Debian's chromium and Mirador 3 and 4, installed once by tests/browser/setup.sh."""
    from browser.mirador import install

    if not shutil.which("npm"):
        unavailable("npm is not installed: the browser tests install Mirador 3 and 4 with it")
    try:
        return install()
    except RuntimeError as exc:
        unavailable(f"cannot install chromium and Mirador: {exc}")


@pytest.fixture(scope="session")
def chromium(node_modules):
    """Debian's chromium, headless, driven by Playwright: one for every browser test, since a second
    Playwright started in the same thread while the first runs refuses to start."""
    from browser.mirador import launch

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright; it drives Debian's chromium)")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


# how a fresh store of each registered backend is made; the contract suite runs on every one
POSTGRES_SERVER = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://root@127.0.0.1:5432/test")


@contextmanager
def fresh_postgres_schema(tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty schema on the test PostgreSQL server (TEST_POSTGRESQL_URL), dropped afterwards."""
    try:
        import psycopg
    except ModuleNotFoundError:
        unavailable("psycopg is not installed: pip install -e '.[test]' (PostgreSQL store tests)")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    try:
        admin = psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_SERVER} (start it: see the README): {exc}")
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


# backend -> a function of tmp_path giving a fresh store's URL, or a context manager that gives one
FRESH_STORES = {
    "sqlite": lambda tmp_path: f"sqlite:///{tmp_path}/db/enricher.sqlite3",
    "postgresql": fresh_postgres_schema,
}


@pytest.fixture(params=sorted(BACKENDS))
def store_url(request, tmp_path) -> Iterator[str]:
    """The URL of a fresh, empty store of each backend in enricher.store.BACKENDS."""
    if request.param not in FRESH_STORES:
        pytest.fail(f"the {request.param} backend has no FRESH_STORES entry in tests/conftest.py")
    with ExitStack() as stack:
        made = FRESH_STORES[request.param](tmp_path)
        yield made if isinstance(made, str) else stack.enter_context(made)
