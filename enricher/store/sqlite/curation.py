"""Curation in the store: applying a re-run (the rules are enricher.reconcile's), curators' verdicts
with the review state they set on their target, and the reads that evaluation and export need."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence

from ...clock import now
from ...errors import InputError, NotFound
from ...review import HIDDEN, state_iri
from ..records import StoredAnnotation, plain
from ..writes import (
    apply_rerun,
    check_judgement,
    check_verdict_target,
    incoming_machine,
)
from .annotations import ANNOTATION_COLUMNS, annotation_record


class Curation:
    """Re-runs, verdicts and reviewed boxes (a mixin of SQLiteStore)."""

    def replace_machine_annotations(
        self, key: str, canvas_id: str, model_sha256: str, annotations: list[dict]
    ) -> dict[str, int]:
        """Reconcile a run's ANNOTATIONS (of this canvas and model) with what the canvas holds, in one
        transaction, by the rules of enricher.reconcile; idempotent. Returns counts created, updated,
        deleted and kept.

        Raises InputError for an annotation without id, EnricherError for one targeting another canvas.
        """
        incoming = incoming_machine(canvas_id, annotations)
        stamp = now()
        with self.transaction() as db:
            rows = {}
            for row in db.execute(
                """SELECT * FROM annotations INDEXED BY annotations_by_canvas
                WHERE key = ? AND canvas_id = ? AND role = 'annotation' AND deleted = 0""",
                (key, canvas_id),
            ):
                rows[row["id"]] = row
            for anno_id in incoming:
                if anno_id not in rows and (row := db.execute("SELECT * FROM annotations WHERE id = ?", (anno_id,)).fetchone()):
                    rows[anno_id] = row
            return apply_rerun(self, db, key, canvas_id, model_sha256, incoming, rows, stamp)

    def add_verdict(
        self, key: str, verdict: dict, creator: str, *, target: str | None, canvas_id: str | None,
        judgement: str, version: str | None,
    ) -> StoredAnnotation:
        """Store a curator's verdict (its ``id`` assigned by the caller) and, for a verdict on an
        annotation, set that annotation's review state: one transaction.

        TARGET is the judged machine annotation (None for a statement on canvas CANVAS_ID); JUDGEMENT
        the verdict (accepted, rejected, corrected, exhaustive); VERSION the judged version's date
        (review.version_of). Raises InputError (the target is not a machine annotation of container KEY,
        the id is taken) and StaleVersion (the target was changed or deleted since VERSION).
        """
        check_judgement(judgement, verdict)
        document = plain(verdict)
        stamp = now()
        document.setdefault("created", stamp)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM annotations WHERE id = ?", (document["id"],)).fetchone():
                raise InputError(f"{document['id']} already exists", where=document["id"], pointer="/id")
            row = None
            if target is not None:
                row = db.execute("SELECT * FROM annotations WHERE id = ?", (target,)).fetchone()
                check_verdict_target(row, key, target, version)
                canvas_id = row["canvas_id"]
            self._insert(db, key, canvas_id, document, "human", creator, None, stamp,
                         role="verdict", review_state=judgement, target_id=target)
            if row is not None:
                self._set_review(db, row, judgement, stamp)
        return self.get(document["id"])

    def retract_verdict(self, verdict_id: str, if_match: str | None) -> None:
        """Delete a verdict (a tombstone); its target takes the state of its latest remaining verdict,
        else pending. One transaction. Raises NotFound, Gone, PreconditionFailed (stale IF_MATCH)."""
        stamp = now()
        with self.transaction() as db:
            row = self._current(db, verdict_id, if_match)
            if row["role"] != "verdict":
                raise NotFound(f"{verdict_id} is not a verdict", where=verdict_id)
            self._tombstone(db, row, "human", stamp)
            if row["target_id"] is None:
                return
            target = db.execute("SELECT * FROM annotations WHERE id = ? AND deleted = 0", (row["target_id"],)).fetchone()
            if target is not None:
                latest = db.execute(
                    """SELECT review_state FROM annotations WHERE target_id = ? AND role = 'verdict' AND deleted = 0
                    ORDER BY seq DESC LIMIT 1""",
                    (row["target_id"],),
                ).fetchone()
                self._set_review(db, target, latest[0] if latest else "pending", stamp)

    def verdicts_on(self, anno_id: str) -> list[StoredAnnotation]:
        """Return the live verdicts on an annotation, oldest first."""
        rows = self.db.execute(
            f"""SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE target_id = ? AND role = 'verdict'
            AND deleted = 0 ORDER BY seq""",
            (anno_id,),
        )
        return [annotation_record(row) for row in rows]

    def exhaustive_statements(self, keys: Sequence[str] | None = None) -> list[StoredAnnotation]:
        """Return the live statements that a canvas was reviewed exhaustively (of these containers), in order."""
        where, args = _exhaustive_where(keys)
        rows = self.db.execute(
            f"SELECT {ANNOTATION_COLUMNS} FROM annotations INDEXED BY exhaustive_live WHERE {where} ORDER BY seq", args
        )
        return [annotation_record(row) for row in rows]

    def exhaustive_classes(self, keys: Sequence[str] | None = None) -> Iterator[tuple[str, str, list[str]]]:
        """Yield (key, canvas id, class names) of each live exhaustiveness statement (of these
        containers), in order; read from an index, not from the documents."""
        where, args = _exhaustive_where(keys)
        for key, canvas_id, classes in self._tuples().execute(
            f"SELECT key, canvas_id, classes FROM annotations INDEXED BY exhaustive_live WHERE {where} ORDER BY seq",
            args,
        ):
            yield key, canvas_id, classes.split("\n") if classes else []

    def confirmed_boxes(self, keys: Sequence[str] | None = None) -> Iterator[tuple]:
        """Yield (key, canvas id, annotation id, class name, x, y, w, h) of the live annotations with a
        region that curators vouch for, on the canvases stated exhaustive (of these containers), in
        store order: accepted machine annotations, and people's tags (made or edited) that are neither
        rejected nor replaced. Columns only; a person's document is read for its motivation."""
        where, args = _exhaustive_where(keys)
        hidden = ", ".join(f"'{state}'" for state in HIDDEN)
        yield from self._tuples().execute(
            f"""WITH reviewed AS (SELECT DISTINCT key, canvas_id FROM annotations INDEXED BY exhaustive_live
                WHERE {where})
            SELECT a.key, a.canvas_id, a.id, a.concept, a.box_x, a.box_y, a.box_w, a.box_h
            FROM reviewed CROSS JOIN annotations AS a INDEXED BY live_by_canvas
            ON a.key = reviewed.key AND a.canvas_id = reviewed.canvas_id
            WHERE a.deleted = 0 AND a.role = 'annotation' AND a.box_x IS NOT NULL
            AND (a.origin = 'machine' AND a.review_state = 'accepted'
                 OR a.origin != 'machine' AND coalesce(a.review_state, '') NOT IN ({hidden})
                    AND instr(json_extract(a.document, '$.motivation'), 'tagging') > 0)
            ORDER BY a.seq""",
            args,
        )

    def machine_detections(self, model_sha256: str) -> Iterator[tuple]:
        """Yield (canvas id, annotation id, class name or "", confidence or 0.0, x, y, w, h) of every live
        machine annotation of a model with a region, whatever its review state. Columns only."""
        yield from self._tuples().execute(
            """SELECT canvas_id, id, coalesce(concept, ''), coalesce(score, 0.0), box_x, box_y, box_w, box_h
            FROM annotations INDEXED BY machine_boxes WHERE model_sha256 = ? AND deleted = 0 AND role = 'annotation'
            AND origin = 'machine' AND box_x IS NOT NULL""",
            (model_sha256,),
        )

    def _set_review(self, db: sqlite3.Connection, row: sqlite3.Row, state: str, stamp: str) -> None:
        """Give annotation ROW the review state STATE (column and ``reviewState``), logged as an Update;
        its ``modified`` stays: a verdict is not an edit."""
        document = json.loads(row["document"])
        document["reviewState"] = state_iri(state)
        self._rewrite(db, row, document, origin=row["origin"], creator=None, stamp=stamp, kind="Update",
                      review_state=state)


def _exhaustive_where(keys: Sequence[str] | None, prefix: str = "") -> tuple[str, tuple]:
    """The WHERE clause (and its arguments) of the live exhaustiveness statements of containers KEYS
    (None: all), in the terms of the partial index exhaustive_live."""
    where = f"{prefix}deleted = 0 AND {prefix}review_state = 'exhaustive' AND {prefix}role = 'verdict'"
    if keys is None:
        return where, ()
    keys = tuple(keys)
    return f"{where} AND {prefix}key IN ({','.join('?' * len(keys))})", keys


