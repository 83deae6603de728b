"""The ``enricher`` console script."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import click

from .config import Config, load_config
from .datafiles import DEMO_WEIGHTS
from .demo import DEMO_PORT
from .errors import EnricherError
from .geometry import parse_region


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"enricher: error: {message}", err=True)
    sys.exit(code)


# Options several commands share.
config_option = click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Settings file (TOML or JSON).")
database_option = click.option("--database", help="Store URL or SQLite file of the system of record (setting database).")


def detection_options(func):
    """The options that override detection and network settings."""
    options = [
        config_option,
        click.option("--weights", help="YOLO weights: a local path or a file name in ultralytics' weights folder."),
        click.option("--vocab", multiple=True, help="Extra SKOS mapping file for a custom model (repeatable)."),
        click.option("--conf", type=float, help="Minimum confidence."),
        click.option("--iou", type=float, help="NMS IoU threshold."),
        click.option("--max-det", type=int, help="Maximum detections per image."),
        click.option("--classes", help="Only these class names, comma-separated."),
        click.option("--imgsz", type=int, help="Inference size in pixels."),
        click.option("--batch", type=int, help="Images per inference batch."),
        click.option("--device", help="auto, cpu, cuda, cuda:0 ..."),
        click.option("--tiled", type=click.Choice(["auto", "on", "off"]), help="Tiled mode for large images."),
        click.option("--base-url", help="Public base URL the output will be served from."),
        click.option("--allow-private", is_flag=True, default=None, help="Allow private and loopback addresses."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _config(config_file: str | None, **overrides) -> Config:
    overrides["vocab"] = list(overrides["vocab"]) or None
    return load_config(overrides, file=config_file)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log what happens.")
def main(verbose: bool) -> None:
    """Find objects in IIIF images and publish them as W3C Web Annotations."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("source")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--region", help="Only detect inside this canvas region, xywh=x,y,w,h.")
@click.option("--canvas", "canvases", multiple=True, help="Only this canvas (id or 0-based index; repeatable).")
@detection_options
def enrich(source: str, out_dir: Path, region: str | None, canvases: tuple[str, ...], config_file, **overrides) -> None:
    """Enrich SOURCE, a IIIF manifest or collection (URL or file), into OUT."""
    try:
        config = _config(config_file, **overrides)
        totals = run_enrich(source, out_dir, config, region=region, canvases=canvases)
    except EnricherError as exc:
        _fail(str(exc))
    if totals["failed"]:
        sys.exit(3)


@main.command()
@click.option("--out", "out_dir", default="out", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", default=DEMO_PORT, show_default=True, type=int,
              help="Loopback port of the sample image server (0: any free port).")
@detection_options
def demo(out_dir: Path, port: int, config_file, **overrides) -> None:
    """Serve the bundled sample images over IIIF on loopback and enrich the sample collection, offline."""
    from .demo import serve_demo

    overrides["weights"] = overrides["weights"] or str(DEMO_WEIGHTS)
    try:
        config = _config(config_file, **overrides)
        config = config.replace(allowed_hosts=[*config.allowed_hosts, "127.0.0.1"])
        with serve_demo(port) as collection:
            click.echo(f"Serving the sample images and manifests on loopback: enriching {collection}")
            totals = run_enrich(collection, out_dir, config)
    except (EnricherError, OSError) as exc:
        _fail(str(exc))
    if not totals["canvases"]:
        _fail(f"the demo enriched no canvas: no manifest of {collection} could be read (see the warnings above)")
    if totals["failed"]:
        sys.exit(3)


