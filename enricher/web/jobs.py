"""Enrichment jobs over HTTP: POST /jobs queues one (202 and its URL), GET follows its progress,
DELETE cancels it. The job queue (enricher.jobs) schedules and runs the work. A job enriches at most
``max_canvases`` canvases: a POST listing more is refused, a job whose manifests hold more fails."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, request

from .. import urls
from ..errors import InputError, InvalidField, NotFound, RegionError
from ..geometry import parse_region
from ..store import StoredJob
from .auth import require_writer
from .limits import charge
from .media import JSON, dumps, read_json, send
from .state import service

bp = Blueprint("jobs", __name__)
TILED = ("auto", "on", "off")
FIELDS = ("manifest", "canvases", "region", "conf", "iou", "tiled")


def _fraction(body: dict, name: str) -> None:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidField(f"{name} must be a number from 0 to 1", pointer=f"/{name}")


def job_params(body: Any, max_canvases: int = 0) -> dict:
    """Check a job request and return its parameters; it may list at most MAX_CANVASES canvases (0: any).

    Raises InvalidField naming the offending field.
    """
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    unknown = [name for name in body if name not in FIELDS]
    if unknown:
        raise InvalidField(f"unknown field {unknown[0]!r}; known: {', '.join(FIELDS)}", pointer=f"/{unknown[0]}")
    url = body.get("manifest")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise InvalidField("manifest must be the http(s) URL of a IIIF manifest or collection", pointer="/manifest")
    canvases = body.get("canvases", [])
    if not isinstance(canvases, list):
        raise InvalidField("canvases must be a list of canvas ids or 0-based indexes", pointer="/canvases")
    if max_canvases and len(canvases) > max_canvases:
        raise InvalidField(
            f"canvases lists {len(canvases)} canvases; a job may enrich at most {max_canvases} (setting max_canvases)",
            pointer="/canvases",
        )
    for index, canvas in enumerate(canvases):
        if isinstance(canvas, bool) or not isinstance(canvas, (str, int)) or (isinstance(canvas, int) and canvas < 0):
            raise InvalidField("a canvas is its id or its 0-based index", pointer=f"/canvases/{index}")
    if "region" in body:
        try:
            parse_region(body["region"] if isinstance(body["region"], str) else repr(body["region"]))
        except RegionError as exc:
            raise InvalidField(exc.detail, pointer="/region") from None
    for name in ("conf", "iou"):
        if name in body:
            _fraction(body, name)
    if "tiled" in body and body["tiled"] not in TILED:
        raise InvalidField(f"tiled must be one of {', '.join(TILED)}", pointer="/tiled")
    return {"canvases": [], **body}


def find_job(job_id: str) -> StoredJob:
    """Return job JOB_ID.

    Raises NotFound.
    """
    job = service().store().job(job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", where=request.url)
    return job


def describe(job: StoredJob) -> dict:
    """The public description of a job: state, progress, errors and links to what it produced."""
    base = service().base
    return {
        "id": urls.job_url(base, job.id),
        "state": job.state,
        "params": job.params,
        "progress": {"done": job.done, "total": job.total},
        "errors": job.errors,
        "skipped": job.skipped,
        "error": job.error,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "results": [
            {"manifest": urls.manifest_url(base, key), "annotations": urls.container_url(base, key)}
            for key in job.manifests
        ],
    }


def _send(document: Any, status: int = 200, headers: dict | None = None) -> Response:
    return send(dumps(document), JSON, status=status, headers=headers)


@bp.post("/jobs", provide_automatic_options=False)
def create() -> Response:
    """Queue an enrichment job."""
    require_writer(service().writers)
    params = job_params(read_json(service().config.max_body), service().config.max_canvases)
    charge("job")
    job = service().queue().submit(params)
    return _send(describe(job), 202, {"Location": urls.job_url(service().base, job.id)})


@bp.get("/jobs")
def jobs() -> Response:
    """Every job, newest first."""
    return _send({"jobs": [describe(job) for job in service().store().jobs()]})


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    """One job."""
    return _send(describe(find_job(job_id)))


@bp.delete("/jobs/<job_id>", provide_automatic_options=False)
def cancel(job_id: str) -> Response:
    """Cancel a job that has not finished; a finished one stays as it is."""
    require_writer(service().writers)
    find_job(job_id)
    return _send(describe(service().queue().cancel(job_id)))


def init_app(app) -> None:
    """Start the job queue's worker in this process when setting job_worker is on."""
    here = app.extensions["enricher"]
    if here.config.job_worker:
        queue = here.queue()
        queue.start()
        app.extensions["enricher.jobs"] = queue
