"""Running one job: enrich every manifest it names, committing each canvas's annotations together with
its done marker, so a killed process loses at most the canvas in flight and the job resumes after the
canvases already done. Scheduling jobs is a JobQueue's work (enricher.jobs).

The steps are public so that a queue which spreads a job over many workers runs the same code:
``plan_job`` reads the manifests and records the total, ``enrich_canvases`` enriches some canvases of
one manifest and ``commit_canvases`` commits them, each as it finishes or all together (the last one
ends the job)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import provenance
from ..annotate import manifest_key
from ..config import Config
from ..errors import EnricherError, InputError, RegionError, StoreUnavailable
from ..geometry import Box, parse_region
from ..store import Store, StoredJob
from ..urls import public_base

if TYPE_CHECKING:
    from ..manifest import Canvas, Manifest

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The job was cancelled, or its runner is stopping: leave it between two canvases."""


def loaded(factory: Callable[[], Any]) -> Any:
    """The Enricher FACTORY makes, its model run once (Detector.warm_up), and every object so far
    frozen out of the garbage collector's full collections: the model's live as long as the process,
    and walking them (some 400,000 objects, 0.1 s of CPU holding the GIL) stalled a worker's threads
    every few messages."""
    enricher = factory()
    enricher.detector.warm_up()
    gc.freeze()
    return enricher


def tuned(enricher, config: Config):
    """Return ENRICHER with CONFIG's thresholds, sharing its loaded model, vocabulary and HTTP client."""
    detector = enricher.detector.with_config(config)
    return type(enricher)(config, detector=detector, vocabulary=enricher.vocabulary, fetcher=enricher.fetcher)


def run_job(job: StoredJob, store: Store, config: Config, enricher, stopping: Callable[[], bool]) -> str:
    """Run a claimed JOB to its end with ENRICHER (the loaded model; the job's thresholds apply),
    skipping canvases it already finished; return its final state. STOPPING tells whether the runner
    is stopping: the job then goes back to the queue between two canvases. A cancelled job stops there
    too, and a job whose store's server went away goes back to the queue, to resume once it is back.

    Raises StoreUnavailable when the server cannot even take the job back: the job stays running, and
    the runner that takes the jobs lock next puts it back in the queue.
    """
    try:
        _work(job, store, config, enricher, stopping)
    except Stopped:
        if stopping():
            store.set_job(job.id, expect="running", state="queued")
        log.info("job %s left %s", job.id, store.job(job.id).state)
    except StoreUnavailable as exc:  # a restart or an outage of the store's server: the job is not at fault
        log.warning("job %s goes back to the queue: %s", job.id, exc)
        store.set_job(job.id, expect="running", state="queued")
    except EnricherError as exc:
        store.set_job(job.id, expect="running", state="failed", error=str(exc))
    except Exception as exc:  # a bug fails the job visibly instead of killing the runner
        log.exception("job %s", job.id)
        store.set_job(job.id, expect="running", state="failed",
                      error=f"internal error ({exc.__class__.__name__}); see the server log")
    return store.job(job.id).state


def _work(job: StoredJob, store: Store, config: Config, enricher, stopping) -> None:
    """Enrich every canvas of the job not done yet; the last one committed ends it (Store.finish_job)."""
    config, region = job_settings(job, config)
    enricher = tuned(enricher, config)
    store.set_job(job.id, provenance=provenance.describe(enricher, config))
    done = store.done_canvases(job.id)
    for manifest, key, canvases in plan_job(job, store, config, enricher.fetcher):
        todo = [canvas for canvas in canvases if (key, canvas.id) not in done]
        if not todo:
            continue
        if stopping() or store.job(job.id).state != "running":
            raise Stopped(job.id)
        enrich_canvases(job.id, store, enricher, manifest, key, todo, region, stopping)
    store.finish_job(job.id)  # when every canvas was done before (a resumed job), or there were none


def job_settings(job: StoredJob, config: Config) -> tuple[Config, Box | None]:
    """CONFIG with the job's thresholds, and the job's region (None: whole canvases).

    Raises RegionError for a bad region.
    """
    params = job.params
    config = config.replace(conf=params.get("conf"), iou=params.get("iou"), tiled=params.get("tiled"))
    return config, parse_region(params["region"]) if params.get("region") else None


