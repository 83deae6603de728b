"""One change-log follower for every consumer of the store's change log: the RDF index, the pusher to
an external triplestore and Change Discovery.

A consumer has a name, a position (every change up to it is applied) and ``apply``, which applies a
batch of changes and moves its position past them. Consumers whose position lives in the store
(``StoredPosition``: the pusher per target, Change Discovery) survive restarts and are shared by every
process; the RDF index keeps its position with its data. ``follow`` feeds a consumer everything after
its position; a ``FollowerThread`` does so in the background, in one process of all those on the store
when given a leadership role, backing off after failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from .background import Daemon
from .errors import EnricherError
from .store import Change, Store

log = logging.getLogger(__name__)

BATCH = 1000  # change-log entries per apply
LEADER_RETRY_SECONDS = 5.0  # how often a follower without the leadership tries to take it over


class Consumer(Protocol):
    """What a follower feeds."""

    name: str

    def position(self, store: Store) -> int:
        """The seq of the last change applied (0: none)."""

    def apply(self, store: Store, changes: Sequence[Change]) -> None:
        """Apply CHANGES (oldest first, after the position) and move the position to the last one's seq.
        Applying a change twice must do no harm: a crash may repeat a batch."""


class StoredPosition:
    """A consumer position kept in the store under the consumer's name (a mixin)."""

    name: str

    def position(self, store: Store) -> int:
        """The stored position."""
        return store.cursor(self.name).seq


def follow(store: Store, consumer: Consumer, batch: int = BATCH, *, rounds: int | None = None) -> int:
    """Apply every change after CONSUMER's position (at most ROUNDS batches); return how many."""
    applied = 0
    while rounds is None or rounds > 0:
        changes = store.changes(consumer.position(store), batch)
        if not changes:
            break
        consumer.apply(store, changes)
        applied += len(changes)
        rounds = None if rounds is None else rounds - 1
    return applied


class FollowerThread:
    """Follows the change log for CONSUMER in a daemon thread every INTERVAL seconds, or at once after
    ``wake()``. With LEADER, only the process holding the store's lock for that role follows; after a
    failed round it waits twice as long each time, up to MAX_BACKOFF."""

    def __init__(self, store: Store, consumer: Consumer, *, interval: float, leader: str | None = None,
                 max_backoff: float | None = None, batch: int = BATCH):
        self.store, self.consumer, self.interval, self.batch = store, consumer, interval, batch
        self.max_backoff = interval if max_backoff is None else max_backoff
        self._leader = store.leader(leader) if leader else None
        self.failures = 0  # failed rounds in a row
        self._daemon = Daemon(f"enricher-{consumer.name.split()[0]}", self._step, self.release)

    @property
    def leads(self) -> bool:
        """Whether this thread is the one that follows (always, without a leadership role)."""
        return self._leader is None or self._leader.held

    def acquire(self) -> bool:
        """Take the leadership without waiting (or confirm it is still held); return whether this process
        follows."""
        return self._leader is None or self._leader.acquire()

    def release(self) -> None:
        """Let another process follow."""
        if self._leader is not None:
            self._leader.release()

    def start(self) -> None:
        """Start following."""
        self._daemon.start()

    def wake(self) -> None:
        """Follow now rather than at the next interval."""
        self._daemon.wake()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the round in flight; return whether the thread has ended."""
        ended = self._daemon.stop(timeout)
        if ended:
            self.release()
        self.failures = 0
        return ended

    def wait_for(self, seq: int, timeout: float) -> bool:
        """Wake the follower and wait up to TIMEOUT seconds until the consumer has applied SEQ (another
        process may be the one following); return whether it has."""
        self.wake()
        deadline = time.monotonic() + timeout
        while self.consumer.position(self.store) < seq:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _step(self) -> float:
        """One round: follow if this process leads; return the seconds to wait."""
        if not self.acquire():
            return LEADER_RETRY_SECONDS
        try:
            follow(self.store, self.consumer, self.batch)
        except Exception as exc:  # an outage or a busy database: try again later rather than end the thread
            self.failures += 1
            wait = min(self.max_backoff, self.interval * 2**self.failures)
            log.warning("%s failed (%d in a row), next try in %.1f s: %s", self.consumer.name, self.failures, wait,
                        exc, exc_info=not isinstance(exc, EnricherError))
            return wait
        self.failures = 0
        return self.interval

