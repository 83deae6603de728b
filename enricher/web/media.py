"""Media types, content negotiation and the JSON and RDF responses every surface sends."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Mapping, Sequence

from flask import Response, request
from werkzeug.http import parse_options_header
from werkzeug.wsgi import wrap_file

from .. import rdf
from ..errors import InputError, NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from ..jsonld import ANNO_CONTEXT, IIIF2_CONTEXT, IIIF3_CONTEXT

ANNO_JSONLD = f'application/ld+json; profile="{ANNO_CONTEXT}"'
IIIF3_JSONLD = f'application/ld+json; profile="{IIIF3_CONTEXT}"'
IIIF2_JSONLD = f'application/ld+json; profile="{IIIF2_CONTEXT}"'
JSON = "application/json"
PROBLEM = "application/problem+json"
JSON_TYPES = ("application/ld+json", "application/json")
JSONLD = "jsonld"  # the registry's name for JSON-LD
NATIVE = "native"  # stands for the JSON-LD we build, among the registry's formats
VARY = "Accept"


def choose_format(native: Sequence[str] = ()) -> rdf.Format | None:
    """Return the RDF format the request asks for, or None for the JSON-LD we build (its media types
    NATIVE, or ``format=jsonld``). The ``format`` parameter (a name, extension or media type of
    enricher.rdf's registry) wins over Accept; without NATIVE the registry's JSON-LD is on offer.

    Raises NotAcceptable naming what is on offer.
    """
    param = request.args.get("format")
    if param:
        try:
            fmt = rdf.get(param)
        except NotAcceptable as exc:
            raise NotAcceptable(exc.detail, where=request.url) from None
        return None if native and fmt.name == JSONLD else fmt
    header = request.headers.get("Accept")
    chosen = _negotiated(header, tuple(native), rdf.generation())
    if chosen is None:
        formats = [f for f in rdf.formats() if not (native and f.name == JSONLD)]
        offered = ", ".join([*native, *(f.media_type for f in formats)])
        raise NotAcceptable(f"no representation matches Accept: {header}; offered: {offered}", where=request.url)
    return None if chosen == NATIVE else chosen


@lru_cache(maxsize=256)
def _negotiated(header: str | None, native: tuple[str, ...], generation: int) -> rdf.Format | str | None:
    """What Accept HEADER chooses among NATIVE and the registry's formats (GENERATION of it): requests
    repeat a few headers, and ranking every format per request was a tenth of a container page's time."""
    formats = [f for f in rdf.formats() if not (native and f.name == JSONLD)]
    offers = [((f.media_type, *f.aliases), f) for f in formats]
    return rdf.negotiate(header, [(native, NATIVE), *offers] if native else offers)


def send_graph(
    quads: Sequence, fmt: rdf.Format, etag: str, *, status: int = 200, headers: Mapping[str, str | Sequence[str]] | None = None
) -> Response:
    """Send QUADS in FMT, with an ETag derived from ETAG (that of the resource) and the format."""
    return send(fmt.serialize(quads), fmt.content_type, status=status, headers=headers, etag=etag_of(etag, fmt.name))


def dumps(document: Any) -> bytes:
    """Serialise JSON compactly as UTF-8."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# Stands for a list of JSON texts spliced in unparsed (see dumps_with); \0 never survives json.dumps.
ITEMS = "\0items\0"
_ITEMS_JSON = json.dumps([ITEMS])


def dumps_with(document: Any, raw: Sequence[str]) -> bytes:
    """Serialise DOCUMENT, whose one ``[ITEMS]`` list stands for RAW (JSON texts, spliced in as they
    are: a page of stored annotations needs no parsing and re-serialising)."""
    head, found, tail = json.dumps(document, ensure_ascii=False, separators=(",", ":")).partition(_ITEMS_JSON)
    if not found:
        raise ValueError("the document has no [ITEMS] placeholder")
    return f"{head}[{','.join(raw)}]{tail}".encode("utf-8")


@lru_cache(maxsize=None)
def file_bytes(path: Path) -> bytes:
    """The bytes of a file we ship (a context, a vocabulary), read once per process."""
    return path.read_bytes()


def etag_of(*parts: str | bytes) -> str:
    """Return a quoted strong ETag derived from PARTS."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\0")
    return f'"{digest.hexdigest()[:32]}"'


def send(
    body: bytes | Iterable[bytes],
    mimetype: str,
    *,
    status: int = 200,
    headers: Mapping[str, str | Sequence[str]] | None = None,
    etag: str | None = None,
) -> Response:
    """Build a response (BODY: bytes, or chunks streamed as they come); with an ETag, answer a matching
    If-None-Match on GET/HEAD with 304."""
    response = Response(body, status=status, content_type=mimetype)
    for name, value in (headers or {}).items():
        for item in [value] if isinstance(value, str) else value:
            response.headers.add(name, item)
    if etag is not None:
        response.headers["ETag"] = etag
        fresh = etag in tags(request.headers.get("If-None-Match", ""))
        if request.method in ("GET", "HEAD") and status == 200 and fresh:
            response.status_code = 304
            response.set_data(b"")
    return response


def send_file(
    file: BinaryIO, mimetype: str, *, headers: Mapping[str, str | Sequence[str]] | None = None, etag: str
) -> Response:
    """Send the open FILE as the whole body (the WSGI server's file wrapper sends it, with ``sendfile``
    where it can; the response closes it), with ETAG and HEADERS."""
    response = Response(wrap_file(request.environ, file), content_type=mimetype, direct_passthrough=True)
    response.headers["Content-Length"] = str(os.fstat(file.fileno()).st_size)
    for name, value in (headers or {}).items():
        for item in [value] if isinstance(value, str) else value:
            response.headers.add(name, item)
    response.headers["ETag"] = etag
    return response


def tags(header: str) -> set[str]:
    """The entity tags an If-None-Match or If-Match header lists."""
    # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def read_json(max_body: int) -> Any:
    """Return the request body parsed as JSON.

    Raises UnsupportedMediaType (not a JSON media type), PayloadTooLarge (over MAX_BODY bytes) and
    InputError (not valid UTF-8 JSON; the detail gives line and column).
    """
    mimetype = parse_options_header(request.headers.get("Content-Type", ""))[0].lower()
    if mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"request body must be application/ld+json or application/json, not {mimetype or 'untyped'}",
            where=request.url,
        )
    data = read_body(max_body)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"request body is not UTF-8: {exc}", where=request.url) from None
    except json.JSONDecodeError as exc:
        detail = f"request body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise InputError(detail, where=request.url) from None
    except RecursionError:
        raise InputError("request body nests arrays and objects too deeply to read", where=request.url) from None


def read_body(max_body: int) -> bytes:
    """Return the request body.

    Raises PayloadTooLarge past MAX_BODY bytes.
    """
    if request.content_length is not None and request.content_length > max_body:
        size = request.content_length
        raise PayloadTooLarge(f"request body of {size} bytes is over the {max_body}-byte limit", where=request.url)
    return _read_at_most(max_body)


def _read_at_most(max_body: int) -> bytes:
    """Read the body, chunked ones included (werkzeug caps only those with a Content-Length).

    Raises PayloadTooLarge past MAX_BODY bytes.
    """
    parts, size = [], 0
    while chunk := request.stream.read(min(65536, max_body + 1 - size)):
        parts.append(chunk)
        size += len(chunk)
        if size > max_body:
            raise PayloadTooLarge(f"request body is over the {max_body}-byte limit", where=request.url)
    return b"".join(parts)
