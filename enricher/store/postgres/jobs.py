"""Jobs: queued, claimed with ``FOR UPDATE SKIP LOCKED`` (runners on many machines never wait for one
another nor take one job twice), the canvases each has finished, cancelled, and requeued."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from ...clock import now
from ..records import StoredJob
from ..tables import job_canvases, jobs
from ..writes import job_fields, job_outcome, job_record

DONE = select(func.count()).where(job_canvases.c.job_id == jobs.c.id).scalar_subquery().label("done")


class Jobs:
    """Jobs and their canvases (a mixin of PostgresStore)."""

    def create_job(self, params: dict) -> StoredJob:
        """Queue a job with these parameters."""
        job_id = uuid.uuid4().hex
        with self.transaction() as db:
            db.execute(jobs.insert().values(id=job_id, state="queued", params=json.dumps(params, ensure_ascii=False),
                                            created=now()))
        return self.job(job_id)

    def job(self, job_id: str) -> StoredJob | None:
        """Return a job with its progress and per-canvas errors, or None."""
        found = self._jobs(jobs.c.id == job_id)
        return found[0] if found else None

    def jobs(self) -> list[StoredJob]:
        """Return every job, newest first."""
        return self._jobs()

    def _jobs(self, *where) -> list[StoredJob]:
        rows = self._rows(select(jobs, DONE).where(*where).order_by(jobs.c.number.desc()))
        errors: dict[str, list[dict]] = {}
        skipped: dict[str, list[dict]] = {}
        if rows:
            c = job_canvases.c
            notes = select(c.job_id, c.key, c.canvas_id, c.error, c.skipped).where(
                c.error.is_not(None) | c.skipped.is_not(None))
            if where:
                notes = notes.where(c.job_id.in_([row.id for row in rows]))
            for job_id, key, canvas_id, error, reason in self._rows(notes.order_by(c.finished, c.key, c.canvas_id)):
                place = {"manifest": key, "canvas": canvas_id}
                if error is not None:
                    errors.setdefault(job_id, []).append({**place, "error": error})
                if reason is not None:
                    skipped.setdefault(job_id, []).append({**place, "reason": reason})
        return [job_record(row._mapping, errors.get(row.id, []), skipped.get(row.id, [])) for row in rows]

    def claim_job(self) -> StoredJob | None:
        """Move the oldest queued job to running, atomically, and return it (None when none waits); a job
        another runner is claiming at the same moment is skipped, not waited for."""
        oldest = (select(jobs.c.number).where(jobs.c.state == "queued").order_by(jobs.c.number).limit(1)
                  .with_for_update(skip_locked=True).scalar_subquery())
        with self.transaction() as db:
            job_id = db.execute(update(jobs).where(jobs.c.number == oldest)
                                .values(state="running", started=func.coalesce(jobs.c.started, now()))
                                .returning(jobs.c.id)).scalar()
        return self.job(job_id) if job_id else None

    def set_job(self, job_id: str, expect: str | None = None, **fields: Any) -> bool:
        """Set fields of a job (only while its state is EXPECT, when given); return whether it changed.
        Fields: state, total, manifests (list of keys), error, started, finished."""
        fields = job_fields(job_id, fields)
        if not fields:
            return False
        statement = update(jobs).where(jobs.c.id == job_id).values(**fields)
        if expect:
            statement = statement.where(jobs.c.state == expect)
        with self.transaction() as db:
            return db.execute(statement).rowcount > 0

    def cancel_job(self, job_id: str) -> StoredJob | None:
        """Cancel a queued or running job (a finished one stays as it is); return it, or None if unknown."""
        with self.transaction() as db:
            db.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(("queued", "running")))
                       .values(state="cancelled", finished=now()))
        return self.job(job_id)

    def mark_canvas_done(
        self, job_id: str, key: str, canvas_id: str, error: str | None, skipped: str | None = None
    ) -> None:
        """Record that a job finished a canvas (with an error message when it failed, the reason when it
        skipped it)."""
        statement = insert(job_canvases).values(job_id=job_id, key=key, canvas_id=canvas_id, error=error,
                                                skipped=skipped, finished=now())
        with self.transaction() as db:
            db.execute(statement.on_conflict_do_update(
                index_elements=["job_id", "key", "canvas_id"],
                set_={"error": statement.excluded.error, "skipped": statement.excluded.skipped,
                      "finished": statement.excluded.finished},
            ))

    def done_canvases(self, job_id: str) -> set[tuple[str, str]]:
        """Return the (manifest key, canvas id) pairs a job has finished."""
        c = job_canvases.c
        return {(key, canvas_id) for key, canvas_id in self._rows(select(c.key, c.canvas_id).where(c.job_id == job_id))}

    def requeue_interrupted(self) -> int:
        """Put jobs left running by a process that died back in the queue; return how many. Call it
        only from the single job runner, when it starts."""
        with self.transaction() as db:
            return db.execute(update(jobs).where(jobs.c.state == "running").values(state="queued")).rowcount

    def finish_job(self, job_id: str) -> StoredJob | None:
        """End a running job once every canvas of its recorded total is finished: done, or failed when
        every canvas it looked at failed. The job's row is locked first, so of several workers finishing
        its last canvases at once exactly one ends it; return the job when this call ended it, else None.
        """
        c = job_canvases.c
        with self.transaction() as db:
            # FOR NO KEY UPDATE: the done markers' foreign keys hold KEY SHARE on the row, which it does
            # not conflict with (FOR UPDATE would deadlock against them)
            total = db.execute(select(jobs.c.total).where(jobs.c.id == job_id, jobs.c.state == "running")
                               .with_for_update(key_share=True)).scalar()
            if total is None:
                return None
            done, failed, skipped = db.execute(
                select(func.count(), func.count(c.error), func.count(c.skipped)).where(c.job_id == job_id)).one()
            if done < total:
                return None
            first_error = db.execute(select(c.error).where(c.job_id == job_id, c.error.is_not(None))
                                     .order_by(c.finished, c.key, c.canvas_id).limit(1)).scalar()
            state, error = job_outcome(total, failed, skipped, first_error)
            db.execute(update(jobs).where(jobs.c.id == job_id).values(state=state, error=error, finished=now()))
        return self.job(job_id)
