"""Bearer tokens: writes need one, reads are public.

Setting ``tokens`` lists them comma-separated, each either ``name:secret`` (the name before the first
colon is recorded as the ``creator`` of what that token writes) or a bare ``secret`` (recorded as
``token-`` plus the first 8 hex of its SHA-256, so the secret never appears in data). With no tokens
configured every write is refused. A presented token is compared by its SHA-256 digest with every
configured one, each in constant time (``hmac.compare_digest``): how long the check takes tells nothing
of the secrets, their length, or which one matched.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

from flask import request

from ..errors import Unauthorized


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def token_names(tokens: Iterable[str]) -> dict[bytes, str]:
    """Map the SHA-256 digest of each configured secret to the name its writes are recorded under."""
    names = {}
    for token in tokens:
        name, colon, secret = token.partition(":")
        if not colon:
            name, secret = "token-" + _digest(token).hex()[:8], token
        names[_digest(secret)] = name
    return names


def _bearer() -> str | None:
    """The bearer token the request presents, or None."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" and given.strip() else None


def bearer_name(names: dict[bytes, str]) -> str | None:
    """The name behind the request's bearer token (NAMES from token_names), or None when it presents
    none or an unknown one."""
    given = _bearer()
    if given is None:
        return None
    # digests of one length, each compared in constant time and all of them every time: timing tells
    # neither a prefix, nor the length, nor which secret matched
    digest = _digest(given)
    found = [name for known, name in names.items() if hmac.compare_digest(known, digest)]
    return found[0] if found else None


def require_writer(names: dict[bytes, str]) -> str:
    """Return the name behind the request's bearer token.

    Raises Unauthorized when the Authorization header is missing, not Bearer, or names no configured token.
    """
    if _bearer() is None:
        raise Unauthorized("this request needs an Authorization: Bearer token", where=request.url)
    name = bearer_name(names)
    if name is None:
        raise Unauthorized("the bearer token is not valid", where=request.url)
    return name
