"""What every backend does around its SQL: the checks on a write, the document as it is stored, the
re-run plan applied through the backend's own row writers, and the records built from rows. A row here
is anything indexed by column name (sqlite3.Row, SQLAlchemy's RowMapping)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .. import reconcile
from ..clock import now
from ..errors import (
    EnricherError,
    Gone,
    InputError,
    NotFound,
    PreconditionFailed,
    StaleVersion,
)
from ..review import HIDDEN, STATES, class_of, version_of
from ..search import IRI, index_terms
from .records import (
    FINISHED_STATES,
    JOB_FIELDS,
    JOB_STATES,
    ROLES,
    StoredJob,
    etag_matches,
    plain,
    target_canvas,
)

# the search counts of concept IRIs (their own partial index, revision 0009), the same condition in both dialects
CONCEPT_TERMS = f"substr(term, 1, {len(IRI)}) = '{IRI}'"


def check_page(offset: int, limit: int, role: str) -> None:
    """Raise InputError for a negative OFFSET or LIMIT, or an unknown ROLE."""
    if offset < 0 or limit < 0:
        raise InputError(f"offset {offset} and limit {limit} must not be negative")
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")


# Annotations per block of the page_blocks table (live rows per role, container and block of seqs,
# kept by triggers). A page at offset N is found by summing a container's blocks (its rows / PAGE_BLOCK
# of them) and then skipping under PAGE_BLOCK index entries from its block's first seq, where OFFSET N
# would step through N entries: the last page of a million costs as little as the first.
PAGE_BLOCK = 1024


def page_start(blocks: Iterable[tuple[int, int]], offset: int) -> tuple[int, int] | None:
    """Where the live row at OFFSET of a container lies: (the first seq of its block, how many live rows
    of the container precede it in that block), given the container's (block, live rows) in block
    order; None when the container holds no more than OFFSET rows."""
    before = 0
    for block, live in blocks:
        if before + live > offset:
            return block * PAGE_BLOCK, offset - before
        before += live
    return None


def check_current(row: Mapping | None, anno_id: str, if_match: str | None) -> Mapping:
    """Return ROW, the stored annotation ANNO_ID about to be changed. Raises NotFound (no row), Gone (a
    tombstone), PreconditionFailed (IF_MATCH given and not its ETag)."""
    if row is None:
        raise NotFound(f"no annotation {anno_id}", where=anno_id)
    if row["deleted"]:
        raise Gone(f"annotation {anno_id} was deleted", where=anno_id)
    if if_match is not None and not etag_matches(if_match, row["etag"]):
        raise PreconditionFailed(f"If-Match {if_match} does not match the current ETag {row['etag']}", where=anno_id)
    return row


def container_name(key: str | None, role: str) -> str:
    """The name a container's ETag is made from: the key ("" for all), prefixed by a role other than annotation."""
    return key or "" if role == "annotation" else f"{role}:{key or ''}"


def new_document(annotation: dict) -> tuple[dict, str, str]:
    """Return (document, id, canvas id) of a person's new annotation, ``created`` added when absent.

    Raises InputError without id or target.
    """
    document = plain(annotation)
    anno_id = document.get("id")
    if not isinstance(anno_id, str) or not anno_id:
        raise InputError("the annotation has no id", pointer="/id")
    canvas_id = target_canvas(document)
    document.setdefault("created", now())
    return document, anno_id, canvas_id


def revised_document(anno_id: str, annotation: dict, row: Mapping, stamp: str) -> tuple[dict, str]:
    """Return (document, origin) of a person's replacement of stored annotation ROW: ``created`` kept,
    ``modified`` STAMP, a machine annotation becoming ``edited``. Raises InputError for another id."""
    document = plain(annotation)
    if document.setdefault("id", anno_id) != anno_id:
        raise InputError(f"the body's id {document['id']} is not {anno_id}", where=anno_id, pointer="/id")
    document.setdefault("created", json.loads(row["document"]).get("created", row["created"]))
    document["modified"] = stamp
    return document, "human" if row["origin"] == "human" else "edited"


