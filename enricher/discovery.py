"""IIIF Change Discovery 1.0 (level 2) over the store's change log: an OrderedCollection whose pages
list Create, Update and Delete activities, oldest first, on the enriched manifests
({base}{mid}/manifest.json) and the annotation pages of their canvases ({base}{mid}/pages/{n}.json).

The activities are derived from the annotation change log by a change-log follower
(``ChangeDiscovery``, enricher.follow) and written once into the store, so every activity keeps its
position for good: a page of the stream never changes once it is full, and a harvester resumes from
the page it reached. ``sync`` appends what the log gained since the follower's stored position; each
batch runs in one write transaction that re-reads that position, so two processes syncing at once
never append a change twice. The read functions only read.

What the activities mean:
- an annotation page is published while its canvas has at least one live annotation: the first
  annotation makes a Create, later changes an Update, and the last one going away a Delete (the URL
  still answers with an empty page, as for every canvas, but there is nothing left to harvest);
  annotations coming back after that make a new Create.
- a manifest gets a Create with the first annotation change on any of its canvases and an Update with
  every later one; manifests are never deleted (the store keeps them).
- the changes one sync round reads (up to BATCH of them) are coalesced: one activity per page and
  manifest, stamped with the time of the last change to it, pages before their manifest. Times never go
  backwards along the stream.
- a change on a canvas the stored manifest does not list updates the manifest only; a change in a
  container whose manifest is not stored makes no activity (there is nothing to link to).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import EnricherError, NotFound
from .follow import StoredPosition, follow
from .manifest import parse_stored
from .store import Change, Store
from .urls import activity_collection_url, activity_page_url, manifest_url, page_url

CONTEXT = "http://iiif.io/api/discovery/1/context.json"
MEDIA_TYPE = f'application/ld+json;profile="{CONTEXT}"'
BATCH = 2000  # change-log rows per sync transaction: the write lock is held for one batch only

@dataclass(frozen=True)
class _Event:
    seq: int  # the last change-log entry that touched the object
    order: int  # pages (0) before their manifest (1)
    type: str
    object_id: str
    object_type: str
    time: str


def _ref(url: str, kind: str) -> dict:
    return {"id": url, "type": kind}


class ChangeDiscovery(StoredPosition):
    """The change-log consumer that appends the activities; BASE is the public base URL (ending in a
    slash) the object ids are built on."""

    name = "discovery"

    def __init__(self, base: str):
        self.base = base

    def apply(self, store: Store, changes: Sequence[Change]) -> None:
        """Append the activities of CHANGES and move the stored position, in one transaction."""
        with store.transaction():  # re-read inside: another process may have synced meanwhile
            position = self.position(store)
            fresh = [change for change in changes if change.seq > position]
            if fresh:
                store.append_activities(_events(store, self.base, fresh))
                store.move_cursor(self.name, fresh[-1].seq)


def sync(store: Store, base: str) -> int:
    """Append the activities of every change logged since the last sync; return how many changes that was.

    BASE is the public base URL (ending in a slash) the object ids are built on.
    """
    return follow(store, ChangeDiscovery(base), BATCH)


def _events(store: Store, base: str, changes: Sequence[Change]) -> list[tuple[str, str, str, str]]:
    """Apply CHANGES to the membership Change Discovery keeps and return one activity (type, object
    id, object type, time) per page and manifest they touch, in the order of the log."""
    pages: dict[tuple[str, str], tuple[int, str]] = {}
    manifests: dict[str, tuple[int, str]] = {}
    for change in changes:
        mark = (change.seq, change.time)
        old = store.discovery_member(change.anno_id)
        if old is not None:
            pages[old] = mark
            manifests[old[0]] = mark
        store.set_discovery_member(change.anno_id, None if change.kind == "Delete" else (change.key, change.canvas_id))
        pages[(change.key, change.canvas_id)] = mark
        manifests[change.key] = mark

    indexes = {key: _canvas_indexes(store, key) for key in manifests}
    events = []
    for (key, canvas_id), (seq, time) in pages.items():
        live = store.discovery_page_live(key, canvas_id)
        for index in (indexes[key] or {}).get(canvas_id, ()):
            url = page_url(base, key, index)
            kind = _transition(store, url, live)
            if kind:
                events.append(_Event(seq, 0, kind, url, "AnnotationPage", time))
    for key, (seq, time) in manifests.items():
        if indexes[key] is not None:
            url = manifest_url(base, key)
            events.append(_Event(seq, 1, _transition(store, url, True), url, "Manifest", time))
    events.sort(key=lambda e: (e.seq, e.order, e.object_id))
    return [(e.type, e.object_id, e.object_type, e.time) for e in events]


def _canvas_indexes(store: Store, key: str) -> dict[str, list[int]] | None:
    """Map each canvas id of stored manifest KEY to its positions; None when it cannot be read."""
    parsed = parse_stored(store.manifest(key), "change discovery")
    if parsed is None:
        return None
    indexes: dict[str, list[int]] = {}
    for canvas in parsed.canvases:
        indexes.setdefault(canvas.id, []).append(canvas.index)
    return indexes


def _transition(store: Store, url: str, live: bool) -> str | None:
    """The activity that takes URL to LIVE (None: it stays unpublished), recording the new state."""
    published = store.set_published(url, live)
    if live:
        return "Update" if published else "Create"
    return "Delete" if published else None


def total(store: Store) -> int:
    """Return how many activities the stream holds."""
    return store.activity_count()


def _last_page(count: int, page_size: int) -> int:
    return max(count - 1, 0) // page_size


def _check(page_size: int) -> None:
    if page_size < 1:
        raise EnricherError(f"the page size must be at least 1, not {page_size}")


def collection(store: Store, base: str, page_size: int, *, rights: str | None = None) -> dict:
    """Return the OrderedCollection of every change, with ``first``, ``last`` and ``totalItems``.

    BASE is the public base URL; PAGE_SIZE the activities per page (keep it fixed: pages are numbered
    by it); RIGHTS the licence URL of the published data, when given. With no activity yet, ``first``
    and ``last`` name page 0, which is then empty.
    """
    _check(page_size)
    count = total(store)
    document = {"@context": CONTEXT, "id": activity_collection_url(base), "type": "OrderedCollection",
                "totalItems": count}
    if rights:
        document["rights"] = rights
    document["first"] = _ref(activity_page_url(base, 0), "OrderedCollectionPage")
    document["last"] = _ref(activity_page_url(base, _last_page(count, page_size)), "OrderedCollectionPage")
    return document


def page(store: Store, base: str, n: int, page_size: int) -> dict:
    """Return page N of the collection: its activities oldest first, with ``partOf``, ``startIndex``,
    ``prev`` and ``next``. A page with ``next`` is full and never changes again (cache it for good).

    Raises NotFound for a page past the last one.
    """
    _check(page_size)
    missing = NotFound(f"the change stream has no page {n}", where=activity_page_url(base, n))
    if n < 0:
        raise missing
    start = n * page_size
    # one row past the page says whether a next page exists, from the same read as the page
    rows = store.activities(start, start + page_size)
    if n > 0 and not rows:
        raise missing
    document = {
        "@context": CONTEXT,
        "id": activity_page_url(base, n),
        "type": "OrderedCollectionPage",
        "partOf": _ref(activity_collection_url(base), "OrderedCollection"),
        "startIndex": start,
    }
    if n > 0:
        document["prev"] = _ref(activity_page_url(base, n - 1), "OrderedCollectionPage")
    if len(rows) > page_size:
        document["next"] = _ref(activity_page_url(base, n + 1), "OrderedCollectionPage")
    document["orderedItems"] = [
        {"type": row.type, "object": _ref(row.object_id, row.object_type), "endTime": row.end_time}
        for row in rows[:page_size]
    ]
    return document
