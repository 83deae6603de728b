"""Curators' verdicts over HTTP: a container of verdicts per manifest (POST a verdict, with a bearer
token) and one of every verdict (LDP Basic Containers, paged, as the annotation containers are), each
verdict (GET; DELETE retracts it), and the verdict scheme itself at ``/verdicts`` (SKOS, every RDF
format). A verdict changes its target's ``reviewState`` in the same transaction (enricher.store).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, request

from .. import review, urls
from ..clock import now
from ..datafiles import VERDICT_VOCABULARY
from ..store import StoredAnnotation
from .annotations import (
    CONTAINER_ALLOW,
    EVERYTHING_ALLOW,
    READ,
    Container,
    find_manifest,
    find_member,
    find_stored,
    person,
    read_container,
    read_member,
    removed,
    send_member,
)
from .auth import require_writer
from .dataset import send_turtle_file
from .media import read_json
from .state import service

bp = Blueprint("verdicts", __name__)
VERDICT_ALLOW = ", ".join((*READ, "DELETE"))


def find_container(key: str | None) -> Container:
    """Return the verdict container of manifest KEY, or of every verdict when KEY is None.

    Raises NotFound for an unknown manifest.
    """
    if key is None:
        everyone = "Every verdict of this service's curators"
        return Container(None, urls.verdicts_url(service().base, None), everyone, EVERYTHING_ALLOW, "verdict")
    label = f"Verdicts on the annotations of {find_stored(key).label}"
    return Container(key, urls.verdicts_url(service().base, key), label, CONTAINER_ALLOW, "verdict")


def find_verdict(key: str, vid: str) -> StoredAnnotation:
    """Return verdict VID of manifest KEY.

    Raises NotFound (never existed here) and Gone (retracted).
    """
    return find_member(urls.verdicts_url(service().base, key) + vid, key, "verdict",
                       f"no verdict {vid} on this manifest", f"verdict {vid} was retracted")


@bp.get("/verdicts")
def scheme() -> Response:
    """The verdict scheme (SKOS): verdicts, review states and reasons, labelled in en, de, fr, nl."""
    return send_turtle_file(VERDICT_VOCABULARY)


@bp.route("/verdicts/", methods=["GET", "OPTIONS"])
def everything() -> Response:
    """The container of every verdict (read-only)."""
    return read_container(find_container(None))


@bp.route("/<key:key>/verdicts/", methods=["GET", "OPTIONS"])
def container(key: str) -> Response:
    """A manifest's verdicts."""
    return read_container(find_container(key))


@bp.post("/<key:key>/verdicts/", provide_automatic_options=False)
def create(key: str) -> Response:
    """Record a verdict on a machine annotation (pinned to the version judged) or on a canvas
    (exhaustively reviewed for some classes); the server assigns its IRI and creator."""
    creator = require_writer(service().writers)
    manifest = find_manifest(key)
    document = read_json(service().config.max_body)
    checked = review.read_verdict(document, (c.id for c in manifest.canvases), where=request.url)
    verdict = {k: v for k, v in document.items() if k != "@context"}
    iri = urls.verdicts_url(service().base, key) + uuid.uuid4().hex
    verdict.update(id=iri, creator=person(creator), created=now())
    stored = service().store().add_verdict(
        key, verdict, creator, target=checked.target, canvas_id=checked.canvas_id or None,
        judgement=checked.verdict, version=checked.version,
    )
    service().changed()
    return send_member(stored, VERDICT_ALLOW, 201, {"Location": stored.id})


@bp.route("/<key:key>/verdicts/<vid>", methods=["GET", "OPTIONS"])
def verdict(key: str, vid: str) -> Response:
    """One verdict."""
    return read_member(find_verdict(key, vid), VERDICT_ALLOW)


@bp.delete("/<key:key>/verdicts/<vid>", provide_automatic_options=False)
def retract(key: str, vid: str) -> Response:
    """Retract a verdict (If-Match optional): its target goes back to its previous verdict, else pending."""
    require_writer(service().writers)
    return removed(service().store().retract_verdict, find_verdict(key, vid))
