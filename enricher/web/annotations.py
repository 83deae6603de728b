"""The W3C Web Annotation Protocol: a container per manifest and one of everything (LDP Basic
Containers, paged), and each annotation (GET, PUT with If-Match, DELETE).

JSON-LD with the anno profile is the default representation; Accept or ``format`` gets any other RDF
format of enricher.rdf's registry (Turtle, N-Triples, RDF/XML ...).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, request

from .. import urls
from ..annotate import ANNOTATION_CONTEXT
from ..clock import now
from ..errors import Gone, InputError, NotFound, PreconditionRequired
from ..manifest import Manifest
from ..served import Calibrations
from ..store import StoredAnnotation, StoredManifest
from . import incoming, ldp
from .auth import require_writer
from .media import (
    ANNO_JSONLD,
    ITEMS,
    JSON_TYPES,
    VARY,
    choose_format,
    dumps,
    dumps_with,
    etag_of,
    read_json,
    send,
    send_graph,
)
from .state import service
from .turtle import to_quads

bp = Blueprint("annotations", __name__)
READ = ("GET", "HEAD", "OPTIONS")
CONTAINER_ALLOW = ", ".join(READ + ("POST",))
EVERYTHING_ALLOW = ", ".join(READ)
ANNOTATION_ALLOW = ", ".join(READ + ("PUT", "DELETE"))
ACCEPT_POST = ANNO_JSONLD + ", application/json"


@dataclass(frozen=True)
class Container:
    key: str | None
    url: str
    label: str
    allow: str
    role: str = "annotation"  # "verdict": a container of curators' verdicts (enricher.web.verdicts)


def find_stored(key: str) -> StoredManifest:
    """Return the stored manifest KEY.

    Raises NotFound when no job has enriched a manifest with that key.
    """
    stored = service().store().manifest(key)
    if stored is None:
        raise NotFound(f"no manifest with key {key}", where=request.url)
    return stored


def find_manifest(key: str) -> Manifest:
    """Return the stored manifest KEY, parsed (once per version of it).

    Raises NotFound when no job has enriched a manifest with that key.
    """
    return service().parsed(find_stored(key))


def find_container(key: str | None) -> Container:
    """Return the container of manifest KEY, or of everything when KEY is None.

    Raises NotFound for an unknown manifest.
    """
    if key is None:
        everything = urls.container_url(service().base, None)
        return Container(None, everything, "Every annotation of this service", EVERYTHING_ALLOW)
    label = find_stored(key).label
    return Container(key, urls.container_url(service().base, key), f"Annotations of {label}", CONTAINER_ALLOW)


def find_member(url: str, key: str, role: str, missing: str, gone: str) -> StoredAnnotation:
    """Return the live ROLE ("annotation" or "verdict") at URL in manifest KEY.

    Raises NotFound with MISSING (never existed here) and Gone with GONE (deleted or retracted).
    """
    stored = service().store().get(url)
    if stored is None or stored.key != key or stored.role != role:
        raise NotFound(missing, where=request.url)
    if stored.deleted:
        raise Gone(gone, where=request.url)
    return stored


def find_annotation(key: str, aid: str) -> StoredAnnotation:
    """Return annotation AID of container KEY.

    Raises NotFound (never existed here) and Gone (deleted).
    """
    return find_member(urls.container_url(service().base, key) + aid, key, "annotation",
                       f"no annotation {aid} in this container", f"annotation {aid} was deleted")


def represent(
    document: dict, etag: str, status: int = 200, headers: dict | None = None,
    members: list[StoredAnnotation] | None = None, mimetype: str = ANNO_JSONLD,
) -> Response:
    """Send DOCUMENT as JSON-LD (MIMETYPE) or, when Accept or ``format`` asks for it, in another RDF
    format (with its own ETag). An ``[ITEMS]`` placeholder in DOCUMENT stands for MEMBERS, spliced in
    unparsed.

    Raises NotAcceptable, and FetchError when a JSON-LD context has no local copy.
    """
    fmt = choose_format(JSON_TYPES)
    if fmt is None:
        body = dumps(document) if members is None else dumps_with(document, [a.text for a in members])
        return send(body, mimetype, status=status, headers=headers, etag=etag)
    if members is None:
        quads = to_quads(document, service().config.conformance_dir)
    else:  # the members by IRI in the document, their RDF read straight from the stored JSON
        shell = json.loads(dumps_with(document, [json.dumps(a.id) for a in members]))
        quads = to_quads(shell, service().config.conformance_dir, [a.document for a in members])
    return send_graph(quads, fmt, etag, status=status, headers=headers)


def container_headers(container: Container, view: ldp.View | None = None) -> dict:
    """The headers of every container response."""
    headers = {"Link": list(ldp.CONTAINER_LINKS), "Allow": container.allow, "Vary": f"{VARY}, Prefer"}
    if container.key is not None:
        headers["Accept-Post"] = ACCEPT_POST
    if view is not None:
        headers["Content-Location"] = view.variant(container.url)
        if view.applied:
            headers["Preference-Applied"] = "return=representation"
    return headers


def _page_index(total: int, page_size: int) -> int:
    """The ``page`` query parameter as an index of an existing page.

    Raises InputError (not a number) and NotFound (past the last page).
    """
    raw = request.args["page"]
    if not raw.isdigit():
        raise InputError(f"page must be a non-negative integer, not {raw!r}", where=request.url)
    index = int(raw)
    if index > ldp.last_page(total, page_size) or (index and not total):
        raise NotFound(f"page {index} is past the last page of this container", where=request.url)
    return index


def read_container(container: Container) -> Response:
    """Answer GET/HEAD/OPTIONS on a container: its description, or one of its pages with ``?page=``.

    Raises InputError, NotFound, NotAcceptable.
    """
    if request.method == "OPTIONS":
        return send(b"", ANNO_JSONLD, headers=container_headers(container))
    store, size = service().store(), service().config.page_size
    view = ldp.choose_view(request.headers.getlist("Prefer"), request.args.get("iris"))
    role, calibrations = container.role, Calibrations(store, service().base)
    total, version = store.count(container.key, role), store.container_etag(container.key, role)
    version = etag_of(version, calibrations.stamp())  # a new calibration changes what members say
    if "page" in request.args:
        index = _page_index(total, size)
        headers = {"Allow": "GET, HEAD, OPTIONS", "Vary": VARY}
        etag = etag_of(version, view.variant(container.url), str(index), str(size))
        if not view.iris and choose_format(JSON_TYPES) is None and calibrations.none_in(container.key):
            # the harvester's walk: stored texts spliced as they are, no row objects, no parsing
            texts = store.page_texts(container.key, index * size, size, role)
            document = ldp.page_document(container.url, view, index, total, size, [ITEMS])
            return send(dumps_with(document, texts), ANNO_JSONLD, headers=headers, etag=etag)
        items, members = _items(store.page(container.key, index * size, size, role), view, calibrations)
        document = ldp.page_document(container.url, view, index, total, size, items)
        return represent(document, etag, headers=headers, members=members)
    first = [] if view.minimal or not total else store.page(container.key, 0, size, role)
    items, members = ([], None) if not first else _items(first, view, calibrations)
    document = ldp.container_document(container.url, view, container.label, total, size, items)
    etag = etag_of(version, view.variant(container.url), str(view.minimal), str(size))
    return represent(document, etag, headers=container_headers(container, view), members=members)


def _items(
    annotations: list[StoredAnnotation], view: ldp.View, calibrations: Calibrations
) -> tuple[list, list[StoredAnnotation] | None]:
    """A page's items: their IRIs, or a placeholder for the stored annotations (spliced unparsed unless
    a calibration adds to them)."""
    if view.iris:
        return [a.id for a in annotations], None
    return [ITEMS], [calibrations.served(a) for a in annotations]


def member_headers(allow: str) -> dict:
    """The headers of every annotation or verdict response: its one Link type, ALLOW and Vary."""
    return {"Link": ldp.RESOURCE_LINK, "Allow": allow, "Vary": VARY}


def send_member(stored: StoredAnnotation, allow: str, status: int = 200, headers: dict | None = None) -> Response:
    """Send a stored annotation or verdict with its @context, ETag and headers (ALLOW: the methods
    it takes); an annotation with the calibrated confidence of its model, where one was fitted.

    Raises NotAcceptable.
    """
    calibrations = Calibrations(service().store(), service().base)
    document = {"@context": ANNOTATION_CONTEXT, **calibrations.document(stored)}
    calibration = calibrations.of(stored)
    etag = stored.etag if calibration is None else etag_of(stored.etag, calibration.id)
    return represent(document, etag, status, {**member_headers(allow), **(headers or {})})


def read_member(stored: StoredAnnotation, allow: str) -> Response:
    """Answer GET/HEAD/OPTIONS on a stored annotation or verdict that takes the methods ALLOW.

    Raises NotAcceptable.
    """
    if request.method == "OPTIONS":
        return send(b"", ANNO_JSONLD, headers=member_headers(allow))
    return send_member(stored, allow)


def removed(remove: Callable[[str, str | None], None], stored: StoredAnnotation) -> Response:
    """Remove STORED with REMOVE (the store's delete or retraction), checking If-Match when one was
    sent; answer 204.

    Raises PreconditionFailed (from REMOVE) for an If-Match that is not the current ETag.
    """
    remove(stored.id, request.headers.get("If-Match") or None)
    service().changed()
    return Response(status=204)


def person(name: str) -> dict:
    """The ``creator`` of what a token's holder writes."""
    return {"type": "Person", "nickname": name}


def if_match() -> str:
    """The request's If-Match value.

    Raises PreconditionRequired when it is missing: an update must say which version it changes.
    """
    value = request.headers.get("If-Match", "").strip()
    if not value:
        raise PreconditionRequired("send If-Match with the ETag of the annotation you changed", where=request.url)
    return value


@bp.route("/annotations/", methods=["GET", "OPTIONS"])
def everything() -> Response:
    """The container of every annotation (read-only)."""
    return read_container(find_container(None))


@bp.route("/<key:key>/annotations/", methods=["GET", "OPTIONS"])
def container(key: str) -> Response:
    """A manifest's container."""
    return read_container(find_container(key))


@bp.post("/<key:key>/annotations/", provide_automatic_options=False)
def create(key: str) -> Response:
    """Create an annotation in a manifest's container; the server assigns its IRI."""
    creator = require_writer(service().writers)
    manifest = find_manifest(key)
    annotation = incoming.for_create(read_json(service().config.max_body), manifest)
    iri = urls.container_url(service().base, key) + uuid.uuid4().hex
    annotation.update(id=iri, creator=person(creator), modified=now())
    stored = service().store().create(key, annotation, creator)
    service().changed()
    return send_member(stored, ANNOTATION_ALLOW, 201, {"Location": stored.id})


@bp.route("/<key:key>/annotations/<aid>", methods=["GET", "OPTIONS"])
def annotation(key: str, aid: str) -> Response:
    """One annotation."""
    return read_member(find_annotation(key, aid), ANNOTATION_ALLOW)


@bp.put("/<key:key>/annotations/<aid>", provide_automatic_options=False)
def update(key: str, aid: str) -> Response:
    """Replace an annotation, if the client saw its current version (If-Match)."""
    creator = require_writer(service().writers)
    stored = find_annotation(key, aid)
    manifest = find_manifest(key)
    expected = if_match()
    annotation = incoming.for_update(read_json(service().config.max_body), manifest, stored.document)
    # the author stays; a machine annotation gets the person who edited it
    annotation["creator"] = stored.document.get("creator") or person(creator)
    updated = service().store().update(stored.id, annotation, expected, creator)
    service().changed()
    return send_member(updated, ANNOTATION_ALLOW)


@bp.delete("/<key:key>/annotations/<aid>", provide_automatic_options=False)
def delete(key: str, aid: str) -> Response:
    """Delete an annotation (If-Match optional); later requests get 410 Gone."""
    require_writer(service().writers)
    return removed(service().store().delete, find_annotation(key, aid))