def incoming_machine(canvas_id: str, annotations: list[dict]) -> dict[str, dict]:
    """A run's annotations of one canvas by id (the first of an id twice). Raises InputError for one
    without id, EnricherError for one targeting another canvas."""
    incoming: dict[str, dict] = {}
    for annotation in map(plain, annotations):
        anno_id = annotation.get("id")
        if not isinstance(anno_id, str) or not anno_id:
            raise InputError("a machine annotation has no id", where=canvas_id, pointer="/id")
        if target_canvas(annotation) != canvas_id:
            raise EnricherError(f"annotation {anno_id} targets another canvas than {canvas_id}", where=anno_id)
        incoming.setdefault(anno_id, annotation)  # the same id twice is the same detection
    return incoming


def held(row: Mapping) -> reconcile.Held:
    """What reconcile needs of a stored annotation ROW (its region from the columns, not the document)."""
    box = None if row["box_x"] is None else (row["box_x"], row["box_y"], row["box_w"], row["box_h"])
    return reconcile.Held(row["id"], row["origin"], row["model_sha256"], row["review_state"], bool(row["deleted"]),
                          row["document"], row["created"], box, row["concept"])


def apply_rerun(store: Any, db: Any, key: str, canvas_id: str, model_sha256: str, incoming: dict[str, dict],
                rows: dict[str, Mapping], stamp: str) -> dict[str, int]:
    """Plan a re-run from the canvas's live ROWS and the stored rows of the incoming ids, and apply it
    with the backend's row writers (``_insert``, ``_rewrite``, ``_tombstone`` on DB); return the counts."""
    live = [held(row) for row in rows.values() if row["canvas_id"] == canvas_id and row["key"] == key
            and row["role"] == "annotation" and not row["deleted"]]
    by_id = {anno_id: held(rows[anno_id]) for anno_id in incoming if anno_id in rows}
    plan = reconcile.plan(incoming, live, by_id, model_sha256, stamp)
    for document, tombstone in plan.create:
        if tombstone is None:
            store._insert(db, key, canvas_id, document, "machine", None, model_sha256, stamp,
                          review_state="pending", concept=class_of(document))
        else:
            store._rewrite(db, rows[tombstone.id], document, origin="machine", creator=None, stamp=stamp,
                           kind="Create", review_state="pending", concept=class_of(document))
    for kept, document in plan.update:
        store._rewrite(db, rows[kept.id], document, origin="machine", creator=None, stamp=stamp, kind="Update",
                       concept=class_of(document))
    for retired in plan.retire:
        store._tombstone(db, rows[retired.id], "machine", stamp)
    return plan.counts


def check_judgement(judgement: str, verdict: dict) -> None:
    """Raise InputError when JUDGEMENT is not a verdict."""
    if judgement not in (*STATES[1:], "exhaustive"):
        raise InputError(f"{judgement!r} is not a verdict", where=verdict.get("id"))


def check_verdict_target(row: Mapping | None, key: str, target: str, version: str | None) -> None:
    """Raise InputError unless ROW is a machine annotation of container KEY, StaleVersion when it was
    deleted or changed since VERSION (review.version_of of the judged document)."""
    if row is None or row["key"] != key or row["role"] != "annotation" or row["model_sha256"] is None:
        raise InputError(f"{target} is not a machine annotation of this manifest", where=target,
                         pointer="/target/source")
    if row["deleted"]:
        raise StaleVersion(f"annotation {target} was deleted after the version judged", where=target)
    current = version_of(json.loads(row["document"]))
    if version != current:
        raise StaleVersion(f"the verdict judges the version of {version!r}, but annotation {target} "
                           f"has changed since: its current version is of {current}", where=target)


