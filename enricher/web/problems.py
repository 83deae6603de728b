"""The single error handler: every error leaves as problem+json (RFC 9457), never as a stack trace.

Our client errors (4xx) render themselves (``EnricherError.problem``); Flask's own (404 for an unknown
route, 405, 413 from MAX_CONTENT_LENGTH) are translated to the same shape; server errors, ours or
unexpected, are logged with a reference and answered with a bare 500 that names only that reference,
except a SPARQL query that ran out of time, which is the client's to retry (503 with Retry-After). A
rate limit's 429 says in Retry-After when the request would be allowed.
"""

from __future__ import annotations

import logging
import uuid

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from ..errors import (
    PROBLEM_BASE,
    EnricherError,
    PayloadTooLarge,
    QueryTimeout,
    TooManyRequests,
    Unauthorized,
)
from .media import PROBLEM, dumps

log = logging.getLogger(__name__)
REALM = "enricher"
RETRY_AFTER = "5"  # seconds a client waits before sending a query that ran out of time again


def problem_response(problem: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    """Send a problem object."""
    response = Response(dumps(problem), status=status, content_type=PROBLEM)
    response.headers.extend(headers or {})
    return response


def _enricher_error(error: EnricherError) -> Response:
    if error.status >= 500 and not isinstance(error, QueryTimeout):  # our failure: its detail stays in the log
        return _unexpected(error)
    problem = error.problem()
    problem.setdefault("instance", request.url)
    headers = {"Retry-After": RETRY_AFTER} if isinstance(error, QueryTimeout) else {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, Unauthorized):
        # RFC 6750 3.1: an error code only when a bearer token was presented
        given = request.headers.get("Authorization", "").lower().startswith("bearer ")
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if given else "")
    return problem_response(problem, error.status, headers)


def _http_exception(error: HTTPException) -> Response:
    if error.code == 413:
        too_large = PayloadTooLarge("request body is over the configured limit (setting max_body)", where=request.url)
        return _enricher_error(too_large)
    problem = {
        "type": PROBLEM_BASE + (error.name or "http").lower().replace(" ", "-"),
        "title": error.name,
        "status": error.code,
        "detail": error.description,
        "instance": request.url,
    }
    headers = {}
    if error.code == 405 and getattr(error, "valid_methods", None):
        problem["detail"] = f"{request.method} is not allowed here; allowed: {', '.join(error.valid_methods)}"
        headers["Allow"] = ", ".join(error.valid_methods)
    return problem_response(problem, error.code or 500, headers)


def _unexpected(error: Exception) -> Response:
    reference = uuid.uuid4().hex
    log.error("error %s on %s %s", reference, request.method, request.path, exc_info=error)
    problem = {
        "type": PROBLEM_BASE + "internal",
        "title": "Internal error",
        "status": 500,
        "detail": f"the server failed on this request; the log names it {reference}",
        "instance": request.url,
    }
    return problem_response(problem, 500)


def init_app(app: Flask) -> None:
    """Route every error of APP through problem+json."""
    app.register_error_handler(EnricherError, _enricher_error)
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _unexpected)
