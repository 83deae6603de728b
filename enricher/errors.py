"""The exception tree. Every error says what went wrong and where (a URL, a file, a field).

    EnricherError                 500  generic failure
    ├── InputError                400  the caller gave us something we cannot use
    │   ├── ManifestError         422  not JSON, not a IIIF manifest/collection, unknown version
    │   ├── RegionError           400  an xywh region that is malformed or outside the canvas
    │   ├── ConfigError           400  a setting with a bad value
    │   ├── InvalidField          422  a request body field we cannot use; ``pointer`` names it
    │   ├── QueryError            400  a malformed SPARQL query (with the parser's message), or SERVICE
    │   ├── ResultTooLarge        422  a SPARQL answer over the row or triple cap
    │   └── UpdateRefused         400  SPARQL Update sent to the read-only index
    ├── FetchError                502  a remote resource could not be fetched
    │   ├── BlockedAddressError   403  private, loopback or link-local address not allowed
    │   ├── TooLargeError         413  the response is larger than the configured maximum
    │   ├── ContentTypeError      415  the response has the wrong content type
    │   └── HostDownError         503  the host failed several connections in a row; not tried for now
    ├── ImageError                422  an image that cannot be decoded, or is too large to decode
    ├── ModelError                500  weights that cannot be loaded
    ├── QueryTimeout              503  a query ran past its time, too many are running, or the index is loading
    │   └── IndexUnavailable      503  the remote triplestore cannot be reached or is failing
    ├── BrokerError               503  the job queue's message broker cannot be reached
    ├── StoreUnavailable          503  the store's database server cannot be reached (down, restarting)
    └── HTTPProblem               500  errors of the HTTP surface
        ├── Unauthorized          401  missing or wrong bearer token
        ├── NotFound              404  no such resource
        ├── NotAcceptable         406  no representation in the requested media type
        ├── StaleVersion          409  a verdict on a version of its target that is no longer current
        ├── Gone                  410  the resource was deleted
        ├── PreconditionFailed    412  If-Match does not match the current ETag
        ├── PreconditionRequired  428  a write without If-Match
        ├── PayloadTooLarge       413  request body over the limit
        ├── TooManyRequests       429  a client address or token over its write or job rate
        └── UnsupportedMediaType  415  request body of the wrong type

Each class carries an HTTP ``status`` and a problem ``type`` slug so one handler can render
problem+json (RFC 9457) and the CLI can print one line. Every class lives here, and
tests/test_errors.py holds this drawing to the classes: a new one needs its line.
"""

from __future__ import annotations

PROBLEM_BASE = "https://w3id.org/enricher/problems/"


class EnricherError(Exception):
    """Base of every error the enricher raises on purpose."""

    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str, *, where: str | None = None, pointer: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.where = where
        self.pointer = pointer

    @property
    def type(self) -> str:
        """The problem type URI."""
        return PROBLEM_BASE + self.slug

    def __str__(self) -> str:
        return f"{self.detail} ({self.where})" if self.where else self.detail

    def problem(self) -> dict:
        """Render as an RFC 9457 problem object."""
        body = {"type": self.type, "title": self.title, "status": self.status, "detail": str(self)}
        if self.where:
            body["instance"] = self.where
        if self.pointer is not None:  # "" points at the whole body
            body["pointer"] = self.pointer
        return body


class InputError(EnricherError):
    status = 400
    slug = "bad-input"
    title = "Bad input"


class ManifestError(InputError):
    status = 422
    slug = "bad-manifest"
    title = "Not a usable IIIF manifest"


class RegionError(InputError):
    slug = "bad-region"
    title = "Bad region"


class ConfigError(InputError):
    slug = "bad-setting"
    title = "Bad setting"


class InvalidField(InputError):
    status = 422
    slug = "invalid-field"
    title = "Invalid field"


class QueryError(InputError):
    slug = "bad-query"
    title = "Malformed SPARQL query"


class UpdateRefused(InputError):
    slug = "read-only"
    title = "SPARQL Update is not accepted"
class ResultTooLarge(InputError):
    status = 422
    slug = "result-too-large"
    title = "Query answer too large"


class FetchError(EnricherError):
    status = 502
    slug = "fetch-failed"
    title = "A remote resource could not be fetched"


class BlockedAddressError(FetchError):
    status = 403
    slug = "blocked-address"
    title = "Address not allowed"


class TooLargeError(FetchError):
    status = 413
    slug = "too-large"
    title = "Resource too large"


class ContentTypeError(FetchError):
    status = 415
    slug = "wrong-content-type"
    title = "Wrong content type"


class HostDownError(FetchError):
    status = 503
    slug = "host-down"
    title = "Remote host is down"


class ImageError(EnricherError):
    status = 422
    slug = "bad-image"
    title = "Image cannot be used"


class ModelError(EnricherError):
    slug = "model"
    title = "Model cannot be loaded"


class QueryTimeout(EnricherError):
    status = 503
    slug = "query-timeout"
    title = "Query timeout"


class IndexUnavailable(QueryTimeout):
    slug = "index-unavailable"
    title = "RDF index unavailable"


class BrokerError(EnricherError):
    status = 503
    slug = "broker-unavailable"
    title = "Message broker unavailable"


class StoreUnavailable(EnricherError):
    status = 503
    slug = "store-unavailable"
    title = "Store unavailable"


class HTTPProblem(EnricherError):
    slug = "http"
    title = "HTTP error"


class Unauthorized(HTTPProblem):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"


class NotFound(HTTPProblem):
    status = 404
    slug = "not-found"
    title = "Not found"


class NotAcceptable(HTTPProblem):
    status = 406
    slug = "not-acceptable"
    title = "Not acceptable"


class StaleVersion(HTTPProblem):
    status = 409
    slug = "stale-version"
    title = "The judged version is not the current one"


class Gone(HTTPProblem):
    status = 410
    slug = "gone"
    title = "Gone"


class PreconditionFailed(HTTPProblem):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PreconditionRequired(HTTPProblem):
    status = 428
    slug = "precondition-required"
    title = "Precondition required"


class PayloadTooLarge(HTTPProblem):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class TooManyRequests(HTTPProblem):
    """A rate limit was hit; ``retry_after`` is the whole seconds until the request would be allowed."""

    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, where: str | None = None):
        super().__init__(detail, where=where)
        self.retry_after = retry_after


class UnsupportedMediaType(HTTPProblem):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"
