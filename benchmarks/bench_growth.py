"""Cost growth: the same reads over 10,000, 100,000 and 1,000,000 annotations, as ratios to 10,000.

For each mode and size, seeds a fresh store as a run of the pipeline leaves it: manifests of
--canvases canvases with --per-canvas machine annotations each (real documents from
annotate.build_annotation, one per class and manifest, copied onto every canvas with an id and box of
their own), stored in bulk through Store.seed_machine_annotations (each with its change-log entry and
search rows), then Change Discovery's activities appended by its follower (discovery.sync) and the
on-disk RDF index built (``enricher reindex``) where SPARQL is measured. Serves every size at once,
each under gunicorn with 2 workers as ``enricher serve`` does (bench_container.gunicorn), and measures
with one client, --repeat rounds, the sizes taking turns read by read so the machine's load falls on
all alike:

- the container of every annotation (``/annotations/``): its first, middle and last page (p50, p95),
  sent from the page files after the first round (--page-cache-bytes 0: built per request, its count
  and page start read from the store each time);
- one annotation's GET (the first, middle and last one stored);
- every SPARQL query docs/queries.md documents (bench_sparql.documented), through ``POST /sparql``;
- Change Discovery: the first, middle and last page of ``/activity``;
- the peak RSS of gunicorn's master and workers over the whole measurement (sum, and the largest worker).

Modes: ``embedded`` (SQLite and the embedded Oxigraph index in every worker) and ``scaled``
(PostgreSQL in a schema of its own, --postgres, dropped afterwards; the embedded index too: the remote
one, which needs a triplestore and the pusher feeding it, is not measured here yet). Each size is seeded once, in SQLite; the scaled mode copies it into
PostgreSQL as ``enricher migrate --to`` does (export_rows, import_rows; the triggers recount), since
Change Discovery's follower, a few queries per change, would take hours over a million changes there.
The copy carries what records.COPIED_TABLES names: not the search rows, which nothing here reads. The embedded index holds every quad in each worker's memory (3 GB at
100,000), so SPARQL is measured up to --sparql-limit annotations and left out above (the index is then
never loaded). Prints one table per mode: each figure at each size and its ratio to the smallest size,
marking misses of the targets (latency within 1.5x, RSS within 1.2x).

    python benchmarks/bench_growth.py --sizes 10000,100000 --modes embedded,scaled
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_container import (
    LABELS,
    Sampler,
    gunicorn,
    loopback_listener,
    manifest_document,
)
from bench_sparql import MODEL_SHA, ask, documented

LATENCY_TARGET, RSS_TARGET = 1.5, 1.2
BATCH = 20_000  # annotations per seeding transaction
POSTGRES = "postgresql://root@127.0.0.1:5432/test"
PAGE_SIZE = 100
START_SECONDS = 3600  # for the server to start and settle


# --- seeding ----------------------------------------------------------------------------------------


def templates(manifest, config, vocabulary=None) -> list[dict]:
    """One real annotation per class of LABELS on the manifest's first canvas, as a job builds them."""
    from enricher import __version__
    from enricher.annotate import Generator, build_annotation
    from enricher.detect import Detection
    from enricher.vocab import Vocabulary

    vocabulary = vocabulary or Vocabulary.load()
    generator = Generator(__version__, "bench-model.pt", MODEL_SHA)
    canvas = manifest.canvases[0]
    return [build_annotation(canvas=canvas, manifest=manifest, detection=Detection(label, 0.8, (10, 10, 50, 40)),
                             mapping=vocabulary.lookup(label), generator=generator, created="2026-01-01T00:00:00Z",
                             config=config) for label in LABELS]


def copies(made: list[dict], canvases: list, per_canvas: int, first: int) -> Iterator[dict]:
    """PER_CANVAS annotations on each of CANVASES: the templates in turn, each with its own id and box."""
    for number, canvas in enumerate(canvases):
        for n in range(per_canvas):
            template, serial = made[n % len(made)], first + number * per_canvas + n
            target = {**template["target"], "source": {**template["target"]["source"], "id": canvas.id},
                      "selector": {**template["target"]["selector"],
                                   "value": f"xywh={(n % 20) * 190},{(n // 20) * 140},150,120"}}
            yield {**template, "id": f"{template['id'][:-32]}{serial:032x}", "target": target}


