"""Evaluations of a model on a collection and the calibrations fitted from them, and the models whose
annotations the store holds (the rules are sqlite/evaluations.py's)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Row

from ...clock import now
from ..records import StoredCalibration, StoredEvaluation
from ..tables import annotations as A
from ..tables import calibrations, changes, evaluations
from ..writes import by_name


class Evaluations:
    """Evaluations, calibrations and models (a mixin of PostgresStore)."""

    def save_evaluation(
        self, evaluation_id: str, model_sha256: str, key: str | None, document: dict, created: str | None = None
    ) -> None:
        """Record an evaluation of a model on a collection (KEY; None: not one of ours, e.g. a COCO file)."""
        statement = insert(evaluations).values(id=evaluation_id, model_sha256=model_sha256, key=key,
                                               created=created or now(), document=json.dumps(document, ensure_ascii=False))
        with self.transaction() as db:
            db.execute(statement.on_conflict_do_update(index_elements=["id"],
                                                       set_={"document": statement.excluded.document}))

    def evaluations(self, model_sha256: str | None = None, key: str | None = None) -> list[StoredEvaluation]:
        """Return the evaluations (of a model, of a collection, when given), newest first."""
        statement = select(evaluations)
        if model_sha256 is not None:
            statement = statement.where(evaluations.c.model_sha256 == model_sha256)
        if key is not None:
            statement = statement.where(evaluations.c.key == key)
        rows = self._rows(statement.order_by(evaluations.c.created.desc(), evaluations.c.number.desc()))
        return [_evaluation(row) for row in rows]

    def evaluation(self, evaluation_id: str) -> StoredEvaluation | None:
        """Return one evaluation, or None."""
        row = self._first(select(evaluations).where(evaluations.c.id == evaluation_id))
        return _evaluation(row) if row else None

    def save_calibration(
        self, calibration_id: str, model_sha256: str, key: str | None, method: str, params: dict,
        created: str | None = None,
    ) -> None:
        """Record a calibration fitted for a model on a collection, and log an Update of each annotation
        of that model in container KEY whose served form it changes (see the interface)."""
        stamp = now()
        statement = insert(calibrations).values(id=calibration_id, model_sha256=model_sha256, key=key, method=method,
                                                params=json.dumps(params), created=created or stamp)
        with self.transaction() as db:
            db.execute(statement.on_conflict_do_update(
                index_elements=["id"], set_={"method": statement.excluded.method, "params": statement.excluded.params}
            ))
            if key is not None:
                self._hold_log(db)
                changed = select(literal(stamp), literal("Update"), A.c.id, A.c.key, A.c.canvas_id).where(
                    A.c.key == key, A.c.model_sha256 == model_sha256, A.c.deleted == 0, A.c.role == "annotation"
                ).order_by(A.c.seq)
                db.execute(changes.insert().from_select(["time", "kind", "anno_id", "key", "canvas_id"], changed))

    def calibration_by_id(self, calibration_id: str) -> StoredCalibration | None:
        """Return calibration CALIBRATION_ID, or None."""
        row = self._first(select(calibrations).where(calibrations.c.id == calibration_id))
        return _calibration(row) if row else None

    def models(self, keys: Sequence[str] | None = None) -> list[tuple[str, str | None]]:
        """Return (SHA-256, weights file name) of each model with live machine annotations (in these
        containers), by name; the name is None when the annotations do not give one."""
        statement = select(A.c.model_sha256).distinct().where(
            A.c.deleted == 0, A.c.role == "annotation", A.c.origin == "machine", A.c.model_sha256.is_not(None)
        )
        if keys is not None:
            statement = statement.where(A.c.key.in_(tuple(keys)))
        return by_name([(sha, self.model_name(sha)) for sha, in self._rows(statement)])

    def model_name(self, model_sha256: str) -> str | None:
        """Return the weights file name a live annotation of the model gives (``generator.model``), or None."""
        name = self._scalar(select(A.c.document.cast(JSONB)["generator"]["model"])
                            .where(A.c.model_sha256 == model_sha256, A.c.deleted == 0).limit(1))
        return name if isinstance(name, str) else None

    def has_calibrations(self, key: str | None) -> bool:
        """Whether a calibration applies to container KEY's annotations (None: to any container's)."""
        statement = select(literal(1)).where(calibrations.c.key.is_not(None))
        if key is not None:
            statement = statement.where(calibrations.c.key == key)
        return self._first(statement.limit(1)) is not None

    def last_calibration(self) -> int:
        """The number of the newest calibration (0 when none): it changes whenever one is added."""
        return int(self._scalar(select(func.coalesce(func.max(calibrations.c.number), 0))))

    def calibration(self, model_sha256: str, key: str | None) -> StoredCalibration | None:
        """Return the latest calibration of a model on a collection, or None."""
        row = self._first(
            select(calibrations).where(calibrations.c.model_sha256 == model_sha256,
                                       calibrations.c.key.is_not_distinct_from(key))
            .order_by(calibrations.c.created.desc(), calibrations.c.number.desc()).limit(1)
        )
        return _calibration(row) if row else None


def _evaluation(row: Row) -> StoredEvaluation:
    return StoredEvaluation(row.id, row.model_sha256, row.key, row.created, json.loads(row.document))


def _calibration(row: Row) -> StoredCalibration:
    return StoredCalibration(row.id, row.model_sha256, row.key, row.method, json.loads(row.params), row.created)
