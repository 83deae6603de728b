"""Evaluations over HTTP: POST /{key}/evaluations measures a model on that manifest's reviews (in the
request: a manifest's worth takes seconds) and records the evaluation and its calibration; GET serves an
evaluation as DQV JSON-LD, in every RDF format (Accept or ``format``) or as the HTML report (Accept
text/html or ``format=html``); GET /calibrations/{id} serves a calibration's parameters."""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import measure
from ..calibrate import METHODS
from ..errors import InvalidField, NotFound
from ..store import StoredEvaluation
from .annotations import represent
from .auth import require_writer
from .media import JSON, VARY, dumps, etag_of, read_json, send
from .state import service

bp = Blueprint("evaluations", __name__)
JSONLD = "application/ld+json"
HTML = "text/html; charset=utf-8"
FIELDS = ("model", "threshold", "method")
HEADERS = {"Allow": "GET, HEAD, OPTIONS", "Vary": VARY}


def _params(body) -> dict:
    """Check an evaluation request. Raises InvalidField naming the offending field."""
    if not isinstance(body, dict):
        raise InvalidField("the request body must be a JSON object", pointer="")
    unknown = [name for name in body if name not in FIELDS]
    if unknown:
        raise InvalidField(f"unknown field {unknown[0]!r}; known: {', '.join(FIELDS)}", pointer=f"/{unknown[0]}")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not measure.SHA256.fullmatch(model)):
        raise InvalidField("model must be the SHA-256 of the weights (64 lower-case hex digits)", pointer="/model")
    threshold = body.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not 0 <= threshold <= 1):
        raise InvalidField("threshold must be a number from 0 to 1", pointer="/threshold")
    if body.get("method", "platt") not in METHODS:
        raise InvalidField(f"method must be one of {', '.join(METHODS)}", pointer="/method")
    return body


@bp.post("/<key:key>/evaluations")
def create(key: str) -> Response:
    """Measure a model on manifest KEY's reviews now; 201 with the evaluation's URL."""
    require_writer(service().writers)
    body = _params(read_json(service().config.max_body) if request.content_length else {})
    store = service().store()
    if store.manifest(key) is None:
        raise NotFound(f"no manifest {key} here", where=request.url)
    model = measure.choose_model(store, [key], body.get("model"))
    record = measure.run(store, service().config, model, keys=[key], threshold=body.get("threshold"),
                         method=body.get("method", "platt"))
    return _represent(record, status=201, headers={"Location": record["id"]})


@bp.get("/<key:key>/evaluations/<evaluation_id>")
def get(key: str, evaluation_id: str) -> Response:
    """An evaluation of manifest KEY."""
    return _represent(_find(evaluation_id, key).document)


@bp.get("/evaluations/<evaluation_id>")
def get_collection_wide(evaluation_id: str) -> Response:
    """An evaluation of several manifests or of a COCO file."""
    return _represent(_find(evaluation_id, None).document)


@bp.get("/calibrations/<calibration_id>")
def calibration(calibration_id: str) -> Response:
    """A calibration: model, collection, method and the parameters calibrate.apply reads."""
    found = measure.calibration_record(service().store(), calibration_id, service().base)
    if found is None:
        raise NotFound(f"no calibration {calibration_id}", where=request.url)
    body = dumps(found)
    return send(body, JSON, headers={"Allow": "GET, HEAD, OPTIONS"}, etag=etag_of(body))


def _find(evaluation_id: str, key: str | None) -> StoredEvaluation:
    """Raises NotFound unless evaluation EVALUATION_ID exists under KEY (None: collection-wide)."""
    found = service().store().evaluation(evaluation_id)
    if found is None or found.key != key:
        raise NotFound(f"no evaluation {evaluation_id} here", where=request.url)
    return found


def _wants_html() -> bool:
    if "format" in request.args:
        return request.args["format"] == "html"
    # a tie (*/*, or no Accept) goes to the first offer: the data
    return request.accept_mimetypes.best_match([JSONLD, "text/html"]) == "text/html"


def _represent(record: dict, *, status: int = 200, headers: dict | None = None) -> Response:
    """Send RECORD as the HTML report, DQV JSON-LD or the RDF format asked for. Raises NotAcceptable."""
    from ..quality import to_jsonld
    from ..report import to_html

    headers = {**HEADERS, **(headers or {})}
    version = etag_of(dumps(record))
    if _wants_html():
        return send(to_html(record).encode("utf-8"), HTML, status=status, headers=headers, etag=etag_of(version, "html"))
    return represent(to_jsonld(record), version, status, headers, mimetype=JSONLD)