def run_enrich(source: str, out_dir: Path, config: Config, *, region: str | None = None, canvases=()) -> Counter[str]:
    """Enrich every manifest of SOURCE into OUT with a progress bar and a summary; return the counts of
    manifests, canvases, failed canvases and detections."""
    from .fetch import Fetcher
    from .manifest import read_manifests, select_canvases
    from .pipeline import Enricher
    from .publish import publish_canvas, publish_manifest

    box = parse_region(region) if region else None
    started = time.perf_counter()
    fetcher = Fetcher(config)
    enricher = Enricher(config, fetcher=fetcher)
    concepts: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for manifest in read_manifests(source, fetcher, config):
        selected = select_canvases(manifest, canvases)
        with click.progressbar(length=len(selected), label=manifest.label[:40], file=sys.stderr) as bar:

            def on_event(name: str, data: dict, manifest=manifest, bar=bar) -> None:
                if name == "canvas_done":  # written while the model works on the next canvases
                    publish_canvas(data["result"], manifest, out_dir, config)
                    bar.update(1)

            result = enricher.enrich(manifest, canvases=selected, region=box, on_event=on_event)
        path = publish_manifest(result, out_dir, config)
        for item in result.canvases:
            if item.error is not None:
                click.echo(f"enricher: canvas {item.canvas.index} failed: {item.error}", err=True)
            elif item.skipped:
                click.echo(f"enricher: canvas {item.canvas.index} ({item.canvas.id}) skipped: {item.skipped}", err=True)
            concepts.update(_concept_name(enricher, d.label) for d in item.detections)
        totals.update(
            manifests=1,
            canvases=len(result.canvases),
            failed=sum(1 for c in result.canvases if c.error is not None),
            skipped=sum(1 for c in result.canvases if c.skipped),
            detections=result.annotation_count,
        )
        click.echo(f"{manifest.label}: {result.annotation_count} annotations -> {path}")
    elapsed = time.perf_counter() - started
    skipped = f", {totals['skipped']} skipped" if totals["skipped"] else ""
    click.echo(
        f"\n{totals['manifests']} manifests, {totals['canvases']} canvases ({totals['failed']} failed{skipped}), "
        f"{totals['detections']} detections in {elapsed:.1f} s"
    )
    for name, count in concepts.most_common():
        click.echo(f"  {count:5d}  {name}")
    return totals


def _concept_name(enricher, label: str) -> str:
    mapping = enricher.vocabulary.lookup(label)
    uris = " ".join(c.uri for c in mapping.concepts)
    return f"{label}  {uris}".rstrip()


@main.command()
@config_option
@click.option("--host", help="Address to bind (setting host).")
@click.option("--port", type=int, help="Port to bind (setting port).")
@click.option("--bind", help="gunicorn bind address instead of host:port, e.g. unix:/run/enricher.sock or fd://3.")
@click.option("--workers", type=int, help="gunicorn worker processes (setting workers).")
@database_option
@click.option("--base-url", help="Public base URL, as clients reach the service (behind a proxy: the proxy's).")
def serve(config_file: str | None, bind: str | None, **overrides) -> None:
    """Serve the HTTP API under gunicorn; settings also come from ENRICHER_* variables."""
    from .web.server import serve as run_server

    try:
        config = load_config(overrides, file=config_file)
    except EnricherError as exc:
        _fail(str(exc))
    run_server(config, bind)


@main.command()
@config_option
@database_option
@click.option("--index-path", help="On-disk RDF index (setting index_path; default next to the database).")
@click.option("--vocab", multiple=True, help="Extra SKOS mapping file to load into the index (repeatable).")
def reindex(config_file: str | None, **overrides) -> None:
    """Rebuild the RDF index (SPARQL, dumps, VoID) from the store, vocabulary included, beside the old
    one; a running service answers from the rebuilt one from its next request."""
    from .store import open_store
    from .web.indexing import index_path, rebuild

    try:
        config = _config(config_file, **overrides)
        started = time.perf_counter()
        with open_store(config.database) as store:
            loaded = rebuild(config, store)
    except EnricherError as exc:
        _fail(str(exc))
    click.echo(f"{loaded} annotations indexed in {index_path(config)} ({time.perf_counter() - started:.1f} s)")


@main.command("export")
@click.argument("manifests", nargs=-1)
@config_option
@database_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--format", "formats", default="coco,yolo", show_default=True,
              help="coco, yolo or both, comma-separated; or europeana (the Europeana Annotations API profile).")