def plan_job(job: StoredJob, store: Store, config: Config, fetcher) -> list[tuple[Manifest, str, list[Canvas]]]:
    """Read the job's manifest (or every manifest of its collection), store them and record the job's
    total and manifests; return (manifest, key, canvases) for each one with canvases to enrich: the one
    selection of the job's canvases.

    Raises EnricherError when the job names no manifest or a canvas that is in none of them, when its
    source cannot be read, or (InputError) when it holds more canvases than setting max_canvases allows.
    """
    from ..manifest import read_manifests

    source = job.params.get("manifest")
    if not isinstance(source, str):
        raise EnricherError("the job names no manifest", where=job.id)
    wanted = [str(c) for c in job.params.get("canvases") or []]
    plan = _plan(read_manifests(source, fetcher, config), wanted, source)
    total = sum(len(canvases) for _, _, canvases in plan)
    if config.max_canvases and total > config.max_canvases:
        raise InputError(f"the job has {total} canvases, more than the {config.max_canvases} a job may enrich "
                         "(setting max_canvases)", where=source)
    for manifest, key, _ in plan:
        store.save_manifest(key, manifest.id, manifest.url, manifest.label, manifest.document)
    store.set_job(job.id, total=total, manifests=[key for _, key, _ in plan])
    return plan


def enrich_canvases(job_id: str, store: Store, enricher, manifest: Manifest, key: str, canvases: list[Canvas],
                    region: Box | None, stopping: Callable[[], bool] = lambda: False, together: bool = False) -> None:
    """Enrich these canvases of one manifest of a running job, committing each as it finishes, or with
    TOGETHER all of them in one transaction once every one is enriched (commit_canvases). Raises Stopped
    when the job is no longer running or STOPPING says so."""
    model, base = enricher.generator.model_sha256, public_base(enricher.config.base_url)
    finished: list = []

    def commit(results: list) -> None:
        if results and not commit_canvases(job_id, store, key, model, results, base):
            raise Stopped(job_id)

    def on_event(name: str, data: dict) -> None:
        if name == "canvas_done":
            if stopping():
                raise Stopped(job_id)
            finished.append(data["result"])
            if not together:
                commit([finished.pop()])

    enricher.enrich(manifest, canvases=canvases, region=region, on_event=on_event)
    commit(finished)


def commit_canvases(job_id: str, store: Store, key: str, model_sha256: str, results: list, base: str) -> bool:
    """Commit finished canvases of a running job in one transaction: each one's annotations (reconciled,
    so a canvas committed twice changes nothing; each generated by the job's run under the public BASE)
    and its done marker (an upsert) with its error or the reason it was skipped, then the job's end when
    they were the last ones. Return False, writing nothing, when the job is no longer running
    (cancelled): a cancellation lands before or after a transaction, never inside one."""
    with store.transaction():
        job = store.job(job_id)
        if job is None or job.state != "running":
            return False
        for result in results:
            if result.error is None:
                annotations = provenance.generated_by(result.annotations, base, job_id)
                store.replace_machine_annotations(key, result.canvas.id, model_sha256, annotations)
            error = None if result.error is None else str(result.error)
            store.mark_canvas_done(job_id, key, result.canvas.id, error, result.skipped)
        store.finish_job(job_id)
    return True


def _plan(manifests, wanted: list[str], source: str) -> list[tuple[Any, str, list[Canvas]]]:
    """Return (manifest, key, canvases) for each distinct manifest with canvases to enrich.

    WANTED (canvas ids or 0-based indexes) applies to every manifest; empty means all canvases.
    Raises RegionError when a wanted canvas is in none of them.
    """
    plan, seen, matched = [], set(), set()
    for manifest in manifests:
        key = manifest_key(manifest.id)
        if key in seen:
            continue
        seen.add(key)
        chosen = [c for c in manifest.canvases if not wanted or c.id in wanted or str(c.index) in wanted]
        matched.update(w for c in chosen for w in (c.id, str(c.index)))
        if chosen:
            plan.append((manifest, key, chosen))
    missing = [w for w in wanted if w not in matched]
    if missing:
        raise RegionError(f"canvases {', '.join(missing)} are not in the manifest", where=source)
    return plan
