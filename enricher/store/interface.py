"""The store interface: what the stages, the web layer, the job queue and the change-log followers
need of the system of record. Typed records in, typed records out (records.py); no SQL and no
connection object leave a backend. A backend implements every method here and registers its URL
scheme in ``enricher.store.BACKENDS``; the contract suite (tests/test_store_contract.py) runs against
every registered backend.

Consistency every backend keeps: each write is atomic and appends its change to the change log in
the same transaction; ``transaction()`` groups several writes into one unit; ETags are strong and a
write with a stale If-Match never lands; reads never write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, Self

from .records import (
    Activity,
    Change,
    ClassCount,
    Cursor,
    HarvestRecord,
    HarvestSet,
    StoredAnnotation,
    StoredCalibration,
    StoredEvaluation,
    StoredJob,
    StoredManifest,
)


class Leadership(Protocol):
    """A lock that makes one process of all those on a store the one that does a role."""

    @property
    def held(self) -> bool: """Whether this object holds the lock, as far as it knows."""

    def confirm(self) -> bool:
        """Whether the lock is still held, checked cheaply where it lives; a lock found lost (its
        connection died, its file was replaced) is let go. Call it before each act of leadership."""

    def acquire(self) -> bool: """Take the lock without waiting (or confirm it); return whether it is held now."""

    def release(self) -> None: """Let another process take the role."""


class Store(Protocol):
    """The system of record (see the module docstring)."""

    url: str

    # the store itself
    def close(self) -> None: """Release every connection."""
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info) -> None: ...
    def transaction(self) -> AbstractContextManager: """Run the block's writes as one atomic unit."""
    @property
    def schema_version(self) -> int: """How many migrations the store has applied."""
    def leader(self, role: str) -> Leadership: """The lock for ROLE (``jobs``, a follower's name)."""

    # manifests and annotations
    def save_manifest(self, key: str, manifest_id: str, url: str, label: str, document: dict) -> None:
        """Record (or refresh) a source manifest under KEY."""
    def manifest(self, key: str) -> StoredManifest | None: """The manifest stored under KEY."""
    def manifests(self) -> list[StoredManifest]: """Every stored manifest, oldest first."""
    def manifest_keys(self) -> list[str]: """The key of every stored manifest, oldest first (no documents read)."""
    def create(self, key: str, annotation: dict, creator: str) -> StoredAnnotation:
        """Store a person's annotation (id assigned by the caller)."""
    def update(self, anno_id: str, annotation: dict, if_match: str, creator: str) -> StoredAnnotation:
        """Replace an annotation if IF_MATCH names its current ETag."""
    def delete(self, anno_id: str, if_match: str | None) -> None: """Turn an annotation into a tombstone."""
    def get(self, anno_id: str) -> StoredAnnotation | None: """An annotation by id, tombstones included."""
    def page(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[StoredAnnotation]:
        """Live annotations (or verdicts) of a container (None: all), in stable order."""
    def page_texts(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[str]:
        """The stored JSON texts of the same page as ``page``."""
    def count(self, key: str | None, role: str = "annotation") -> int: """Live members of a container."""
    def class_counts(self) -> list[ClassCount]:
        """Live annotations per model class and model, those with none left out (kept by triggers)."""
    def canvas_annotations(self, key: str, canvas_id: str, *, public: bool = False) -> list[StoredAnnotation]:
        """Live annotations of one canvas (PUBLIC: without rejected and replaced ones)."""
    def container_etag(self, key: str | None, role: str = "annotation") -> str:
        """A strong ETag that changes with every change to a container."""

    # curation
    def replace_machine_annotations(self, key: str, canvas_id: str, model_sha256: str,
                                    annotations: list[dict]) -> dict[str, int]:
        """Reconcile a run's annotations of one canvas with what it holds (enricher.reconcile)."""
    def add_verdict(self, key: str, verdict: dict, creator: str, *, target: str | None, canvas_id: str | None,
                    judgement: str, version: str | None) -> StoredAnnotation:
        """Store a verdict and set its target's review state, atomically."""
    def retract_verdict(self, verdict_id: str, if_match: str | None) -> None:
        """Delete a verdict; its target takes the state of its latest remaining one."""
    def verdicts_on(self, anno_id: str) -> list[StoredAnnotation]: """Live verdicts on an annotation."""
    def exhaustive_statements(self, keys: Sequence[str] | None = None) -> list[StoredAnnotation]:
        """Live statements that a canvas was reviewed exhaustively."""
    def exhaustive_classes(self, keys: Sequence[str] | None = None) -> Iterator[tuple[str, str, list[str]]]:
        """(key, canvas id, class names) of each exhaustiveness statement."""
    def confirmed_boxes(self, keys: Sequence[str] | None = None) -> Iterator[tuple]:
        """(key, canvas, id, class, x, y, w, h) of the boxes curators vouch for on exhaustive canvases."""
    def machine_detections(self, model_sha256: str) -> Iterator[tuple]:
        """(canvas, id, class, confidence, x, y, w, h) of every live machine annotation of a model."""

    # evaluations and calibrations
    def save_evaluation(self, evaluation_id: str, model_sha256: str, key: str | None, document: dict,
                        created: str | None = None) -> None: """Record an evaluation."""
    def evaluations(self, model_sha256: str | None = None, key: str | None = None) -> list[StoredEvaluation]:
        """Evaluations, newest first."""
    def evaluation(self, evaluation_id: str) -> StoredEvaluation | None: """One evaluation."""
    def save_calibration(self, calibration_id: str, model_sha256: str, key: str | None, method: str, params: dict,
                         created: str | None = None) -> None:
        """Record a calibration and log an Update of every annotation it changes."""
    def calibration_by_id(self, calibration_id: str) -> StoredCalibration | None: """One calibration."""
    def calibration(self, model_sha256: str, key: str | None) -> StoredCalibration | None:
        """The latest calibration of a model on a collection."""
    def has_calibrations(self, key: str | None) -> bool: """Whether a calibration applies to container KEY."""
    def last_calibration(self) -> int: """A number that changes whenever a calibration is added."""
    def models(self, keys: Sequence[str] | None = None) -> list[tuple[str, str | None]]:
        """(SHA-256, weights name) of each model with live machine annotations."""
    def model_name(self, model_sha256: str) -> str | None: """The weights file name of a model."""

    # jobs
    def create_job(self, params: dict) -> StoredJob: """Queue a job."""
    def job(self, job_id: str) -> StoredJob | None: """A job with its progress and errors."""
    def jobs(self) -> list[StoredJob]: """Every job, newest first."""
    def claim_job(self) -> StoredJob | None: """Move the oldest queued job to running and return it."""
    def set_job(self, job_id: str, expect: str | None = None, **fields: Any) -> bool:
        """Set fields of a job (only while its state is EXPECT)."""
    def cancel_job(self, job_id: str) -> StoredJob | None: """Cancel a queued or running job."""
    def mark_canvas_done(self, job_id: str, key: str, canvas_id: str, error: str | None,
                         skipped: str | None = None) -> None:
        """Record that a job finished a canvas (failed: ERROR; skipped: why)."""
    def done_canvases(self, job_id: str) -> set[tuple[str, str]]: """The (key, canvas id) a job finished."""
    def requeue_interrupted(self) -> int: """Put jobs left running by a dead runner back in the queue."""
    def finish_job(self, job_id: str) -> StoredJob | None:
        """End a running job whose canvases are all finished (writes.job_outcome), atomically; return
        it when this call ended it."""

    # search (enricher.search says what the index terms are)
    def search(self, key: str, terms: Sequence[str], motivations: Sequence[str] | None = None, offset: int = 0,
               limit: int = 100) -> list[StoredAnnotation]:
        """Public annotations of container KEY indexed under any of TERMS, by term then store order."""
    def term_counts(self, key: str, terms: Sequence[str], motivations: Sequence[str] | None = None) -> dict[str, int]:
        """How many public annotations of container KEY each of TERMS indexes (absent: none)."""
    def terms_starting(self, key: str, prefix: str, limit: int = 20) -> list[tuple[str, int]]:
        """(term, count) of container KEY's index terms that start with PREFIX, in order."""
    def written_concepts(self) -> list[str]:
        """The concept IRIs that public annotations people wrote name, of any container (terms ``iri:``), in order."""
    def seed_machine_annotations(self, key: str, model_sha256: str, annotations: Iterable[dict]) -> int:
        """Store new machine annotations in bulk, pending, without reconciling; return how many."""

    # the change log and its followers
    def last_change(self, key: str | None = None) -> int: """The seq of the latest change (0: none)."""
    def changes(self, after: int, limit: int, key: str | None = None) -> list[Change]:
        """Change-log entries after AFTER, oldest first."""
    def cursor(self, name: str) -> Cursor: """Where follower NAME stands."""
    def move_cursor(self, name: str, seq: int) -> None: """Record that follower NAME applied up to SEQ."""
    def cursor_failed(self, name: str, error: str) -> None: """Record a failed round of follower NAME."""
    def discovery_member(self, anno_id: str) -> tuple[str, str] | None:
        """Where Change Discovery last saw an annotation live."""
    def set_discovery_member(self, anno_id: str, place: tuple[str, str] | None) -> None:
        """Record where an annotation is live now (None: nowhere)."""
    def discovery_page_live(self, key: str, canvas_id: str) -> bool: """Whether a canvas has a live annotation."""
    def set_published(self, object_id: str, live: bool) -> bool:
        """Record whether an object is published; return whether it was."""
    def append_activities(self, activities: Sequence[tuple[str, str, str, str]]) -> int:
        """Append Change Discovery activities."""
    def activity_count(self) -> int: """How many activities the stream holds."""
    def activities(self, start: int, stop: int) -> list[Activity]: """Activities START to STOP, in order."""

    # rate limits, shared by every process on the store
    def take(self, buckets: Sequence[tuple[str, float, float]], now: float) -> tuple[str, float] | None:
        """Take one unit from each token bucket (name, refill per second, capacity; a new one is full) at
        time NOW (seconds) if every one holds a unit, and return None; else take none and return the
        bucket to wait longest for and the seconds until it holds one."""
    # raw rows, for migration only (enricher.store.copy): never for serving
    def export_rows(self, table: str) -> Iterator[dict]:
        """Every row of TABLE (records.COPIED_TABLES) as column -> value, as stored, in key order."""
    def import_rows(self, table: str, rows: Iterable[dict]) -> int:
        """Insert exported ROWS as they are into the empty TABLE; return how many."""
    # what OAI-PMH harvests (enricher.harvest derives it from the change log)
    def save_harvest_record(self, key: str, datestamp: str, deleted: bool, sets: Mapping[str, str]) -> HarvestRecord:
        """Move record KEY to the end of the harvest order with DATESTAMP (raised to the latest one where
        it is earlier), its deleted flag and its SETS (spec -> name)."""
    def harvest_record(self, key: str) -> HarvestRecord | None: """Record KEY, deleted or not."""
    def harvest_records(self, after: int, upto: int, limit: int, *, since: str | None = None,
                        until: str | None = None, set_spec: str | None = None) -> list[HarvestRecord]:
        """Records at positions AFTER < p <= UPTO in order, with datestamps in SINCE..UNTIL, in set SET_SPEC
        (or one below it)."""
    def harvest_count(self, upto: int, *, since: str | None = None, until: str | None = None,
                      set_spec: str | None = None) -> int: """How many records harvest_records would give."""
    def harvest_position(self) -> int: """The position of the last record (0: none)."""
    def harvest_sets(self) -> list[HarvestSet]: """Every set that has held a record, by spec."""
    def earliest_datestamp(self) -> str | None: """The earliest datestamp of a record (None: no record)."""
