"""Cost growth: the same reads over 10,000, 100,000 and 1,000,000 annotations, as ratios to 10,000.

For each size, seeds a store as a run of the pipeline leaves it: manifests of --canvases canvases with
--per-canvas machine annotations each (real documents from annotate.build_annotation, one per class
and manifest, copied onto every canvas with an id and box of their own), stored in bulk through
Store.seed_machine_annotations (each with its change-log entry and search rows), then Change
Discovery's activities appended by its follower (discovery.sync). With --folder the stores, the RDF
indexes and the PostgreSQL copies below are kept and reused by the next run, so 1,000,000 is seeded,
indexed and copied once. Serves every size at once, each under gunicorn with 2 workers as ``enricher
serve`` does, and measures with one client, --repeat rounds (SPARQL --sparql-repeat), the sizes taking
turns read by read so the machine's load falls on all alike:

- the container of every annotation (``/annotations/``): its first, middle and last page (p50, p95);
- one annotation's GET (the first, middle and last one stored);
- every SPARQL query docs/queries.md documents (bench_sparql.documented, naming the middle annotation
  above), through ``POST /sparql``, each on its own row, marked where docs/queries.md says it reads
  every annotation it matches (its time grows with the data by nature); an answer over the default
  caps (422, or cut off once it streamed past its first chunk) is marked too;
- Change Discovery: the first, middle and last page of ``/activity``;
- the peak RSS of gunicorn's master and workers over the whole measurement (sum, the largest
  worker, and the largest worker's anonymous part: RSS less file-backed pages), and in the scaled
  mode the triplestore's.

Modes: ``embedded`` (SQLite; the RDF index one Oxigraph store on disk that the workers share, built
by ``enricher reindex``) and ``scaled`` (PostgreSQL in a schema of its own on --postgres, kept with
--folder, else dropped; the remote index: an ``oxigraph serve`` filled from the store's dump as
``enricher load-index`` does (docs/deploy.md: how an instance moves up), the pusher following from
there). The scaled mode copies each seeded store into PostgreSQL as ``enricher migrate --to`` does
(export_rows, import_rows; the triggers recount), since Change Discovery's follower, a few queries
per change, would take hours over a million changes there; the copy carries what
records.COPIED_TABLES names (not the search rows, which nothing here reads). Prints one table per
mode: each figure at each size and its ratio to the smallest size, marking misses of the targets
(latency within 1.5x, RSS within 1.2x).

    python benchmarks/bench_growth.py --sizes 10000,100000,1000000 --folder /var/tmp/growth
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
from bench_sparql import DOCS, MODEL_SHA, NTRIPLES, SELECT_JSON, documented, warm_up
from growth_indexes import reindex, remote_index, triplestore

LATENCY_TARGET, RSS_TARGET = 1.5, 1.2
BATCH = 20_000  # annotations per seeding transaction
POSTGRES = "postgresql://root@127.0.0.1:5432/test"
PAGE_SIZE = 100
START_SECONDS = 3600  # for the server to start and settle
WIDTH = 84  # of the table's first column
GROWS = "reads every annotation it matches"  # what docs/queries.md says of a query whose cost grows with the data


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


@contextmanager
def postgres_copy(server: str, seeded_url: str, kept: Path | None) -> Iterator[tuple[str, float | None]]:
    """The seeded store copied into a new PostgreSQL schema on SERVER: yield the store URL naming it and
    the copy's seconds. With KEPT (a file in --folder) the schema stays, named there, and the next run
    reuses it (seconds None); without, it is dropped afterwards."""
    import psycopg

    url = lambda schema: f"{server}?options=-csearch_path%3D{schema}"  # noqa: E731
    if kept is not None and kept.is_file():
        yield url(kept.read_text().strip()), None
        return
    schema = f"bench_growth_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        seconds = copy(seeded_url, url(schema))
        if kept is not None:
            kept.write_text(schema)
        yield url(schema), seconds
    finally:
        if kept is None or not kept.is_file():
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


# --- the server ---------------------------------------------------------------------------------------


def serve(fd: int) -> None:
    """Run the service on listening socket FD as ``enricher serve`` does."""
    from enricher.config import load_config
    from enricher.web.server import serve as run

    run(load_config(), f"fd://{fd}")


class PeakSampler(Sampler):
    """bench_container's Sampler, also keeping the peak RSS of each process and the peak of its
    anonymous part (the heap: RSS less the file-backed pages, code and mapped files)."""

    def __init__(self, master: psutil.Process):
        super().__init__(master)
        self.peak_each = {p.pid: 0 for p in self.processes}
        self.peak_anonymous = dict(self.peak_each)

    def rss(self) -> int:
        sizes = {p.pid: p.memory_info() for p in self.processes}
        for pid, size in sizes.items():
            self.peak_each[pid] = max(self.peak_each[pid], size.rss)
            self.peak_anonymous[pid] = max(self.peak_anonymous[pid], size.rss - size.shared)
        return sum(size.rss for size in sizes.values())


# --- the client -----------------------------------------------------------------------------------------


def sparql(http: httpx.Client, base_url: str, query: str) -> tuple[float, bool]:
    """POST QUERY to /sparql; return its seconds and whether it was refused for an answer over the
    default caps (more than sparql_max_rows rows or sparql_max_triples triples: 422, or, once the
    answer streamed past its first chunk, the connection closed before the body's end)."""
    construct = re.search(r"^\s*CONSTRUCT\b", query, re.MULTILINE | re.IGNORECASE) is not None
    started = time.perf_counter()
    try:
        response = http.post(f"{base_url}sparql", data={"query": query},
                             headers={"Accept": NTRIPLES if construct else SELECT_JSON})
    except httpx.RemoteProtocolError:
        return time.perf_counter() - started, True
    seconds = time.perf_counter() - started
    if response.status_code not in (200, 422):
        raise SystemExit(f"/sparql answered {response.status_code}: {response.text[:500]}")
    return seconds, response.status_code == 422


def growing() -> set[str]:
    """The titles of the queries whose section in docs/queries.md says they read every annotation they
    match (their cost grows with the data by nature)."""
    sections = re.findall(r"^## ([^\n]+)\n((?:(?!^## ).)*)", DOCS.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)
    return {title for title, text in sections if GROWS in " ".join(text.split())}


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


def measure(servers: dict[int, tuple[psutil.Process, str, psutil.Process | None]],
            args: argparse.Namespace) -> dict[int, dict]:
    """Seconds of each read at each size (--repeat rounds, SPARQL --sparql-repeat) and the peak RSS of
    each server (and triplestore) meanwhile. The sizes take turns read by read, so the machine's load
    falls on all alike."""
    times: dict[int, dict[str, list[float]]] = {n: {} for n in servers}
    refused: dict[int, set[str]] = {n: set() for n in servers}
    grows = growing()
    with ExitStack() as stack:
        http = stack.enter_context(httpx.Client(timeout=3600))
        samplers = {n: stack.enter_context(PeakSampler(master)) for n, (master, _, _) in servers.items()}
        stores = {n: stack.enter_context(PeakSampler(process)) for n, (_, _, process) in servers.items() if process}
        urls = {n: targets(http, base_url) for n, (_, base_url, _) in servers.items()}
        queries = {n: documented(urls[n]["annotation GET, middle"]) for n in servers}
        for _, base_url, _ in servers.values():
            warm_up(base_url)  # each worker's first query opens the index (or sends the vocabulary to the triplestore)
        for round_ in range(args.repeat + 1):  # the first round warms up: lazy imports, the store's pages
            for name in next(iter(urls.values())):
                for n in servers:
                    seconds = timed(http, "GET", urls[n][name])
                    if round_:
                        times[n].setdefault(name, []).append(seconds)
            if not 0 < round_ <= args.sparql_repeat:  # the reads before warmed the server up
                continue
            for title in next(iter(queries.values())):
                name = f"SPARQL{', reads all it matches' if title in grows else ''}: {title}"
                for n in servers:
                    seconds, over = sparql(http, servers[n][1], queries[n][title])
                    if over:
                        refused[n].add(name)
                    times[n].setdefault(name, []).append(seconds)
    results = {}
    for n, sampler in samplers.items():
        workers = [p.pid for p in sampler.processes[1:]]
        memory = {"RSS, master and workers": max(rss for _, rss in sampler.samples),
                  "RSS, largest worker": max(sampler.peak_each[pid] for pid in workers),
                  "RSS, largest worker, anonymous": max(sampler.peak_anonymous[pid] for pid in workers)}
        if n in stores:
            memory["RSS, triplestore"] = max(rss for _, rss in stores[n].samples)
        results[n] = {"times": times[n], "memory": memory, "refused": refused[n]}
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
    servers, seconds = {}, {n: dict(found[2]) for n, found in stores.items()}
    with ExitStack() as stack:
        for total, (url, base_url, _) in stores.items():
            settings = {"ENRICHER_SPARQL_TIMEOUT": "3600", "ENRICHER_PAGE_CACHE_BYTES": str(args.page_cache_bytes)}
            process = None
            if mode == "scaled":
                kept = args.folder / f"{total}.postgres" if args.folder else None
                url, copied = stack.enter_context(postgres_copy(args.postgres, url, kept))
                if copied is None:
                    print(f"{total:,}: the PostgreSQL copy of an earlier run", flush=True)
                else:
                    seconds[total]["copy"] = copied
                    print(f"{total:,}: copied into PostgreSQL in {copied:.1f} s ({total / copied:,.0f} annotations/s)",
                          flush=True)
                location = folder / f"{total}-triplestore"
                base, process = stack.enter_context(triplestore(location))
                settings |= remote_index(url, base_url, base, location)
                settings["ENRICHER_PAGE_CACHE"] = str(folder / f"{total}-scaled.pages")  # else beside the cwd
            else:
                index = folder / f"{total}-embedded.oxigraph"
                reindex(url, index)
                settings["ENRICHER_INDEX_PATH"] = str(index)
            settings["ENRICHER_DATABASE"] = url
            listener = same_port(base_url)
            logs = folder / f"{total}-{mode}"
            logs.mkdir(exist_ok=True)
            master = stack.enter_context(gunicorn(logs, listener, base_url, PAGE_SIZE, settings, script=__file__,
                                                  probe="annotations/", start_seconds=START_SECONDS))
            listener.close()
            servers[total] = (master, base_url, process)
        results = measure(servers, args)
    for total, figures in results.items():
        figures.update(load=(load, os.getloadavg()[0]), seed=seconds[total])
    return results


def table(mode: str, results: dict[int, dict]) -> None:
    """Print each figure at each size and its ratio to the smallest, marking misses."""
    sizes = sorted(results)
    base = sizes[0]
    print(f"\n{mode} mode (latency in ms: p50 / p95; ratio of p50 to {base:,}; * misses the target; "
          f"R: refused, the answer over the default caps)")
    print(f"{'figure':<{WIDTH}}" + "".join(f"{n:>28,}" for n in sizes))
    names = list(dict.fromkeys(name for n in sizes for name in results[n]["times"]))
    for name in names:
        cells = []
        for n in sizes:
            values = results[n]["times"].get(name)
            if not values:
                cells.append(f"{'-':>28}")
                continue
            p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
            first = results[base]["times"].get(name)
            ratio = p50 / (statistics.median(first) * 1000) if first else float("nan")
            mark = "R" if name in results[n]["refused"] else "*" if ratio > LATENCY_TARGET else " "
            cells.append(f"{p50:8.1f} /{p95:8.1f} {ratio:5.2f}x{mark}")
        print(f"{name:<{WIDTH}}" + "".join(f"{cell:>28}" for cell in cells))
    for name in results[base]["memory"]:
        cells = []
        for n in sizes:
            value, ratio = results[n]["memory"][name], results[n]["memory"][name] / results[base]["memory"][name]
            cells.append(f"{value / 2**20:10.1f} MiB {ratio:4.2f}x{'*' if ratio > RSS_TARGET else ' '}")
        print(f"{name:<{WIDTH}}" + "".join(f"{cell:>28}" for cell in cells))
    for step, label in (("annotations", "seeding"), ("copy", "copy into PostgreSQL")):
        rates = [f"{n / results[n]['seed'][step]:,.0f}" if step in results[n]["seed"] else "-" for n in sizes]
        print(f"{label + ', annotations/s':<{WIDTH}}" + "".join(f"{rate:>28}" for rate in rates))
    print(f"{'load average (1 min) before / after':<{WIDTH}}"
          + "".join(f"{results[n]['load'][0]:>21.2f} / {results[n]['load'][1]:4.2f}" for n in sizes))


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