@click.option("--weights", help="The model whose class names become the categories (setting weights).")
@click.option("--classes", help="Classes a canvas must have been reviewed for, comma-separated (default: all the model's).")
@click.option("--split", "ratios", default="0.8,0.1,0.1", show_default=True, help="train,val,test fractions for new manifests.")
@click.option("--max-size", type=int, help="Longest image side in pixels (default: full resolution).")
@click.option("--consented", multiple=True, help="Manifest key or id whose holder consented to ML use (repeatable).")
@click.option("--splits", "splits_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The record of each manifest's split, kept across exports (default: OUT/splits.json).")
@click.option("--allow-private", is_flag=True, default=None, help="Allow private and loopback image servers.")
def export_data(manifests: tuple[str, ...], config_file, out_dir: Path, formats: str, ratios: str, max_size, consented,
                splits_file, **overrides) -> None:
    """Export the exhaustively reviewed canvases of MANIFESTS (keys; none or "all": every manifest) as COCO
    and YOLO training data into OUT, skipping manifests whose rights forbid AI use; with --format europeana,
    each manifest's annotations for the Europeana Annotations API as OUT/{key}/europeana.jsonld."""
    from .export import export_store, parse_ratios
    from .fetch import Fetcher
    from .store import open_store

    keys = None if not manifests or manifests == ("all",) else list(manifests)
    if formats.strip() == "europeana":
        _export_europeana(keys, config_file, out_dir, overrides)
        return
    try:
        config = load_config(overrides, file=config_file)
        options = {"formats": [f.strip() for f in formats.split(",") if f.strip()], "ratios": parse_ratios(ratios),
                   "consented": consented, "long_side": max_size, "splits_file": splits_file}
        with open_store(config.database) as store, Fetcher(config) as fetcher:
            result = export_store(store, out_dir, fetcher, config, keys, **options)
    except (EnricherError, OSError) as exc:
        _fail(str(exc))
    for split in ("train", "val", "test"):
        click.echo(f"{split:5s} {result.images[split]:5d} images {result.boxes[split]:6d} boxes")
    for skipped in result.skipped:
        what = f"canvas {skipped.canvas_id}" if skipped.canvas_id else f"manifest {skipped.manifest_id}"
        click.echo(f"skipped {what}: {skipped.reason}")
    for manifest_id, credit in result.credits.items():
        click.echo(f"credit {manifest_id}: {credit}")
    if result.val_from_train:
        click.echo("no manifest fell in val: data.yaml validates on the training images")
    click.echo(f"{sum(result.images.values())} images in {out_dir} ({', '.join(str(p) for p in result.files)})")
    if not sum(result.images.values()):
        _fail("nothing exported: no exhaustively reviewed canvas that may be used")


def _export_europeana(keys: list[str] | None, config_file, out_dir: Path, overrides: dict) -> None:
    """Write the Europeana profile of each manifest and say what each holds and left out."""
    from . import europeana
    from .harvest import Catalogue
    from .publish import write_json
    from .store import open_store

    sent = 0
    try:
        config = load_config({k: v for k, v in overrides.items() if k == "database"}, file=config_file)
        catalogue = Catalogue(config)
        with open_store(config.database) as store:
            for key in keys or store.manifest_keys():
                found = europeana.profile(catalogue, store, key)
                if found is None:
                    _fail(f"no manifest {key} in the store", 1)
                write_json(out_dir / key / "europeana.jsonld", found.page)
                left = ", ".join(f"{n} {reason}" for reason, n in found.left_out.items() if n)
                click.echo(f"{key}: {found.sent} annotations" + (f", left out: {left}" if left else ""))
                sent += found.sent
    except (EnricherError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"{sent} annotations in the Europeana profile in {out_dir}")


@main.command()
@config_option
@database_option
@click.option("--base-url", help="Public base URL the evaluation is published under.")
@click.option("--manifest", "manifests", multiple=True, help="Manifest key or id (repeatable; default: all).")
@click.option("--model", help="SHA-256 of the weights, or the weights file (default: the only model with annotations).")
@click.option("--coco", type=click.Path(dir_okay=False, exists=True), help="COCO ground truth instead of the reviews.")
@click.option("--results", type=click.Path(dir_okay=False, exists=True), help="COCO results file as predictions (with --coco).")
@click.option("--threshold", type=float, help="Confidence counted for precision and recall (default: setting conf).")
@click.option("--method", type=click.Choice(["platt", "temperature"]), default="platt", show_default=True,
              help="Calibration fitted per class.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Write the report files here.")
