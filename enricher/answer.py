"""A SPARQL answer, streamed: serialized in a producer thread (enricher.produced) as the query's
evaluation yields it, and read chunk by chunk, so neither the answer nor its serialization is ever
whole in memory.

The reader waits for the first chunk (CHUNK bytes) or the end before the answer is handed on: an error
before that (a malformed query, a format that cannot be offered, a cap, the timeout, the triplestore)
is raised in the caller's thread and answered as a problem; an answer that fits in a chunk is whole,
sent with its length. Past the first chunk an error ends the stream: the reader raises it, and the
web server closes the connection without the end of the body (see enricher.web.sparql).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import pyoxigraph as ox

from . import rdf
from .errors import QueryTimeout
from .produced import CHUNK, Pipe, produced
from .resultcaps import Recount, capped, write_rows


@dataclass(frozen=True)
class Head:
    """What an answer is, known before its first byte: ``kind`` is select, ask or graph (CONSTRUCT,
    DESCRIBE)."""

    kind: str
    content_type: str


class Answer:
    """A query's answer: its kind, Content-Type and bytes. ``whole``: every byte is in hand (the body);
    otherwise ``chunks`` yields them as they are produced, and ``close`` stops the production."""

    def __init__(self, head: Head, held: list[bytes], rest: Iterator[bytes] | None):
        self.kind, self.content_type = head.kind, head.content_type
        self._held, self._rest = held, rest

    @property
    def whole(self) -> bool:
        return self._rest is None

    @property
    def chunks(self) -> Iterator[bytes]:
        yield from self._held
        if self._rest is not None:
            yield from self._rest

    @cached_property
    def body(self) -> bytes:
        """The whole answer (read to its end: memory grows with it; the web endpoint streams ``chunks``)."""
        return b"".join(self.chunks)

    def close(self) -> None:
        """Stop producing the rest of the answer (when the reader stops early)."""
        if self._rest is not None:
            self._rest.close()


def stream(produce: Callable[[Pipe], None], timeout: float | None, where: str | None) -> Answer:
    """Run PRODUCE(pipe) in a thread, which announces the answer's Head then writes its bytes; return the
    Answer once its first chunk (or its end) came, raising any error before that. The whole answer must
    be produced within TIMEOUT seconds (None: no limit): past it the producer stops at its next write,
    and the reader raises QueryTimeout.

    Raises what PRODUCE raises, and QueryTimeout.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    items = produced(produce, name="sparql", deadline=deadline, join=False,
                     late=lambda: QueryTimeout(f"the query ran longer than {timeout} s", where=where))
    head = next(items)
    held, size = [], 0
    for chunk in items:
        held.append(chunk)
        size += len(chunk)
        if size >= CHUNK:
            return Answer(head, held, items)
    return Answer(head, [b"".join(held)], None)


def write_answer(result, output: Pipe, *, accept: str | None, format_param: str | None, caps: tuple[int, int],
                 where: str | None, recount: Recount) -> None:
    """Announce RESULT's Head to OUTPUT and write RESULT serialized as ACCEPT or FORMAT_PARAM ask: a
    QueryBoolean or QuerySolutions in a SPARQL results format, triples (QueryTriples, or parsed) in an
    RDF format of rdf.FORMATS. CAPS are the most rows (SELECT) and triples, 0 for any; RECOUNT runs
    the query again (see resultcaps.write_rows).

    Raises NotAcceptable, ResultTooLarge, and what the evaluation or the parsing raises as it goes.
    """
    max_rows, max_triples = caps
    if isinstance(result, (ox.QueryBoolean, ox.QuerySolutions)):
        chosen = rdf.choose_results(accept, format_param, where=where)
        select = isinstance(result, ox.QuerySolutions)
        output.announce(Head("select" if select else "ask", chosen.content_type))
        if select and max_rows:
            write_rows(result, output, chosen.results_format, max_rows, recount, where)
        else:
            result.serialize(output, format=chosen.results_format)
        return
    fmt = rdf.choose(accept, format_param, where=where)
    output.announce(Head("graph", fmt.content_type))
    fmt.serialize(capped(result, max_triples, "triples", where) if max_triples else result, output)
