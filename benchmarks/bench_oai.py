"""OAI-PMH ListRecords of N records against serialising the same records from the store, in one run.

Seeds a fresh SQLite store with N manifests of one canvas, each with one machine annotation of a class
with an Iconclass concept (as a job stores them, many manifests a transaction), brings the OAI-PMH
records up to date (enricher.harvest.sync, the follower the service runs), then:

- protocol: serves the app under gunicorn (2 sync workers, the RDF index not loaded: OAI-PMH does not
  use it) and walks ``ListRecords`` with ``metadataPrefix=edm`` from the first page to the last by its
  resumption tokens (``oai_max_records`` a page), one client (httpx), sampling the server's RSS;
- baseline: in this process, reads the same records from the store in the harvest order and writes
  each as EDM (Catalogue.describe, Catalogue.metadata, lxml's tostring), without the protocol; it takes
  turns with the harvest (the records of every 10 pages), so both meet the same load on a shared machine.

Prints records/s of both and the ratio protocol / baseline (target >= 0.8), and the server's peak RSS
at 10%, 50% and 100% of the walk: flat means a harvest does not grow with the repository.

    python benchmarks/bench_oai.py --records 100000
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_container import (  # noqa: E402
    CHECKPOINTS,
    Sampler,
    gunicorn,
    loopback_listener,
    manifest_document,
    mib,
)

TOKEN = re.compile(rb"<resumptionToken[^>]*>([^<]*)</resumptionToken>")
RECORD = b"<record>"
LABELS = ("dog", "horse", "bird", "cup", "clock", "book", "chair", "boat", "bench", "cat")  # all with Iconclass
SEED_BATCH = 1000  # manifests a transaction
TURN = 10  # harvest pages between two stretches of the baseline


def serve(fd: int) -> None:
    """Run the service (settings from ENRICHER_* variables) on listening socket FD, without loading the
    RDF index at start as ``enricher serve`` does: nothing here queries it."""
    from enricher.config import load_config
    from enricher.web import create_app
    from enricher.web.server import Server

    class OAIServer(Server):
        def load(self):
            return create_app(self.settings.as_dict())

    OAIServer(load_config(), {"bind": [f"fd://{fd}"]}).run()


def seed(config, records: int) -> float:
    """Store RECORDS manifests with one machine annotation each; return the seconds it took."""
    from enricher import __version__
    from enricher.annotate import Generator, build_annotation, manifest_key
    from enricher.detect import Detection
    from enricher.manifest import parse_manifest
    from enricher.store import open_store
    from enricher.vocab import Vocabulary

    vocabulary = Vocabulary.load()
    generator = Generator(__version__, "bench-model.pt", "be" * 32)
    start = time.perf_counter()
    with open_store(config.database) as store:
        for first in range(0, records, SEED_BATCH):
            with store.transaction():
                for number in range(first, min(first + SEED_BATCH, records)):
                    document = manifest_document(number, 1)
                    manifest = parse_manifest(document, document["id"])
                    key = manifest_key(manifest.id)
                    store.save_manifest(key, manifest.id, document["id"], manifest.label, document)
                    label = LABELS[number % len(LABELS)]
                    annotation = build_annotation(
                        canvas=manifest.canvases[0], manifest=manifest,
                        detection=Detection(label, 0.9, (100, 100, 400, 300)), mapping=vocabulary.lookup(label),
                        generator=generator, created="2026-01-01T00:00:00Z", config=config,
                    )
                    store.replace_machine_annotations(key, manifest.canvases[0].id, generator.model_sha256, [annotation])
    return time.perf_counter() - start


def follow(config) -> tuple[int, float]:
    """Bring the OAI-PMH records up to date; return how many there are and the seconds it took."""
    from enricher.harvest import Catalogue, sync
    from enricher.store import open_store

    start = time.perf_counter()
    with open_store(config.database) as store:
        sync(store, Catalogue(config))
        return store.harvest_position(), time.perf_counter() - start


class Baseline:
    """Writes the records as EDM straight from the store, in the harvest order, a stretch at a time
    (taking turns with the harvest, so both sides meet the same load on a shared machine)."""

    def __init__(self, config, page: int):
        from enricher.harvest import Catalogue
        from enricher.store import open_store

        self.catalogue, self.page = Catalogue(config), page
        self.store = open_store(config.database)
        self.upto, self.after = self.store.harvest_position(), 0
        self.done, self.seconds, self.cpu = 0, 0.0, 0.0

    def write(self, count: int) -> None:
        """Write the next COUNT records (fewer at the end)."""
        from lxml import etree

        start, cpu = time.perf_counter(), time.process_time()
        while count > 0 and (batch := self.store.harvest_records(self.after, self.upto, min(count, self.page))):
            for record in batch:
                described = self.catalogue.describe(self.store, record.key)
                etree.tostring(self.catalogue.metadata(described, "edm"), encoding="UTF-8")
            self.after, self.done, count = batch[-1].position, self.done + len(batch), count - len(batch)
        self.seconds += time.perf_counter() - start
        self.cpu += time.process_time() - cpu


def harvest(base_url: str, records: int, sampler: Sampler, baseline: Baseline) -> float:
    """Walk ListRecords (edm) by its resumption tokens to the end, letting BASELINE write as many records
    after every TURN pages; return the harvest's records/s."""
    done, seconds, query = 0, 0.0, {"verb": "ListRecords", "metadataPrefix": "edm"}
    with httpx.Client(timeout=120) as http:
        for pages in itertools.count(1):
            start = time.perf_counter()
            response = http.get(f"{base_url}oai", params=query)
            response.raise_for_status()
            body = response.content
            found = TOKEN.search(body)
            seconds += time.perf_counter() - start
            done += body.count(RECORD)
            sampler.done = done
            if pages % TURN == 0:
                baseline.write(done - baseline.done)
            if not found or not found.group(1):
                break
            query = {"verb": "ListRecords", "resumptionToken": found.group(1).decode()}
    baseline.write(done - baseline.done)
    if done != records or baseline.done != records:
        raise SystemExit(f"the harvest got {done} records and the baseline wrote {baseline.done}, not {records}")
    return done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=100, help="Records per OAI-PMH response (oai_max_records)")
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)  # internal: the gunicorn subprocess
    args = parser.parse_args()
    if args.serve_fd is not None:
        serve(args.serve_fd)
        return
    from enricher.config import load_config

    with tempfile.TemporaryDirectory(prefix="bench-oai-") as tmp:
        folder = Path(tmp)
        listener, base_url = loopback_listener()
        config = load_config({"database": str(folder / "enricher.sqlite3"), "base_url": base_url,
                              "oai_max_records": args.page}, env={})
        print("load average before: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
        seconds = seed(config, args.records)
        print(f"seeded {args.records} manifests in {seconds:.1f} s")
        count, seconds = follow(config)
        print(f"{count} OAI-PMH records derived from the change log in {seconds:.1f} s")
        settings = {"ENRICHER_OAI_MAX_RECORDS": str(args.page)}
        # probing /oai: the service root lists every manifest, 25 MB at 100,000 of them
        with gunicorn(folder, listener, base_url, 100, settings, script=__file__, probe="oai?verb=Identify") as master:
            listener.close()  # gunicorn holds its own copy
            with httpx.Client() as http:  # warm-up: each worker opens its store and builds its catalogue
                for _ in range(4):
                    http.get(f"{base_url}oai", params={"verb": "ListRecords", "metadataPrefix": "edm"}).raise_for_status()
            baseline = Baseline(config, args.page)
            with Sampler(master) as sampler:
                server_cpu, client_cpu = sampler.cpu()
                protocol = harvest(base_url, count, sampler, baseline)
                server_cpu, client_cpu = (after - before for after, before in zip(sampler.cpu(), (server_cpu, client_cpu)))
            baseline.store.close()
            peaks = "  ".join(f"{int(share * 100):3d}%:{mib(peak)}" for share, peak in
                              zip(CHECKPOINTS, sampler.peaks(count)))
        client_cpu -= baseline.cpu  # this process ran the baseline too
        bare, bare_cpu = baseline.done / baseline.seconds, 1000 * baseline.cpu / baseline.done
    print(f"ListRecords over HTTP ({args.page} a page): {protocol:8.1f} records/s  "
          f"CPU ms/record server {1000 * server_cpu / count:.3f} client {1000 * client_cpu / count:.3f}")
    print(f"  server peak RSS {peaks}")
    print(f"the same records from the store:  {bare:8.1f} records/s  CPU ms/record {bare_cpu:.3f}")
    print(f"ratio protocol / baseline: {protocol / bare:.2f} (target >= 0.8); "
          f"CPU a record, baseline / server: {bare_cpu / (1000 * server_cpu / count):.2f}")


if __name__ == "__main__":
    main()
