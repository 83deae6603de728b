"""Bytes handed along in chunks: what a producer thread writes, read as an iterator (``produced``),
and an iterator of chunks read as a binary file (``ChunkReader``), for pyoxigraph's parsers and loaders.

``produced`` runs the producer in a thread that hands chunks through a short queue: memory stays flat
however much is written, a reader that stops reading stops the producer, and the producer's Python
runs while the reader's native code (a parser, a bulk load, a socket) works on the chunk before.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO

CHUNK = 256 * 1024  # bytes handed from the producer thread at a time
QUEUE = 8  # chunks waiting at most: the memory a stream holds is about QUEUE * CHUNK


class _Abandoned(Exception):
    """The reader went away: stop writing."""


class _Pipe:
    """A file the producer writes into; full chunks go to the reader through a bounded queue."""

    def __init__(self, chunks: queue.Queue, stop: threading.Event):
        self.chunks, self.stop, self.buffer = chunks, stop, bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self.put(bytes(self.buffer))
            self.buffer.clear()

    def put(self, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Abandoned
            try:
                self.chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


_END = object()


def produced(produce: Callable[[IO[bytes]], None], name: str = "enricher-producer") -> Iterator[bytes]:
    """Run PRODUCE in a thread (named NAME) and yield what it writes, chunk by chunk; stop it when the
    reader stops. An exception PRODUCE raises is raised here."""
    chunks: queue.Queue = queue.Queue(maxsize=QUEUE)
    stop = threading.Event()
    pipe = _Pipe(chunks, stop)

    def run() -> None:
        try:
            produce(pipe)
            pipe.flush()
            pipe.put(_END)
        except _Abandoned:
            pass
        except Exception as exc:  # handed to the reader, raised there
            try:
                pipe.put(exc)
            except _Abandoned:
                pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class ChunkReader(io.RawIOBase):
    """An iterator of byte chunks as a binary file; ``next_chunk`` is where a subclass checks a deadline."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.left, self.at = chunks, memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def next_chunk(self) -> bytes:
        """The next chunk, b"" at the end."""
        return next(self.chunks, b"")

    def readinto(self, buffer) -> int:
        if self.at == len(self.left):
            self.left, self.at = memoryview(self.next_chunk()), 0
        size = min(len(buffer), len(self.left) - self.at)
        buffer[:size] = self.left[self.at:self.at + size]
        self.at += size
        return size
