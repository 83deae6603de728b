"""The example queries and the full dump over N annotations: our HTTP endpoint against raw pyoxigraph
and an rdflib in-memory graph over the same triples, in one run.

Seeds a fresh store with N machine annotations as bench_container.py does (built by
annotate.build_annotation, 100 a canvas, the COCO classes of its mix, so dogs and horses share
canvases), lets a curator correct 1% of them (Store.update with a Person as creator, as a PUT does),
builds the on-disk RDF index (``enricher reindex``) and serves the app under gunicorn with 2 workers.
Then, in this order:

1. the dump: ``GET /dump.nq.gz`` streamed to a file, timed; its quads are the data of the other sides;
2. every query of docs/queries.md through ``POST /sparql`` (SELECT as SPARQL JSON, CONSTRUCT as
   N-Triples), best of --repeat; the model hash and the canvas those queries name are replaced by
   ones of the seeded data, so every query has answers (the dog-and-horse one has many);
3. raw pyoxigraph in a child process: the dump bulk-loaded into an in-memory Store, the same queries
   with the union default graph, answers serialized the same way, best of --repeat;
4. rdflib in a child process: the dump parsed into a Dataset with the union default graph, the
   same queries once each (each answer serialized the same way), then the merged graph serialized
   as Turtle (the baseline of the dump).

Answers must have the same number of rows on every side. Prints seconds per query and side, the
ratios (targets: endpoint within 1.3x of raw pyoxigraph, at least 10x faster than rdflib; dump at
least 20x faster than rdflib's Turtle) and peak memory: the server's (gunicorn master and both
workers, which share the on-disk index, sampled every 50 ms) and each child's.

rdflib sets the pace: over 100,000 annotations (4.2 million quads: about 42 an annotation) it takes
almost three minutes to load them, as long again to write Turtle, and 7.5 GB; a query it has not
answered after --rdflib-cap seconds counts as that long (a lower bound, marked ">") and its process
starts again for the queries after it. So the default is 20,000 annotations (about five minutes on
two cores); the issue's figure is the full run (about 25 minutes):

    python benchmarks/bench_sparql.py --annotations 100000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import queue
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from bench_container import (
    Sampler,
    gunicorn,
    loopback_listener,
    mib,
    seed,
    seed_options,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "queries.md"
SELECT_JSON = "application/sparql-results+json"
NTRIPLES = "application/n-triples"
MODEL_SHA = "be" * 32  # bench_container.seed's generator
MANIFEST = "https://bench.example.org/iiif/m0/manifest.json"  # its first manifest
CANVAS = "https://bench.example.org/iiif/m0/canvas/0"  # its first canvas
CURATOR = "curator"  # the person who corrects
TIMEOUT = 600.0  # seconds a query may run on the endpoint: a ceiling, not a measure
MEMORY_SHARE = 0.8  # of the memory available at start that a side's process may take


def documented(annotation: str) -> dict[str, str]:
    """Each query of docs/queries.md under its section title, with the prefix block before it and the
    documented model, manifest, canvas and person replaced by seeded ones, the annotation by ANNOTATION."""
    text = DOCS.read_text(encoding="utf-8")
    seeded = ((r'"[0-9a-f]{64}"', f'"{MODEL_SHA}"'), (r"<https://images\.example\.org/[^>]*/canvas/0>", f"<{CANVAS}>"),
              (r"<https://images\.example\.org/[^>]*\.json>", f"<{MANIFEST}>"),
              (r'foaf:nick "[^"]*"', f'foaf:nick "{CURATOR}"'),
              (r"<https://enricher\.example\.org/[^>]*/annotations/[^>]*>", f"<{annotation}>"))
    prefixes, queries = "", {}
    for title, block in re.findall(r"^## ([^\n]+)\n(?:(?!^## ).)*?```sparql\n(.*?)```", text, re.DOTALL | re.MULTILINE):
        if block.startswith("PREFIX"):
            prefixes = block
        else:
            for pattern, replacement in seeded:
                block = re.sub(pattern, replacement, block)
            queries[title] = prefixes + block
    return queries


def an_annotation(database: Path | str) -> str:
    """The IRI of the first annotation stored in DATABASE (the one the whole-annotation query names)."""
    from enricher.store import open_store

    with open_store(database) as store:
        return store.page(None, 0, 1)[0].id


def correct(database: Path, count: int) -> None:
    """Let a curator edit COUNT machine annotations (relabelled, signed, as a PUT with If-Match does)."""
    from enricher.store import open_store
    from enricher.web.annotations import person

    with open_store(database) as store:
        for stored in store.page(None, 0, count):
            document = dict(stored.document, creator=person(CURATOR))
            document["body"] = [dict(body, value=f"{body['value']} (checked)") if body.get("purpose") == "tagging"
                                else body for body in document["body"]]
            store.update(stored.id, document, stored.etag, CURATOR)


def reindex(database: Path) -> float:
    """Build the on-disk RDF index from the store, as ``enricher reindex`` does; return its seconds."""
    from enricher.config import load_config
    from enricher.store import open_store
    from enricher.web import indexing

    config = load_config({"database": str(database)}, env={})
    start = time.perf_counter()
    with open_store(database) as store:
        indexing.rebuild(config, store)
    return time.perf_counter() - start


def rows(body: bytes, construct: bool) -> int:
    """Answers in a serialized result: distinct N-Triples lines, or SPARQL JSON bindings."""
    if construct:
        return len({line for line in body.splitlines() if line.strip()})
    return len(json.loads(body)["results"]["bindings"])


# --- the sides in child processes ---------------------------------------------------------------


def emit(**figures) -> None:
    """Hand figures to the parent: one JSON line, at once (it may stop this process any time after)."""
    print(json.dumps(figures), flush=True)


def run_raw(data: Path, queries: dict[str, str], repeat: int) -> None:
    """Load DATA into an in-memory pyoxigraph Store and time each query, serialized as the endpoint does."""
    import pyoxigraph as ox

    store = ox.Store()
    start = time.perf_counter()
    store.bulk_load(path=str(data), format=ox.RdfFormat.N_QUADS)
    emit(load=time.perf_counter() - start)
    for name, query in queries.items():
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            result = store.query(query, use_default_graph_as_union=True)
            if isinstance(result, ox.QueryTriples):
                body = result.serialize(format=ox.RdfFormat.N_TRIPLES)
            else:
                body = result.serialize(format=ox.QueryResultsFormat.JSON)
            seconds.append(time.perf_counter() - start)
        emit(query=name, seconds=min(seconds), rows=rows(body, isinstance(result, ox.QueryTriples)))


def run_rdflib(data: Path, queries: dict[str, str], turtle: Path | None) -> None:
    """Parse DATA into an rdflib Dataset (union default graph); write it as Turtle (the union, as the
    dump's graphs merged) unless TURTLE is None; then time each query once."""
    from rdflib import Dataset

    dataset = Dataset(default_union=True)
    start = time.perf_counter()
    dataset.parse(str(data), format="nquads")
    emit(load=time.perf_counter() - start)
    if turtle is not None:
        start = time.perf_counter()
        dataset.serialize(destination=str(turtle), format="turtle")
        emit(turtle=time.perf_counter() - start, bytes=turtle.stat().st_size)
    for name, query in queries.items():
        start = time.perf_counter()
        result = dataset.query(query)
        construct = result.type == "CONSTRUCT"
        body = result.serialize(format="nt" if construct else "json")
        emit(query=name, seconds=time.perf_counter() - start, rows=rows(body, construct))


def side(name: str, data: Path, queries: Path, repeat: int, turtle: Path | None) -> None:
    """Run one side, printing its figures as JSON lines."""
    asked = json.loads(queries.read_text())
    if name == "raw":
        run_raw(data, asked, repeat)
    else:
        run_rdflib(data, asked, turtle)


class Child:
    """One side in a fresh Python process: its own memory (peak RSS from wait4), at most LIMIT bytes of
    address space, so a side that outgrows the machine fails alone."""

    def __init__(self, name: str, data: Path, queries: dict[str, str], folder: Path, *, repeat: int,
                 turtle: Path | None, limit: int):
        asked = folder / f"{name}-queries.json"
        asked.write_text(json.dumps(queries))
        command = [sys.executable, __file__, "--side", name, "--data", str(data), "--queries", str(asked),
                   "--repeat", str(repeat), *(["--turtle", str(turtle)] if turtle else [])]
        self.name = name
        self.log = (folder / f"{name}.log").open("w+")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
        self.peak_rss = 0
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, seconds: float | None) -> dict | None:
        """The side's next figures; None once it has ended; TimeoutError after SECONDS without any."""
        try:
            figures = self.lines.get(timeout=seconds)
        except queue.Empty:
            raise TimeoutError from None
        if figures is None and self._reap() != 0:
            self.log.seek(0)
            raise SystemExit(f"the {self.name} side failed:\n{self.log.read()[-4000:]}")
        return figures

    def _reap(self) -> int:
        if self.process.returncode is None:
            _, status, usage = os.wait4(self.process.pid, 0)
            self.process.returncode = os.waitstatus_to_exitcode(status)
            self.peak_rss = usage.ru_maxrss * 1024  # kilobytes on Linux
        return self.process.returncode

    def stop(self) -> int:
        """End the process (killed if it still runs); return its peak RSS."""
        if self.process.returncode is None:
            self.process.kill()
        self._reap()
        self.log.close()
        return self.peak_rss


