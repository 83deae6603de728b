"""The only code that opens URLs. It refuses private addresses (checked on the address each connection
goes to, so also on every redirect hop), limits time, size and pixels, retries what may pass (429, 5xx,
refused or broken connections, timeouts), stops contacting a host that keeps failing (a circuit breaker)
and checks what comes back.

Every error names the URL (``where``) and says what went wrong.
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
from PIL import Image

from .addresses import AddressGuard, GuardedTransport, literal_addresses
from .breaker import CircuitBreaker
from .config import Config
from .errors import (
    BlockedAddressError,
    ContentTypeError,
    FetchError,
    ImageError,
    InputError,
    ManifestError,
    TooLargeError,
)

MAX_REDIRECTS = 10
MAX_RETRY_DELAY = 60.0  # seconds; a longer Retry-After is cut to this
REDIRECTS = {301, 302, 303, 307, 308}
JSON_ACCEPT = "application/ld+json, application/json;q=0.9, */*;q=0.1"
IMAGE_ACCEPT = "image/jpeg, image/png;q=0.9, image/*;q=0.8"
NOT_IMAGE_TYPES = ("text/", "json", "xml", "html")  # content types that are never image bytes
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least, so C:\\ stays a path


def retry_delay(headers: httpx.Headers, attempt: int, backoff: float) -> float:
    """Return seconds to wait before retry ATTEMPT (0-based): Retry-After when given, else exponential."""
    delay = backoff * 2**attempt
    value = headers.get("Retry-After", "").strip()
    if value.isdigit():
        delay = float(value)
    elif value:
        try:
            delay = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            pass  # unparseable: keep the exponential delay
    return min(max(delay, 0.0), MAX_RETRY_DELAY)


def decode_image(data: bytes, where: str, max_pixels: int) -> Image.Image:
    """Decode image bytes to RGB, refusing more than MAX_PIXELS before any pixel is decoded."""
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image too large to decode: {exc}", where=where) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode image ({len(data)} bytes): {exc}", where=where) from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            f"image has {width * height} pixels ({width}x{height}), more than the limit of {max_pixels}", where=where
        )
    try:
        image.load()
        return image if image.mode == "RGB" else image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot decode image ({len(data)} bytes): {exc}", where=where) from None


def _is_url(text: str) -> bool:
    return URL_SCHEME.match(text) is not None


class Fetcher:
    """Fetch JSON, bytes and images over HTTP(S) safely. One instance may be shared by threads."""

    def __init__(self, config: Config, transport: httpx.BaseTransport | None = None):
        """TRANSPORT replaces the network (tests); by default every connection is checked by a GuardedTransport."""
        self.config = config
        self._guard = AddressGuard(config)
        self._breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
        self._client = httpx.Client(
            transport=transport or GuardedTransport(self._guard),
            timeout=config.timeout,
            follow_redirects=False,  # followed by hand, so every hop is checked
            headers={"User-Agent": config.user_agent},
        )

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def get_json(self, url_or_path: str, *, local: bool = False) -> dict:
        """Return the JSON object at an http(s) URL, or at a local path when LOCAL (the caller's own
        source, never a name read from a remote document); ManifestError if it is not one."""
        if _is_url(url_or_path):
            body, content_type = self._fetch(url_or_path, JSON_ACCEPT)
        elif local:
            body, content_type = self._read_file(Path(url_or_path)), ""
        else:
            raise BlockedAddressError("not an http(s) URL: a document read from the network may not name a local file",
                                      where=url_or_path)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            got = f" (got {content_type.split(';')[0]})" if content_type else ""
            raise ManifestError(f"not JSON{got}: {exc}", where=url_or_path) from None
        except RecursionError:
            raise ManifestError("JSON nested too deeply to read", where=url_or_path) from None
        if not isinstance(document, dict):
            raise ManifestError(f"expected a JSON object, got a JSON {type(document).__name__}", where=url_or_path)
        return document

    def get_bytes(self, url: str) -> bytes:
        """Return the body at URL."""
        return self._fetch(url, "*/*")[0]

    def get_image(self, url: str) -> Image.Image:
        """Return the image at URL decoded to RGB; ContentTypeError for a page, ImageError if undecodable."""
        body, content_type = self._fetch(url, IMAGE_ACCEPT)
        if any(marker in content_type for marker in NOT_IMAGE_TYPES):
            raise ContentTypeError(f"expected an image, got {content_type}", where=url)
        return decode_image(body, url, self.config.max_pixels)

    def _read_file(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
            if size > self.config.max_bytes:
                raise TooLargeError(f"file of {size} bytes exceeds the limit of {self.config.max_bytes}", where=str(path))
            return path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror}", where=str(path)) from None

    def _fetch(self, url: str, accept: str) -> tuple[bytes, str]:
        """Follow redirects by hand and return (body, content type) of the final answer."""
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise FetchError(f"not a valid URL: {exc}", where=url) from None
        where = url  # as given, then each hop's
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, body = self._get(current, accept, where)
            if status not in REDIRECTS:
                return body, headers.get("Content-Type", "").lower()
            location = headers.get("Location")
            try:
                current = current.join(location)
            except (TypeError, httpx.InvalidURL):
                raise FetchError(f"HTTP {status} redirect to a bad Location {location!r}", where=where) from None
            where = str(current)
        raise FetchError(f"more than {MAX_REDIRECTS} redirects", where=url)

    def _get(self, url: httpx.URL, accept: str, where: str) -> tuple[int, httpx.Headers, bytes]:
        """GET one URL (WHERE in errors) with retries; return status, headers and body (empty for redirects)."""
        attempt = 0
        host = self._check(url, where)
        while True:
            self._breaker.allow(host, where)
            last = attempt >= self.config.retries
            try:
                with self._client.stream("GET", url, headers={"Accept": accept}) as response:
                    self._breaker.succeeded(host)
                    status = response.status_code
                    if (status == 429 or status >= 500) and not last:
                        time.sleep(retry_delay(response.headers, attempt, self.config.backoff))
                        attempt += 1
                        continue
                    if status in REDIRECTS:
                        return status, response.headers, b""
                    if status >= 400:
                        raise FetchError(f"HTTP {status} {response.reason_phrase}".rstrip(), where=where)
                    return status, response.headers, self._read(response, where)
            except BlockedAddressError as exc:  # raised by the transport at connect time
                exc.where = where
                raise
            except httpx.TimeoutException:
                failure = f"no answer within {self.config.timeout} s from {host}"
            except httpx.TransportError as exc:
                failure = f"cannot connect to {host}: {exc or type(exc).__name__}"
            self._breaker.failed(host, failure)
            if last or self._breaker.is_down(host):
                raise FetchError(failure, where=where)
            time.sleep(retry_delay(httpx.Headers(), attempt, self.config.backoff))
            attempt += 1

    def _read(self, response: httpx.Response, where: str) -> bytes:
        limit = self.config.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise TooLargeError(f"response of {declared} bytes exceeds the limit of {limit}", where=where)
        chunks, total = [], 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise TooLargeError(f"response exceeds the limit of {limit} bytes", where=where)
            chunks.append(chunk)
        return b"".join(chunks)

    def _check(self, url: httpx.URL, where: str) -> str:
        """Refuse a URL that is not http(s), or whose host is a forbidden address written out; return its host.

        Host names are checked when a connection is opened (see enricher.addresses), on the address the
        connection goes to; an address written in the URL is refused here already, whatever the transport.
        """
        if url.scheme not in ("http", "https"):
            raise FetchError(f"unsupported URL scheme {url.scheme!r}", where=where)
        if not url.host:
            raise FetchError("URL without a host", where=where)
        self._guard.check(url.host, literal_addresses(url.host), where=where)
        return url.netloc.decode("ascii")
