"""Where the shared on-disk RDF index's query time goes, in one process and one run: the documented
queries against a read-only opening of the on-disk index (as a web worker reads it) and against an
in-memory copy of the same quads, then against the on-disk index after many small writes, before and
after a compaction (what SharedIndex's follower does once writes have fragmented it).

For each N of --sizes: seeds a fresh store with N annotations as bench_container.py does, lets a
curator correct 1% of them and builds the on-disk index (``enricher reindex``). Then runs every
query of docs/queries.md --rounds times, the sides in turn query by query; prints per side the
median of the first round (a fresh opening) and of the later rounds, and their ratio to memory.
Then copies the index twice, applies --writes small writes to both (each: open, rewrite one
annotation's graph, flush, close, as SharedIndex does), compacts one (``Store.optimize()``) and runs
the queries again on the three (as built, after the writes, after the writes and a compaction).

    python benchmarks/bench_index_disk.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyoxigraph as ox
from bench_container import loopback_listener, seed
from bench_sparql import an_annotation, correct, documented, reindex


def ask(store: ox.Store, query: str) -> float:
    """Seconds to answer QUERY and serialize its answer as the endpoint does."""
    start = time.perf_counter()
    answer = store.query(query, use_default_graph_as_union=True)
    answer.serialize(format=ox.RdfFormat.N_TRIPLES if isinstance(answer, ox.QueryTriples)
                     else ox.QueryResultsFormat.JSON)
    return time.perf_counter() - start


def compare(stores: dict[str, ox.Store], queries: dict[str, str], rounds: int) -> dict[str, tuple[float, float]]:
    """Each side's median seconds over the queries: (first round, later rounds)."""
    seconds = {side: {query: [] for query in queries} for side in stores}
    for _ in range(rounds):
        for name, query in queries.items():
            for side, store in stores.items():
                seconds[side][name].append(ask(store, query))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    medians = {}
    for side, runs in seconds.items():
        first = statistics.median(r[0] for r in runs.values())
        later = statistics.median(statistics.median(r[1:] or r) for r in runs.values())
        medians[side] = (first, later)
    base = next(iter(medians.values()))[1]
    for side, (first, later) in medians.items():
        print(f"    {side:22s} first round {first * 1000:8.1f} ms, later {later * 1000:8.1f} ms:"
              f" {later / base:5.2f}; load average {load}", flush=True)
    return medians


def small_writes(path: Path, count: int) -> None:
    """COUNT writes, each opening the index, rewriting one annotation's graph, flushing and closing."""
    graphs = [g for g in ox.Store.read_only(str(path)).named_graphs() if "/anno" in g.value][:count]
    for graph in graphs:
        store = ox.Store(str(path))
        quads = list(store.quads_for_pattern(None, None, None, graph))
        store.remove_graph(graph)
        store.extend(quads)
        store.flush()
        del store


def tables(path: Path) -> int:
    return sum(1 for _ in path.glob("*.sst"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="Numbers of annotations, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each query on each side")
    parser.add_argument("--writes", type=int, default=300, help="Small writes before the compaction")
    args = parser.parse_args()
    for size in (int(n) for n in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-index-disk-") as tmp:
            folder = Path(tmp)
            database = folder / "enricher.sqlite3"
            listener, base_url = loopback_listener()
            seconds = seed(database, base_url, size, 100, 10)
            listener.close()
            correct(database, size // 100)
            queries = documented(an_annotation(database))
            print(f"\n{size} annotations: seeded in {seconds:.1f} s, index built in {reindex(database):.1f} s")
            built = folder / "enricher.oxigraph"
            memory = ox.Store()
            memory.bulk_load(ox.Store.read_only(str(built)).dump(format=ox.RdfFormat.N_QUADS), format=ox.RdfFormat.N_QUADS)
            compare({"in memory": memory, "on disk, read-only": ox.Store.read_only(str(built))}, queries, args.rounds)
            del memory
            written, compacted = folder / "written", folder / "compacted"
            shutil.copytree(built, written)
            start = time.perf_counter()
            small_writes(written, args.writes)
            print(f"  {args.writes} small writes in {time.perf_counter() - start:.1f} s:"
                  f" {tables(built)} tables -> {tables(written)}")
            shutil.copytree(written, compacted)
            start = time.perf_counter()
            store = ox.Store(str(compacted))
            store.optimize()
            store.flush()
            del store
            print(f"  compacted in {time.perf_counter() - start:.1f} s: {tables(compacted)} tables")
            compare({name: ox.Store.read_only(str(path)) for name, path in
                     (("as built", built), ("after the writes", written), ("writes, compacted", compacted))},
                    queries, args.rounds)


if __name__ == "__main__":
    main()
