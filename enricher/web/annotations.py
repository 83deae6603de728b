"""The W3C Web Annotation Protocol: a container per manifest and one of everything (LDP Basic
Containers, paged), and each annotation (GET, PUT with If-Match, DELETE).

JSON-LD with the anno profile is the default representation; Accept or ``format`` gets any other RDF
format of enricher.rdf's registry (Turtle, N-Triples, RDF/XML ...).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial

from flask import Blueprint, Response, request

from .. import urls
from ..annotate import ANNOTATION_CONTEXT
from ..clock import now
from ..errors import Gone, InputError, NotFound, PreconditionRequired
from ..manifest import Manifest
from ..served import Calibrations
from ..store import Store, StoredAnnotation, StoredManifest
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
from .pages import respond
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


@lru_cache(maxsize=4)
def _everything(base: str) -> Container:
    """The container of every annotation of the service at BASE, built once: each of its pages asks."""
    return Container(None, urls.container_url(base, None), "Every annotation of this service", EVERYTHING_ALLOW)


def find_container(key: str | None) -> Container:
    """Return the container of manifest KEY, or of everything when KEY is None.

    Raises NotFound for an unknown manifest.
    """
    if key is None:
        return _everything(service().base)
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


def _page_number() -> int:
    """The ``page`` query parameter.

    Raises InputError (not a number).
    """
    raw = request.args["page"]
    if not raw.isdigit():
        raise InputError(f"page must be a non-negative integer, not {raw!r}", where=request.url)
    return int(raw)


def page_etag(version: str, url: str, view: ldp.View, index: int, size: int) -> str:
    """The ETag of page INDEX of the JSON-LD of container URL at VERSION, in VIEW, SIZE to a page.

    VERSION is the store's container_etag, one read of the change log: it moves with each write to the
    container and each calibration that changes what its members say (the store logs an Update of
    every annotation a calibration changes)."""
    return etag_of(version, view.variant(url), str(index), str(size))


def page_body(store: Store, container: Container, view: ldp.View, index: int, total: int, size: int,
              calibrations: Calibrations) -> bytes:
    """The JSON-LD of page INDEX of a container of TOTAL members in VIEW."""
    key, role = container.key, container.role
    if not view.iris and calibrations.none_in(key):
        # the harvester's walk: stored texts spliced as they are, no row objects, no parsing
        document = ldp.page_document(container.url, view, index, total, size, [ITEMS])
        return dumps_with(document, store.page_texts(key, index * size, size, role))
    items, members = _items(store.page(key, index * size, size, role), view, calibrations)
    document = ldp.page_document(container.url, view, index, total, size, items)
    return dumps(document) if members is None else dumps_with(document, [a.text for a in members])


def read_container(container: Container) -> Response:
    """Answer GET/HEAD/OPTIONS on a container: its description, or one of its pages with ``?page=``.
    Bodies already built come from the page files (enricher.web.pages).

    Raises InputError, NotFound, NotAcceptable.
    """
    if request.method == "OPTIONS":
        return send(b"", ANNO_JSONLD, headers=container_headers(container))
    here = service()
    store, size = here.store(), here.config.page_size
    view = ldp.choose_view(request.headers.get("Prefer"), request.args.get("iris"))
    fmt = choose_format(JSON_TYPES)
    calibrations = Calibrations(store, here.base)
    version = store.container_etag(container.key, container.role)
    if "page" in request.args:
        index = _page_number()
        headers = {"Allow": "GET, HEAD, OPTIONS", "Vary": VARY}
        etag = page_etag(version, container.url, view, index, size)
        return respond(here.pages(), etag, fmt, headers,
                       lambda: _read_page(store, container, view, index, size, calibrations, etag, headers))
    headers = container_headers(container, view)
    etag = etag_of(version, view.variant(container.url), str(view.minimal), str(size))
    return respond(here.pages(), etag, fmt, headers,
                   lambda: _read_description(store, container, view, size, calibrations, etag, headers))


def _read_page(store: Store, container: Container, view: ldp.View, index: int, size: int,
               calibrations: Calibrations, etag: str, headers: dict) -> Response:
    """Build page INDEX of a container in the format asked for.

    Raises NotFound (past the last page), NotAcceptable.
    """
    total = store.count(container.key, container.role)
    if index > ldp.last_page(total, size) or (index and not total):
        raise NotFound(f"page {index} is past the last page of this container", where=request.url)
    if choose_format(JSON_TYPES) is None:
        return send(page_body(store, container, view, index, total, size, calibrations), ANNO_JSONLD,
                    headers=headers, etag=etag)
    items, members = _items(store.page(container.key, index * size, size, container.role), view, calibrations)
    document = ldp.page_document(container.url, view, index, total, size, items)
    return represent(document, etag, headers=headers, members=members)


def _read_description(store: Store, container: Container, view: ldp.View, size: int,
                      calibrations: Calibrations, etag: str, headers: dict) -> Response:
    """Build the container's description (with its first page unless minimal) in the format asked for.

    Raises NotAcceptable.
    """
    total = store.count(container.key, container.role)
    first = [] if view.minimal or not total else store.page(container.key, 0, size, container.role)
    items, members = ([], None) if not first else _items(first, view, calibrations)
    document = ldp.container_document(container.url, view, container.label, total, size, items)
    return represent(document, etag, headers=headers, members=members)


def materialized_pages(store: Store, base: str, size: int) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """The ETag of every page of every annotation container (the default JSON-LD representation) at
    its current version, each with a function that builds its body: what enricher.web.pages keeps."""
    view = ldp.View()
    calibrations = Calibrations(store, base)
    for key in [None, *store.manifest_keys()]:
        container = Container(key, urls.container_url(base, key), "", EVERYTHING_ALLOW)
        version = store.container_etag(key, container.role)
        total = store.count(key, container.role)
        for index in range(ldp.last_page(total, size) + 1 if total else 0):
            yield page_etag(version, container.url, view, index, size), partial(
                page_body, store, container, view, index, total, size, calibrations)


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
