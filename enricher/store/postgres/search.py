"""The search index (enricher.search says what the terms are): one row per index term of each public
annotation, written in the annotation's transaction, and a count per container, term and motivation
kept by a trigger (migrations/0005), so a search's total and an autocomplete term's count are index
lookups. Also the bulk insert that seeds a store with machine annotations. The rules are the SQLite
backend's (enricher/store/sqlite/search.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ...clock import now
from ...errors import InputError
from ...review import class_of
from ...search import IRI
from ..columns import PENDING, region_columns
from ..records import StoredAnnotation, make_etag, plain, target_canvas
from ..sqlite.annotations import annotation_record
from ..tables import annotations as A
from ..tables import changes, search_counts, search_index
from ..writes import CONCEPT_TERMS, check_page, search_rows
from .annotations import RECORD, REGION

COUNTS = search_counts.c
INDEX = search_index.c
INDEX_ROW = ("key", "term", "motivation", "seq")
BYTES = "C"  # the collation that orders terms by code point, as SQLite does, whatever the database's locale


def _where(columns, key: str, terms: Sequence[str], motivations: Sequence[str] | None) -> tuple:
    where = (columns.key == key, columns.term.in_(sorted(set(terms))))
    return (*where, columns.motivation.in_(tuple(motivations))) if motivations else where


class Search:
    """The search index (a mixin of PostgresStore)."""

    def _index(self, db: Connection, seq: int, key: str, document: Mapping, *, fresh: bool = False,
               **state) -> None:
        """Bring the index rows of annotation SEQ in line with what it is now (FRESH: it has none yet)."""
        if not fresh:
            db.execute(delete(search_index).where(INDEX.seq == seq))
        rows = [dict(zip(INDEX_ROW, row)) for row in search_rows(seq, key, document, **state)]
        if rows:
            db.execute(insert(search_index), rows)

    def search(self, key: str, terms: Sequence[str], motivations: Sequence[str] | None = None, offset: int = 0,
               limit: int = 100) -> list[StoredAnnotation]:
        """Return the public annotations of container KEY indexed under any of TERMS (with one of
        MOTIVATIONS), by term and then store order, LIMIT from OFFSET."""
        check_page(offset, limit, "annotation")
        if not terms or not limit:
            return []
        hits = (select(INDEX.seq, INDEX.term.collate(BYTES).label("term")).where(*_where(INDEX, key, terms, motivations))
                .order_by(INDEX.term.collate(BYTES), INDEX.seq).limit(limit).offset(offset).subquery())
        # one statement: a consistent snapshot of the index and the annotations it points to
        rows = self._rows(select(*RECORD).join(hits, hits.c.seq == A.c.seq).order_by(hits.c.term, hits.c.seq))
        return [annotation_record(row) for row in rows]

    def term_counts(self, key: str, terms: Sequence[str], motivations: Sequence[str] | None = None) -> dict[str, int]:
        """Return how many public annotations of container KEY each of TERMS indexes (with one of MOTIVATIONS)."""
        if not terms:
            return {}
        rows = self._rows(select(COUNTS.term, func.sum(COUNTS.live)).where(*_where(COUNTS, key, terms, motivations))
                          .group_by(COUNTS.term))
        return {term: int(n) for term, n in rows if n}

    def terms_starting(self, key: str, prefix: str, limit: int = 20) -> list[tuple[str, int]]:
        """Return (term, count) of the index terms of container KEY that start with PREFIX, in order."""
        live = func.sum(COUNTS.live)
        rows = self._rows(
            select(COUNTS.term, live).where(COUNTS.key == key, COUNTS.term.collate(BYTES) >= prefix,
                   COUNTS.term.collate(BYTES) < prefix + "\U0010ffff")
            .group_by(COUNTS.term).having(live > 0).order_by(COUNTS.term.collate(BYTES)).limit(limit)
        )
        return [(term, int(n)) for term, n in rows]

    def written_concepts(self) -> list[str]:
        """Return the concept IRIs (index terms ``iri:``) that public annotations of any container name, in order."""
        rows = self._rows(select(func.substr(COUNTS.term, len(IRI) + 1)).where(text(CONCEPT_TERMS))
                          .group_by(COUNTS.term).having(func.sum(COUNTS.live) > 0).order_by(COUNTS.term.collate(BYTES)))
        return [iri for (iri,) in rows]

    def seed_machine_annotations(self, key: str, model_sha256: str, annotations: Iterable[dict]) -> int:
        """Store new machine annotations in bulk, pending and without reconciling (for seeding a store:
        benchmarks, imports into an empty container), each logged as a Create; one transaction.
        Returns how many were stored.

        Raises InputError for an annotation without id or target, or whose id is taken.
        """
        stamp = now()
        rows, documents = [], []
        for annotation in map(plain, annotations):
            anno_id = annotation.get("id")
            if not isinstance(anno_id, str) or not anno_id:
                raise InputError("a machine annotation has no id", pointer="/id")
            document = {**annotation, "reviewState": PENDING}
            canvas_id, concept = target_canvas(document), class_of(document)
            rows.append({"id": anno_id, "key": key, "canvas_id": canvas_id, "model_sha256": model_sha256,
                         "origin": "machine", "document": json.dumps(document, ensure_ascii=False), "version": 1,
                         "etag": make_etag(document, 1), "created": stamp, "modified": stamp, "role": "annotation",
                         "review_state": "pending", "concept": concept, **dict(zip(REGION, region_columns(document)))})
            documents.append(document)
        if not rows:
            return 0
        with self.transaction() as db:
            try:
                seqs = db.execute(insert(A).returning(A.c.seq, sort_by_parameter_order=True), rows).scalars().all()
            except IntegrityError as exc:
                raise InputError(f"an annotation id is taken: {exc.orig}") from None
            self._hold_log(db)
            db.execute(insert(changes), [{"time": stamp, "kind": "Create", "anno_id": row["id"], "key": key,
                                          "canvas_id": row["canvas_id"]} for row in rows])
            entries = [dict(zip(INDEX_ROW, entry)) for seq, row, document in zip(seqs, rows, documents)
                       for entry in search_rows(seq, key, document, origin="machine", role="annotation",
                                                review_state="pending", concept=row["concept"], deleted=False)]
            if entries:
                db.execute(insert(search_index), entries)
        return len(rows)