def job_fields(job_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The columns to set for ``set_job``: a finished state stamps ``finished``, manifests as JSON.
    Raises TypeError for an unknown field, InputError for an unknown state."""
    unknown = set(fields) - set(JOB_FIELDS)
    if unknown:
        raise TypeError(f"unknown job fields: {', '.join(sorted(unknown))}")
    state = fields.get("state")
    if state is not None and state not in JOB_STATES:
        raise InputError(f"unknown job state {state!r}", where=job_id)
    if state in FINISHED_STATES:
        fields.setdefault("finished", now())
    if "manifests" in fields:
        fields["manifests"] = json.dumps(list(fields["manifests"]))
    if fields.get("provenance") is not None:
        fields["provenance"] = json.dumps(fields["provenance"], ensure_ascii=False)
    return fields


def job_record(row: Mapping, errors: list[dict], skipped: list[dict]) -> StoredJob:
    """The job of a jobs ROW with its ``done`` count, its per-canvas ERRORS and the canvases it SKIPPED."""
    return StoredJob(
        id=row["id"], state=row["state"], params=json.loads(row["params"]), total=row["total"], done=row["done"],
        errors=errors, skipped=skipped, manifests=json.loads(row["manifests"]), error=row["error"], created=row["created"],
        provenance=json.loads(row["provenance"]) if row["provenance"] else None,
        started=row["started"], finished=row["finished"],
    )


def by_name(models: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """(SHA-256, weights name) pairs sorted by name, the unnamed ones first."""
    return sorted(models, key=lambda m: (m[1] is not None, m[1] or "", m[0]))


def stamped(activities: Sequence[tuple[str, str, str, str]], position: int, end_time: str) -> Iterator[tuple]:
    """(position, type, object id, object type, time) of activities appended from POSITION, each stamped
    no earlier than the one before it (END_TIME: the last one's)."""
    for kind, object_id, object_type, time in activities:
        end_time = max(end_time, time)  # the log's clock may step back a second between writers
        yield position, kind, object_id, object_type, end_time
        position += 1


def take_units(
    buckets: Sequence[tuple[str, float, float]], held: Mapping[str, tuple[float, float]], now: float
) -> tuple[list[tuple[str, float, float, float]], tuple[str, float] | None]:
    """One unit from each token bucket (name, refill per second, capacity; a new one is full) whose
    stored (tokens, updated) HELD gives, at time NOW (seconds): the levels to store (name, tokens,
    updated, full_at) and None when every bucket holds a unit; else no levels and the bucket to wait
    longest for with the seconds until it holds one."""
    levels, waits = [], []
    for name, rate, capacity in buckets:
        if name not in held:
            tokens, at = capacity, now
        else:  # a clock that went back refills nothing
            stored, updated = held[name]
            tokens, at = min(capacity, stored + max(0.0, now - updated) * rate), max(now, updated)
        if tokens < 1:
            waits.append((name, (1 - tokens) / rate))
        levels.append((name, tokens - 1, at, at + (capacity - tokens + 1) / rate))
    if waits:
        return [], max(waits, key=lambda wait: wait[1])
    return levels, None


def job_outcome(total: int, failed: int, skipped: int, first_error: str | None) -> tuple[str, str | None]:
    """The state and error a job ends in once all its TOTAL canvases are finished, FAILED of them with an
    error (FIRST_ERROR the earliest) and SKIPPED with nothing to look at: failed when every canvas it
    looked at failed, else done."""
    if failed and failed >= total - skipped:
        return "failed", f"every canvas failed; the first: {first_error}"
    return "done", None


def motivation_of(document: Mapping) -> str:
    """An annotation's first motivation, without the ``oa:`` prefix (what a search filters on)."""
    motivation = document.get("motivation")
    if isinstance(motivation, list):
        motivation = motivation[0] if motivation else None
    return motivation.removeprefix("oa:") if isinstance(motivation, str) else ""


def search_rows(seq: int, key: str, document: Mapping, *, origin: str, role: str, review_state: str | None,
                concept: str | None, deleted: bool) -> list[tuple[str, str, str, int]]:
    """The (key, term, motivation, seq) rows of an annotation: none unless the public sees it."""
    if deleted or role != "annotation" or (review_state or "pending") in HIDDEN:
        return []
    motivation = motivation_of(document)
    return [(key, term, motivation, seq) for term in index_terms(document, concept, origin)]
