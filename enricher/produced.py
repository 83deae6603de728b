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
QUEUE = 8  # chunks waiting at most
_END = object()


class Abandoned(Exception):
    """The reader went away, or the deadline passed: stop writing."""


class Pipe:
    """The binary file a producer writes into: full chunks go to the reader through a bounded queue;
    ``put`` hands it any other item (which the reader gets as it is)."""

    def __init__(self, items: queue.Queue, stop: threading.Event, deadline: float | None):
        self.items, self.stop, self.deadline, self.buffer = items, stop, deadline, bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self.drain()
        return len(data)

    def flush(self) -> None:
        """Nothing: a chunk goes when it is full or the producer ends (a serializer's flush would cut it short)."""

    def drain(self) -> None:
        """Hand what the buffer holds to the reader now."""
        if self.buffer:
            self.put(bytes(self.buffer))
            self.buffer.clear()

    def put(self, item: Any) -> None:
        """Hand ITEM to the reader, waiting for room. Raises Abandoned."""
        while True:
            if self.stop.is_set() or (self.deadline is not None and time.monotonic() > self.deadline):
                raise Abandoned
            try:
                self.items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


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
    puts; raise the error it raises. Past DEADLINE (time.monotonic()) the producer stops at its next
    write and the reader, once the queue is empty, gets LATE(). When the reader stops, the producer is
    stopped, and with JOIN waited for (without: a producer busy in native code ends on its own)."""
    items: queue.Queue = queue.Queue(maxsize=QUEUE)
    stop = threading.Event()
    pipe = Pipe(items, stop, deadline)

    def run() -> None:
        try:
            produce(pipe)
            pipe.drain()
            pipe.put(_END)
        except Abandoned:
            pass
        except Exception as exc:  # handed to the reader, raised there
            try:
                pipe.put(without_locals(exc))
            except Abandoned:
                pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=None if deadline is None else max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise (late() if late else TimeoutError("the producer ran past its deadline")) from None
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if join:
            thread.join()
