"""Paging the container of everything against pre-built bytes of the same size, in one run.

Seeds a fresh SQLite store with N machine annotations (built by annotate.build_annotation, stored by
Store.replace_machine_annotations one canvas at a time, as a job would), serves it under gunicorn with
2 sync workers on loopback, and adds to the same app a baseline route ``/_baseline/<n>`` that answers
with the bytes and headers of a real container page captured at start-up. With 1 and then 2
concurrent clients (httpx, threads of this process), each client pages through the whole container
following ``next``, then asks the baseline as many times; gunicorn's sync workers close every
connection, so both sides pay a TCP connect per request. Prints pages/s of both, the ratio container /
baseline (target >= 0.8), the CPU per page of server and clients, and the server's peak memory (RSS of
gunicorn's master and workers, sampled every 50 ms) at 10%, 50% and 100% of each walk: flat means
paging does not grow with the container.

    python benchmarks/bench_container.py --annotations 100000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

START_SECONDS = 900  # each worker loads its RDF index first: minutes at 100,000 annotations on a busy machine
SAMPLE_SECONDS = 0.05
QUIET_SECONDS = 3  # how long the server must idle before a walk (see settle)
CHECKPOINTS = (0.1, 0.5, 1.0)
CLIENTS = (1, 2)
CANVAS_SIZE = (4000, 3000)
# A mix of COCO classes: some map to Wikidata and Iconclass, so bodies vary in number like real ones.
LABELS = ("person", "dog", "horse", "chair", "book", "bird", "boat", "cup", "bench", "cat")
NEXT = re.compile(rb'"next":"([^"]+)"')
RECOMPUTED = {"Content-Length", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers"}


# --- the server side: runs in the gunicorn subprocess ---------------------------------------------


def serve(fd: int) -> None:
    """Run the service (settings from ENRICHER_* variables) on listening socket FD, plus the baseline: the
    container's second page with its headers, which has both ``prev`` and ``next`` as nearly all pages do."""
    from flask import Response

    from enricher.config import load_config
    from enricher.web import create_app
    from enricher.web.server import Server

    class BenchServer(Server):
        """The real Server, whose app also answers ``/_baseline/<n>`` with a captured container page."""

        def load(self):
            app = create_app(self.settings.as_dict())
            page: list = []  # filled below: Flask takes no routes after its first request
            app.add_url_rule("/_baseline/<int:n>", "baseline", lambda n: Response(*page))
            client = app.test_client()
            captured = client.get(client.get("/annotations/").get_json()["first"]["next"])
            if captured.status_code != 200:
                raise SystemExit(f"cannot capture the second page: {captured.status_code} {captured.text}")
            # with the page's own headers (ETag, Allow, Vary ...): each header costs the server and the client
            # alike; Content-Length is counted again and CORS added again by the app
            headers = [(name, value) for name, value in captured.headers if name not in RECOMPUTED]
            page.extend([captured.get_data(), 200, headers])
            app.extensions["enricher"].warm_up()  # as Server.load does: the RDF index loads meanwhile
            return app

    BenchServer(load_config(), {"bind": [f"fd://{fd}"]}).run()


# --- the client side ------------------------------------------------------------------------------


def manifest_document(number: int, canvases: int, size: tuple[int, int] = CANVAS_SIZE) -> dict:
    """A Presentation 3 manifest of CANVASES canvases of SIZE, each painted with an image behind a service."""
    base = f"https://bench.example.org/iiif/m{number}"
    width, height = size
    items = []
    for index in range(canvases):
        canvas = f"{base}/canvas/{index}"
        service = f"https://images.example.org/iiif/m{number}-p{index}"
        body = {
            "id": f"{service}/full/max/0/default.jpg",
            "type": "Image",
            "format": "image/jpeg",
            "width": width,
            "height": height,
            "service": [{"id": service, "type": "ImageService3", "profile": "level2"}],
        }
        painting = {
            "id": f"{canvas}/painting", "type": "Annotation", "motivation": "painting", "body": body, "target": canvas
        }
        page = {"id": f"{canvas}/page", "type": "AnnotationPage", "items": [painting]}
        label = {"en": [f"p. {index + 1}"]}
        items.append(
            {"id": canvas, "type": "Canvas", "label": label, "width": width, "height": height, "items": [page]}
        )
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": f"{base}/manifest.json",
        "type": "Manifest",
        "label": {"en": [f"Benchmark volume {number}"]},
        "items": items,
    }


