"""Answers of a bounded size: a SPARQL answer past its row or triple cap is refused (ResultTooLarge),
never cut short, and the query stops at the row past the cap instead of building the whole answer."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Iterator

import pyoxigraph as ox

from .errors import ResultTooLarge


def without_locals(error: BaseException) -> BaseException:
    """ERROR with the locals of the frames it passed through dropped, here: a query's answer (pyoxigraph's
    QuerySolutions) must be dropped in the thread that made it, not where the error is raised again."""
    seen: set[int] = set()
    chained: BaseException | None = error
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        traceback.clear_frames(chained.__traceback__)
        chained = chained.__cause__ or chained.__context__
    return error


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


class _RowCounter:
    """A binary file that keeps the SPARQL results written to it, bounding their rows from above as they
    come (ROW_MARKS); past CAP it stops the serializer, and with it the query's evaluation."""

    def __init__(self, results_format: ox.QueryResultsFormat, cap: int):
        self.mark, self.rows, self.exact = ROW_MARKS[results_format]
        self.cap, self.tail, self.parts = cap, b"", []

    def write(self, data: bytes) -> int:
        seen = self.tail + bytes(data)  # a mark may straddle two writes
        self.rows += seen.count(self.mark)
        self.tail = seen[len(seen) - len(self.mark) + 1:]
        if self.rows > self.cap:
            raise _PastCap
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def written(self) -> bytes:
        return b"".join(self.parts)


def capped_rows(solutions: ox.QuerySolutions, again: Callable[[], ox.QuerySolutions],
                 results_format: ox.QueryResultsFormat, cap: int, where: str | None) -> bytes:
    """SOLUTIONS serialized in RESULTS_FORMAT, or ResultTooLarge past CAP rows. pyoxigraph's serializers
    are native and count nothing, so the rows are bounded from what they write (ROW_MARKS): one pass when
    the bound stays within the cap or is exact. A bound past it in JSON or CSV, whose values may hold the
    mark, is checked by counting exactly in TSV (AGAIN runs the query again), which keeps every term and
    is read back for the format asked for."""
    counter = _RowCounter(results_format, cap)
    try:
        solutions.serialize(counter, format=results_format)
        return counter.written()
    except _PastCap:
        if counter.exact:
            raise _too_large("rows", cap, where) from None
    tsv = _RowCounter(ox.QueryResultsFormat.TSV, cap)
    try:
        again().serialize(tsv, format=ox.QueryResultsFormat.TSV)
    except _PastCap:
        raise _too_large("rows", cap, where) from None
    return ox.parse_query_results(tsv.written(), format=ox.QueryResultsFormat.TSV).serialize(format=results_format)
