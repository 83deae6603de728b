"""Evaluations of a model on a collection and the calibrations fitted from them (enricher.evaluate,
enricher.calibrate), and the models whose annotations the store holds."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ...clock import now
from ..records import StoredCalibration, StoredEvaluation
from ..writes import by_name


class Evaluations:
    """Evaluations, calibrations and models (a mixin of SQLiteStore)."""

    def save_evaluation(
        self, evaluation_id: str, model_sha256: str, key: str | None, document: dict, created: str | None = None
    ) -> None:
        """Record an evaluation of a model on a collection (KEY; None: not one of ours, e.g. a COCO file)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO evaluations (id, model_sha256, key, created, document, number)
                VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(number), 0) + 1 FROM evaluations))
                ON CONFLICT (id) DO UPDATE SET document = excluded.document""",
                (evaluation_id, model_sha256, key, created or now(), json.dumps(document, ensure_ascii=False)),
            )

    def evaluations(self, model_sha256: str | None = None, key: str | None = None) -> list[StoredEvaluation]:
        """Return the evaluations (of a model, of a collection, when given), newest first."""
        rows = self.db.execute(
            """SELECT * FROM evaluations WHERE (? IS NULL OR model_sha256 = ?) AND (? IS NULL OR key = ?)
            ORDER BY created DESC, number DESC""",
            (model_sha256, model_sha256, key, key),
        )
        return [_evaluation(r) for r in rows]

    def evaluation(self, evaluation_id: str) -> StoredEvaluation | None:
        """Return one evaluation, or None."""
        r = self.db.execute("SELECT * FROM evaluations WHERE id = ?", (evaluation_id,)).fetchone()
        return _evaluation(r) if r else None

    def save_calibration(
        self, calibration_id: str, model_sha256: str, key: str | None, method: str, params: dict,
        created: str | None = None,
    ) -> None:
        """Record a calibration fitted for a model on a collection; the latest one is the one served.

        The served form of that model's annotations in container KEY changes (their calibrated
        confidence, the calibration named, the ETag), so each gets an Update in the change log, in the
        same transaction: Change Discovery announces their pages, the RDF index re-reads them. A
        calibration of no single container (KEY None) is served on none.
        """
        stamp = now()
        with self.transaction() as db:
            db.execute(
                """INSERT INTO calibrations (id, model_sha256, key, method, params, created, number)
                VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(number), 0) + 1 FROM calibrations))
                ON CONFLICT (id) DO UPDATE SET method = excluded.method, params = excluded.params""",
                (calibration_id, model_sha256, key, method, json.dumps(params), created or stamp),
            )
            if key is not None:
                db.execute(
                    """INSERT INTO changes (time, kind, anno_id, key, canvas_id)
                    SELECT ?, 'Update', id, key, canvas_id FROM annotations INDEXED BY live_by_canvas
                    WHERE key = ? AND model_sha256 = ? AND deleted = 0 AND role = 'annotation'""",
                    (stamp, key, model_sha256),
                )

    def calibration_by_id(self, calibration_id: str) -> StoredCalibration | None:
        """Return calibration CALIBRATION_ID, or None."""
        r = self.db.execute("SELECT * FROM calibrations WHERE id = ?", (calibration_id,)).fetchone()
        return _calibration(r) if r else None

    def models(self, keys: Sequence[str] | None = None) -> list[tuple[str, str | None]]:
        """Return (SHA-256, weights file name) of each model with live machine annotations (in these
        containers), by name; the name is None when the annotations do not give one."""
        where, args = "deleted = 0 AND role = 'annotation' AND origin = 'machine' AND model_sha256 IS NOT NULL", ()
        if keys is not None:
            args = tuple(keys)
            where += f" AND key IN ({','.join('?' * len(args))})"
        shas = [row[0] for row in self.db.execute(f"SELECT DISTINCT model_sha256 FROM annotations WHERE {where}", args)]
        return by_name([(sha, self.model_name(sha)) for sha in shas])

    def model_name(self, model_sha256: str) -> str | None:
        """Return the weights file name a live annotation of the model gives (``generator.model``), or None."""
        row = self.db.execute(
            """SELECT json_extract(document, '$.generator.model') FROM annotations INDEXED BY annotations_by_model
            WHERE model_sha256 = ? AND deleted = 0 LIMIT 1""",
            (model_sha256,),
        ).fetchone()
        return row[0] if row and isinstance(row[0], str) else None

    def has_calibrations(self, key: str | None) -> bool:
        """Whether a calibration applies to container KEY's annotations (None: to any container's)."""
        sql = "SELECT 1 FROM calibrations WHERE key IS NOT NULL" + ("" if key is None else " AND key = ?")
        return self.db.execute(sql + " LIMIT 1", () if key is None else (key,)).fetchone() is not None

    def last_calibration(self) -> int:
        """The number of the newest calibration (0 when none): it changes whenever one is added."""
        return self.db.execute("SELECT coalesce(max(number), 0) FROM calibrations").fetchone()[0]

    def calibration(self, model_sha256: str, key: str | None) -> StoredCalibration | None:
        """Return the latest calibration of a model on a collection, or None."""
        r = self.db.execute(
            "SELECT * FROM calibrations WHERE model_sha256 = ? AND key IS ? ORDER BY created DESC, number DESC LIMIT 1",
            (model_sha256, key),
        ).fetchone()
        return _calibration(r) if r else None


def _evaluation(row: sqlite3.Row) -> StoredEvaluation:
    return StoredEvaluation(row["id"], row["model_sha256"], row["key"], row["created"], json.loads(row["document"]))


def _calibration(row: sqlite3.Row) -> StoredCalibration:
    return StoredCalibration(row["id"], row["model_sha256"], row["key"], row["method"], json.loads(row["params"]),
                             row["created"])


