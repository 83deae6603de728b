"""Manifests (the containers) and annotations: create, replace (compare-and-swap on the ETag under a
row lock), delete (tombstones), read, page and count. Every write logs its change (changes.py) in its
transaction; the rules are the SQLite backend's (enricher/store/sqlite/annotations.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.selectable import CTE

from ...clock import now
from ...errors import InputError
from ...review import HIDDEN, class_of
from ..columns import classes_column, region_columns
from ..records import (
    ClassCount,
    StoredAnnotation,
    StoredManifest,
    container_etag,
    make_etag,
    target_canvas,
)
from ..sqlite.annotations import annotation_record
from ..tables import annotations as A
from ..tables import class_counts, container_counts, manifests, page_blocks, search_index
from ..writes import (
    PAGE_BLOCK,
    check_current,
    check_page,
    container_name,
    new_document,
    revised_document,
)

# in the order of StoredAnnotation's fields (sqlite.annotations.ANNOTATION_COLUMNS)
RECORD = (A.c.id, A.c.key, A.c.canvas_id, A.c.document, A.c.etag, A.c.origin, A.c.created, A.c.modified, A.c.deleted,
          A.c.seq, A.c.creator, A.c.version, A.c.model_sha256, A.c.role, A.c.review_state, A.c.concept, A.c.target_id)
B = page_blocks.c
REGION = ("box_x", "box_y", "box_w", "box_h", "score")


class Annotations:
    """Manifests and annotations (a mixin of PostgresStore)."""

    # manifests (containers)

    def save_manifest(self, key: str, manifest_id: str, url: str, label: str, document: dict) -> None:
        """Record (or refresh) a source manifest under its key."""
        values = {"key": key, "manifest_id": manifest_id, "url": url, "label": label,
                  "document": json.dumps(document, ensure_ascii=False), "saved": now()}
        statement = insert(manifests).values(values)
        with self.transaction() as db:
            db.execute(statement.on_conflict_do_update(
                index_elements=["key"], set_={name: statement.excluded[name] for name in values if name != "key"}
            ))

    def manifest(self, key: str) -> StoredManifest | None:
        """Return the manifest stored under KEY, or None."""
        row = self._first(select(manifests).where(manifests.c.key == key))
        return _manifest(row) if row else None

    def manifests(self) -> list[StoredManifest]:
        """Return every stored manifest, oldest first."""
        return [_manifest(row) for row in self._rows(select(manifests).order_by(manifests.c.number))]

    def manifest_keys(self) -> list[str]:
        """Return the key of every stored manifest, oldest first, without reading their documents."""
        return [row[0] for row in self._rows(select(manifests.c.key).order_by(manifests.c.number))]

    def create(self, key: str, annotation: dict, creator: str) -> StoredAnnotation:
        """Store an annotation a person posted (its ``id`` already assigned by the caller).

        Raises InputError without id or target, or when the id is taken.
        """
        document, anno_id, canvas_id = new_document(annotation)
        with self.transaction() as db:
            self._insert(db, key, canvas_id, document, "human", creator, None, now(), concept=class_of(document))
        return self.get(anno_id)

    def update(self, anno_id: str, annotation: dict, if_match: str, creator: str) -> StoredAnnotation:
        """Replace an annotation if IF_MATCH still names its current ETag (the row is locked meanwhile).

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
        """Turn an annotation into a tombstone. Raises NotFound, Gone, PreconditionFailed."""
        with self.transaction() as db:
            row = self._current(db, anno_id, if_match)
            self._tombstone(db, row, "human" if row["origin"] == "human" else "edited", now())

    def get(self, anno_id: str) -> StoredAnnotation | None:
        """Return an annotation by id, tombstones included (``deleted`` True), or None."""
        row = self._first(select(*RECORD).where(A.c.id == anno_id))
        return annotation_record(row) if row else None

    def page(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[StoredAnnotation]:
        """Return live annotations (ROLE ``verdict``: verdicts) of a container (None: all) in stable
        order, LIMIT from OFFSET."""
        return [annotation_record(row) for row in self._page_rows(RECORD, key, offset, limit, role)]

    def page_texts(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[str]:
        """Return the stored JSON texts of the same page as ``page``."""
        return [row[0] for row in self._page_rows((A.c.document,), key, offset, limit, role)]

    def _page_rows(self, columns: tuple, key: str | None, offset: int, limit: int, role: str) -> list[Row]:
        check_page(offset, limit, role)
        live = (A.c.deleted == 0, A.c.role == role)
        container = () if key is None else (A.c.key == key,)
        start = page_start_query(key, offset, role)
        # one statement, one snapshot: the blocks say in which block the page starts; the skip within it
        # reads the partial index only (not the rows' documents), then the page reads its own rows
        first = (select(A.c.seq).where(*live, *container, A.c.seq >= select(start.c.seq).scalar_subquery())
                 .order_by(A.c.seq).offset(select(start.c.skip).scalar_subquery()).limit(1).scalar_subquery())
        return self._rows(select(*columns).where(*live, *container, A.c.seq >= first).order_by(A.c.seq).limit(limit))

    def count(self, key: str | None, role: str = "annotation") -> int:
        """Return how many live annotations (ROLE ``verdict``: verdicts) a container (None: all) holds."""
        statement = select(func.coalesce(func.sum(container_counts.c.live), 0)).where(container_counts.c.role == role)
        if key is not None:
            statement = statement.where(container_counts.c.key == key)
        return int(self._scalar(statement))

    def class_counts(self) -> list[ClassCount]:
        """Return the live annotations (not verdicts) per model class and model, those with none left out."""
        counts = class_counts.c
        rows = self._rows(select(counts.concept, counts.model_sha256, counts.live).where(counts.live > 0)
                          .order_by(counts.concept, counts.model_sha256))
        return [ClassCount(concept, model or None, live) for concept, model, live in rows]

    def canvas_annotations(self, key: str, canvas_id: str, *, public: bool = False) -> list[StoredAnnotation]:
        """Return the live annotations (not verdicts) of one canvas of a container, in stable order;
        PUBLIC: without the machine annotations curators rejected or replaced."""
        statement = select(*RECORD).where(A.c.key == key, A.c.canvas_id == canvas_id, A.c.deleted == 0,
                                          A.c.role == "annotation")
        if public:
            statement = statement.where(func.coalesce(A.c.review_state, "pending").not_in(HIDDEN))
        return [annotation_record(row) for row in self._rows(statement.order_by(A.c.seq))]

    def container_etag(self, key: str | None, role: str = "annotation") -> str:
        """Return a strong ETag of a container (None: all) that changes with every change to its contents."""
        return container_etag(container_name(key, role), self.last_change(key))

    def _current(self, db: Connection, anno_id: str, if_match: str | None) -> Mapping:
        """The row of a live annotation, locked until the transaction ends; checked against IF_MATCH."""
        row = db.execute(select(A).where(A.c.id == anno_id).with_for_update()).mappings().first()
        return check_current(row, anno_id, if_match)

    def _insert(self, db, key, canvas_id, document, origin, creator, model_sha256, stamp, *,
                role="annotation", review_state=None, concept=None, target_id=None) -> None:
        """Insert a new row; raise InputError when the id is taken (also by a writer racing this one)."""
        values = {
            "id": document["id"], "key": key, "canvas_id": canvas_id, "model_sha256": model_sha256, "origin": origin,
            "creator": creator, "document": json.dumps(document, ensure_ascii=False), "version": 1,
            "etag": make_etag(document, 1), "created": stamp, "modified": stamp, "role": role,
            "review_state": review_state, "concept": concept, "target_id": target_id,
            **dict(zip(REGION, region_columns(document))), "classes": classes_column(document, review_state),
        }
        inserted = db.execute(insert(A).values(values).on_conflict_do_nothing(index_elements=["id"]).returning(A.c.seq))
        seq = inserted.scalar()
        if seq is None:
            raise InputError(f"annotation {document['id']} already exists", where=document["id"], pointer="/id")
        self._index(db, seq, key, document, fresh=True, origin=origin, role=role, review_state=review_state,
                    concept=concept, deleted=False)
        self._log(db, "Create", document["id"], key, canvas_id, stamp)

    def _rewrite(self, db, row, document, *, origin, creator, stamp, kind, review_state=None, concept=None) -> None:
        version = row["version"] + 1
        canvas_id = target_canvas(document) if row["role"] == "annotation" else row["canvas_id"]
        db.execute(update(A).where(A.c.seq == row["seq"]).values(
            document=json.dumps(document, ensure_ascii=False), version=version, etag=make_etag(document, version),
            origin=origin, creator=func.coalesce(creator, A.c.creator), canvas_id=canvas_id, modified=stamp, deleted=0,
            review_state=func.coalesce(review_state, A.c.review_state), concept=func.coalesce(concept, A.c.concept),
            **dict(zip(REGION, region_columns(document))),
        ))
        self._index(db, row["seq"], row["key"], document, origin=origin, role=row["role"],
                    review_state=review_state or row["review_state"], concept=concept or row["concept"], deleted=False)
        self._log(db, kind, row["id"], row["key"], canvas_id, stamp)

    def _tombstone(self, db, row, origin: str, stamp: str) -> None:
        version = row["version"] + 1
        db.execute(update(A).where(A.c.seq == row["seq"]).values(
            deleted=1, version=version, etag=make_etag(json.loads(row["document"]), version), origin=origin,
            modified=stamp,
        ))
        db.execute(delete(search_index).where(search_index.c.seq == row["seq"]))
        self._log(db, "Delete", row["id"], row["key"], row["canvas_id"], stamp)


def page_start_query(key: str | None, offset: int, role: str) -> CTE:
    """The first seq of the block the live row at OFFSET of a container (None: all) lies in, and how
    many of the container's live rows precede it there (writes.page_start, in SQL); no row past the end."""
    blocks = select(B.block, B.live).where(B.role == role, B.key == key) if key is not None else (
        select(B.block, func.sum(B.live).label("live")).where(B.role == role).group_by(B.block))
    blocks = blocks.subquery("blocks")
    upto = func.sum(blocks.c.live).over(order_by=blocks.c.block)
    running = select(blocks.c.block, blocks.c.live, upto.label("upto")).subquery("running")
    return (select((running.c.block * PAGE_BLOCK).label("seq"),
                   (offset - running.c.upto + running.c.live).label("skip"))
            .where(running.c.upto > offset).order_by(running.c.block).limit(1).cte("start"))


def _manifest(row: Row) -> StoredManifest:
    return StoredManifest(row.key, row.manifest_id, row.url, row.label, json.loads(row.document), row.saved)
