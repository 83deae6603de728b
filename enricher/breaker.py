"""A circuit breaker per host, so a host that is down costs its first few requests, not every one.

After ``threshold`` connection failures in a row (refused, reset, timed out, not resolved) a host is
taken as down: requests to it fail at once with HostDownError. After ``cooldown`` seconds one request
may try it again (the probe); its success closes the breaker, its failure keeps the host down for another
cool-down. Any answer from the host, even an HTTP error, counts as a success. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .errors import HostDownError


@dataclass
class _Host:
    failures: int = 0  # in a row
    last: str = ""  # what the last failure was
    retry_at: float = 0.0  # monotonic time from which one probe may go


class CircuitBreaker:
    """Connection failures per host (``host:port``); THRESHOLD 0 turns the breaker off."""

    def __init__(self, threshold: int, cooldown: float):
        self.threshold = threshold
        self.cooldown = cooldown
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    def _down(self, state: _Host | None) -> bool:
        return self.threshold > 0 and state is not None and state.failures >= self.threshold

    def allow(self, host: str, where: str) -> None:
        """Let a request to HOST go, or raise HostDownError naming it and WHERE while it is down.

        Once the cool-down has passed, the one caller let through is the probe; the next probe may go
        one cool-down later, so a probe that never reports back cannot keep the host closed for good.
        """
        with self._lock:
            state = self._hosts.get(host)
            if not self._down(state):
                return
            now = time.monotonic()
            if now >= state.retry_at:
                state.retry_at = now + self.cooldown
                return
            wait = state.retry_at - now
        raise HostDownError(
            f"host {host} is down: {state.failures} connections failed in a row (last: {state.last}); "
            f"next try in {wait:.0f} s",
            where=where,
        )

    def is_down(self, host: str) -> bool:
        """Whether requests to HOST fail at once now."""
        with self._lock:
            state = self._hosts.get(host)
            return self._down(state) and time.monotonic() < state.retry_at

    def failed(self, host: str, reason: str) -> None:
        """Count a connection failure of HOST; the threshold-th in a row takes it down for a cool-down."""
        with self._lock:
            state = self._hosts.setdefault(host, _Host())
            state.failures += 1
            state.last = reason
            if self._down(state):
                state.retry_at = time.monotonic() + self.cooldown

    def succeeded(self, host: str) -> None:
        """HOST answered: forget its failures."""
        with self._lock:
            self._hosts.pop(host, None)