def evaluate(config_file: str | None, manifests: tuple[str, ...], model: str | None, coco: str | None,
             results: str | None, threshold: float | None, method: str, out_dir: Path | None, **overrides) -> None:
    """Measure a model against what curators confirmed (or a COCO file); store the evaluation and the
    calibration, print a summary and write evaluation.jsonld, evaluation.ttl and report.html to OUT."""
    from . import measure, report
    from .store import open_store

    try:
        config = load_config(overrides, file=config_file)
        with open_store(config.database) as store:
            keys = measure.resolve_keys(store, manifests)
            chosen = measure.choose_model(store, keys, model)
            record = measure.run(store, config, chosen, keys=keys, threshold=threshold, coco=coco,
                                 results=results, method=method)
        if out_dir is not None:
            report.write_files(record, out_dir)
    except EnricherError as exc:
        _fail(str(exc))
    click.echo(report.summary(record))


@main.command("load-index")
@config_option
@database_option
@click.option("--url", "load_url", required=True,
              help="The triplestore's endpoint that takes N-Quads by POST, e.g. http://host:7878/store (Oxigraph).")
def load_index(config_file: str | None, load_url: str, **overrides) -> None:
    """Fill the empty triplestore of the remote index (settings index_url, push_url) in one stream from
    the store, and start the pusher after it: how an instance moves up, faster than pushing each change."""
    from .remote_index import RemoteIndex
    from .store import open_store

    try:
        config = load_config(overrides, file=config_file)
        started = time.perf_counter()
        with open_store(config.database) as store:
            with closing(RemoteIndex(config, store)) as index:
                position = index.load(load_url)
    except EnricherError as exc:
        _fail(str(exc))
    click.echo(f"loaded {load_url} up to change {position} ({time.perf_counter() - started:.1f} s); "
               "the pusher sends what came after")


@main.command()
@config_option
@database_option
@click.option("--to", "target", required=True, help="URL of the empty store to copy into, e.g. postgresql://user@host/db.")
def migrate(config_file: str | None, target: str, **overrides) -> None:
    """Copy the whole store (setting database) into another, empty one, e.g. PostgreSQL: annotations,
    verdicts, jobs, the change log, evaluations, calibrations, follower cursors and Change Discovery's
    stream, with their ids, seq numbers and ETags. Stop the service first; point it at TO afterwards."""
    from .store import open_store
    from .store.copy import copy_store

    try:
        config = load_config(overrides, file=config_file)
        started = time.perf_counter()
        with open_store(config.database) as source, open_store(target) as destination:
            copied = copy_store(source, destination, lambda table, rows: click.echo(f"{table:22s} {rows:9d} rows"))
    except EnricherError as exc:
        _fail(str(exc))
    click.echo(f"{sum(copied.values())} rows copied ({time.perf_counter() - started:.1f} s)")


@main.command()
@config_option
@database_option
@click.option("--broker", help="amqp://... (RabbitMQ) or redis://... (Redis) (setting broker).")
@click.option("--threads", "worker_threads", type=int, help="Worker threads (setting worker_threads).")
@click.option("--inference-threads", type=int, help="Threads the model infers on (setting inference_threads).")
@click.option("--weights", help="YOLO weights: a local path or a file name in ultralytics' weights folder.")
@click.option("--device", help="auto, cpu, cuda, cuda:0 ...")
def worker(config_file: str | None, **overrides) -> None:
    """Run the distributed job queue's workers on this machine until SIGTERM or Ctrl-C: they take the
    messages of jobs from the broker and write to the store (settings broker and database)."""
    import signal
    import threading

    from .jobs import open_queue
    from .jobs.dramatiq import redacted
    from .store import open_store

    try:
        config = load_config(overrides, file=config_file)
        if not config.broker:
            _fail("enricher worker needs a broker: set ENRICHER_BROKER (amqp://... or redis://...) or --broker")
        store = open_store(config.database)
        queue = open_queue(config, store)
        queue.start()
    except EnricherError as exc:
        _fail(str(exc))
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    inference = config.inference_threads or "the runtime's default"
    click.echo(f"enricher worker: {config.worker_threads} threads (inference threads: {inference}) "
               f"on {redacted(config.broker)}, store {store.url}", err=True)
    while not stopping.wait(1.0):
        pass
    queue.stop()  # the messages in flight finish first; the broker redelivers what was not taken
    store.close()
