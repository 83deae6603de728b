"""The web processes' memory and the documented queries' latency as the annotations grow: this tree's
RDF index against a baseline tree's (``--baseline``, a checkout of main before the index was shared
on disk: a copy of it in each worker), in one run.

For each N of --sizes: seeds a fresh store with N annotations as bench_container.py does, lets a
curator correct 1% of them, builds the on-disk index once with this tree (the baseline's workers
copy theirs from it), then serves it under gunicorn with 2 workers from each tree in turn (the
tree first on PYTHONPATH), waits until the workers idle, has both answer a query, and runs every
query of docs/queries.md --repeat times through ``POST /sparql`` while the RSS of the master and
each worker is sampled every 50 ms. Prints, per N and tree, the peak RSS of the web processes
(master and workers together) and of the largest worker, the largest worker's RSS once the queries
are done (what stays: the peak also holds what a query's evaluation takes while it runs, which
grows with what it reads in either design), and the median seconds of each query;
then, per tree, the peak at the largest N over the peak at the smallest (target for this tree:
at most 1.2 from 10,000 to 100,000 annotations).

    git -C /work/main archive 1513518 | tar -x -C /tmp/base
    python benchmarks/bench_index_memory.py --baseline /tmp/base --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import bench_container
import httpx
import psutil
from bench_container import gunicorn, loopback_listener, mib, seed
from bench_sparql import TIMEOUT, an_annotation, ask, correct, documented, reindex, warm_up

HERE = Path(__file__).resolve().parent.parent
SAMPLE_SECONDS = 0.05


class PeakSampler:
    """The highest RSS of gunicorn's master and workers together, and of each worker, every 50 ms."""

    def __init__(self, master: psutil.Process):
        self.workers = master.children(recursive=True)
        self.processes = [master, *self.workers]
        self.total = 0
        self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        sizes = {p.pid: p.memory_info().rss for p in self.processes}
        self.total = max(self.total, sum(sizes.values()))
        self.worker = max(self.worker, *(sizes[p.pid] for p in self.workers))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def __enter__(self) -> Self:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def measure(tree: Path, folder: Path, listener, base_url: str, queries: dict[str, str], repeat: int) -> dict:
    """Serve FOLDER's store with the code of TREE; return peak RSS and median seconds per query."""
    settings = {"ENRICHER_SPARQL_TIMEOUT": str(TIMEOUT), "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    with gunicorn(folder, listener, base_url, 100, settings) as master, httpx.Client(timeout=TIMEOUT) as http:
        loaded = time.perf_counter() - start
        warm_up(base_url)
        with PeakSampler(master) as sampler:
            seconds = {name: statistics.median(ask(http, base_url, query)[0] for _ in range(repeat))
                       for name, query in queries.items()}
        after = max(worker.memory_info().rss for worker in sampler.workers)
    return {"loaded": loaded, "total": sampler.total, "worker": sampler.worker, "after": after, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="A checkout of the baseline (main)")
    parser.add_argument("--sizes", default="10000,100000", help="Numbers of annotations, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each query; the median is kept")
    args = parser.parse_args()
    bench_container.START_SECONDS = 3600  # the baseline's workers copy 100,000 annotations in minutes
    trees = {"this tree": HERE, "baseline": args.baseline.resolve()}
    results: dict[int, dict[str, dict]] = {}
    for size in (int(n) for n in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-index-memory-") as tmp:
            folder = Path(tmp)
            database = folder / "enricher.sqlite3"
            print(f"\n{size} annotations; load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
            listener, base_url = loopback_listener()
            seconds = seed(database, base_url, size, 100, 10)
            correct(database, size // 100)
            queries = documented(an_annotation(database))
            print(f"  seeded in {seconds:.1f} s, on-disk index built in {reindex(database):.1f} s")
            for name, tree in trees.items():
                results.setdefault(size, {})[name] = found = measure(tree, folder, listener, base_url, queries,
                                                                   args.repeat)
                print(f"  {name:9s} started in {found['loaded']:6.1f} s; peak RSS web processes {mib(found['total'])},"
                      f" largest worker {mib(found['worker'])}, after the queries {mib(found['after'])};"
                      f" load average {os.getloadavg()[0]:.2f}")
            listener.close()
            for query in queries:
                mine, theirs = (results[size][name]["seconds"][query] for name in trees)
                print(f"    {query[:52]:52s} {mine * 1000:9.1f} ms vs {theirs * 1000:9.1f} ms: {mine / theirs:6.2f}")
            mine, theirs = (statistics.median(results[size][name]["seconds"].values()) for name in trees)
            print(f"    {'median of the queries':52s} {mine * 1000:9.1f} ms vs {theirs * 1000:9.1f} ms: {mine / theirs:6.2f}")
    smallest, largest = min(results), max(results)
    if smallest != largest:
        print(f"\npeak RSS at {largest} over {smallest} annotations:")
        for name in trees:
            total, worker, after = (results[largest][name][k] / results[smallest][name][k]
                                    for k in ("total", "worker", "after"))
            target = " (target <= 1.2)" if name == "this tree" else ""
            print(f"  {name:9s} web processes {total:5.2f}, largest worker {worker:5.2f}, after the queries"
                  f" {after:5.2f}{target}")


if __name__ == "__main__":
    sys.exit(main())
