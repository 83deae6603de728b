"""Politeness across the cluster: per IIIF host (``host:port``, as the circuit breaker counts them) a
rate limit and a concurrency limit that every worker shares through Redis, and a pause that all of
them keep after the host answers 429 (its Retry-After, else the first backoff).

Why not Dramatiq's own limiters: ``WindowRateLimiter`` counts per calendar second, so it lets twice
its limit through in a second that straddles two of them, and ``ConcurrentRateLimiter`` keeps a plain
counter whose TTL every use renews, so a worker killed while it holds a slot leaks it for as long as
the host stays busy. Here the rate is a sliding log in which a request counts from when it takes its
slot until one window after its answer came back, so the host's own count holds whatever the delays
on the way; each request in flight holds a lease that expires on its own. Both live in Lua scripts,
timed by the Redis server's clock, so every worker sees the same time.

``PoliteTransport`` wraps the fetcher's transport: each request waits for its slot first, and a 429
pauses the host for the whole cluster. The job queue asks ``delay(host)`` before it starts work for a
host, and puts the work back with that delay instead of blocking a worker thread on a busy host.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import redis

from ..config import Config
from ..errors import ConfigError
from ..fetch import retry_delay

LEASE_GRACE = 30.0  # seconds a request's slot outlives the request timeout (a killed worker's)
POLL_MS = 20  # how often a request waiting for a slot held by a request in flight asks again

# KEYS: rate log (zset: token -> until when it counts against the rate), leases (zset: token -> expiry
# of a request in flight), pause (time until which the host is paused). ARGV: requests per window (0:
# no rate limit), window ms, concurrency (0: none), lease ms, token, take (1) or look (0).
# A request counts against the rate from when it takes its slot until one window after its answer
# (release): the host sees it between those two moments, so it never sees more than the limit within
# any window, however long the way between a worker and the host takes.
# Returns 0 when the slot is taken (or free, when looking), else the milliseconds to wait.
_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, window, concurrency, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local poll = tonumber(ARGV[7])
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then return paused - now end
if rate > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= rate then
    local wait = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]) - now
    if wait > window then return poll end  -- every slot is held by a request still in flight
    return math.max(wait, 1)
  end
end
if concurrency > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= concurrency then return poll end
end
if ARGV[6] == '1' and rate > 0 then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], lease + window)
end
if ARGV[6] == '1' and concurrency > 0 then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], lease)
end
return 0
"""
# KEYS: rate log, leases. ARGV: window ms, token. The request ended: it counts one more window.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return 0
"""
# KEYS: pause. ARGV: milliseconds. Extends the pause, never shortens it.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_, 'PX', ARGV[1])
end
return until_
"""


class HostLimits:
    """Per-host limits shared through the Redis at URL: RATE requests per second (0: none), CONCURRENCY
    requests in flight (0: none), and pauses after a 429."""

    def __init__(self, url: str, rate: float, concurrency: int, lease: float, namespace: str = "enricher:host"):
        self.rate, self.concurrency = rate, concurrency
        self._client = redis.Redis.from_url(url)
        self._slot = self._client.register_script(_SLOT)
        self._release = self._client.register_script(_RELEASE)
        self._pause = self._client.register_script(_PAUSE)
        self._lease_ms = int(lease * 1000)
        self._namespace = namespace
        # a rate of r per second is max(1, r) requests per window of max(1, 1/r) seconds
        self._per_window = max(1, int(rate)) if rate > 0 else 0
        self._window_ms = int((max(1.0, 1.0 / rate) if rate > 0 else 1.0) * 1000)

    def _keys(self, host: str) -> list[str]:
        return [f"{self._namespace}:{host}:{part}" for part in ("log", "leases", "pause")]

    def _ask(self, host: str, token: str, take: bool) -> float:
        args = [self._per_window, self._window_ms, self.concurrency, self._lease_ms, token, "1" if take else "0", POLL_MS]
        return int(self._slot(keys=self._keys(host), args=args)) / 1000

    def delay(self, host: str) -> float:
        """Seconds before HOST takes another request (0: now), without taking a slot."""
        return self._ask(host, "", take=False)

    def acquire(self, host: str) -> str:
        """Wait for a slot of HOST and take it; return its token (give it to release())."""
        token = uuid.uuid4().hex
        while (wait := self._ask(host, token, take=True)) > 0:
            time.sleep(wait)
        return token

    def release(self, host: str, token: str) -> None:
        """End the request that took TOKEN: it leaves the requests in flight and counts one more window."""
        self._release(keys=self._keys(host)[:2], args=[self._window_ms, token])

    def pause(self, host: str, seconds: float) -> None:
        """Send no request to HOST for SECONDS, from any worker."""
        self._pause(keys=self._keys(host)[2:], args=[max(1, int(seconds * 1000))])

    def close(self) -> None:
        """Close the connections to Redis."""
        self._client.close()


def host_limits(config: Config, broker_url: str = "") -> HostLimits | None:
    """The shared limits the settings ask for (None: no host_rate and no host_concurrency).

    Raises ConfigError when limits are set but no Redis is named (limits_url, or a redis:// broker).
    """
    if config.host_rate <= 0 and config.host_concurrency <= 0:
        return None
    url = config.limits_url or (broker_url if broker_url.startswith(("redis://", "rediss://")) else "")
    if not url:
        raise ConfigError("host_rate and host_concurrency are shared through Redis: set limits_url (redis://...) "
                          "or use a redis:// broker", where="limits_url")
    return HostLimits(url, config.host_rate, config.host_concurrency, config.timeout + LEASE_GRACE)


def host_of(url: str) -> str:
    """The ``host:port`` key of URL, as requests to it are limited."""
    return httpx.URL(url).netloc.decode("ascii")


class _Released(httpx.SyncByteStream):
    """A response body that ends its request's lease when it is closed."""

    def __init__(self, stream, release):
        self._stream, self._release = stream, release

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._release()


class PoliteTransport(httpx.BaseTransport):
    """A transport that takes a slot of the request's host before sending it through INNER, holds it
    until the response is closed, and pauses the host for the cluster when it answers 429."""

    def __init__(self, inner: httpx.BaseTransport, limits: HostLimits, backoff: float):
        self._inner, self._limits, self._backoff = inner, limits, backoff

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send REQUEST once its host has a free slot."""
        host = request.url.netloc.decode("ascii")
        token = self._limits.acquire(host)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._limits.release(host, token)

        try:
            response = self._inner.handle_request(request)
        except BaseException:
            release()
            raise
        if response.status_code == 429:
            self._limits.pause(host, retry_delay(response.headers, 0, self._backoff))
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Released(response.stream, release), extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()
