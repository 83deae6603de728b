"""The RDF indexes bench_growth serves its sizes with: the embedded one on disk, built as ``enricher
reindex`` does, and the remote one, an ``oxigraph serve`` filled as ``enricher load-index`` does, each
kept in the bench's folder for the next run."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import psutil
from bench_container import answers, loopback_listener, stop


def reindex(url: str, index_path: Path) -> None:
    """Build the on-disk RDF index from the store, as ``enricher reindex`` does, unless an earlier run
    left it at INDEX_PATH."""
    from enricher.config import load_config
    from enricher.store import open_store
    from enricher.web import indexing

    if index_path.is_dir():
        print(f"{index_path.name}: the RDF index built by an earlier run", flush=True)
        return
    config = load_config({"database": url, "index_path": str(index_path)}, env={})
    started = time.perf_counter()
    with open_store(url) as store:
        indexing.rebuild(config, store)
    print(f"{index_path.name}: RDF index built in {time.perf_counter() - started:.1f} s", flush=True)


@contextmanager
def triplestore(location: Path) -> Iterator[tuple[str, psutil.Process]]:
    """``oxigraph serve`` on a free loopback port with its data in LOCATION, the union of its graphs as
    the default graph (as the remote index needs, and tests/test_remote_index.py starts it); yield its
    base URL and process."""
    oxigraph = shutil.which("oxigraph")
    if oxigraph is None:
        raise SystemExit("the oxigraph server is missing (pip install oxigraph)")
    listener, base_url = loopback_listener()
    listener.close()
    base, log_path = base_url.rstrip("/"), location.with_name(location.name + ".log")
    with log_path.open("w") as log:
        process = subprocess.Popen([oxigraph, "serve", "--location", str(location), "--bind",
                                    base.removeprefix("http://"), "--union-default-graph"],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not answers(base + "/"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"oxigraph serve did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield base, psutil.Process(process.pid)
    finally:
        stop(process, 60)


def remote_index(url: str, base_url: str, triplestore: str, location: Path) -> dict[str, str]:
    """Fill TRIPLESTORE from the store at URL as ``enricher load-index`` does (docs/deploy.md), unless
    an earlier run did (its data in LOCATION): then only set the pusher's position to the change log's
    end, as the load does. Return the settings of a remote index on it, fed by the pusher."""
    from enricher.config import load_config
    from enricher.push import Pusher
    from enricher.remote_index import RemoteIndex
    from enricher.store import open_store

    settings = {"index": "remote", "index_url": f"{triplestore}/query", "push_url": f"{triplestore}/store",
                "push_protocol": "gsp"}
    config = load_config({"database": url, "base_url": base_url, **settings}, env={})
    loaded = location.with_name(location.name + ".loaded")
    with open_store(url) as store:
        if loaded.is_file() and location.is_dir():
            with closing(Pusher.from_config(config, store)) as pusher:
                store.move_cursor(pusher.name, store.last_change())
            print(f"{location.name}: loaded by an earlier run", flush=True)
        else:
            started = time.perf_counter()
            with closing(RemoteIndex(config, store)) as index:
                index.load(f"{triplestore}/store?no_transaction")  # Oxigraph's bulk loader
            seconds = time.perf_counter() - started
            loaded.write_text(f"{seconds:.1f}")
            print(f"{location.name}: loaded in {seconds:.1f} s", flush=True)
    return {f"ENRICHER_{name.upper()}": value for name, value in settings.items()}
