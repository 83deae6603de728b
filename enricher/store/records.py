"""The typed records that go in and out of every store backend, and the rules on them that need no
database: ETags, the canonical form of a document, the canvas an annotation targets."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

from ..errors import InputError

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")
JOB_FIELDS = ("state", "total", "manifests", "error", "started", "finished", "provenance")
ROLES = ("annotation", "verdict")
# what a store's rows are copied as (export_rows/import_rows), in an order that keeps references valid:
# every table of tables.py but the counts, which the target's triggers count as the rows arrive
# (container_counts, page_blocks, search_counts), and rate_buckets, seconds of counting that expire on their own
COPIED_TABLES = ("manifests", "annotations", "changes", "jobs", "job_canvases", "evaluations", "calibrations",
                 "followers", "discovery_activities", "discovery_members", "discovery_published",
                 "harvest_records", "harvest_sets", "harvest_members", "search_index")


@dataclass(frozen=True)
class StoredManifest:
    key: str
    manifest_id: str
    url: str
    label: str
    document: dict
    saved: str


@dataclass  # not frozen: a page builds a hundred of these, and frozen __init__ costs twice as much
class StoredAnnotation:
    id: str
    key: str
    canvas_id: str
    text: str  # the document's JSON as stored (without @context), for writers that splice it
    etag: str
    origin: str
    created: str
    modified: str
    deleted: bool
    seq: int
    creator: str | None = None
    version: int = 1
    model_sha256: str | None = None
    role: str = "annotation"  # or "verdict"
    review_state: str | None = None  # a machine annotation's (pending ...), a verdict's (accepted ...)
    concept: str | None = None  # the class name a machine annotation tags
    target_id: str | None = None  # the annotation a verdict judges

    @cached_property
    def document(self) -> dict:
        """The annotation as a dict, parsed on first use."""
        return json.loads(self.text)


@dataclass(frozen=True)
class StoredEvaluation:
    id: str
    model_sha256: str
    key: str | None
    created: str
    document: dict


@dataclass(frozen=True)
class StoredCalibration:
    id: str
    model_sha256: str
    key: str | None
    method: str
    params: dict
    created: str


@dataclass(frozen=True)
class ClassCount:
    """How many live annotations tag one model class, made by one model (None: written by a person)."""

    concept: str
    model_sha256: str | None
    live: int


@dataclass(frozen=True)
class Change:
    seq: int
    time: str
    kind: str  # Create | Update | Delete
    anno_id: str
    key: str
    canvas_id: str


@dataclass(frozen=True)
class StoredJob:
    id: str
    state: str
    params: dict
    total: int
    done: int
    errors: list[dict]  # {"manifest": key, "canvas": canvas id, "error": text}
    skipped: list[dict]  # {"manifest": key, "canvas": canvas id, "reason": text}: nothing to look at
    manifests: list[str]
    error: str | None
    created: str
    started: str | None
    finished: str | None
    provenance: dict | None = None  # what the run used (enricher.provenance.describe)


@dataclass(frozen=True)
class HarvestRecord:
    """An OAI-PMH record (an enriched manifest) at its place in the harvest order: every change moves it
    to the end, with the time of that change as its datestamp (never earlier than the one before)."""

    key: str
    position: int
    datestamp: str
    deleted: bool
    sets: tuple[str, ...]


@dataclass(frozen=True)
class HarvestSet:
    spec: str
    name: str


@dataclass(frozen=True)
class Activity:
    """One Change Discovery activity at its fixed position in the stream."""

    position: int
    type: str  # Create | Update | Delete
    object_id: str
    object_type: str  # Manifest | AnnotationPage
    end_time: str


def canonical(document: dict) -> str:
    """Serialise a document the same way every time (sorted keys, no spaces)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_etag(document: dict, version: int) -> str:
    """Return a strong, quoted ETag of a document's content and version."""
    digest = hashlib.sha256(f"{version}\n{canonical(document)}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def container_etag(name: str, last_change: int) -> str:
    """Return a strong ETag of container NAME whose latest change-log entry is LAST_CHANGE."""
    digest = hashlib.sha256(f"{name}\n{last_change}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def etag_matches(if_match: str, etag: str) -> bool:
    """Compare an If-Match header with an ETag, strongly (RFC 9110): ``*`` or any listed tag."""
    tags = [tag.strip() for tag in if_match.split(",")]
    return "*" in tags or etag in tags


def target_canvas(annotation: dict) -> str:
    """Return the canvas an annotation targets: the source of its first target, without fragment."""
    target = annotation.get("target")
    if isinstance(target, list):
        target = target[0] if target else None
    if isinstance(target, dict):
        target = target.get("source", target.get("id"))
        if isinstance(target, dict):
            target = target.get("id")
    if not isinstance(target, str) or not target:
        raise InputError("the annotation has no target", where=annotation.get("id"), pointer="/target")
    return target.split("#", 1)[0]


def plain(annotation: dict) -> dict:
    """The annotation as stored: without @context (the web layer adds it)."""
    if not isinstance(annotation, dict):
        raise InputError("an annotation must be a JSON object", pointer="")
    return {k: v for k, v in annotation.items() if k != "@context"}


@dataclass(frozen=True)
class Cursor:
    """Where a change-log follower stands: every change up to ``seq`` is applied; a pusher also keeps
    its failed rounds in a row and the last error."""

    name: str
    seq: int = 0
    failures: int = 0
    error: str | None = None
    updated: str | None = None