def run_side(name: str, data: Path, queries: dict[str, str], folder: Path, *, repeat: int = 1,
             turtle: Path | None = None, cap: float | None = None, limit: int) -> dict:
    """Run side NAME over DATA; return its figures: load, turtle, per query seconds and rows, peak RSS.
    A query past CAP seconds is recorded as taking CAP (a lower bound) and the side starts again,
    loading again, for the queries after it."""
    figures: dict = {"queries": {}, "peak_rss": 0, "loads": []}
    todo = dict(queries)
    while todo:
        child = Child(name, data, todo, folder, repeat=repeat, turtle=turtle, limit=limit)
        waiting = None  # no cap on loading and writing Turtle
        try:
            while (got := child.next(waiting)) is not None:
                if "query" in got:
                    figures["queries"][got["query"]] = {"seconds": got["seconds"], "rows": got["rows"]}
                    del todo[got["query"]]
                elif "load" in got:
                    figures["loads"].append(got["load"])
                else:
                    figures["turtle"] = got
                    turtle = None  # written once
                if turtle is None:
                    waiting = cap
        except TimeoutError:
            capped = next(iter(todo))
            figures["queries"][capped] = {"seconds": cap, "rows": None, "capped": True}
            del todo[capped]
        finally:
            figures["peak_rss"] = max(figures["peak_rss"], child.stop())
    figures["load"] = figures["loads"][0]
    return figures


