"""Manifests (the containers) and annotations: create, replace (compare-and-swap on the ETag), delete
(tombstones), read, page and count. Every write logs its change (changes.py) in its transaction.

Annotation origins: ``machine`` (written by a job), ``human`` (posted by a person) and ``edited`` (a
machine annotation a person changed or deleted). Re-runs replace only ``machine`` ones (curation.py).
"""

from __future__ import annotations

import json
import sqlite3

from ...clock import now
from ...errors import InputError
from ...review import HIDDEN, class_of
from ..columns import classes_column, region_columns
from ..records import (
    ROLES,
    ClassCount,
    StoredAnnotation,
    StoredManifest,
    container_etag,
    make_etag,
    target_canvas,
)
from ..writes import (
    check_current,
    check_page,
    container_name,
    new_document,
    page_start,
    revised_document,
)

ANNOTATION_COLUMNS = (
    "id, key, canvas_id, document, etag, origin, created, modified, deleted, seq, creator, version, model_sha256, "
    "role, review_state, concept, target_id"
)


def _page_seqs_sql(role: str) -> dict[str, str]:
    # the role is a literal, so SQLite sees that the role's partial index covers the query
    live = f"deleted = 0 AND role = '{role}'"
    return {
        "key": f"SELECT seq FROM annotations WHERE key = ? AND {live} AND seq >= ? ORDER BY seq LIMIT ? OFFSET ?",
        "all": f"SELECT seq FROM annotations WHERE {live} AND seq >= ? ORDER BY seq LIMIT ? OFFSET ?",
    }


# A page: the container's blocks say in which block of seqs it starts (writes.page_start); from that
# block's first seq, skip under PAGE_BLOCK entries of the covering partial index, then read only the
# rows of the page.
SEQS_SQL = {role: _page_seqs_sql(role) for role in ROLES}
BLOCKS_SQL = {
    "key": "SELECT block, live FROM page_blocks WHERE role = ? AND key = ? ORDER BY block",
    "all": "SELECT block, sum(live) FROM page_blocks WHERE role = ? GROUP BY block ORDER BY block",
}


