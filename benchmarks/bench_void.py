"""/void's latency as the annotations grow: this tree's VoID (read from the store's kept counts)
against a baseline tree's (``--baseline``, a checkout before VoID left the index: ``dump.void(index,
store, config)`` counting by SPARQL over the on-disk index), in one run.

For each N of --sizes it copies ``{N}.sqlite3`` and the embedded index ``{N}-embedded.oxigraph`` (with
its side files) from --seeded (bench_growth's ``--folder``, only read) into a temporary folder, then
times dump.void in a fresh process per tree: the first call (the baseline counts there, as after
every change of the data) and the best of --repeat. A size whose index is missing is timed for this
tree only. Prints the load average and, per tree, the time at its largest N over the smallest's.

    git -C /work/main archive 5ccd776 | tar -x -C /tmp/base
    python benchmarks/bench_void.py --baseline /tmp/base --seeded /var/tmp/growth --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SIDE_FILES = (".seq", ".generation", ".tables")


def copy(seeded: Path, folder: Path, total: int) -> tuple[Path, Path | None]:
    """Copy size TOTAL's store (and its index, when there is one) from SEEDED into FOLDER."""
    database = folder / f"{total}.sqlite3"
    shutil.copyfile(seeded / database.name, database)
    index = seeded / f"{total}-embedded.oxigraph"
    if not index.is_dir():
        return database, None
    shutil.copytree(index, folder / index.name)
    for suffix in SIDE_FILES:
        shutil.copyfile(f"{index}{suffix}", folder / f"{index.name}{suffix}")
    return database, folder / index.name


def measure(database: str, index: str, repeat: int, baseline: bool) -> dict[str, float]:
    """Time dump.void on DATABASE (the baseline's over INDEX), in this process."""
    from enricher import dump
    from enricher.config import load_config
    from enricher.store import open_store

    config = load_config({"database": database, "index_path": index}, env={})
    with open_store(database) as store:
        if baseline:
            from enricher.web.indexing import load

            opened = load(config, store)  # up to date before the clock starts
            call = lambda: dump.void(opened, store, config)  # noqa: E731
        else:
            call = lambda: dump.void(store, config)  # noqa: E731
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    return {"first": times[0], "best": min(times)}


def run(tree: Path, database: Path, index: Path | None, repeat: int, baseline: bool) -> dict[str, float]:
    """measure() in a fresh process with TREE first on the path."""
    command = [sys.executable, __file__, "--measure", str(database), str(index or ""), str(repeat)]
    if baseline:
        command.append("--as-baseline")
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                          check=True, cwd=tree)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--seeded", type=Path, required=True)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    found: dict[tuple[str, int], dict[str, float]] = {}
    print(f"load average {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-void-") as folder:
        for total in sizes:
            database, index = copy(args.seeded, Path(folder), total)
            trees = {"baseline": (args.baseline, True), "this tree": (HERE, False)}  # this tree may migrate the copy
            for name, (tree, baseline) in trees.items():
                if baseline and index is None:
                    continue
                found[name, total] = run(tree, database, index, args.repeat, baseline)
                print(f"{total:,} {name}: first {found[name, total]['first']:.4f} s, "
                      f"best {found[name, total]['best']:.4f} s", flush=True)
    print(f"load average {os.getloadavg()}")
    for name in ("baseline", "this tree"):
        measured = [total for total in sizes if (name, total) in found]
        small, large = measured[0], measured[-1]
        if large != small:
            print(f"{name}: {large:,} / {small:,} first {found[name, large]['first'] / found[name, small]['first']:.2f}, "
                  f"best {found[name, large]['best'] / found[name, small]['best']:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        database, index, repeat = sys.argv[2], sys.argv[3], int(sys.argv[4])
        print(json.dumps(measure(database, index, repeat, "--as-baseline" in sys.argv)))
    else:
        main()
