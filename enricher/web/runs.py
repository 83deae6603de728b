"""The runs of jobs as PROV-O activities (enricher.provenance): ``/runs/{job_id}`` as JSON-LD and in
every RDF format, what each machine annotation a job made names as ``prov:wasGeneratedBy``."""

from __future__ import annotations

from flask import Blueprint, Response, request

from ..errors import NotFound
from ..provenance import run_document
from .annotations import represent
from .media import VARY, dumps, etag_of
from .state import service

bp = Blueprint("runs", __name__)
HEADERS = {"Allow": "GET, HEAD, OPTIONS", "Vary": VARY}


@bp.get("/runs/<job_id>")
def run(job_id: str) -> Response:
    """The run of job JOB_ID: when it ran, the model and thresholds it used, the enricher that ran it.

    Raises NotFound for an unknown job, NotAcceptable for a format not on offer.
    """
    job = service().store().job(job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", where=request.url)
    document = run_document(job, service().base)
    return represent(document, etag_of(dumps(document)), headers=HEADERS, mimetype="application/ld+json")