class Annotations:
    """Manifests and annotations (a mixin of SQLiteStore)."""

    # manifests (containers)

    def save_manifest(self, key: str, manifest_id: str, url: str, label: str, document: dict) -> None:
        """Record (or refresh) a source manifest under its key."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO manifests (key, manifest_id, url, label, document, saved, number)
                VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(number), 0) + 1 FROM manifests))
                ON CONFLICT (key) DO UPDATE SET manifest_id = excluded.manifest_id, url = excluded.url,
                label = excluded.label, document = excluded.document, saved = excluded.saved""",
                (key, manifest_id, url, label, json.dumps(document, ensure_ascii=False), now()),
            )

    def manifest(self, key: str) -> StoredManifest | None:
        """Return the manifest stored under KEY, or None."""
        row = self.db.execute("SELECT * FROM manifests WHERE key = ?", (key,)).fetchone()
        return _manifest(row) if row else None

    def manifests(self) -> list[StoredManifest]:
        """Return every stored manifest, oldest first."""
        return [_manifest(row) for row in self.db.execute("SELECT * FROM manifests ORDER BY number")]

    def manifest_keys(self) -> list[str]:
        """Return the key of every stored manifest, oldest first, without reading their documents."""
        return [row[0] for row in self.db.execute("SELECT key FROM manifests ORDER BY number")]

    def create(self, key: str, annotation: dict, creator: str) -> StoredAnnotation:
        """Store an annotation a person posted (its ``id`` already assigned by the caller).

        Adds ``created`` when absent; CREATOR is recorded with the row (the caller shapes the document's
        own ``creator``). Raises InputError without id or target, or when the id is taken.
        """
        document, anno_id, canvas_id = new_document(annotation)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM annotations WHERE id = ?", (anno_id,)).fetchone():
                raise InputError(f"annotation {anno_id} already exists", where=anno_id, pointer="/id")
            self._insert(db, key, canvas_id, document, "human", creator, None, now(), concept=class_of(document))
        return self.get(anno_id)

    def update(self, anno_id: str, annotation: dict, if_match: str, creator: str) -> StoredAnnotation:
        """Replace an annotation if IF_MATCH still names its current ETag (atomic compare-and-swap).

        A machine annotation becomes ``edited``; ``modified`` is set, ``created`` kept.
        Raises NotFound, Gone, PreconditionFailed, InputError (an id in the body that differs).
        """
        stamp = now()
        with self.transaction() as db:
            row = self._current(db, anno_id, if_match)
            document, origin = revised_document(anno_id, annotation, row, stamp)
            self._rewrite(db, row, document, origin=origin, creator=creator, stamp=stamp, kind="Update",
                          concept=class_of(document))
        return self.get(anno_id)

    def delete(self, anno_id: str, if_match: str | None) -> None:
        """Turn an annotation into a tombstone (later reads give Gone); a re-run will not bring it back.

        Raises NotFound, Gone, PreconditionFailed (when IF_MATCH is given and stale).
        """
        with self.transaction() as db:
            row = self._current(db, anno_id, if_match)
            self._tombstone(db, row, "human" if row["origin"] == "human" else "edited", now())

    def get(self, anno_id: str) -> StoredAnnotation | None:
        """Return an annotation by id, tombstones included (``deleted`` True), or None."""
        row = self.db.execute(f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id = ?", (anno_id,)).fetchone()
        return annotation_record(row) if row else None

    def page(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[StoredAnnotation]:
        """Return live annotations (ROLE ``verdict``: verdicts) of a container (None: all) in stable order,
        LIMIT from OFFSET."""
        return [annotation_record(row) for row in self._page_rows(ANNOTATION_COLUMNS, key, offset, limit, role)]

    def page_texts(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[str]:
        """Return the stored JSON texts of the same page as ``page``, for writers that splice them unparsed.

        Only the document column is read: the columns stored after a document of kilobytes cost its
        overflow pages, four times the read of the documents alone.
        """
        return [row[0] for row in self._page_rows("document", key, offset, limit, role)]

    def _page_rows(self, columns: str, key: str | None, offset: int, limit: int, role: str) -> list[sqlite3.Row]:
        check_page(offset, limit, role)
        scope, container = ("all", ()) if key is None else ("key", (key,))
        with self._snapshot() as db:
            start = page_start(db.execute(BLOCKS_SQL[scope], (role, *container)), offset)
            if start is None or not limit:
                return []
            seq, skip = start
            seqs = [row[0] for row in db.execute(SEQS_SQL[role][scope], (*container, seq, limit, skip))]
            if not seqs:
                return []
            # the page is exactly the live rows (of the container) between its first and last seq
            where = f"deleted = 0 AND role = '{role}' AND seq BETWEEN ? AND ?" + ("" if key is None else " AND key = ?")
            return db.execute(f"SELECT {columns} FROM annotations WHERE {where} ORDER BY seq",
                              (seqs[0], seqs[-1], *container)).fetchall()

    def count(self, key: str | None, role: str = "annotation") -> int:
        """Return how many live annotations (ROLE ``verdict``: verdicts) a container (None: all) holds."""
        if key is None:
            sql, args = "SELECT coalesce(sum(live), 0) FROM container_counts WHERE role = ?", (role,)
        else:
            sql, args = "SELECT live FROM container_counts WHERE role = ? AND key = ?", (role, key)
        row = self.db.execute(sql, args).fetchone()
        return row[0] if row else 0

    def class_counts(self) -> list[ClassCount]:
        """Return the live annotations (not verdicts) per model class and model, those with none left out."""
        rows = self.db.execute("SELECT concept, model_sha256, live FROM class_counts WHERE live > 0 "
                               "ORDER BY concept, model_sha256")
        return [ClassCount(concept, model or None, live) for concept, model, live in rows]

    def canvas_annotations(self, key: str, canvas_id: str, *, public: bool = False) -> list[StoredAnnotation]:
        """Return the live annotations (not verdicts) of one canvas of a container, in stable order;
        PUBLIC: without the machine annotations curators rejected or replaced."""
        hidden = f" AND coalesce(review_state, 'pending') NOT IN {HIDDEN!r}" if public else ""
        # without the hint SQLite walks the container's partial index (every row of the manifest)
        rows = self.db.execute(
            f"""SELECT {ANNOTATION_COLUMNS} FROM annotations INDEXED BY annotations_by_canvas
            WHERE key = ? AND canvas_id = ? AND deleted = 0 AND role = 'annotation'{hidden} ORDER BY seq""",
            (key, canvas_id),
        )
        return [annotation_record(row) for row in rows]

    def container_etag(self, key: str | None, role: str = "annotation") -> str:
        """Return a strong ETag of a container (None: all) that changes with every change to its contents."""
        last = self.last_change(key)
        return container_etag(container_name(key, role), last)

    def _current(self, db: sqlite3.Connection, anno_id: str, if_match: str | None) -> sqlite3.Row:
        row = db.execute("SELECT * FROM annotations WHERE id = ?", (anno_id,)).fetchone()
        return check_current(row, anno_id, if_match)

    def _insert(self, db, key, canvas_id, document, origin, creator, model_sha256, stamp, *,
                role="annotation", review_state=None, concept=None, target_id=None) -> None:
        inserted = db.execute(
            """INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, creator, document, version,
            etag, created, modified, role, review_state, concept, target_id, box_x, box_y, box_w, box_h, score,
            classes) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                document["id"], key, canvas_id, model_sha256, origin, creator,
                json.dumps(document, ensure_ascii=False), make_etag(document, 1), stamp, stamp,
                role, review_state, concept, target_id, *region_columns(document), classes_column(document, review_state),
            ),
        )
        self._index(db, inserted.lastrowid, key, document, fresh=True, origin=origin, role=role,
                    review_state=review_state, concept=concept, deleted=False)
        self._log(db, "Create", document["id"], key, canvas_id, stamp)

    def _rewrite(self, db, row, document, *, origin, creator, stamp, kind, review_state=None, concept=None) -> None:
        version = row["version"] + 1
        canvas_id = target_canvas(document) if row["role"] == "annotation" else row["canvas_id"]
        db.execute(
            """UPDATE annotations SET document = ?, version = ?, etag = ?, origin = ?, creator = coalesce(?, creator),
            canvas_id = ?, modified = ?, deleted = 0, review_state = coalesce(?, review_state),
            concept = coalesce(?, concept), box_x = ?, box_y = ?, box_w = ?, box_h = ?, score = ? WHERE seq = ?""",
            (
                json.dumps(document, ensure_ascii=False), version, make_etag(document, version), origin, creator,
                canvas_id, stamp, review_state, concept, *region_columns(document), row["seq"],
            ),
        )
        self._index(db, row["seq"], row["key"], document, origin=origin, role=row["role"],
                    review_state=review_state or row["review_state"], concept=concept or row["concept"], deleted=False)
        self._log(db, kind, row["id"], row["key"], canvas_id, stamp)

    def _tombstone(self, db, row, origin: str, stamp: str) -> None:
        version = row["version"] + 1
        db.execute(
            "UPDATE annotations SET deleted = 1, version = ?, etag = ?, origin = ?, modified = ? WHERE seq = ?",
            (version, make_etag(json.loads(row["document"]), version), origin, stamp, row["seq"]),
        )
        db.execute("DELETE FROM search_index WHERE seq = ?", (row["seq"],))
        self._log(db, "Delete", row["id"], row["key"], row["canvas_id"], stamp)


def _manifest(row: sqlite3.Row) -> StoredManifest:
    return StoredManifest(
        row["key"], row["manifest_id"], row["url"], row["label"], json.loads(row["document"]), row["saved"]
    )



def annotation_record(row: sqlite3.Row) -> StoredAnnotation:
    # positional, in the order of ANNOTATION_COLUMNS and the dataclass fields
    return StoredAnnotation(*row[:8], bool(row[8]), *row[9:])

