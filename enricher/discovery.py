"""IIIF Change Discovery 1.0 (level 2) over the store's change log: an OrderedCollection whose pages
list Create, Update and Delete activities, oldest first, on the enriched manifests
({base}{mid}/manifest.json) and the annotation pages of their canvases ({base}{mid}/pages/{n}.json).

The activities are derived from the annotation change log and written once into tables of their own
in the store's SQLite file (``discovery_*``, created on first use), so every activity keeps its
position for good: a page of the stream never changes once it is full, and a harvester resumes from
the page it reached. ``sync`` appends what the log gained since the last call; the read functions
call it first, so every committed write shows. Several processes may read at once: each sync runs in
one write transaction and starts from the position the previous one stored.

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

import logging
import sqlite3
from dataclasses import dataclass

from .errors import EnricherError, NotFound
from .manifest import parse_manifest
from .store import Store
from .urls import activity_collection_url, activity_page_url, manifest_url, page_url

log = logging.getLogger(__name__)

CONTEXT = "http://iiif.io/api/discovery/1/context.json"
MEDIA_TYPE = f'application/ld+json;profile="{CONTEXT}"'
BATCH = 2000  # change-log rows per sync transaction: the write lock is held for one batch only

TABLES = (
    """CREATE TABLE IF NOT EXISTS discovery_activities (
        position INTEGER PRIMARY KEY, type TEXT NOT NULL, object_id TEXT NOT NULL,
        object_type TEXT NOT NULL, end_time TEXT NOT NULL)""",
    # where each live annotation is, so a change that moves one to another canvas touches both pages
    """CREATE TABLE IF NOT EXISTS discovery_members (
        anno_id TEXT PRIMARY KEY, key TEXT NOT NULL, canvas_id TEXT NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS discovery_members_by_canvas ON discovery_members (key, canvas_id)",
    # objects whose last activity was a Create or an Update
    "CREATE TABLE IF NOT EXISTS discovery_published (object_id TEXT PRIMARY KEY) WITHOUT ROWID",
    """CREATE TABLE IF NOT EXISTS discovery_cursor (
        one INTEGER PRIMARY KEY CHECK (one = 0), seq INTEGER NOT NULL)""",
)


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


def _ensure(store: Store) -> None:
    db = store.db
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'discovery_cursor'").fetchone() is None:
        with store.transaction() as db:
            for statement in TABLES:
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO discovery_cursor (one, seq) VALUES (0, 0)")


def _cursor(db: sqlite3.Connection) -> int:
    return db.execute("SELECT seq FROM discovery_cursor WHERE one = 0").fetchone()[0]


def sync(store: Store, base: str) -> int:
    """Append the activities of every change logged since the last sync; return how many were added.

    BASE is the public base URL (ending in a slash) the object ids are built on.
    """
    _ensure(store)
    added = 0
    while store.last_change() > _cursor(store.db):
        with store.transaction() as db:  # re-read inside: another process may have synced meanwhile
            changes = store.changes(_cursor(db), BATCH)
            if changes:
                added += _append(db, _events(db, store, base, changes))
                db.execute("UPDATE discovery_cursor SET seq = ? WHERE one = 0", (changes[-1].seq,))
    return added


def _events(db: sqlite3.Connection, store: Store, base: str, changes) -> list[_Event]:
    """Apply CHANGES to the membership table and return one event per page and manifest they touch."""
    pages: dict[tuple[str, str], tuple[int, str]] = {}
    manifests: dict[str, tuple[int, str]] = {}
    for change in changes:
        mark = (change.seq, change.time)
        old = db.execute("SELECT key, canvas_id FROM discovery_members WHERE anno_id = ?", (change.anno_id,)).fetchone()
        if old is not None:
            pages[(old[0], old[1])] = mark
            manifests[old[0]] = mark
        if change.kind == "Delete":
            db.execute("DELETE FROM discovery_members WHERE anno_id = ?", (change.anno_id,))
        else:
            db.execute(
                "INSERT OR REPLACE INTO discovery_members (anno_id, key, canvas_id) VALUES (?, ?, ?)",
                (change.anno_id, change.key, change.canvas_id),
            )
        pages[(change.key, change.canvas_id)] = mark
        manifests[change.key] = mark

    indexes = {key: _canvas_indexes(store, key) for key in manifests}
    events = []
    for (key, canvas_id), (seq, time) in pages.items():
        live = db.execute(
            "SELECT 1 FROM discovery_members WHERE key = ? AND canvas_id = ? LIMIT 1", (key, canvas_id)
        ).fetchone() is not None
        for index in (indexes[key] or {}).get(canvas_id, ()):
            url = page_url(base, key, index)
            kind = _transition(db, url, live)
            if kind:
                events.append(_Event(seq, 0, kind, url, "AnnotationPage", time))
    for key, (seq, time) in manifests.items():
        if indexes[key] is not None:
            url = manifest_url(base, key)
            events.append(_Event(seq, 1, _transition(db, url, True), url, "Manifest", time))
    return sorted(events, key=lambda e: (e.seq, e.order, e.object_id))


def _canvas_indexes(store: Store, key: str) -> dict[str, list[int]] | None:
    """Map each canvas id of stored manifest KEY to its positions; None when it cannot be read."""
    stored = store.manifest(key)
    if stored is None:
        return None
    try:
        parsed = parse_manifest(stored.document, stored.url)
    except EnricherError as exc:
        log.warning("change discovery leaves manifest %s out: %s", key, exc)
        return None
    indexes: dict[str, list[int]] = {}
    for canvas in parsed.canvases:
        indexes.setdefault(canvas.id, []).append(canvas.index)
    return indexes


def _transition(db: sqlite3.Connection, url: str, live: bool) -> str | None:
    """The activity that takes URL to LIVE (None: it stays unpublished), recording the new state."""
    published = db.execute("SELECT 1 FROM discovery_published WHERE object_id = ?", (url,)).fetchone() is not None
    if live:
        db.execute("INSERT OR IGNORE INTO discovery_published (object_id) VALUES (?)", (url,))
        return "Update" if published else "Create"
    if published:
        db.execute("DELETE FROM discovery_published WHERE object_id = ?", (url,))
        return "Delete"
    return None


def _append(db: sqlite3.Connection, events: list[_Event]) -> int:
    last = db.execute("SELECT position, end_time FROM discovery_activities ORDER BY position DESC LIMIT 1").fetchone()
    position, end_time = (last[0] + 1, last[1]) if last else (0, "")
    for event in events:
        end_time = max(end_time, event.time)  # the log's clock may step back a second between writers
        db.execute(
            """INSERT INTO discovery_activities (position, type, object_id, object_type, end_time)
            VALUES (?, ?, ?, ?, ?)""",
            (position, event.type, event.object_id, event.object_type, end_time),
        )
        position += 1
    return len(events)


def total(store: Store, base: str) -> int:
    """Return how many activities the stream holds (after a sync)."""
    sync(store, base)
    last = store.db.execute("SELECT max(position) FROM discovery_activities").fetchone()[0]
    return 0 if last is None else last + 1


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
    count = total(store, base)
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
    sync(store, base)
    start = n * page_size
    # one row past the page says whether a next page exists, from the same read as the page
    rows = store.db.execute(
        """SELECT type, object_id, object_type, end_time FROM discovery_activities
        WHERE position >= ? AND position <= ? ORDER BY position""",
        (start, start + page_size),
    ).fetchall()
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
        {"type": kind, "object": _ref(object_id, object_type), "endTime": end_time}
        for kind, object_id, object_type, end_time in rows[:page_size]
    ]
    return document
