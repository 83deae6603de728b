"""Curation in the store: applying a re-run (one canvas at a time, under an advisory lock, so two
deliveries of one canvas cannot interleave), verdicts with the review state they set on their target,
and the reads that evaluation and export need. The rules are shared with SQLite (enricher/store/writes.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

from sqlalchemy import Text, and_, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from ...clock import now
from ...errors import NotFound
from ...review import HIDDEN, state_iri
from ..records import StoredAnnotation, plain
from ..sqlite.annotations import annotation_record
from ..tables import annotations as A
from ..writes import (
    apply_rerun,
    check_judgement,
    check_verdict_target,
    incoming_machine,
)
from .annotations import RECORD

LIVE = (A.c.deleted == 0, A.c.role == "annotation")


class Curation:
    """Re-runs, verdicts and reviewed boxes (a mixin of PostgresStore)."""

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
            self._hold(db, f"canvas {key} {canvas_id}")
            found = db.execute(select(A).where(A.c.key == key, A.c.canvas_id == canvas_id, *LIVE).with_for_update())
            rows = {row["id"]: row for row in found.mappings()}
            missing = [anno_id for anno_id in incoming if anno_id not in rows]
            if missing:
                rows.update((row["id"], row) for row in db.execute(
                    select(A).where(A.c.id.in_(missing)).with_for_update()).mappings())
            return apply_rerun(self, db, key, canvas_id, model_sha256, incoming, rows, stamp)

    def add_verdict(
        self, key: str, verdict: dict, creator: str, *, target: str | None, canvas_id: str | None,
        judgement: str, version: str | None,
    ) -> StoredAnnotation:
        """Store a curator's verdict and, for a verdict on an annotation, set that annotation's review
        state: one transaction (see enricher.store.interface). Raises InputError, StaleVersion."""
        check_judgement(judgement, verdict)
        document = plain(verdict)
        stamp = now()
        document.setdefault("created", stamp)
        with self.transaction() as db:
            row = None
            if target is not None:
                row = db.execute(select(A).where(A.c.id == target).with_for_update()).mappings().first()
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
            target = None
            if row["target_id"] is not None:  # locked before the change log is: writers lock in one order
                target = db.execute(select(A).where(A.c.id == row["target_id"], A.c.deleted == 0)
                                    .with_for_update()).mappings().first()
            self._tombstone(db, row, "human", stamp)
            if target is not None:
                latest = db.execute(
                    select(A.c.review_state).where(A.c.target_id == row["target_id"], A.c.role == "verdict",
                                                   A.c.deleted == 0).order_by(A.c.seq.desc()).limit(1)
                ).scalar()
                self._set_review(db, target, latest or "pending", stamp)

    def verdicts_on(self, anno_id: str) -> list[StoredAnnotation]:
        """Return the live verdicts on an annotation, oldest first."""
        rows = self._rows(select(*RECORD).where(A.c.target_id == anno_id, A.c.role == "verdict", A.c.deleted == 0)
                          .order_by(A.c.seq))
        return [annotation_record(row) for row in rows]

    def exhaustive_statements(self, keys: Sequence[str] | None = None) -> list[StoredAnnotation]:
        """Return the live statements that a canvas was reviewed exhaustively (of these containers), in order."""
        rows = self._rows(select(*RECORD).where(*_exhaustive(keys)).order_by(A.c.seq))
        return [annotation_record(row) for row in rows]

    def exhaustive_classes(self, keys: Sequence[str] | None = None) -> Iterator[tuple[str, str, list[str]]]:
        """Yield (key, canvas id, class names) of each live exhaustiveness statement (of these
        containers), in order."""
        for key, canvas_id, classes in self._rows(
            select(A.c.key, A.c.canvas_id, A.c.classes).where(*_exhaustive(keys)).order_by(A.c.seq)
        ):
            yield key, canvas_id, classes.split("\n") if classes else []

    def confirmed_boxes(self, keys: Sequence[str] | None = None) -> Iterator[tuple]:
        """Yield (key, canvas id, annotation id, class name, x, y, w, h) of the live annotations with a
        region that curators vouch for, on the canvases stated exhaustive (of these containers), in
        store order (see sqlite.curation.Curation.confirmed_boxes)."""
        reviewed = select(A.c.key, A.c.canvas_id).where(*_exhaustive(keys)).distinct().cte("reviewed")
        motivation = cast(cast(A.c.document, JSONB)["motivation"], Text)
        statement = (
            select(A.c.key, A.c.canvas_id, A.c.id, A.c.concept, A.c.box_x, A.c.box_y, A.c.box_w, A.c.box_h)
            .join(reviewed, and_(A.c.key == reviewed.c.key, A.c.canvas_id == reviewed.c.canvas_id))
            .where(*LIVE, A.c.box_x.is_not(None), or_(
                and_(A.c.origin == "machine", A.c.review_state == "accepted"),
                and_(A.c.origin != "machine", func.coalesce(A.c.review_state, "").not_in(HIDDEN),
                     func.strpos(motivation, "tagging") > 0),
            ))
            .order_by(A.c.seq)
        )
        yield from (tuple(row) for row in self._rows(statement))

    def machine_detections(self, model_sha256: str) -> Iterator[tuple]:
        """Yield (canvas id, annotation id, class name or "", confidence or 0.0, x, y, w, h) of every live
        machine annotation of a model with a region, whatever its review state."""
        statement = select(
            A.c.canvas_id, A.c.id, func.coalesce(A.c.concept, ""), func.coalesce(A.c.score, 0.0),
            A.c.box_x, A.c.box_y, A.c.box_w, A.c.box_h,
        ).where(A.c.model_sha256 == model_sha256, *LIVE, A.c.origin == "machine", A.c.box_x.is_not(None))
        with self._streamed(statement.order_by(A.c.seq)) as rows:
            yield from (tuple(row) for row in rows)

    def _set_review(self, db: Connection, row: Mapping, state: str, stamp: str) -> None:
        """Give annotation ROW the review state STATE (column and ``reviewState``), logged as an Update;
        its ``modified`` stays: a verdict is not an edit."""
        document = json.loads(row["document"])
        document["reviewState"] = state_iri(state)
        self._rewrite(db, row, document, origin=row["origin"], creator=None, stamp=stamp, kind="Update",
                      review_state=state)


def _exhaustive(keys: Sequence[str] | None) -> tuple:
    """The conditions of the live exhaustiveness statements of containers KEYS (None: all)."""
    where = (A.c.deleted == 0, A.c.review_state == "exhaustive", A.c.role == "verdict")
    return where if keys is None else (*where, A.c.key.in_(tuple(keys)))
