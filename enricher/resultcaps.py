"""Answers of a bounded size: a SPARQL answer past its row or triple cap is refused (ResultTooLarge),
never cut short, and the query stops at the row past the cap instead of producing the whole answer.
The caps are checked as the answer is written, so it streams (enricher.answer): a cap hit after the
first chunk went out ends the response without its end (see enricher.web.sparql)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO

import pyoxigraph as ox

from .errors import ResultTooLarge

# Runs the query again and hands its solutions to the function given; returns what that returns.
Recount = Callable[[Callable[[ox.QuerySolutions], bool]], bool]


def _too_large(count: str, cap: int, where: str | None) -> ResultTooLarge:
    return ResultTooLarge(
        f"the answer has more than {cap} {count}, the most a query may return here; narrow the query, or page "
        f"through the answer with ORDER BY, LIMIT and OFFSET", where=where,
    )


def capped(items: Iterable, cap: int, count: str, where: str | None) -> Iterator:
    """ITEMS, raising ResultTooLarge at the one past CAP (a serializer reading them stops there)."""
    for number, item in enumerate(items):
        if number == cap:
            raise _too_large(count, cap, where)
        yield item


# A SPARQL results format -> a byte string that each row adds at least once, what to add to its count
# for a bound on the rows from above, and whether that bound is exact (no value can hold the string).
ROW_MARKS = {
    ox.QueryResultsFormat.TSV: (b"\n", -1, True),  # a line a row after the header; values escape newlines
    ox.QueryResultsFormat.XML: (b"<result>", 0, True),  # values escape markup
    ox.QueryResultsFormat.CSV: (b"\n", -1, False),  # a quoted value may hold line breaks
    ox.QueryResultsFormat.JSON: (b"},{", 1, False),  # between two rows, and inside a string that holds it
}


class _PastCap(Exception):
    """The rows written so far may be more than the cap."""


class _Discard:
    """A binary file that keeps nothing."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class _RowCounter:
    """A binary file that passes SPARQL results on to OUTPUT, bounding their rows from above as they come
    (ROW_MARKS). Past CAP it stops the serializer, and with it the query's evaluation, unless the bound
    is inexact and RECOUNT, counting exactly, finds the answer within the cap."""

    def __init__(self, output: IO[bytes], results_format: ox.QueryResultsFormat, cap: int,
                 recount: Callable[[], bool] | None = None):
        self.mark, self.rows, self.exact = ROW_MARKS[results_format]
        self.output, self.cap, self.recount, self.tail, self.checked = output, cap, recount, b"", False

    def write(self, data: bytes) -> int:
        if not self.checked:
            seen = self.tail + bytes(data)  # a mark may straddle two writes
            self.rows += seen.count(self.mark)
            self.tail = seen[len(seen) - len(self.mark) + 1:]
            if self.rows > self.cap:
                if self.exact or self.recount is None or not self.recount():
                    raise _PastCap
                self.checked = True  # within the cap: the rest goes through uncounted
        return self.output.write(data)

    def flush(self) -> None:
        pass


def within_cap(solutions: ox.QuerySolutions, cap: int) -> bool:
    """Whether SOLUTIONS hold at most CAP rows, counted exactly in TSV (a line a row) as they come,
    stopping at the row past the cap; nothing is kept."""
    try:
        solutions.serialize(_RowCounter(_Discard(), ox.QueryResultsFormat.TSV, cap), format=ox.QueryResultsFormat.TSV)
    except _PastCap:
        return False
    return True


def write_rows(solutions: ox.QuerySolutions, output: IO[bytes], results_format: ox.QueryResultsFormat, cap: int,
               recount: Recount, where: str | None) -> None:
    """Write SOLUTIONS to OUTPUT in RESULTS_FORMAT as they come, or raise ResultTooLarge past CAP rows.
    pyoxigraph's serializers are native and count nothing, so the rows are bounded from what they write
    (ROW_MARKS). A bound past the cap in JSON or CSV, whose values may hold the mark, is checked by
    counting exactly in TSV: RECOUNT runs the query again for that, while the writing waits."""
    again = lambda: recount(lambda fresh: within_cap(fresh, cap))  # noqa: E731
    try:
        solutions.serialize(_RowCounter(output, results_format, cap, again), format=results_format)
    except _PastCap:
        raise _too_large("rows", cap, where) from None
