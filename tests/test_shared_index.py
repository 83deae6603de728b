"""The embedded RDF index shared on disk by every process (enricher.shared_index): two openings of one
index (as two processes would hold) see each other's writes; the readers-writer lock keeps a read
and a write apart, within its deadline; a rebuild swaps in while readers go on; a process killed
mid-write leaves a consistent index; a dump reads a checkpoint, so writes go on meanwhile; the follower
compacts an index that small writes fragmented, answers unchanged; and the memory of gunicorn's workers does not grow with the number of annotations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from factories import make_manifest
from real_annotations import machine_annotations, manifest
from test_dump import fill
from test_index import PREFIXES, QUERIES
from test_web_serve import Served, enricher_serve
from webclient import seed

from enricher import shared_index
from enricher.annotate import manifest_key
from enricher.config import load_config
from enricher.errors import QueryTimeout
from enricher.rwlock import FileRWLock, LockTimeout
from enricher.shared_index import SharedIndex
from enricher.store import open_store
from enricher.vocab import Vocabulary
from enricher.web.indexing import index_path

COUNT = "SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a <http://www.w3.org/ns/oa#Annotation> }"


def annotations(index: SharedIndex) -> int:
    return int(json.loads(index.query(COUNT, format="json").body)["results"]["bindings"][0]["n"]["value"])


@pytest.fixture
def filled(tmp_path):
    """A store holding the real annotations of tests/real_annotations.py, and those annotations."""
    parsed = manifest()
    config = load_config({"base_url": "https://enricher.example.org/"}, env={})
    machine = machine_annotations(config, Vocabulary.load(), parsed)
    with open_store(tmp_path / "enricher.sqlite3") as store:
        fill(store, parsed, machine)
        yield store, machine


def test_two_openings_see_each_others_writes_and_only_one_builds(tmp_path, filled):
    store, machine = filled
    first, second = SharedIndex(tmp_path / "x.oxigraph"), SharedIndex(tmp_path / "x.oxigraph")
    first.refresh(store)
    built = (tmp_path / "x.oxigraph").stat().st_ino
    second.refresh(store)  # finds it current: no second build
    assert (tmp_path / "x.oxigraph").stat().st_ino == built
    assert annotations(first) == annotations(second) == len(machine)
    store.delete(machine[0]["id"], None)
    first.refresh(store)
    assert annotations(second) == len(machine) - 1  # written once, by FIRST, on disk
    assert second.position(store) == store.last_change()


def test_an_opening_is_dropped_once_its_caches_grew_the_process_past_the_budget(tmp_path, filled, monkeypatch):
    store, machine = filled
    index = SharedIndex(tmp_path / "x.oxigraph")
    index.refresh(store)
    assert annotations(index) == len(machine)
    kept = index._reader
    assert kept is not None and annotations(index) == len(machine) and index._reader is kept  # within the budget
    monkeypatch.setattr(shared_index, "READER_BUDGET", -2**40)  # any opening is past it, even if the process shrank
    assert annotations(index) == len(machine) and index._reader is None  # dropped after the read
    assert annotations(index) == len(machine)  # the next read opens the index anew


def test_a_write_waits_for_a_read_and_a_read_for_a_write(tmp_path, filled):
    store, _ = filled
    index = SharedIndex(tmp_path / "x.oxigraph", wait=0.2)
    index.refresh(store)
    lock = FileRWLock(tmp_path / "x.oxigraph")
    with lock.exclusive(1):  # as another process writing
        with pytest.raises(QueryTimeout, match="stayed busy"):
            index.query(COUNT)
        with pytest.raises(LockTimeout), lock.shared(0.05):
            pass
    with lock.shared(1), lock.shared(1):  # readers share
        assert annotations(index) > 0
        with pytest.raises(LockTimeout), lock.exclusive(0.05):
            pass
    reading, read = threading.Event(), threading.Event()

    def read_then_release() -> None:
        with lock.shared(1):
            reading.set()
            time.sleep(0.2)
            read.set()  # before the lock goes: the writer cannot look earlier

    reader = threading.Thread(target=read_then_release)
    reader.start()
    assert reading.wait(60)  # the reader holds the lock, however late its thread ran
    with lock.exclusive(60):  # waits for the reader, not past it
        assert read.is_set()
    reader.join()


def test_a_rebuild_swaps_in_while_another_opening_reads(tmp_path, filled):
    store, machine = filled
    path = tmp_path / "x.oxigraph"
    reader, rebuilder = SharedIndex(path), SharedIndex(path, wait=None)
    reader.refresh(store)
    store.delete(machine[0]["id"], None)
    assert rebuilder.build(store) == len(machine) - 1
    assert annotations(reader) == len(machine) - 1
    assert reader.position(store) == store.last_change()
    leftovers = {p.name for p in tmp_path.iterdir()} - {"enricher.sqlite3", "enricher.sqlite3-wal",
                                                          "enricher.sqlite3-shm"}
    assert leftovers <= {"x.oxigraph", *(f"x.oxigraph.{end}" for end in ("seq", "lock", "gate", "build", "generation",
                                                                                  "tables"))}


def documented_answers(index: SharedIndex) -> list:
    """The answer to each query of docs/queries.md (a CONSTRUCT's triples in any order)."""
    bodies = []
    for query in QUERIES.values():
        if query.lstrip().startswith("CONSTRUCT"):
            bodies.append(sorted(index.query(PREFIXES + query, format="ntriples").body.splitlines()))
        else:
            bodies.append(index.query(PREFIXES + query, format="json").body)
    return bodies


def test_the_follower_compacts_an_index_small_writes_fragmented(tmp_path, filled, monkeypatch):
    store, machine = filled
    monkeypatch.setattr(shared_index, "COMPACT_AFTER", 2)
    path = tmp_path / "x.oxigraph"
    index, reader = SharedIndex(path), SharedIndex(path)
    index.refresh(store)
    built = int((tmp_path / "x.oxigraph.tables").read_text())
    deleted = 0
    while not index.fragmented() and deleted < 10:  # each its own write, leaving tables no compaction merged
        store.delete(machine[deleted]["id"], None)  # (RocksDB merges a few itself now and then)
        index.sync(store)
        deleted += 1
    assert index.fragmented()
    follower = index.follower(store, interval=0.05)
    store.delete(machine[deleted]["id"], None)  # gives the follower a change to apply, after which it compacts
    follower.start()
    try:
        deadline = time.monotonic() + 30
        while index.fragmented() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert follower.stop(timeout=30)
    assert shared_index._tables(path) <= built + 4
    assert reader.position(store) == store.last_change()
    store.delete(machine[deleted + 1]["id"], None)  # the compacted index goes on following
    reader.sync(store)
    fresh = SharedIndex(tmp_path / "fresh.oxigraph")
    fresh.refresh(store)
    assert annotations(reader) == len(machine) - deleted - 2
    assert documented_answers(reader) == documented_answers(fresh)


KILLED_WRITER = """
import sys, time
from enricher import shared_index
from enricher.shared_index import SharedIndex
from enricher.store import open_store
index = SharedIndex(sys.argv[1])
with open_store(sys.argv[2]) as store:
    index.refresh(store)
    print("ready", flush=True)
    while True:
        index.sync(store)
        time.sleep(0.001)
"""


def test_a_process_killed_while_writing_leaves_a_consistent_index(tmp_path, filled):
    store, machine = filled
    path = tmp_path / "x.oxigraph"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(tmp_path / "enricher.sqlite3")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        key, canvas = manifest_key(manifest().id), machine[0]["target"]["source"]["id"]
        for round_ in range(30):  # rewrites that the writer applies as they come
            rerun = [{**a, "id": f"{a['id']}-{round_}"} for a in machine if a["target"]["source"]["id"] == canvas]
            store.replace_machine_annotations(key, canvas, f"{round_:02d}" * 32, rerun)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    index = SharedIndex(path)
    index.refresh(store)  # opens what the killed writer left, and catches up
    assert annotations(index) == store.count(None) + store.count(None, "verdict")


def test_a_dump_reads_a_checkpoint_and_writes_go_on_meanwhile(tmp_path, filled):
    store, machine = filled
    index = SharedIndex(tmp_path / "x.oxigraph", wait=1)
    index.refresh(store)
    produced: list[bytes] = []
    writing = threading.Event()

    failed: list[BaseException] = []

    class Slow:
        def write(self, data: bytes) -> int:
            produced.append(bytes(data))
            writing.wait(10)  # the client stops reading until the write below is done
            return len(data)

        def flush(self) -> None:
            pass

    def dump() -> None:
        try:
            index.write_dump(Slow(), "nquads")
        except BaseException as exc:  # noqa: BLE001 - checked below
            failed.append(exc)

    dumper = threading.Thread(target=dump)
    dumper.start()
    while not produced:
        time.sleep(0.01)
    store.delete(machine[0]["id"], None)
    index.refresh(store)  # an exclusive write, while the dump is under way
    writing.set()
    dumper.join()
    assert not failed
    assert machine[0]["id"].encode() in b"".join(produced)  # the dump holds the state it started from
    assert annotations(index) == len(machine) - 1
    assert not any((tmp_path / "x.oxigraph.snapshots").iterdir())


# ---- the memory of the web workers ---------------------------------------------------------------------

FEW, MANY = 600, 6000  # annotations
# what a worker may grow by between FEW and MANY: with a copy of the index in each, they grew by 146 to
# 185 MiB (about 30 KB an annotation); sharing the one on disk, by 33 to 51 (its read cache filling,
# query evaluation, the allocator's arenas)
GROWTH_MIB = 100
# documented queries whose answers do not grow with the annotations, as the count does not
BOUNDED = ("How many annotations each Iconclass concept has", "Labels in one language")


def worker_rss(master: int) -> dict[int, int]:
    """The resident MiB of each child of process MASTER (gunicorn's workers)."""
    sizes = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines())
                sizes[int(entry.name)] = int(status["VmRSS"].split()[0]) // 1024
        except (OSError, ValueError, KeyError):
            continue  # a process that ended meanwhile
    return sizes


