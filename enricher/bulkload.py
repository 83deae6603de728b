"""Filling an RDF index's pyoxigraph store with annotations in bulk (``Index.build``, ``enricher
reindex``): their N-Quads, written by a producer thread (enricher.chunkio), go into ONE bulk load,
which sorts and writes each of the store's indexes once and parses while the thread writes. A bulk
load per thousand annotations wrote a set of files each time, which the store then merged again: in
pyoxigraph alone, 4.2 million quads took 57 s of CPU in one load against 73 s in a hundred; a whole
``enricher reindex`` of 100,000 annotations 100 s against 105 s (the RDF writer and the store's own
compaction are the rest).

A quad that is not valid RDF (an IRI RFC 3987 forbids) fails that one load; the caller then loads
again a batch at a time (``batched``), each failing batch one annotation at a time, leaving the bad
ones out with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import islice
from typing import IO

import pyoxigraph as ox

from . import rdf
from .chunkio import ChunkReader, produced
from .errors import InputError

log = logging.getLogger(__name__)

BATCH = 1000  # annotations per bulk load when loading a batch at a time


def stream(store: ox.Store, annotations: Iterable[dict]) -> int:
    """Bulk-load ANNOTATIONS into STORE in one stream; return how many were loaded (one the RDF writer
    cannot read is left out with a warning).

    Raises SyntaxError for an annotation that is not valid RDF (part of the others may be loaded then).
    """
    loaded = 0

    def produce(output: IO[bytes]) -> None:
        nonlocal loaded
        for annotation in annotations:
            text = _checked_nquads(annotation)
            if text is not None:
                output.write(text.encode("utf-8"))
                loaded += 1

    store.bulk_load(ChunkReader(produced(produce, "enricher-build")), ox.RdfFormat.N_QUADS)
    return loaded


def batched(store: ox.Store, annotations: Iterable[dict]) -> int:
    """Bulk-load ANNOTATIONS into STORE a batch at a time, a batch that fails one annotation at a time,
    leaving out with a warning those that are not valid RDF; return how many were loaded."""
    annotations, loaded = iter(annotations), 0
    while batch := list(islice(annotations, BATCH)):
        loaded += _batch(store, batch)
    return loaded


def _batch(store: ox.Store, annotations: list[dict]) -> int:
    texts = [(a, _checked_nquads(a)) for a in annotations]
    texts = [(a, t) for a, t in texts if t is not None]
    try:
        store.bulk_load("".join(t for _, t in texts).encode("utf-8"), ox.RdfFormat.N_QUADS)
        return len(texts)
    except SyntaxError:  # an IRI RDF forbids, somewhere in the batch: load one by one
        loaded = 0
        for annotation, text in texts:
            try:
                store.load(text.encode("utf-8"), ox.RdfFormat.N_QUADS)
                loaded += 1
            except SyntaxError as exc:
                log.warning("annotation %s is not valid RDF, left out of the index: %s", annotation.get("id"), exc)
        return loaded


def _checked_nquads(annotation: dict) -> str | None:
    try:
        return rdf.annotation_nquads(annotation)
    except InputError as exc:
        log.warning("annotation %s left out of the index: %s", annotation.get("id"), exc)
        return None
