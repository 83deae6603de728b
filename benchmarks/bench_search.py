"""IIIF Content Search and autocomplete over 1,000,000 annotations against the same over 10,000, in one run.

Seeds two fresh SQLite stores, one manifest each (1,000 canvases), with 10,000 and 1,000,000 machine
annotations: real documents (annotate.build_annotation, a mix of COCO classes, one template per class
with its own id and box) stored in bulk by Store.seed_machine_annotations, which writes the search
index with them. Then asks each app (create_app, Flask's test client: the view, the store's index,
the answer built and serialised) every query below, --repeat times, and prints the median latency of
each on both stores (taking turns, so the machine's load falls on both alike) and the ratio 1M / 10k
(target: within 1.5x): searches by a label in three languages, a concept URI and a broader Iconclass
concept (which names five classes), 1.0 and 2.0, the first page of 100 hits with the total; and
autocomplete of a two-letter prefix.

    python benchmarks/bench_search.py                 # 10,000 against 1,000,000 (about 10 minutes)
    python benchmarks/bench_search.py --large 200000  # a quicker look
    python benchmarks/bench_search.py --folder /tmp/search-bench   # keep the stores for the next run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from enricher.annotate import Generator, build_annotation, manifest_key
from enricher.config import load_config
from enricher.detect import Detection
from enricher.manifest import parse_manifest
from enricher.store import open_store
from enricher.vocab import Vocabulary

LABELS = ("person", "dog", "horse", "chair", "book", "bird", "boat", "cup", "bench", "cat", "elephant", "zebra")
CANVASES = 1000
BATCH = 50_000
MODEL = "ab" * 32
QUERIES = (
    ("search/1", "Hund"), ("search/1", "chien"), ("search/2", "dog"),
    ("search/1", "http://www.wikidata.org/entity/Q144"), ("search/1", "animals"), ("search/2", "25F"),
    ("autocomplete/1", "Hu"), ("autocomplete/2", "ch"),
)
BASE = "http://bench.example/"


def manifest_document() -> dict:
    """A Presentation 3 manifest of CANVASES canvases (no images are fetched)."""
    items = [{"id": f"https://images.example/m/canvas/{n}", "type": "Canvas", "width": 4000, "height": 3000,
              "label": {"none": [f"p. {n}"]}, "items": []} for n in range(CANVASES)]
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://images.example/m.json",
            "type": "Manifest", "label": {"none": ["search benchmark"]}, "items": items}


def templates(manifest, config) -> dict[str, dict]:
    """One real annotation per class of LABELS (annotate.build_annotation, as a job builds them)."""
    vocabulary = Vocabulary.load()
    generator = Generator("0.1.0", "bench.pt", MODEL)
    canvas = manifest.canvases[0]
    return {label: build_annotation(canvas=canvas, manifest=manifest, detection=Detection(label, 0.8, (10, 10, 50, 40)),
                                    mapping=vocabulary.lookup(label), generator=generator,
                                    created="2026-01-01T00:00:00Z", config=config) for label in LABELS}


def annotations(start: int, count: int, manifest, made: dict[str, dict]) -> list[dict]:
    """Annotations START to START + COUNT: the template of their class with an id, canvas and box of their own."""
    out = []
    for n in range(start, start + count):
        template = made[LABELS[n % len(LABELS)]]
        row = n // CANVASES
        target = {**template["target"], "source": {**template["target"]["source"], "id": manifest.canvases[n % CANVASES].id},
                  "selector": {**template["target"]["selector"], "value": f"xywh={row % 3900},{row // 3900},50,40"}}
        out.append({**template, "id": f"{template['id'][:-32]}{n:032x}", "target": target})
    return out


def seed(folder: Path, total: int) -> tuple[str, str, float]:
    """Seed a store with TOTAL annotations (unless FOLDER has it); return its path, the manifest key and
    the seconds it took."""
    path = folder / f"search-{total}.sqlite3"
    document = manifest_document()
    if path.is_file():  # seeded by an earlier run with --folder
        return str(path), manifest_key(document["id"]), 0.0
    manifest = parse_manifest(document, document["id"])
    key = manifest_key(manifest.id)
    made = templates(manifest, load_config({"base_url": BASE}, env={}))
    started = time.perf_counter()
    with open_store(path) as store:
        store.save_manifest(key, manifest.id, document["id"], "search benchmark", document)
        for start in range(0, total, BATCH):
            store.seed_machine_annotations(key, MODEL, annotations(start, min(BATCH, total - start), manifest, made))
    return str(path), key, time.perf_counter() - started


def measure(stores: dict[int, tuple[str, str]], repeat: int) -> dict[int, dict[tuple[str, str], tuple[float, int]]]:
    """Median seconds of each query on the app over each store (total -> (path, key)), and the total
    (or number of terms) it answered. The stores take turns, query by query, so a change in the
    machine's load falls on both alike."""
    from enricher.web import create_app

    apps = {total: (create_app({"database": path, "base_url": BASE, "job_worker": False}), key)
            for total, (path, key) in stores.items()}
    times: dict[int, dict[tuple[str, str], list[float]]] = {total: {q: [] for q in QUERIES} for total in apps}
    found: dict[int, dict[tuple[str, str], int]] = {total: {} for total in apps}
    for round_ in range(repeat + 1):  # the first round warms up (the lexicon loads once per process)
        for route, q in QUERIES:
            for total, (app, key) in apps.items():
                client = app.test_client()
                started = time.perf_counter()
                response = client.get(f"/{key}/{route}", query_string={"q": q})
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.data[:300]
                if round_:
                    times[total][(route, q)].append(elapsed)
                answer = response.get_json()
                found[total][(route, q)] = (answer.get("within", {}).get("total") or answer.get("partOf", {}).get("total")
                                            or len(answer.get("terms", answer.get("items", []))))
    for app, _ in apps.values():
        app.extensions["enricher"].close()
    return {total: {q: (statistics.median(times[total][q]), found[total][q]) for q in QUERIES} for total in apps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--folder", type=Path, help="keep the seeded stores here (and reuse them next time)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        stores = {}
        for total in (args.small, args.large):
            path, key, seconds = seed(folder, total)
            if seconds:
                print(f"seeded {total:,} annotations in {seconds:.1f} s ({total / seconds:,.0f}/s)", flush=True)
            stores[total] = (path, key)
        measured = measure(stores, args.repeat)
    print(f"\n{'query':<52} {args.small:>10,} {args.large:>12,}   ratio  (found small / large)")
    ratios = []
    for query in QUERIES:
        (small, found_small), (large, found_large) = measured[args.small][query], measured[args.large][query]
        ratios.append(large / small)
        print(f"{query[0] + ' q=' + query[1]:<52} {small * 1000:>8.2f}ms {large * 1000:>10.2f}ms {large / small:>7.2f}x"
              f"  ({found_small:,} / {found_large:,})")
    print(f"\nworst ratio {max(ratios):.2f}x (target within 1.5x)")


if __name__ == "__main__":
    main()
