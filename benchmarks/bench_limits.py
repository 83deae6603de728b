"""What the abuse limits cost: each limited path against the same work unlimited, in one run.

1. **SPARQL caps.** Seeds N machine annotations as bench_container.py does, builds an in-memory RDF
   index from the store and runs every query of docs/queries.md (as bench_sparql.py picks them) plus
   one answering --rows rows, SELECT as SPARQL JSON and CONSTRUCT as N-Triples, through
   ``Index.query`` with the default caps (sparql_max_rows, sparql_max_triples: rows are bounded from
   what the serializer writes, triples counted as they pass) and without caps, alternating, best of
   --repeat. Answers must be equal.
   Then a SELECT of every triple, which the default cap refuses at the row past it: the seconds to
   that refusal against the seconds to the whole answer without a cap.
2. **Rate limits.** Serves the app under gunicorn (2 workers) on a small seeded database, once with
   the write limits off (write_rate 0) and once on but out of reach, and POSTs --posts annotations
   through each from one client: writes/s of both and the ratio. Each limited write takes from two
   token buckets in SQLite (one transaction) before the write itself.

    python benchmarks/bench_limits.py --annotations 20000
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import httpx
from bench_container import gunicorn, loopback_listener, seed, seed_options
from bench_sparql import NTRIPLES, SELECT_JSON, an_annotation, documented

ROWS_QUERY = "SELECT ?s ?p ?o WHERE {{ ?s ?p ?o }} LIMIT {rows}"
EVERYTHING = "SELECT ?s ?p ?o WHERE { ?s ?p ?o }"
NOTE = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation", "bodyValue": "a note"}
TOKEN = "bench:s3cret"


def timed(run) -> tuple[float, bytes]:
    """The seconds RUN took, and what it returned."""
    start = time.perf_counter()
    answer = run()
    return time.perf_counter() - start, answer


def sparql_caps(folder: Path, args: argparse.Namespace) -> None:
    """Part 1: the documented queries with and without the caps, and a refusal against a whole answer."""
    from enricher.config import SETTINGS_BY_NAME
    from enricher.errors import ResultTooLarge
    from enricher.index import Index
    from enricher.store import open_store

    caps = {"max_rows": SETTINGS_BY_NAME["sparql_max_rows"].default,
            "max_triples": SETTINGS_BY_NAME["sparql_max_triples"].default}
    database, base_url = folder / "sparql.sqlite3", "https://bench.example.org/"
    seconds = seed(database, base_url, args.annotations, args.per_canvas, args.manifests)
    with open_store(database) as store, Index(base=base_url) as index:
        start = time.perf_counter()
        index.build(store)
        print(f"seeded {args.annotations} annotations in {seconds:.1f} s, index built in "
              f"{time.perf_counter() - start:.1f} s ({len(index.store)} quads); caps {caps}")
        queries = {**documented(an_annotation(database)),
                   f"{args.rows} rows of triples": ROWS_QUERY.format(rows=args.rows)}
        total = {"capped": 0.0, "uncapped": 0.0}
        print(f"\n{'query':<48} {'uncapped s':>10} {'capped s':>10} {'ratio':>6}")
        for name, query in queries.items():
            accept = NTRIPLES if re.search(r"^\s*CONSTRUCT\b", query, re.MULTILINE) else SELECT_JSON
            runs: dict[str, list[tuple[float, bytes]]] = {"uncapped": [], "capped": []}
            for _ in range(args.repeat):  # alternating, so both sides see the same load
                for side, options in (("uncapped", {}), ("capped", caps)):
                    runs[side].append(timed(lambda: index.query(query, accept=accept, timeout=None, **options).body))
            if runs["capped"][-1][1] != runs["uncapped"][-1][1]:
                raise SystemExit(f"{name}: the capped answer differs from the uncapped one")
            fastest = {side: min(seconds for seconds, _ in done) for side, done in runs.items()}
            for side in total:
                total[side] += fastest[side]
            print(f"{name[:48]:<48} {fastest['uncapped']:>10.3f} {fastest['capped']:>10.3f} "
                  f"{fastest['capped'] / fastest['uncapped']:>6.2f}")
        print(f"{'all queries':<48} {total['uncapped']:>10.3f} {total['capped']:>10.3f} "
              f"{total['capped'] / total['uncapped']:>6.2f}")

        whole, answer = timed(lambda: index.query(EVERYTHING, accept=SELECT_JSON, timeout=None).body)
        start = time.perf_counter()
        try:
            index.query(EVERYTHING, accept=SELECT_JSON, timeout=None, **caps)
            raise SystemExit("the cap did not refuse the answer of every triple")
        except ResultTooLarge:
            refused = time.perf_counter() - start
        print(f"\nevery triple ({len(index.store)} rows, {len(answer) / 2**20:.0f} MiB of JSON): whole answer "
              f"without a cap {whole:.2f} s, refused at row {caps['max_rows'] + 1} in {refused:.2f} s "
              f"({whole / refused:.1f}x sooner)")


def rate_limits(folder: Path, args: argparse.Namespace) -> None:
    """Part 2: writes/s with the write limits off and on (never reached)."""
    from enricher.annotate import manifest_key

    sides = {"off": {"ENRICHER_WRITE_RATE": "0"},
             "on": {"ENRICHER_WRITE_RATE": "1e12", "ENRICHER_WRITE_BURST": str(10 * args.posts)}}
    rates = {}
    for side, limits in sides.items():
        place = folder / f"writes-{side}"
        place.mkdir()
        listener, base_url = loopback_listener()
        seed(place / "enricher.sqlite3", base_url, 250, 50, 1)  # bench_container's server pages it
        key = manifest_key("https://bench.example.org/iiif/m0/manifest.json")
        canvas = "https://bench.example.org/iiif/m0/canvas/0"
        settings = {"ENRICHER_TOKENS": TOKEN, **limits}
        with gunicorn(place, listener, base_url, 100, settings), httpx.Client(timeout=60) as http:
            listener.close()  # gunicorn holds its own copy
            headers = {"Authorization": f"Bearer {TOKEN.split(':')[1]}"}
            url = f"{base_url}{key}/annotations/"
            start = time.perf_counter()
            for _ in range(args.posts):
                response = http.post(url, json={**NOTE, "target": canvas}, headers=headers)
                if response.status_code != 201:
                    raise SystemExit(f"POST answered {response.status_code}: {response.text[:2000]}")
            rates[side] = args.posts / (time.perf_counter() - start)
    print(f"\n{args.posts} POSTs of an annotation, one client, gunicorn with 2 workers: limits off "
          f"{rates['off']:.0f} writes/s, on {rates['on']:.0f} writes/s: {rates['on'] / rates['off']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    seed_options(parser, annotations=20_000)
    parser.add_argument("--rows", type=int, default=50_000, help="Rows the extra SELECT answers")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each query per side; the best is kept")
    parser.add_argument("--posts", type=int, default=500, help="Annotations POSTed per side")
    args = parser.parse_args()
    loads = " ".join(f"{load:.2f}" for load in os.getloadavg())
    print(f"load average before: {loads} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        sparql_caps(Path(tmp), args)
        rate_limits(Path(tmp), args)


if __name__ == "__main__":
    main()
