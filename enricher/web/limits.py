"""Abuse limits on writes and jobs: token buckets per client address and per bearer token.

Every write (POST, PUT, DELETE on a route that has them; a SPARQL query by POST is a read) takes a unit
from the buckets of its client address and, when it carries a valid token, of that token, before its
view runs: they hold ``write_burst`` units and refill at ``write_rate`` a minute. A job that passed its
checks takes from the job buckets too (``job_burst``, ``job_rate``) before it is queued. When a bucket
is empty the request is answered 429 with ``Retry-After`` and takes from none of that limit's. An
unauthenticated write counts against its address, so guessing tokens is slowed down as well.

The buckets live in the store (``Store.take``), so the limits hold across every process on one
database: gunicorn's workers and every instance on the same SQLite file. An IPv6 client counts by its
/64 network, the block one subscriber gets. Behind reverse proxies, setting ``trusted_proxies`` says how
many of them append to ``X-Forwarded-For``; the address they name is counted instead of the proxy's.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from ..config import Config
from ..errors import ConfigError, TooManyRequests
from .auth import bearer_name
from .state import service

WRITES = frozenset({"POST", "PUT", "DELETE"})
READS_BY_POST = frozenset({"sparql.sparql", "oai.oai"})  # endpoints whose POST only reads (a query, a harvest)
EXTENSION = "enricher.limits"
IPV6_PREFIX = 64  # an IPv6 client is counted by its network: one subscriber gets a /64


@dataclass(frozen=True)
class Limit:
    """A rate limit of KIND (write, job; settings {kind}_rate and {kind}_burst): BURST units at once,
    refilling at PER_MINUTE (0: no limit)."""

    kind: str
    per_minute: float
    burst: int

    def bucket(self, who: str) -> tuple[str, float, float]:
        """The store's token bucket of WHO (a client or a token) under this limit."""
        return (f"{self.kind} {who}", self.per_minute / 60, float(self.burst))


def limits(config: Config) -> dict[str, Limit]:
    """The write and job limits the settings ask for, by kind.

    Raises ConfigError for a negative rate or a burst below 1 where the rate is on.
    """
    found = (Limit("write", config.write_rate, config.write_burst), Limit("job", config.job_rate, config.job_burst))
    for limit in found:
        rate, burst = f"{limit.kind}_rate", f"{limit.kind}_burst"
        if limit.per_minute < 0:
            raise ConfigError(f"{rate} must be 0 (no limit) or more, not {limit.per_minute:g}", where=rate)
        if limit.per_minute and limit.burst < 1:
            raise ConfigError(f"{burst} must be at least 1 while {rate} is on, not {limit.burst}", where=burst)
    return {limit.kind: limit for limit in found}


def client_of(address: str | None) -> str:
    """The client an address counts for: itself, or its /64 network for IPv6 (None: a Unix socket)."""
    if not address:
        return "local"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ip.ipv4_mapped or ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def charge(kind: str) -> None:
    """Charge the current request to the buckets of its client and its token under the limit of KIND
    (write, job).

    Raises TooManyRequests naming the client or token over the limit, with the seconds to wait.
    """
    limit = current_app.extensions[EXTENSION][kind]
    if not limit.per_minute:
        return
    here = service()
    client, token = client_of(request.remote_addr), bearer_name(here.writers)
    buckets = {who: limit.bucket(who) for who in (f"client {client}", *([f"token {token}"] if token else []))}
    short = here.store().take(list(buckets.values()), time.time())
    if short is not None:
        who = next(who for who, bucket in buckets.items() if bucket[0] == short[0])
        seconds = max(1, math.ceil(short[1]))
        raise TooManyRequests(
            f"{who} made too many {kind}s: {limit.burst} at once, then {limit.per_minute:g} a minute "
            f"(settings {kind}_burst, {kind}_rate); try again in {seconds} s",
            retry_after=seconds, where=request.url,
        )


def _check_write() -> None:
    """Charge every write to an existing route to the write limit (before the view runs)."""
    if request.method in WRITES and request.routing_exception is None and request.endpoint not in READS_BY_POST:
        charge("write")


def init_app(app: Flask) -> None:
    """Check the limits before every request; trust X-Forwarded-For from setting trusted_proxies proxies.

    Raises ConfigError for a limit that cannot be used.
    """
    config = app.extensions["enricher"].config
    app.extensions[EXTENSION] = limits(config)
    if config.trusted_proxies < 0:
        raise ConfigError(f"trusted_proxies must be 0 or more, not {config.trusted_proxies}", where="trusted_proxies")
    if config.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies, x_proto=0, x_host=0, x_port=0, x_prefix=0)
    app.before_request(_check_write)