# --- the endpoint ---------------------------------------------------------------------------------


def ask(http: httpx.Client, base_url: str, query: str) -> tuple[float, bytes, bool]:
    """POST QUERY to the endpoint; return its seconds, the answer and whether it is a graph."""
    construct = re.search(r"^\s*CONSTRUCT\b", query, re.MULTILINE | re.IGNORECASE) is not None
    start = time.perf_counter()
    response = http.post(f"{base_url}sparql", data={"query": query},
                         headers={"Accept": NTRIPLES if construct else SELECT_JSON})
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"the endpoint answered {response.status_code}: {response.text[:2000]}")
    return seconds, response.content, construct


@contextmanager
def server_log(path: Path) -> Iterator[None]:
    """Show the end of the server's log when the block fails."""
    try:
        yield
    except (SystemExit, httpx.HTTPError):
        print(f"gunicorn's log:\n{path.read_text()[-4000:]}", file=sys.stderr)
        raise


def warm_up(base_url: str) -> None:
    """Have both workers answer a query before any is measured, so none pays a lazy import: a sync
    worker takes one request at a time, so of two at once, each goes to another worker."""
    def one() -> None:
        with httpx.Client(timeout=TIMEOUT) as http:
            ask(http, base_url, "ASK { ?s ?p ?o }")

    for _ in range(3):
        pair = [threading.Thread(target=one) for _ in range(2)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()


def fetch_dump(http: httpx.Client, base_url: str, target: Path) -> float:
    """Stream the gzip N-Quads dump into TARGET; return the seconds it took."""
    start = time.perf_counter()
    with http.stream("GET", f"{base_url}dump.nq.gz") as response, target.open("wb") as out:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            out.write(chunk)
    return time.perf_counter() - start


def report(endpoint: dict, raw: dict, slow: dict) -> None:
    """Print seconds per query and side, and the ratios (">": rdflib hit the cap, a lower bound)."""
    print(f"\n{'query':<50} {'endpoint':>9} {'raw ox':>8} {'rdflib':>9} {'ep/raw':>7} {'rdflib/ep':>10}  rows")
    totals = [0.0, 0.0, 0.0]
    capped = False
    for name, ours in endpoint.items():
        theirs, other = raw["queries"][name], slow["queries"][name]
        if theirs["rows"] != ours["rows"]:
            raise SystemExit(f"{name}: the endpoint answered {ours['rows']} rows, raw pyoxigraph {theirs['rows']}")
        mark = ">" if other.get("capped") else " "
        capped |= bool(other.get("capped"))
        note = "" if other["rows"] in (ours["rows"], None) else f" (rdflib: {other['rows']})"
        print(f"{name[:50]:<50} {ours['seconds']:9.3f} {theirs['seconds']:8.3f} {mark}{other['seconds']:8.2f} "
              f"{ours['seconds'] / theirs['seconds']:7.2f} {mark}{other['seconds'] / ours['seconds']:9.1f}  "
              f"{ours['rows']}{note}")
        for n, value in enumerate((ours["seconds"], theirs["seconds"], other["seconds"])):
            totals[n] += value
    mark = ">" if capped else " "
    print(f"{'all queries':<50} {totals[0]:9.3f} {totals[1]:8.3f} {mark}{totals[2]:8.2f} "
          f"{totals[0] / totals[1]:7.2f} {mark}{totals[2] / totals[0]:9.1f}")
    print(f"  endpoint / raw pyoxigraph, all queries: {totals[0] / totals[1]:.2f} (target <= 1.3)")
    print(f"  rdflib / endpoint, all queries: {mark.strip()}{totals[2] / totals[0]:.1f} (target >= 10)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    seed_options(parser, annotations=20_000)
    parser.add_argument("--corrected", type=float, default=0.01, help="Share of annotations a curator edits")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of each query on the endpoint and raw pyoxigraph; the best is kept")
    parser.add_argument("--side", choices=("raw", "rdflib"), help=argparse.SUPPRESS)  # internal: a child process
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queries", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--turtle", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rdflib-cap", type=float, default=60.0,
                        help="Seconds after which an rdflib query is stopped and counted as taking that long")
    args = parser.parse_args()
    if args.side:
        side(args.side, args.data, args.queries, args.repeat, args.turtle)
        return
    with tempfile.TemporaryDirectory(prefix="bench-sparql-") as tmp:
        folder = Path(tmp)
        database = folder / "enricher.sqlite3"
        listener, base_url = loopback_listener()
        # other work on the machine skews every side
        loads = " ".join(f"{load:.2f}" for load in os.getloadavg())
        print(f"load average before: {loads} on {os.cpu_count()} CPUs")
        seconds = seed(database, base_url, args.annotations, args.per_canvas, args.manifests)
        correct(database, int(args.annotations * args.corrected))
        print(f"seeded {args.annotations} annotations in {seconds:.1f} s; a curator corrected {args.corrected:.0%}")
        queries = documented(an_annotation(database))
        print(f"on-disk RDF index built in {reindex(database):.1f} s")
        (folder / "queries.json").write_text(json.dumps(queries))
        settings = {"ENRICHER_SPARQL_TIMEOUT": str(TIMEOUT)}
        server = gunicorn(folder, listener, base_url, 100, settings)
        start = time.perf_counter()  # gunicorn() returns once each worker has loaded its copy of the index
        with server as master, httpx.Client(timeout=TIMEOUT) as http, server_log(folder / "gunicorn.log"):
            listener.close()  # gunicorn holds its own copy
            print(f"server started and its workers' indexes loaded in {time.perf_counter() - start:.1f} s")
            warm_up(base_url)
            with Sampler(master) as sampler:
                dump_seconds = fetch_dump(http, base_url, folder / "dump.nq.gz")
                endpoint = {}
                for name, query in queries.items():
                    runs = [ask(http, base_url, query) for _ in range(args.repeat)]
                    best = min(seconds for seconds, _, _ in runs)
                    endpoint[name] = {"seconds": best, "rows": rows(runs[-1][1], runs[-1][2])}
            server_peak = max(rss for _, rss in sampler.samples)
        data = folder / "dump.nq"
        with gzip.open(folder / "dump.nq.gz", "rb") as packed, data.open("wb") as out:
            shutil.copyfileobj(packed, out)
        quads = sum(1 for _ in data.open("rb"))
        limit = int(psutil.virtual_memory().available * MEMORY_SHARE)
        raw = run_side("raw", data, queries, folder, repeat=args.repeat, limit=limit)
        slow = run_side("rdflib", data, queries, folder, turtle=folder / "dump.ttl", cap=args.rdflib_cap, limit=limit)
    report(endpoint, raw, slow)
    turtle = slow["turtle"]
    print(f"\ndump: {quads} quads, gzip N-Quads through the endpoint in {dump_seconds:.2f} s; "
          f"rdflib's Turtle of their union ({turtle['bytes'] / 2**20:.0f} MiB) in {turtle['turtle']:.2f} s")
    print(f"  rdflib Turtle / dump: {turtle['turtle'] / dump_seconds:.1f} (target >= 20)")
    again = f" (loaded {len(slow['loads'])} times: a capped query ends its process)" if len(slow["loads"]) > 1 else ""
    print(f"\nloading the same quads: raw pyoxigraph {raw['load']:.1f} s, rdflib {slow['load']:.1f} s{again}")
    print(f"peak memory: server (master + 2 workers) {mib(server_peak)}, raw pyoxigraph {mib(raw['peak_rss'])}, "
          f"rdflib {mib(slow['peak_rss'])}")


if __name__ == "__main__":
    main()
