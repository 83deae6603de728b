"""Jobs: queued, claimed by one runner at a time, the canvases each has finished (with their errors),
cancelled, and put back in the queue when the process running them died."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ...clock import now
from ..records import StoredJob
from ..writes import job_fields, job_outcome, job_record


class Jobs:
    """Jobs and their canvases (a mixin of SQLiteStore)."""

    def create_job(self, params: dict) -> StoredJob:
        """Queue a job with these parameters."""
        job_id = uuid.uuid4().hex
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, state, params, created) VALUES (?, 'queued', ?, ?)",
                (job_id, json.dumps(params, ensure_ascii=False), now()),
            )
        return self.job(job_id)

    def job(self, job_id: str) -> StoredJob | None:
        """Return a job with its progress and per-canvas errors, or None."""
        found = self._jobs("WHERE id = ?", (job_id,))
        return found[0] if found else None

    def jobs(self) -> list[StoredJob]:
        """Return every job, newest first."""
        return self._jobs("", ())

    def _jobs(self, where: str, args: tuple) -> list[StoredJob]:
        db = self.db
        rows = db.execute(
            f"""SELECT jobs.*, (SELECT count(*) FROM job_canvases WHERE job_id = jobs.id) AS done
            FROM jobs {where} ORDER BY number DESC""",
            args,
        ).fetchall()
        errors: dict[str, list[dict]] = {}
        skipped: dict[str, list[dict]] = {}
        ids = [row["id"] for row in rows]
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            for note in db.execute(
                f"""SELECT job_id, key, canvas_id, error, skipped FROM job_canvases
                WHERE (error IS NOT NULL OR skipped IS NOT NULL) AND job_id IN ({','.join('?' * len(chunk))})
                ORDER BY finished, key, canvas_id""",
                chunk,
            ):
                place = {"manifest": note["key"], "canvas": note["canvas_id"]}
                if note["error"] is not None:
                    errors.setdefault(note["job_id"], []).append({**place, "error": note["error"]})
                if note["skipped"] is not None:
                    skipped.setdefault(note["job_id"], []).append({**place, "reason": note["skipped"]})
        return [job_record(row, errors.get(row["id"], []), skipped.get(row["id"], [])) for row in rows]

    def claim_job(self) -> StoredJob | None:
        """Move the oldest queued job to running, atomically, and return it (None when none waits)."""
        with self.transaction() as db:
            row = db.execute(
                """UPDATE jobs SET state = 'running', started = coalesce(started, ?)
                WHERE number = (SELECT number FROM jobs WHERE state = 'queued' ORDER BY number LIMIT 1)
                RETURNING id""",
                (now(),),
            ).fetchone()
        return self.job(row["id"]) if row else None

    def set_job(self, job_id: str, expect: str | None = None, **fields: Any) -> bool:
        """Set fields of a job (only while its state is EXPECT, when given); return whether it changed.

        Fields: state, total, manifests (list of keys), error, started, finished, provenance (what the run
        used, a dict). A finished state stamps
        ``finished`` unless given.
        """
        fields = job_fields(job_id, fields)
        if not fields:
            return False
        assignments = ", ".join(f"{name} = ?" for name in fields)
        condition, args = ("AND state = ?", (expect,)) if expect else ("", ())
        with self.transaction() as db:
            changed = db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? {condition}", (*fields.values(), job_id, *args)
            ).rowcount
        return changed > 0

    def cancel_job(self, job_id: str) -> StoredJob | None:
        """Cancel a queued or running job (a finished one stays as it is); return it, or None if unknown.

        A running job stops before its next canvas.
        """
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state IN ('queued', 'running')",
                (now(), job_id),
            )
        return self.job(job_id)

    def mark_canvas_done(
        self, job_id: str, key: str, canvas_id: str, error: str | None, skipped: str | None = None
    ) -> None:
        """Record that a job finished a canvas (with an error message when it failed, the reason when it
        skipped it)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO job_canvases (job_id, key, canvas_id, error, skipped, finished) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (job_id, key, canvas_id) DO UPDATE SET error = excluded.error, skipped = excluded.skipped,
                finished = excluded.finished""",
                (job_id, key, canvas_id, error, skipped, now()),
            )

    def done_canvases(self, job_id: str) -> set[tuple[str, str]]:
        """Return the (manifest key, canvas id) pairs a job has finished."""
        rows = self.db.execute("SELECT key, canvas_id FROM job_canvases WHERE job_id = ?", (job_id,))
        return {(row["key"], row["canvas_id"]) for row in rows}

    def requeue_interrupted(self) -> int:
        """Put jobs left running by a process that died back in the queue; return how many.

        Call it only from the single job runner (see enricher.jobs), when it starts.
        """
        with self.transaction() as db:
            return db.execute("UPDATE jobs SET state = 'queued' WHERE state = 'running'").rowcount

    def finish_job(self, job_id: str) -> StoredJob | None:
        """End a running job once every canvas of its recorded total is finished: done, or failed when
        every canvas failed. Atomic, so of several workers finishing its last canvases at once exactly
        one ends it; return the job when this call ended it, else None.

        Call it only once the job's total is recorded (a job of no canvases ends done).
        """
        with self.transaction() as db:
            row = db.execute(
                """SELECT jobs.total, count(done.canvas_id) AS done, count(done.error) AS failed,
                count(done.skipped) AS skipped,
                (SELECT error FROM job_canvases WHERE job_id = jobs.id AND error IS NOT NULL
                 ORDER BY finished, key, canvas_id LIMIT 1) AS first_error
                FROM jobs LEFT JOIN job_canvases AS done ON done.job_id = jobs.id
                WHERE jobs.id = ? AND jobs.state = 'running' GROUP BY jobs.id""",
                (job_id,),
            ).fetchone()
            if row is None or row["done"] < row["total"]:
                return None
            state, error = job_outcome(row["total"], row["failed"], row["skipped"], row["first_error"])
            db.execute("UPDATE jobs SET state = ?, error = ?, finished = ? WHERE id = ?", (state, error, now(), job_id))
        return self.job(job_id)