def detections(rng: random.Random, count: int) -> list:
    """COUNT detections on a grid of distinct cells (distinct boxes, so distinct annotation ids)."""
    from enricher.detect import Detection

    side = math.ceil(math.sqrt(count))
    cell_w, cell_h = CANVAS_SIZE[0] / side, CANVAS_SIZE[1] / side
    found = []
    for n in range(count):
        x, y = (n % side) * cell_w, (n // side) * cell_h
        w, h = cell_w * rng.uniform(0.3, 0.95), cell_h * rng.uniform(0.3, 0.95)
        found.append(Detection(rng.choice(LABELS), rng.uniform(0.25, 0.99), (x + rng.uniform(0, 5), y, w, h)))
    return found


def seed(database: Path, base_url: str, annotations: int, per_canvas: int, manifests: int) -> float:
    """Store ANNOTATIONS machine annotations, PER_CANVAS a canvas, over MANIFESTS manifests; return the
    seconds spent building and storing them."""
    from enricher import __version__
    from enricher.annotate import Generator, build_annotation, manifest_key
    from enricher.config import load_config
    from enricher.manifest import parse_manifest
    from enricher.store import open_store
    from enricher.vocab import Vocabulary

    config = load_config({"database": str(database), "base_url": base_url}, env={})
    vocabulary = Vocabulary.load()
    mappings = {label: vocabulary.lookup(label) for label in LABELS}
    generator = Generator(__version__, "bench-model.pt", "be" * 32)
    whole, rest = divmod(annotations, per_canvas)
    counts = [per_canvas] * whole + ([rest] if rest else [])
    per_manifest = math.ceil(len(counts) / manifests)
    rng = random.Random(3)
    start = time.perf_counter()
    with open_store(database) as store:
        for number, first in enumerate(range(0, len(counts), per_manifest)):
            chunk = counts[first : first + per_manifest]
            document = manifest_document(number, len(chunk))
            manifest = parse_manifest(document, document["id"])
            key = manifest_key(manifest.id)
            store.save_manifest(key, manifest.id, document["id"], manifest.label, document)
            for canvas, count in zip(manifest.canvases, chunk):
                built = [
                    build_annotation(
                        canvas=canvas, manifest=manifest, detection=detection, mapping=mappings[detection.label],
                        generator=generator, created="2026-01-01T00:00:00Z", config=config,
                    )
                    for detection in detections(rng, count)
                ]
                created = store.replace_machine_annotations(key, canvas.id, generator.model_sha256, built)["created"]
                if created != count:
                    raise SystemExit(f"seeding {canvas.id}: {created} of {count} annotations created")
    return time.perf_counter() - start


def seed_options(parser: argparse.ArgumentParser, annotations: int) -> None:
    """Add the options seed() takes: --annotations (ANNOTATIONS by default), --per-canvas, --manifests."""
    parser.add_argument("--annotations", type=int, default=annotations)
    parser.add_argument("--per-canvas", type=int, default=100, help="Annotations per canvas")
    parser.add_argument("--manifests", type=int, default=10, help="Manifests the canvases are spread over")


def loopback_listener() -> tuple[socket.socket, str]:
    """A listening socket on a free loopback port, for gunicorn(), and the base URL naming it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}/"


@contextmanager
def gunicorn(
    folder: Path, listener: socket.socket, base_url: str, page_size: int, settings: Mapping[str, str] | None = None,
    script: str = __file__, probe: str = "", start_seconds: float = START_SECONDS,
) -> Iterator[psutil.Process]:
    """Run the service with 2 workers on LISTENER (SETTINGS: more ENRICHER_* variables) through SCRIPT's
    ``--serve-fd``; yield its master process once it answers PROBE (a path below the base URL) and has
    settled, within START_SECONDS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHER_")}
    env.update(
        ENRICHER_DATABASE=str(folder / "enricher.sqlite3"), ENRICHER_BASE_URL=base_url, ENRICHER_WORKERS="2",
        ENRICHER_JOB_WORKER="false", ENRICHER_PAGE_SIZE=str(page_size),
    )
    env.update(settings or {})  # may name another database
    log_path = folder / "gunicorn.log"
    with log_path.open("w") as log:
        command = [sys.executable, script, "--serve-fd", str(listener.fileno())]
        process = subprocess.Popen(command, pass_fds=[listener.fileno()], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            master = psutil.Process(process.pid)
            deadline = time.monotonic() + start_seconds
            while not answers(base_url + probe) or len(master.children()) < 2:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.2)
            settle(master, deadline)
            yield master
        finally:
            stop(process, 30)


def settle(master: psutil.Process, deadline: float) -> None:
    """Wait until the server idles: a worker opens the RDF index right after start (and builds it when
    missing, minutes at 100,000 annotations), and paging measured meanwhile would pay for that."""
    processes = [master, *master.children(recursive=True)]
    busy = lambda: sum(t.user + t.system for t in (p.cpu_times() for p in processes))  # noqa: E731
    before, quiet = busy(), 0
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = busy()
        # under 5% of one core for QUIET_SECONDS in a row: on a loaded machine the index build can
        # be starved of the CPU for a second and look idle
        quiet = quiet + 1 if now - before < 0.05 else 0
        if quiet == QUIET_SECONDS:
            return
        before = now
    raise SystemExit("the server never settled: its workers kept a core busy")


def stop(process: subprocess.Popen, timeout: float) -> None:
    """Terminate PROCESS; kill it when it has not ended within TIMEOUT seconds."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def answers(base_url: str) -> bool:
    """Whether BASE_URL answers 200 (a server that is up)."""
    try:
        return httpx.get(base_url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


class Sampler:
    """Sums the RSS of gunicorn's master and workers every 50 ms, tagged with the pages done so far."""

    def __init__(self, master: psutil.Process):
        # listed once: scanning /proc for children at every sample would steal CPU from the server
        self.processes = [master, *master.children(recursive=True)]
        self.client = psutil.Process()
        self.done = 0
        self.samples: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        """Resident bytes of the master and its workers now."""
        return sum(p.memory_info().rss for p in self.processes)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the server (master and workers) and by this process (the clients)."""
        server = sum(t.user + t.system for t in (p.cpu_times() for p in self.processes))
        client = self.client.cpu_times()
        return server, client.user + client.system

    def page_done(self) -> None:
        with self._lock:
            self.done += 1

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append((self.done, self.rss()))

    def __enter__(self) -> Sampler:
        self.samples.append((0, self.rss()))
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((self.done, self.rss()))

    def peaks(self, total: int) -> list[int]:
        """The highest RSS seen before each checkpoint's share of TOTAL pages was done."""
        return [max(rss for done, rss in self.samples if done <= share * total) for share in CHECKPOINTS]


def walk_container(http: httpx.Client, first: str, pages: int, sampler: Sampler) -> bytes:
    """GET FIRST and follow ``next`` to the end; return the last page's body.

    Only the ``next`` link is searched for, as the baseline's is: the client's work is the same on both sides.
    """
    url: str | None = first
    body = b""
    for done in range(pages):
        if url is None:
            raise RuntimeError(f"the container ended early, after {done} pages")
        response = http.get(url)
        response.raise_for_status()
        body = response.content
        found = NEXT.search(body)
        url = found.group(1).decode() if found else None
        sampler.page_done()
    if url is not None:
        raise RuntimeError(f"the container has more than {pages} pages: {url}")
    return body


def walk_baseline(http: httpx.Client, base_url: str, pages: int, sampler: Sampler) -> bytes:
    """GET the baseline PAGES times, searching each body for ``next`` as the container walk does."""
    body = b""
    for n in range(pages):
        response = http.get(f"{base_url}_baseline/{n}")
        response.raise_for_status()
        body = response.content
        NEXT.search(body)
        sampler.page_done()
    return body


def measure(master: psutil.Process, clients: int, pages: int, walk: Callable[[httpx.Client, Sampler], bytes]) -> dict:
    """Run WALK in CLIENTS threads at once, each with its own keep-alive client; return the figures."""
    bodies: list[bytes] = []
    errors: list[BaseException] = []

    def client(sampler: Sampler) -> None:
        try:
            with httpx.Client(timeout=60) as http:
                bodies.append(walk(http, sampler))
        except Exception as exc:  # reported below: a failed walk must not pass as a fast one
            errors.append(exc)

    with Sampler(master) as sampler:
        server, own = sampler.cpu()
        threads = [threading.Thread(target=client, args=(sampler,)) for _ in range(clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        server, own = (after - before for after, before in zip(sampler.cpu(), (server, own)))
    if errors:
        raise SystemExit(f"a client failed: {errors[0]!r}")
    done = clients * pages
    return {
        "rate": done / seconds, "server_ms": 1000 * server / done, "client_ms": 1000 * own / done,
        "peaks": sampler.peaks(done), "last": bodies[-1],
    }


def check_last_page(body: bytes, total: int) -> None:
    """The walk reached the end: the last page's items end at the container's total."""
    page = json.loads(body)
    if page["startIndex"] + len(page["items"]) != total or "next" in page:
        raise SystemExit(f"the last page starts at {page['startIndex']} with {len(page['items'])} items, total {total}")


def mib(size: int) -> str:
    return f"{size / 2**20:6.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    seed_options(parser, annotations=100_000)
    parser.add_argument("--page-size", type=int, default=100, help="Annotations per container page")
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)  # internal: the gunicorn subprocess
    args = parser.parse_args()
    if args.serve_fd is not None:
        serve(args.serve_fd)
        return
    if args.annotations < 2 * args.page_size:
        parser.error("--annotations must fill at least two pages (the baseline copies the second)")
    with tempfile.TemporaryDirectory(prefix="bench-container-") as tmp:
        folder = Path(tmp)
        listener, base_url = loopback_listener()
        # other work on the machine skews both sides, and the clients' share of the CPU most
        print("load average before: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
        seconds = seed(folder / "enricher.sqlite3", base_url, args.annotations, args.per_canvas, args.manifests)
        print(f"seeded {args.annotations} annotations in {seconds:.1f} s ({args.annotations / seconds:.0f}/s)")
        with gunicorn(folder, listener, base_url, args.page_size) as master:
            listener.close()  # gunicorn holds its own copy
            container = httpx.get(f"{base_url}annotations/", timeout=60).json()
            total, first = container["total"], container["first"]["id"]
            pages = math.ceil(total / args.page_size)
            if total != args.annotations:
                raise SystemExit(f"the container holds {total} annotations, not {args.annotations}")
            size = len(httpx.get(container["first"]["next"], timeout=60).content)
            baseline_size = len(httpx.get(f"{base_url}_baseline/0", timeout=60).content)
            print(f"{pages} pages of {args.page_size}; the second: {size} bytes, baseline: {baseline_size} bytes")
            with httpx.Client() as http:  # warm-up: each worker opens its store and imports lazily
                for n in range(20):
                    http.get(first).raise_for_status()
                    http.get(f"{base_url}_baseline/{n}").raise_for_status()
            for clients in CLIENTS:
                paged = measure(master, clients, pages, lambda http, s: walk_container(http, first, pages, s))
                check_last_page(paged["last"], total)
                bare = measure(master, clients, pages, lambda http, s: walk_baseline(http, base_url, pages, s))
                print(f"\n{clients} client(s), each through all {pages} pages:")
                for name, result in (("container", paged), ("baseline ", bare)):
                    shares = zip(CHECKPOINTS, result["peaks"])
                    peaks = "  ".join(f"{int(share * 100):3d}%:{mib(peak)}" for share, peak in shares)
                    cpu = f"CPU ms/page server {result['server_ms']:5.2f} client {result['client_ms']:5.2f}"
                    print(f"  {name} {result['rate']:7.1f} pages/s  {cpu}  peak RSS {peaks}")
                print(f"  ratio container / baseline: {paged['rate'] / bare['rate']:.2f} (target >= 0.8)")
                print(f"  server CPU alone, baseline / container: {bare['server_ms'] / paged['server_ms']:.2f}")


if __name__ == "__main__":
    main()
