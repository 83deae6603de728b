"""Running one job: enrich every manifest it names, committing each canvas's annotations together with
its done marker, so a killed process loses at most the canvas in flight and the job resumes after the
canvases already done. Scheduling jobs is a JobQueue's work (enricher.jobs)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .. import provenance
from ..annotate import manifest_key
from ..config import Config
from ..errors import EnricherError, RegionError
from ..geometry import parse_region
from ..store import Store, StoredJob
from ..urls import public_base

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The job was cancelled, or its runner is stopping: leave it between two canvases."""


def tuned(enricher, config: Config):
    """Return ENRICHER with CONFIG's thresholds, sharing its loaded model, vocabulary and HTTP client."""
    detector = enricher.detector.with_config(config)
    return type(enricher)(config, detector=detector, vocabulary=enricher.vocabulary, fetcher=enricher.fetcher)


def run_job(job: StoredJob, store: Store, config: Config, enricher, stopping: Callable[[], bool]) -> str:
    """Run a claimed JOB to its end with ENRICHER (the loaded model; the job's thresholds apply),
    skipping canvases it already finished; return its final state. STOPPING tells whether the runner
    is stopping: the job then goes back to the queue between two canvases. A cancelled job stops there
    too."""
    try:
        state, error = _work(job, store, config, enricher, stopping)
    except Stopped:
        if stopping():
            store.set_job(job.id, expect="running", state="queued")
        state = store.job(job.id).state
        log.info("job %s left %s", job.id, state)
        return state
    except EnricherError as exc:
        state, error = "failed", str(exc)
    except Exception as exc:  # a bug fails the job visibly instead of killing the runner
        log.exception("job %s", job.id)
        state, error = "failed", f"internal error ({exc.__class__.__name__}); see the server log"
    store.set_job(job.id, expect="running", state=state, error=error)
    return store.job(job.id).state


def _work(job: StoredJob, store: Store, config: Config, enricher, stopping) -> tuple[str, str | None]:
    """Enrich every manifest of the job; return its final state and error (failed: every canvas did)."""
    from ..manifest import read_manifests

    params = job.params
    source = params.get("manifest")
    if not isinstance(source, str):
        raise EnricherError("the job names no manifest", where=job.id)
    config = config.replace(conf=params.get("conf"), iou=params.get("iou"), tiled=params.get("tiled"))
    region = parse_region(params["region"]) if params.get("region") else None
    enricher = tuned(enricher, config)
    store.set_job(job.id, provenance=provenance.describe(enricher, config))
    base = public_base(config.base_url)
    plan = _plan(read_manifests(source, enricher.fetcher, config), [str(c) for c in params.get("canvases") or []], source)
    for manifest, key, _ in plan:
        store.save_manifest(key, manifest.id, manifest.url, manifest.label, manifest.document)
    store.set_job(job.id, total=sum(len(ids) for _, _, ids in plan), manifests=[key for _, key, _ in plan])
    done = store.done_canvases(job.id)
    model = enricher.generator.model_sha256

    def check() -> None:
        if stopping() or store.job(job.id).state != "running":
            raise Stopped(job.id)

    for manifest, key, ids in plan:
        todo = [canvas_id for canvas_id in ids if (key, canvas_id) not in done]
        if not todo:
            continue
        check()

        def on_event(name: str, data: dict, key: str = key) -> None:
            if name != "canvas_done":
                return
            result = data["result"]
            with store.transaction():  # a cancellation lands before or after this canvas, never between
                check()
                if result.error is None:
                    annotations = provenance.generated_by(result.annotations, base, job.id)
                    store.replace_machine_annotations(key, result.canvas.id, model, annotations)
                store.mark_canvas_done(job.id, key, result.canvas.id, None if result.error is None else str(result.error))

        enricher.enrich(manifest, canvases=todo, region=region, on_event=on_event)
    finished = store.job(job.id)
    if finished.total and len(finished.errors) == finished.total:
        return "failed", f"every canvas failed; the first: {finished.errors[0]['error']}"
    return "done", None


def _plan(manifests, wanted: list[str], source: str) -> list[tuple[Any, str, list[str]]]:
    """Return (manifest, key, canvas ids) for each distinct manifest with canvases to enrich.

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
            plan.append((manifest, key, [c.id for c in chosen]))
    missing = [w for w in wanted if w not in matched]
    if missing:
        raise RegionError(f"canvases {', '.join(missing)} are not in the manifest", where=source)
    return plan
