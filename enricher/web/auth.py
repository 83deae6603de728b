"""Bearer tokens: writes need one, reads are public.

Setting ``tokens`` lists them comma-separated, each either ``name:secret`` (the name before the first
colon is recorded as the ``creator`` of what that token writes) or a bare ``secret`` (recorded as
``token-`` plus the first 8 hex of its SHA-256, so the secret never appears in data). With no tokens
configured every write is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Iterable

from flask import request

from ..errors import Unauthorized


def token_names(tokens: Iterable[str]) -> dict[str, str]:
    """Map each configured secret to the name its writes are recorded under."""
    names = {}
    for token in tokens:
        name, colon, secret = token.partition(":")
        if not colon:
            name, secret = "token-" + hashlib.sha256(token.encode()).hexdigest()[:8], token
        names[secret] = name
    return names


def require_writer(names: dict[str, str]) -> str:
    """Return the name behind the request's bearer token.

    Raises Unauthorized when the Authorization header is missing, not Bearer, or names no configured token.
    """
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("this request needs an Authorization: Bearer token", where=request.url)
    given = given.strip()
    # compare with every secret in constant time, so timing does not reveal a prefix
    found = [name for secret, name in names.items() if hmac.compare_digest(secret.encode(), given.encode())]
    if not found:
        raise Unauthorized("the bearer token is not valid", where=request.url)
    return found[0]
