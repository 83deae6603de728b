"""The SPARQL 1.1 Protocol at ``/sparql``, read-only, over this process's RDF index.

A query comes by GET (``query=``) or by POST, as a form (``query=``) or as an
``application/sparql-query`` body; ``default-graph-uri`` and ``named-graph-uri`` narrow the dataset
(none: every graph is the default graph). SELECT and ASK answer in JSON, XML, CSV or TSV, CONSTRUCT
and DESCRIBE in any RDF format of the registry, chosen by Accept or ``format``. An update, by any
route, is refused; so is a federated query. An answer over ``sparql_max_rows`` rows (SELECT) or
``sparql_max_triples`` triples (CONSTRUCT, DESCRIBE) is refused with 422, never cut short: a client
sees an error rather than a partial answer it could take for the whole. GET without a query answers
with the SPARQL 1.1 Service Description of the endpoint.

Answers stream (enricher.answer): sent chunk by chunk as the query yields them, so a worker's memory
does not grow with the answer. An answer whose first chunk (256 KiB) holds it whole is sent with its
Content-Length; every error before that chunk (a cap, the timeout, the triplestore) is a problem
document. A larger one is sent chunked, and an error past its first chunk (a cap reached late, the
timeout, the triplestore failing) closes the connection without the closing chunk: the client's HTTP
library reports an incomplete body, never a shorter answer, and the server logs the error.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyoxigraph as ox
from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from .. import heap, rdf, urls
from ..errors import InputError, UnsupportedMediaType, UpdateRefused
from .media import VARY, choose_format, etag_of, read_body, send, send_graph
from .state import service

bp = Blueprint("sparql", __name__)
SD = "http://www.w3.org/ns/sparql-service-description#"
FORM = "application/x-www-form-urlencoded"
QUERY = "application/sparql-query"
UPDATE = "application/sparql-update"
HEADERS = {"Allow": "GET, HEAD, OPTIONS, POST", "Vary": VARY}
READ_ONLY = "this SPARQL endpoint is read-only: send annotations through the annotation containers"


@dataclass(frozen=True)
class Operation:
    """A query and its dataset as the protocol request gave them (query None: none was sent)."""

    query: str | None
    default_graphs: list[str]
    named_graphs: list[str]
    format: str | None


def read_operation() -> Operation:
    """Read the protocol request: GET parameters, a form, or an application/sparql-query body.

    Raises UpdateRefused (an update, by any route), UnsupportedMediaType (another body),
    PayloadTooLarge, InputError (several queries, none in a POST, a body that is not UTF-8).
    """
    where = request.base_url
    if request.method == "GET":
        params, queries = request.args, request.args.getlist("query")
    elif request.mimetype == FORM:
        params = MultiDict([*request.args.items(multi=True), *request.form.items(multi=True)])
        queries = request.form.getlist("query")
    elif request.mimetype == QUERY:
        params, queries = request.args, [_text(read_body(service().config.max_body))]
    elif request.mimetype == UPDATE:
        raise UpdateRefused(READ_ONLY, where=where)
    else:
        raise UnsupportedMediaType(
            f"a SPARQL query is posted as {QUERY} or {FORM}, not {request.mimetype or 'untyped'}", where=where
        )
    if "update" in params:
        raise UpdateRefused(READ_ONLY, where=where)
    if len(queries) > 1:
        raise InputError(f"send one query per request, not {len(queries)}", where=where)
    if request.method == "POST" and not (queries and queries[0].strip()):
        raise InputError("the request holds no query", where=where)
    return Operation(
        queries[0] if queries else None, params.getlist("default-graph-uri"), params.getlist("named-graph-uri"),
        params.get("format"),
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the query is not UTF-8: {exc}", where=request.base_url) from None


def description() -> list[ox.Quad]:
    """The SPARQL 1.1 Service Description of this endpoint: read-only SPARQL 1.1 Query over the
    dataset the VoID description describes, every graph in the default graph."""
    here = service()
    endpoint = ox.NamedNode(urls.sparql_url(here.base))

    def quad(predicate: str, obj) -> ox.Quad:
        return ox.Quad(endpoint, ox.NamedNode(predicate), obj)

    return [
        quad(rdf.RDF + "type", ox.NamedNode(SD + "Service")),
        quad(SD + "endpoint", endpoint),
        quad(SD + "supportedLanguage", ox.NamedNode(SD + "SPARQL11Query")),
        quad(SD + "feature", ox.NamedNode(SD + "UnionDefaultGraph")),
        quad(SD + "defaultDataset", ox.NamedNode(urls.dataset_url(here.base))),
        quad(rdf.DCTERMS + "license", ox.NamedNode(here.config.licence)),
    ]


@bp.route("/sparql", methods=["GET", "POST"])
def sparql() -> Response:
    """Answer a SPARQL query; without one, describe the endpoint."""
    operation = read_operation()
    if operation.query is None:
        etag = etag_of(service().base, service().config.licence)
        return send_graph(description(), choose_format(), etag, headers=HEADERS)
    answer = service().index().query(
        operation.query, accept=request.headers.get("Accept"), format=operation.format,
        timeout=service().config.sparql_timeout, default_graphs=operation.default_graphs,
        named_graphs=operation.named_graphs, where=request.base_url,
        max_rows=service().config.sparql_max_rows, max_triples=service().config.sparql_max_triples,
    )
    response = send(answer.body if answer.whole else answer.chunks, answer.content_type, headers=HEADERS)
    response.call_on_close(answer.close)  # a client that went away stops the query at its next write
    response.call_on_close(heap.trim)  # a query over every annotation leaves its working memory freed, not returned
    return response