def seed(url: str, base_url: str, total: int, per_canvas: int, canvases: int) -> dict[str, float]:
    """Store TOTAL annotations over manifests of CANVASES canvases, then Change Discovery's activities;
    return the seconds of each step."""
    from enricher import discovery
    from enricher.annotate import manifest_key
    from enricher.config import load_config
    from enricher.manifest import parse_manifest
    from enricher.store import open_store
    from enricher.vocab import Vocabulary

    config = load_config({"database": url, "base_url": base_url}, env={})
    vocabulary = Vocabulary.load()
    per_manifest = per_canvas * canvases
    started = time.perf_counter()
    with open_store(url) as store:
        for number, first in enumerate(range(0, total, per_manifest)):
            document = manifest_document(number, canvases)
            manifest = parse_manifest(document, document["id"])
            key = manifest_key(manifest.id)
            store.save_manifest(key, manifest.id, document["id"], manifest.label, document)
            made, batch = templates(manifest, config, vocabulary), []
            for annotation in copies(made, manifest.canvases, per_canvas, first):
                batch.append(annotation)
                if len(batch) == BATCH:
                    store.seed_machine_annotations(key, MODEL_SHA, batch)
                    batch = []
            if batch:
                store.seed_machine_annotations(key, MODEL_SHA, batch)
        seeded = time.perf_counter()
        discovery.sync(store, base_url)
    return {"annotations": seeded - started, "discovery": time.perf_counter() - seeded}


def copy(source: str, target: str) -> float:
    """Copy the seeded store into another (``enricher migrate --to``: export_rows, import_rows); return
    its seconds."""
    from enricher.store import open_store
    from enricher.store.copy import copy_store

    started = time.perf_counter()
    with open_store(source) as seeded, open_store(target) as store:
        copy_store(seeded, store)
    return time.perf_counter() - started


def reindex(url: str, index_path: Path) -> float:
    """Build the on-disk RDF index from the store, as ``enricher reindex`` does; return its seconds."""
    from enricher.config import load_config
    from enricher.store import open_store
    from enricher.web import indexing

    config = load_config({"database": url, "index_path": str(index_path)}, env={})
    started = time.perf_counter()
    with open_store(url) as store:
        indexing.rebuild(config, store)
    return time.perf_counter() - started


@contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A new PostgreSQL schema on SERVER for one size, dropped afterwards; yield the store URL naming it."""
    import psycopg

    schema = f"bench_growth_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{server}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


# --- the server ---------------------------------------------------------------------------------------


def serve(fd: int) -> None:
    """Run the service on listening socket FD as ``enricher serve`` does; the RDF index loads at start
    only when SPARQL is measured (BENCH_GROWTH_SPARQL)."""
    from enricher.config import load_config
    from enricher.web import create_app
    from enricher.web.server import Server

    class GrowthServer(Server):
        def load(self):
            app = create_app(self.settings.as_dict())
            if os.environ.get("BENCH_GROWTH_SPARQL") == "1":
                app.extensions["enricher"].warm_up()
            return app

    GrowthServer(load_config(), {"bind": [f"fd://{fd}"]}).run()


class PeakSampler(Sampler):
    """bench_container's Sampler, also keeping the peak RSS of each process."""

    def __init__(self, master: psutil.Process):
        super().__init__(master)
        self.peak_each = {p.pid: 0 for p in self.processes}

    def rss(self) -> int:
        sizes = {p.pid: p.memory_info().rss for p in self.processes}
        for pid, size in sizes.items():
            self.peak_each[pid] = max(self.peak_each[pid], size)
        return sum(sizes.values())


# --- the client -----------------------------------------------------------------------------------------


def timed(http: httpx.Client, method: str, url: str, **options) -> float:
    started = time.perf_counter()
    response = http.request(method, url, **options)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{method} {url} answered {response.status_code}: {response.text[:500]}")
    return seconds


