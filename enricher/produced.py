"""What a producer thread writes, read chunk by chunk in another thread.

Oxigraph serializes in native code that writes into a file; the dump and the SPARQL answers give it a
pipe instead, whose chunks reach the response through a short queue as they are written: memory stays
about QUEUE * CHUNK however large the output, and a reader that stops (or a deadline that passes)
stops the producer at its next write.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

CHUNK = 256 * 1024  # bytes handed from the producer thread at a time
QUEUE = 8  # hand-overs (a chunk each, with what was announced before it) waiting at most
_END = object()


class Abandoned(Exception):
    """The reader went away, or the deadline passed: stop writing."""


class Pipe:
    """The binary file a producer writes into: full chunks go to the reader through a bounded queue.
    ``announce`` hands it any other item, with the next chunk: each hand-over wakes the reader, and
    an answer of one chunk takes one."""

    def __init__(self, batches: queue.Queue, stop: threading.Event, deadline: float | None):
        self.batches, self.stop, self.deadline = batches, stop, deadline
        self.buffer, self.pending = bytearray(), []

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self.drain()
        return len(data)

    def flush(self) -> None:
        """Nothing: a chunk goes when it is full or the producer ends (a serializer's flush would cut it short)."""

    def announce(self, item: Any) -> None:
        """Hand ITEM to the reader ahead of the next chunk."""
        self.pending.append(item)

    def drain(self, *last: Any) -> None:
        """Hand what is pending and what the buffer holds to the reader now, then LAST. Raises Abandoned."""
        batch = [*self.pending, *([bytes(self.buffer)] if self.buffer else []), *last]
        self.pending.clear()
        self.buffer.clear()
        while batch:
            if self.stop.is_set() or (self.deadline is not None and time.monotonic() > self.deadline):
                raise Abandoned
            try:
                self.batches.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    def fail(self, error: BaseException) -> None:
        """Drop what was not handed over yet and hand ERROR to the reader. Raises Abandoned."""
        self.pending.clear()
        self.buffer.clear()
        self.drain(error)


def without_locals(error: BaseException) -> BaseException:
    """ERROR with the locals of the frames it passed through dropped: what they hold (a query's answer,
    pyoxigraph's QuerySolutions) must be dropped in the thread that made it, not where the error is
    raised again."""
    seen: set[int] = set()
    chained: BaseException | None = error
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        traceback.clear_frames(chained.__traceback__)
        chained = chained.__cause__ or chained.__context__
    return error


def produced(
    produce: Callable[[Pipe], None], *, name: str, deadline: float | None = None,
    late: Callable[[], BaseException] | None = None, join: bool = True,
) -> Iterator:
    """Run PRODUCE(pipe) in a thread named NAME and yield what it writes, chunk by chunk, and what it
    announces; raise the error it raises. Past DEADLINE (time.monotonic()) the producer stops at its next
    write and the reader, once the queue is empty, gets LATE(). When the reader stops, the producer is
    stopped, and with JOIN waited for (without: a producer busy in native code ends on its own)."""
    batches: queue.Queue = queue.Queue(maxsize=QUEUE)
    stop = threading.Event()
    pipe = Pipe(batches, stop, deadline)

    def run() -> None:
        try:
            produce(pipe)
            pipe.drain(_END)
        except Abandoned:
            pass
        except Exception as exc:  # handed to the reader, raised there
            try:
                pipe.fail(without_locals(exc))
            except Abandoned:
                pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                batch = batches.get(timeout=None if deadline is None else max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise (late() if late else TimeoutError("the producer ran past its deadline")) from None
            for item in batch:
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
    finally:
        stop.set()
        if join:
            thread.join()