def ask_everything(url: str, expected: int) -> None:
    """Send each documented query and a count many times at once, so both workers answer some."""
    queries = [PREFIXES + QUERIES[title] for title in BOUNDED] * 8
    answers: list[httpx.Response] = []
    counts: list[httpx.Response] = []

    def send(query: str) -> None:
        with httpx.Client(timeout=120) as client:
            answers.append(client.get(f"{url}sparql", params={"query": query}))
            counts.append(client.get(f"{url}sparql", params={"query": COUNT}))

    threads = [threading.Thread(target=send, args=(query,)) for query in queries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [a.text for a in answers + counts if a.status_code != 200]
    assert not failed and len(answers) == len(counts) == len(queries), failed
    counted = {a.json()["results"]["bindings"][0]["n"]["value"] for a in counts}
    assert counted == {str(expected)}


def test_web_workers_do_not_grow_with_the_annotations(tmp_path):
    images = "https://images.example.org/iiif"

    def add(server: Served, name: str, annotations: int) -> None:  # a canvas per 100, in bulk, not by jobs
        document = make_manifest(3, [(f"{name}{n}", 4000, 3000) for n in range(annotations // 100)], images,
                                 manifest_id=f"{images}/{name}.json")
        seed(server, document, [100] * (annotations // 100))

    add(Served("http://127.0.0.1:9/", tmp_path / "enricher.sqlite3"), "built", FEW // 2)  # in the first build
    with enricher_serve(tmp_path, "--workers", "2") as served:
        add(served, "followed", FEW // 2)  # through the change log, as all the rest: a write's memory counts in both
        for _ in range(2):  # the second round finds the caches and arenas the first one filled
            ask_everything(served.url, FEW)
        before = worker_rss(served.process.pid)
        add(served, "many", MANY - FEW)
        for _ in range(2):
            ask_everything(served.url, MANY)
        after = worker_rss(served.process.pid)
        assert len(before) == 2 and before.keys() == after.keys()  # the same two workers answered
        growth = {pid: after[pid] - before[pid] for pid in before}
        assert max(growth.values()) < GROWTH_MIB, (before, after)
        assert index_path(served.config).is_dir()