def targets(http: httpx.Client, base_url: str) -> dict[str, str]:
    """The URLs measured: container pages, annotations and Change Discovery pages (first, middle, last)."""
    container = http.get(f"{base_url}annotations/", headers={"Prefer": minimal()}).json()
    last_url = container["last"] if isinstance(container["last"], str) else container["last"]["id"]
    last = int(re.search(r"page=(\d+)", last_url).group(1))
    page = lambda n: re.sub(r"page=\d+", f"page={n}", last_url)
    urls = {"container page, first": page(0), "container page, middle": page(last // 2),
            "container page, last": page(last)}
    for name, n in (("first", 0), ("middle", last // 2), ("last", last)):
        items = http.get(page(n)).json()["items"]
        item = items[len(items) // 2] if name == "middle" else items[0 if name == "first" else -1]
        urls[f"annotation GET, {name}"] = item if isinstance(item, str) else item["id"]
    stream = http.get(f"{base_url}activity/all-changes").json()
    pages = int(re.search(r"page-(\d+)", stream["last"]["id"]).group(1))
    for name, n in (("first", 0), ("middle", pages // 2), ("last", pages)):
        urls[f"Change Discovery page, {name}"] = f"{base_url}activity/page-{n}"
    return urls


def minimal() -> str:
    return 'return=representation; include="http://www.w3.org/ns/ldp#PreferMinimalContainer"'


def measure(servers: dict[int, tuple[psutil.Process, str]], args: argparse.Namespace,
            sparql: set[int]) -> dict[int, dict]:
    """Seconds of each read at each size (--repeat rounds, SPARQL --sparql-repeat) and each server's
    peak RSS meanwhile. The sizes take turns read by read, so the machine's load falls on all alike."""
    times: dict[int, dict[str, list[float]]] = {n: {} for n in servers}
    with ExitStack() as stack:
        http = stack.enter_context(httpx.Client(timeout=600))
        samplers = {n: stack.enter_context(PeakSampler(master)) for n, (master, _) in servers.items()}
        urls = {n: targets(http, base_url) for n, (_, base_url) in servers.items()}
        queries = documented() if sparql else {}
        for round_ in range(args.repeat + 1):  # the first round warms up: lazy imports, the store's pages
            for name in next(iter(urls.values())):
                for n in servers:
                    seconds = timed(http, "GET", urls[n][name])
                    if round_:
                        times[n].setdefault(name, []).append(seconds)
            if round_ > args.sparql_repeat:
                continue
            for title, query in queries.items():
                for n in sparql:
                    seconds = ask(http, servers[n][1], query)[0]
                    if round_:
                        times[n].setdefault(f"SPARQL: {title}", []).append(seconds)
    results = {}
    for n, sampler in samplers.items():
        workers = [p.pid for p in sampler.processes[1:]]
        results[n] = {"times": times[n], "memory": {
            "RSS, master and workers": max(rss for _, rss in sampler.samples),
            "RSS, largest worker": max(sampler.peak_each[pid] for pid in workers)}}
    return results


def same_port(base_url: str) -> socket.socket:
    """A listening socket on the loopback port BASE_URL names (free again once its server stopped)."""
    port = int(base_url.rstrip("/").rsplit(":", 1)[1])
    deadline = time.monotonic() + 60
    while True:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", port))
        except OSError:
            listener.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # the last server's workers are still exiting
            continue
        listener.listen(128)
        return listener


def seeded(folder: Path, total: int, args: argparse.Namespace) -> tuple[str, str, dict[str, float]]:
    """The SQLite store of TOTAL annotations in FOLDER (seeded now unless an earlier run left it there),
    the base URL its ids name, and the seconds seeding took."""
    path, named = folder / f"{total}.sqlite3", folder / f"{total}.base"
    if path.is_file() and named.is_file():
        print(f"{total:,}: the store seeded by an earlier run", flush=True)
        return f"sqlite:///{path}", named.read_text().strip(), {}
    listener, base_url = loopback_listener()  # a free port, named by the ids stored
    listener.close()
    seconds = seed(f"sqlite:///{path}", base_url, total, args.per_canvas, args.canvases)
    named.write_text(base_url)
    print(f"{total:,}: seeded in {seconds['annotations']:.1f} s ({total / seconds['annotations']:,.0f}"
          f" annotations/s), Change Discovery followed in {seconds['discovery']:.1f} s", flush=True)
    return f"sqlite:///{path}", base_url, seconds


def run_mode(mode: str, stores: dict[int, tuple[str, str, dict]], args: argparse.Namespace, folder: Path) -> dict:
    """Serve every size at once in MODE (scaled: a copy of each store in PostgreSQL) and measure them
    taking turns; return the figures per size."""
    load = os.getloadavg()[0]
    sparql = {n for n in stores if n <= args.sparql_limit}
    servers, seconds = {}, {n: dict(found[2]) for n, found in stores.items()}
    with ExitStack() as stack:
        for total, (url, base_url, _) in stores.items():
            if mode == "scaled":
                seeded_url, url = url, stack.enter_context(postgres_schema(args.postgres))
                seconds[total]["copy"] = copy(seeded_url, url)
                print(f"{total:,}: copied into PostgreSQL in {seconds[total]['copy']:.1f} s "
                      f"({total / seconds[total]['copy']:,.0f} annotations/s)", flush=True)
            index = folder / f"{total}-{mode}.oxigraph"
            settings = {"ENRICHER_DATABASE": url, "ENRICHER_INDEX_PATH": str(index),
                        "BENCH_GROWTH_SPARQL": "1" if total in sparql else "0", "ENRICHER_SPARQL_TIMEOUT": "600",
                        "ENRICHER_PAGE_CACHE_BYTES": str(args.page_cache_bytes)}
            if total in sparql:
                print(f"{mode} {total:,}: on-disk RDF index built in {reindex(url, index):.1f} s", flush=True)
            listener = same_port(base_url)
            # each worker loads its copy of the RDF index before the server settles (minutes at 100,000)
            logs = folder / f"{total}-{mode}"
            logs.mkdir(exist_ok=True)
            master = stack.enter_context(gunicorn(logs, listener, base_url, PAGE_SIZE, settings, script=__file__,
                                                  probe="annotations/", start_seconds=START_SECONDS))
            listener.close()
            servers[total] = (master, base_url)
        results = measure(servers, args, sparql)
    for total, figures in results.items():
        figures.update(load=(load, os.getloadavg()[0]), seed=seconds[total])
    return results


def table(mode: str, results: dict[int, dict]) -> None:
    """Print each figure at each size and its ratio to the smallest, marking misses."""
    sizes = sorted(results)
    base = sizes[0]
    print(f"\n{mode} mode (latency in ms: p50 / p95; ratio of p50 to {base:,}; * misses the target)")
    print(f"{'figure':<58}" + "".join(f"{n:>24,}" for n in sizes))
    names = list(dict.fromkeys(name for n in sizes for name in results[n]["times"]))
    for name in names:
        cells = []
        for n in sizes:
            values = results[n]["times"].get(name)
            if not values:
                cells.append(f"{'-':>24}")
                continue
            p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
            first = results[base]["times"].get(name)
            ratio = p50 / (statistics.median(first) * 1000) if first else float("nan")
            mark = "*" if ratio > LATENCY_TARGET else " "
            cells.append(f"{p50:8.2f} /{p95:8.2f} {ratio:4.2f}x{mark}")
        print(f"{name:<58}" + "".join(f"{cell:>24}" for cell in cells))
    for name in results[base]["memory"]:
        cells = []
        for n in sizes:
            value, ratio = results[n]["memory"][name], results[n]["memory"][name] / results[base]["memory"][name]
            cells.append(f"{value / 2**20:10.1f} MiB {ratio:4.2f}x{'*' if ratio > RSS_TARGET else ' '}")
        print(f"{name:<58}" + "".join(f"{cell:>24}" for cell in cells))
    for step, label in (("annotations", "seeding"), ("copy", "copy into PostgreSQL")):
        rates = [f"{n / results[n]['seed'][step]:,.0f}" if step in results[n]["seed"] else "-" for n in sizes]
        print(f"{label + ', annotations/s':<58}" + "".join(f"{rate:>24}" for rate in rates))
    print(f"{'load average (1 min) before / after':<58}"
          + "".join(f"{results[n]['load'][0]:>17.2f} / {results[n]['load'][1]:4.2f}" for n in sizes))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Annotation counts, comma-separated")
    parser.add_argument("--modes", default="embedded,scaled", help="embedded, scaled or both")
    parser.add_argument("--per-canvas", type=int, default=20, help="Annotations per canvas")
    parser.add_argument("--canvases", type=int, default=50, help="Canvases per manifest")
    parser.add_argument("--repeat", type=int, default=20, help="Rounds of every read")
    parser.add_argument("--sparql-repeat", type=int, default=3, help="Rounds of every SPARQL query")
    parser.add_argument("--sparql-limit", type=int, default=100_000,
                        help="Largest size whose SPARQL is measured (the embedded index loads every quad per worker)")
    parser.add_argument("--page-cache-bytes", type=int, default=1024**3,
                        help="Setting page_cache_bytes of the servers (0: every container page built per request)")
    parser.add_argument("--postgres", default=POSTGRES, help="PostgreSQL server of the scaled mode")
    parser.add_argument("--folder", type=Path, help="Keep the seeded stores here (and reuse them next time)")
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)  # internal: the gunicorn subprocess
    args = parser.parse_args()
    if args.serve_fd is not None:
        serve(args.serve_fd)
        return
    sizes, modes = sorted(int(n) for n in args.sizes.split(",")), args.modes.split(",")
    print("load average before: " + " ".join(f"{load:.2f}" for load in os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        stores = {total: seeded(folder, total, args) for total in sizes}
        for mode in modes:
            table(mode, run_mode(mode, stores, args, folder))


if __name__ == "__main__":
    main()
