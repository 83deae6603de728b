"""The search index in the store: one row per index term of each public annotation (enricher.search says
what the terms are), written in the same transaction as the annotation, and a count per container,
term and motivation kept by triggers, so a search's total and an autocomplete term's count are index
lookups whatever the number of annotations. Also the bulk insert that seeds a store with machine
annotations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from ...clock import now
from ...errors import InputError
from ...review import class_of
from ...search import IRI
from ..columns import PENDING, region_columns
from ..records import StoredAnnotation, make_etag, plain, target_canvas
from ..writes import CONCEPT_TERMS, check_page, search_rows
from .annotations import ANNOTATION_COLUMNS, annotation_record


def _where(key: str, terms: Sequence[str], motivations: Sequence[str] | None) -> tuple[str, tuple]:
    where = f"key = ? AND term IN ({','.join('?' * len(terms))})"
    args: tuple = (key, *terms)
    if motivations:
        where += f" AND motivation IN ({','.join('?' * len(motivations))})"
        args += tuple(motivations)
    return where, args


class Search:
    """The search index (a mixin of SQLiteStore)."""

    def _index(self, db: sqlite3.Connection, seq: int, key: str, document: Mapping, *, fresh: bool = False,
               **state) -> None:
        """Bring the index rows of annotation SEQ in line with what it is now (FRESH: it has none yet)."""
        if not fresh:
            db.execute("DELETE FROM search_index WHERE seq = ?", (seq,))
        db.executemany("INSERT INTO search_index (key, term, motivation, seq) VALUES (?, ?, ?, ?)",
                       search_rows(seq, key, document, **state))

    def search(self, key: str, terms: Sequence[str], motivations: Sequence[str] | None = None, offset: int = 0,
               limit: int = 100) -> list[StoredAnnotation]:
        """Return the public annotations of container KEY indexed under any of TERMS (with one of
        MOTIVATIONS), by term and then store order, LIMIT from OFFSET."""
        check_page(offset, limit, "annotation")
        if not terms or not limit:
            return []
        where, args = _where(key, sorted(set(terms)), motivations)
        with self._snapshot() as db:
            seqs = [row[0] for row in db.execute(
                f"SELECT seq FROM search_index WHERE {where} ORDER BY term, seq LIMIT ? OFFSET ?", (*args, limit, offset))]
            if not seqs:
                return []
            rows = db.execute(f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE seq IN ({','.join('?' * len(seqs))})",
                              seqs).fetchall()
        by_seq = {row["seq"]: annotation_record(row) for row in rows}
        return [by_seq[seq] for seq in seqs if seq in by_seq]

    def term_counts(self, key: str, terms: Sequence[str], motivations: Sequence[str] | None = None) -> dict[str, int]:
        """Return how many public annotations of container KEY each of TERMS indexes (with one of MOTIVATIONS)."""
        if not terms:
            return {}
        where, args = _where(key, sorted(set(terms)), motivations)
        rows = self.db.execute(f"SELECT term, sum(live) FROM search_counts WHERE {where} GROUP BY term", args)
        return {term: n for term, n in rows if n}

    def terms_starting(self, key: str, prefix: str, limit: int = 20) -> list[tuple[str, int]]:
        """Return (term, count) of the index terms of container KEY that start with PREFIX, in order."""
        rows = self.db.execute(
            """SELECT term, sum(live) FROM search_counts WHERE key = ? AND term >= ? AND term < ?
            GROUP BY term HAVING sum(live) > 0 ORDER BY term LIMIT ?""",
            (key, prefix, prefix + "\U0010ffff", limit),
        )
        return [(term, n) for term, n in rows]

    def written_concepts(self) -> list[str]:
        """Return the concept IRIs (index terms ``iri:``) that public annotations of any container name, in order."""
        rows = self.db.execute(f"""SELECT substr(term, ?) FROM search_counts WHERE {CONCEPT_TERMS}
            GROUP BY term HAVING sum(live) > 0 ORDER BY term""", (len(IRI) + 1,))
        return [iri for (iri,) in rows]

    def seed_machine_annotations(self, key: str, model_sha256: str, annotations: Iterable[dict]) -> int:
        """Store new machine annotations in bulk, pending and without reconciling (for seeding a store:
        benchmarks, imports into an empty container), each logged as a Create; one transaction.
        Returns how many were stored.

        Raises InputError for an annotation without id or target, or whose id is taken.
        """
        stamp = now()
        rows, changes, terms = [], [], []
        for annotation in map(plain, annotations):
            anno_id = annotation.get("id")
            if not isinstance(anno_id, str) or not anno_id:
                raise InputError("a machine annotation has no id", pointer="/id")
            document = {**annotation, "reviewState": PENDING}
            canvas_id, concept = target_canvas(document), class_of(document)
            rows.append((anno_id, key, canvas_id, model_sha256, json.dumps(document, ensure_ascii=False),
                         make_etag(document, 1), stamp, stamp, concept, *region_columns(document)))
            changes.append((stamp, "Create", anno_id, key, canvas_id))
            terms.append(search_rows(0, key, document, origin="machine", role="annotation", review_state="pending",
                                     concept=concept, deleted=False))
        with self.transaction() as db:
            # one INSERT gives its rows consecutive numbers after the last one AUTOINCREMENT handed out
            last = db.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'annotations'").fetchone()[0]
            try:
                db.executemany(
                    """INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, document, version, etag,
                    created, modified, role, review_state, concept, box_x, box_y, box_w, box_h, score)
                    VALUES (?, ?, ?, ?, 'machine', ?, 1, ?, ?, ?, 'annotation', 'pending', ?, ?, ?, ?, ?, ?)""",
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                raise InputError(f"an annotation id is taken: {exc}") from None
            db.executemany("INSERT INTO changes (time, kind, anno_id, key, canvas_id) VALUES (?, ?, ?, ?, ?)", changes)
            db.executemany("INSERT INTO search_index (key, term, motivation, seq) VALUES (?, ?, ?, ?)",
                           [(k, term, motivation, last + n) for n, entries in enumerate(terms, 1)
                            for k, term, motivation, _ in entries])
        return len(rows)
