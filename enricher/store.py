"""The SQLite system of record: manifests, annotations with ETags and tombstones, a change log, and jobs.

One file in WAL mode with a busy timeout; one connection per thread; every write runs inside
``BEGIN IMMEDIATE``, so a compare-and-swap on an ETag cannot race and a killed process loses at most the
transaction in flight. The schema grows by the ordered ``MIGRATIONS``; ``PRAGMA user_version`` counts
those applied.

Annotation origins: ``machine`` (written by a job), ``human`` (posted by a person) and ``edited`` (a
machine annotation a person changed or deleted). Re-runs replace only ``machine`` ones.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import EnricherError, Gone, InputError, NotFound, PreconditionFailed
from .review import (
    EXHAUSTIVE, HIDDEN, MATCH_IOU, STATES, StaleVersion, box_of, class_of, classes_reviewed, iou, state_iri,
    version_of,
)

BUSY_TIMEOUT_MS = 30_000
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")
JOB_FIELDS = ("state", "total", "manifests", "error", "started", "finished")
# A re-run stamps new times and knows no review state; an annotation that differs only there is unchanged.
VOLATILE = ("created", "modified", "reviewState")
PENDING = state_iri("pending")
ROLES = ("annotation", "verdict")

BACKFILL_BATCH = 5000  # rows per read while a migration fills new columns


def _region(document: dict) -> tuple[float | None, ...]:
    """The columns box_x, box_y, box_w, box_h and score of an annotation: its xywh region (canvas
    coordinates) and its confidence, None where it has none."""
    score = document.get("confidence")
    score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
    return (*(box_of(document) or (None,) * 4), score)


def _classes(document: dict, review_state: str | None) -> str | None:
    """The column classes: the class names an exhaustiveness statement names, one per line."""
    return "\n".join(classes_reviewed(document)) if review_state == EXHAUSTIVE else None


def _backfill_regions(db: sqlite3.Connection) -> None:
    """Fill the region, score and classes columns of existing rows, and the class of rows older than
    migration 4."""
    last = 0
    while rows := db.execute(
        """SELECT seq, document, review_state, concept IS NULL AND role = 'annotation' FROM annotations
        WHERE seq > ? ORDER BY seq LIMIT ?""", (last, BACKFILL_BATCH)
    ).fetchall():
        updates = []
        for seq, text, state, classless in rows:
            document = json.loads(text)
            updates.append((*_region(document), _classes(document, state), class_of(document) if classless else None, seq))
        db.executemany(
            """UPDATE annotations SET box_x = ?, box_y = ?, box_w = ?, box_h = ?, score = ?, classes = ?,
            concept = coalesce(concept, ?) WHERE seq = ?""",
            updates,
        )
        last = rows[-1][0]


# A step is SQL, or a function of the connection for what SQL cannot compute (parsing regions).
MIGRATIONS: tuple[tuple[str | Callable[[sqlite3.Connection], None], ...], ...] = (
    # 1: containers (manifests), annotations and the change log
    (
        """CREATE TABLE manifests (
            key TEXT PRIMARY KEY, manifest_id TEXT NOT NULL, url TEXT NOT NULL, label TEXT NOT NULL,
            document TEXT NOT NULL, saved TEXT NOT NULL)""",
        """CREATE TABLE annotations (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            key TEXT NOT NULL,
            canvas_id TEXT NOT NULL,
            model_sha256 TEXT,
            origin TEXT NOT NULL CHECK (origin IN ('machine', 'human', 'edited')),
            creator TEXT,
            document TEXT NOT NULL,
            version INTEGER NOT NULL,
            etag TEXT NOT NULL,
            created TEXT NOT NULL,
            modified TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)))""",
        # partial indexes: paging and counting walk live rows only, in seq order, without a table lookup
        "CREATE INDEX annotations_live_by_key ON annotations (key, seq) WHERE deleted = 0",
        "CREATE INDEX annotations_live ON annotations (seq) WHERE deleted = 0",
        "CREATE INDEX annotations_by_canvas ON annotations (key, canvas_id, model_sha256)",
        """CREATE TABLE changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('Create', 'Update', 'Delete')),
            anno_id TEXT NOT NULL, key TEXT NOT NULL, canvas_id TEXT NOT NULL)""",
        "CREATE INDEX changes_by_key ON changes (key, seq)",
    ),
    # 2: jobs and the canvases each has finished
    (
        """CREATE TABLE jobs (
            number INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
            params TEXT NOT NULL,
            total INTEGER NOT NULL DEFAULT 0,
            manifests TEXT NOT NULL DEFAULT '[]',
            error TEXT,
            created TEXT NOT NULL, started TEXT, finished TEXT)""",
        "CREATE INDEX jobs_by_state ON jobs (state, number)",
        """CREATE TABLE job_canvases (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            key TEXT NOT NULL, canvas_id TEXT NOT NULL, error TEXT, finished TEXT NOT NULL,
            PRIMARY KEY (job_id, key, canvas_id)) WITHOUT ROWID""",
    ),
    # 3: live annotations per container, kept by triggers, so a container's total costs one lookup
    (
        "CREATE TABLE container_counts (key TEXT PRIMARY KEY, live INTEGER NOT NULL) WITHOUT ROWID",
        """INSERT INTO container_counts (key, live)
            SELECT key, count(*) FROM annotations WHERE deleted = 0 GROUP BY key""",
        """CREATE TRIGGER annotations_counted_insert AFTER INSERT ON annotations WHEN new.deleted = 0 BEGIN
            INSERT INTO container_counts (key, live) VALUES (new.key, 1)
            ON CONFLICT (key) DO UPDATE SET live = live + 1;
        END""",
        """CREATE TRIGGER annotations_counted_update AFTER UPDATE OF key, deleted ON annotations
        WHEN old.key IS NOT new.key OR old.deleted IS NOT new.deleted BEGIN
            UPDATE container_counts SET live = live - 1 WHERE key = old.key AND old.deleted = 0;
            INSERT INTO container_counts (key, live) VALUES (new.key, 1 - new.deleted)
            ON CONFLICT (key) DO UPDATE SET live = live + 1 - new.deleted;
        END""",
        """CREATE TRIGGER annotations_counted_delete AFTER DELETE ON annotations WHEN old.deleted = 0 BEGIN
            UPDATE container_counts SET live = live - 1 WHERE key = old.key;
        END""",
    ),
    # 4: review. Verdicts are rows too (role 'verdict', target_id the judged annotation, review_state the
    # verdict); machine annotations carry their review state in a column and in their document
    # (reviewState), concept is the class name re-runs match on. Containers page and count each role.
    (
        "ALTER TABLE annotations ADD COLUMN role TEXT NOT NULL DEFAULT 'annotation' CHECK (role IN ('annotation', 'verdict'))",
        """ALTER TABLE annotations ADD COLUMN review_state TEXT
            CHECK (review_state IN ('pending', 'accepted', 'rejected', 'corrected', 'exhaustive'))""",
        "ALTER TABLE annotations ADD COLUMN concept TEXT",
        "ALTER TABLE annotations ADD COLUMN target_id TEXT",
        # a version of its own: the representation gained reviewState (a fresh ETag says so)
        f"""UPDATE annotations SET review_state = 'pending', version = version + 1,
            document = json_set(document, '$.reviewState', '{PENDING}'),
            etag = '"' || lower(hex(randomblob(16))) || '"' WHERE origin = 'machine'""",
        "DROP INDEX annotations_live_by_key",
        "DROP INDEX annotations_live",
        "CREATE INDEX annotations_live_by_key ON annotations (key, seq) WHERE deleted = 0 AND role = 'annotation'",
        "CREATE INDEX annotations_live ON annotations (seq) WHERE deleted = 0 AND role = 'annotation'",
        "CREATE INDEX verdicts_live_by_key ON annotations (key, seq) WHERE deleted = 0 AND role = 'verdict'",
        "CREATE INDEX verdicts_live ON annotations (seq) WHERE deleted = 0 AND role = 'verdict'",
        "CREATE INDEX verdicts_by_target ON annotations (target_id, seq) WHERE target_id IS NOT NULL",
        "CREATE INDEX annotations_by_model ON annotations (model_sha256, canvas_id) WHERE deleted = 0",
        "DROP TRIGGER annotations_counted_insert",
        "DROP TRIGGER annotations_counted_update",
        "DROP TRIGGER annotations_counted_delete",
        "DROP TABLE container_counts",
        """CREATE TABLE container_counts (role TEXT NOT NULL, key TEXT NOT NULL, live INTEGER NOT NULL,
            PRIMARY KEY (role, key)) WITHOUT ROWID""",
        """INSERT INTO container_counts (role, key, live)
            SELECT role, key, count(*) FROM annotations WHERE deleted = 0 GROUP BY role, key""",
        """CREATE TRIGGER annotations_counted_insert AFTER INSERT ON annotations WHEN new.deleted = 0 BEGIN
            INSERT INTO container_counts (role, key, live) VALUES (new.role, new.key, 1)
            ON CONFLICT (role, key) DO UPDATE SET live = live + 1;
        END""",
        """CREATE TRIGGER annotations_counted_update AFTER UPDATE OF key, deleted, role ON annotations
        WHEN old.key IS NOT new.key OR old.deleted IS NOT new.deleted OR old.role IS NOT new.role BEGIN
            UPDATE container_counts SET live = live - 1 WHERE role = old.role AND key = old.key AND old.deleted = 0;
            INSERT INTO container_counts (role, key, live) VALUES (new.role, new.key, 1 - new.deleted)
            ON CONFLICT (role, key) DO UPDATE SET live = live + 1 - new.deleted;
        END""",
        """CREATE TRIGGER annotations_counted_delete AFTER DELETE ON annotations WHEN old.deleted = 0 BEGIN
            UPDATE container_counts SET live = live - 1 WHERE role = old.role AND key = old.key;
        END""",
        # evaluation results and calibrations per model and collection (enricher.evaluate, enricher.calibrate)
        """CREATE TABLE evaluations (id TEXT PRIMARY KEY, model_sha256 TEXT NOT NULL, key TEXT,
            created TEXT NOT NULL, document TEXT NOT NULL)""",
        "CREATE INDEX evaluations_by_model ON evaluations (model_sha256, key, created)",
        """CREATE TABLE calibrations (id TEXT PRIMARY KEY, model_sha256 TEXT NOT NULL, key TEXT, method TEXT NOT NULL,
            params TEXT NOT NULL, created TEXT NOT NULL)""",
        "CREATE INDEX calibrations_by_model ON calibrations (model_sha256, key, created)",
    ),
    # 5: each annotation's region (canvas coordinates) and confidence, and the classes an exhaustiveness
    # statement names, in columns written with the document, so ground truth and predictions for
    # thousands of canvases are an index read, not a parse of every document
    (
        "ALTER TABLE annotations ADD COLUMN box_x REAL",
        "ALTER TABLE annotations ADD COLUMN box_y REAL",
        "ALTER TABLE annotations ADD COLUMN box_w REAL",
        "ALTER TABLE annotations ADD COLUMN box_h REAL",
        "ALTER TABLE annotations ADD COLUMN score REAL",
        "ALTER TABLE annotations ADD COLUMN classes TEXT",  # an exhaustiveness statement's, one per line
        _backfill_regions,
        # covering indexes: these reads never step into the rows (documents of kilobytes, overflow pages).
        # SQLite counts an index as covering only if it holds the columns of the partial index's WHERE too.
        """CREATE INDEX exhaustive_live ON annotations (key, seq, canvas_id, classes, deleted, review_state, role)
            WHERE deleted = 0 AND review_state = 'exhaustive'""",
        """CREATE INDEX machine_boxes ON annotations (model_sha256, canvas_id, id, concept, score, box_x, box_y,
            box_w, box_h, deleted, role, origin)
            WHERE deleted = 0 AND role = 'annotation' AND origin = 'machine' AND box_x IS NOT NULL""",
        """CREATE INDEX live_by_canvas ON annotations (key, canvas_id, model_sha256, origin, review_state, concept,
            box_x, box_y, box_w, box_h, id, deleted, role) WHERE deleted = 0 AND role = 'annotation'""",
    ),
)

_ANNOTATION_COLUMNS = (
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


# A page: skip rows on the covering partial index from a known start (seq >= ?), then read only the
# rows of the page (one more seq tells where the next page starts).
SEQS_SQL = {role: _page_seqs_sql(role) for role in ROLES}
PAGE_SEQS_SQL = SEQS_SQL["annotation"]


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


class _PageStarts:
    """Where pages begin (offset -> seq) per container, valid until the container next changes.

    SQLite's OFFSET steps through every skipped index entry; starting from the nearest known page start
    makes sequential paging cost one page, not the whole offset.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._starts: dict[str | None, tuple[int, dict[int, int]]] = {}

    def nearest(self, key: str | None, stamp: int, offset: int) -> tuple[int, int]:
        """Return (offset, seq) of the closest known start at or before OFFSET, else (0, 0)."""
        with self._lock:
            known_stamp, starts = self._starts.get(key, (None, {}))
            if known_stamp != stamp:
                return 0, 0
            if offset in starts:  # the usual case: the next page of a walk
                return offset, starts[offset]
            best = max((o for o in starts if o <= offset), default=0)
            return best, starts.get(best, 0)

    def remember(self, key: str | None, stamp: int, offset: int, seq: int) -> None:
        """Note that the page at OFFSET starts at SEQ while the container's last change is STAMP."""
        with self._lock:
            known_stamp, starts = self._starts.get(key, (None, {}))
            if known_stamp != stamp:
                starts = {}
                self._starts[key] = (stamp, starts)
            starts[offset] = seq


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
    manifests: list[str]
    error: str | None
    created: str
    started: str | None
    finished: str | None


def now() -> str:
    """Return the current UTC time as ISO 8601 with seconds and a Z."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def canonical(document: dict) -> str:
    """Serialise a document the same way every time (sorted keys, no spaces)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_etag(document: dict, version: int) -> str:
    """Return a strong, quoted ETag of a document's content and version."""
    digest = hashlib.sha256(f"{version}\n{canonical(document)}".encode("utf-8")).hexdigest()
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


def _content(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in VOLATILE}


def _plain(annotation: dict) -> dict:
    """The annotation as stored: without @context (the web layer adds it)."""
    if not isinstance(annotation, dict):
        raise InputError("an annotation must be a JSON object", pointer="")
    return {k: v for k, v in annotation.items() if k != "@context"}


class Store:
    """The system of record in one SQLite file; safe to share across threads (a connection each)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._local = threading.local()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        self._page_starts = _PageStarts()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise EnricherError(f"cannot open the database: {exc}", where=str(self.path)) from None

    # connections and transactions

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives power loss too, not only a killed process
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._local.connection = connection
            with self._lock:
                for thread in [t for t in self._connections if not t.is_alive()]:
                    self._connections.pop(thread).close()
                self._connections[threading.current_thread()] = connection
        return connection

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one write transaction (BEGIN IMMEDIATE); a nested block joins the outer one."""
        db = self.db
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        db.commit()

    def _tuples(self) -> sqlite3.Cursor:
        """A cursor of this thread's connection that gives plain tuples: bulk reads of many thousand rows
        take a fraction of the time sqlite3.Row takes."""
        cursor = self.db.cursor()
        cursor.row_factory = None
        return cursor

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """Run several reads on one consistent snapshot (a read transaction never blocks writers in WAL)."""
        db = self.db
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.commit()

    def _migrate(self) -> None:
        """Apply the migrations this file lacks, in order, in one transaction."""
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise EnricherError(
                    f"the database has schema version {version}, newer than this software's {len(MIGRATIONS)}",
                    where=str(self.path),
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    statement(db) if callable(statement) else db.execute(statement)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @property
    def schema_version(self) -> int:
        """The number of migrations applied to the file."""
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # manifests (containers)

    def save_manifest(self, key: str, manifest_id: str, url: str, label: str, document: dict) -> None:
        """Record (or refresh) a source manifest under its key."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO manifests (key, manifest_id, url, label, document, saved) VALUES (?, ?, ?, ?, ?, ?)
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
        return [_manifest(row) for row in self.db.execute("SELECT * FROM manifests ORDER BY rowid")]

    # annotations

    def replace_machine_annotations(
        self, key: str, canvas_id: str, model_sha256: str, annotations: list[dict]
    ) -> dict[str, int]:
        """Reconcile a run's ANNOTATIONS (of this canvas and model) with what the canvas holds, in one
        transaction; the curators' work wins.

        Each new annotation is matched to a live one: by id, else by class and region (IoU >= 0.5, best
        first). Matched to a reviewed (accepted, corrected), human-made or human-edited annotation, it
        is dropped and that one stays frozen; to a rejected one, it is dropped (the region and class stay
        suppressed, whichever model made them); to a pending machine annotation of this model, that one
        takes its content (keeping its id) unless only ``created`` differs. Unmatched ones are created
        (a retired one returns under its id); pending machine annotations of this model that nothing
        matched are retired (tombstones). Idempotent. Returns counts created/updated/deleted/kept (kept:
        unchanged, frozen or suppressed).
        Raises InputError for an annotation without id, EnricherError for one targeting another canvas.
        """
        incoming: dict[str, dict] = {}
        for annotation in map(_plain, annotations):
            anno_id = annotation.get("id")
            if not isinstance(anno_id, str) or not anno_id:
                raise InputError("a machine annotation has no id", where=canvas_id, pointer="/id")
            if target_canvas(annotation) != canvas_id:
                raise EnricherError(f"annotation {anno_id} targets another canvas than {canvas_id}", where=anno_id)
            incoming.setdefault(anno_id, annotation)  # the same id twice is the same detection
        counts = {"created": 0, "updated": 0, "deleted": 0, "kept": 0}
        stamp = now()
        with self.transaction() as db:
            live = db.execute(
                """SELECT * FROM annotations INDEXED BY annotations_by_canvas
                WHERE key = ? AND canvas_id = ? AND role = 'annotation' AND deleted = 0""",
                (key, canvas_id),
            ).fetchall()
            candidates = {row["id"]: _Candidate.of(row) for row in live if _matchable(row, model_sha256)}
            unmatched: list[tuple[dict, sqlite3.Row | None]] = []
            for anno_id, annotation in incoming.items():
                row = db.execute("SELECT * FROM annotations WHERE id = ?", (anno_id,)).fetchone()
                if row is not None and row["id"] in candidates:
                    del candidates[row["id"]]
                    counts[self._match(db, row, annotation, model_sha256, stamp)] += 1
                elif row is None or (row["deleted"] and row["origin"] == "machine"):
                    unmatched.append((annotation, row))
                else:  # a person's annotation or deletion under this id: theirs
                    counts["kept"] += 1
            unmatched.sort(key=lambda pair: -float(pair[0].get("confidence") or 0))
            for annotation, tombstone in unmatched:
                found = _best_match(annotation, candidates.values())
                if found is not None:
                    del candidates[found.row["id"]]
                    counts[self._match(db, found.row, annotation, model_sha256, stamp)] += 1
                    continue
                document = {**annotation, "reviewState": PENDING}
                if tombstone is None:
                    self._insert(db, key, canvas_id, document, "machine", None, model_sha256, stamp,
                                 review_state="pending", concept=class_of(document))
                else:
                    self._rewrite(db, tombstone, document, origin="machine", creator=None, stamp=stamp, kind="Create",
                                  review_state="pending", concept=class_of(document))
                counts["created"] += 1
            for row in (candidate.row for candidate in candidates.values()):
                if _updatable(row, model_sha256):
                    self._tombstone(db, row, "machine", stamp)
                    counts["deleted"] += 1
        return counts

    def _match(self, db, row: sqlite3.Row, annotation: dict, model_sha256: str, stamp: str) -> str:
        """Apply a new detection to the annotation it matched; return the count it makes."""
        if not _updatable(row, model_sha256):
            return "kept"
        old = json.loads(row["document"])
        fresh = {**annotation, "id": row["id"]}
        if _content(old) == _content(fresh):
            return "kept"
        changed = {**fresh, "created": old.get("created", row["created"]), "modified": stamp, "reviewState": PENDING}
        self._rewrite(db, row, changed, origin="machine", creator=None, stamp=stamp, kind="Update",
                      concept=class_of(changed))
        return "updated"

    # review

    def add_verdict(
        self, key: str, verdict: dict, creator: str, *, target: str | None, canvas_id: str | None,
        judgement: str, version: str | None,
    ) -> StoredAnnotation:
        """Store a curator's verdict (its ``id`` assigned by the caller) and, for a verdict on an
        annotation, set that annotation's review state: one transaction.

        TARGET is the judged machine annotation (None for a statement on canvas CANVAS_ID); JUDGEMENT
        the verdict (accepted, rejected, corrected, exhaustive); VERSION the judged version's date
        (review.version_of). Raises InputError (the target is not a machine annotation of container KEY,
        the id is taken) and StaleVersion (the target was changed or deleted since VERSION).
        """
        if judgement not in (*STATES[1:], "exhaustive"):
            raise InputError(f"{judgement!r} is not a verdict", where=verdict.get("id"))
        document = _plain(verdict)
        stamp = now()
        document.setdefault("created", stamp)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM annotations WHERE id = ?", (document["id"],)).fetchone():
                raise InputError(f"{document['id']} already exists", where=document["id"], pointer="/id")
            row = None
            if target is not None:
                row = db.execute("SELECT * FROM annotations WHERE id = ?", (target,)).fetchone()
                if row is None or row["key"] != key or row["role"] != "annotation" or row["model_sha256"] is None:
                    raise InputError(f"{target} is not a machine annotation of this manifest", where=target,
                                     pointer="/target/source")
                if row["deleted"]:
                    raise StaleVersion(f"annotation {target} was deleted after the version judged", where=target)
                current = version_of(json.loads(row["document"]))
                if version != current:
                    raise StaleVersion(f"the verdict judges the version of {version}, but annotation {target} "
                                       f"has changed since: its current version is of {current}", where=target)
                canvas_id = row["canvas_id"]
            self._insert(db, key, canvas_id, document, "human", creator, None, stamp,
                         role="verdict", review_state=judgement, target_id=target)
            if row is not None:
                self._set_review(db, row, judgement, stamp)
        return self.get(document["id"])

    def retract_verdict(self, verdict_id: str, if_match: str | None) -> None:
        """Delete a verdict (a tombstone); its target takes the state of its latest remaining verdict,
        else pending. One transaction. Raises NotFound, Gone, PreconditionFailed (stale IF_MATCH)."""
        stamp = now()
        with self.transaction() as db:
            row = self._current(db, verdict_id, if_match)
            if row["role"] != "verdict":
                raise NotFound(f"{verdict_id} is not a verdict", where=verdict_id)
            self._tombstone(db, row, "human", stamp)
            if row["target_id"] is None:
                return
            target = db.execute("SELECT * FROM annotations WHERE id = ? AND deleted = 0", (row["target_id"],)).fetchone()
            if target is not None:
                latest = db.execute(
                    """SELECT review_state FROM annotations WHERE target_id = ? AND role = 'verdict' AND deleted = 0
                    ORDER BY seq DESC LIMIT 1""",
                    (row["target_id"],),
                ).fetchone()
                self._set_review(db, target, latest[0] if latest else "pending", stamp)

    def verdicts_on(self, anno_id: str) -> list[StoredAnnotation]:
        """Return the live verdicts on an annotation, oldest first."""
        rows = self.db.execute(
            f"""SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE target_id = ? AND role = 'verdict'
            AND deleted = 0 ORDER BY seq""",
            (anno_id,),
        )
        return [_annotation(row) for row in rows]

    def exhaustive_statements(self, keys: Sequence[str] | None = None) -> list[StoredAnnotation]:
        """Return the live statements that a canvas was reviewed exhaustively (of these containers), in order."""
        where, args = _exhaustive_where(keys)
        rows = self.db.execute(
            f"SELECT {_ANNOTATION_COLUMNS} FROM annotations INDEXED BY exhaustive_live WHERE {where} ORDER BY seq", args
        )
        return [_annotation(row) for row in rows]

    def exhaustive_classes(self, keys: Sequence[str] | None = None) -> Iterator[tuple[str, str, list[str]]]:
        """Yield (key, canvas id, class names) of each live exhaustiveness statement (of these
        containers), in order; read from an index, not from the documents."""
        where, args = _exhaustive_where(keys)
        for key, canvas_id, classes in self._tuples().execute(
            f"SELECT key, canvas_id, classes FROM annotations INDEXED BY exhaustive_live WHERE {where} ORDER BY seq",
            args,
        ):
            yield key, canvas_id, classes.split("\n") if classes else []

    def confirmed_boxes(self, keys: Sequence[str] | None = None) -> Iterator[tuple]:
        """Yield (key, canvas id, annotation id, class name, x, y, w, h) of the live annotations with a
        region that curators vouch for, on the canvases stated exhaustive (of these containers), in
        store order: accepted machine annotations, and people's tags (made or edited) that are neither
        rejected nor replaced. Columns only; a person's document is read for its motivation."""
        where, args = _exhaustive_where(keys)
        hidden = ", ".join(f"'{state}'" for state in HIDDEN)
        yield from self._tuples().execute(
            f"""WITH reviewed AS (SELECT DISTINCT key, canvas_id FROM annotations INDEXED BY exhaustive_live
                WHERE {where})
            SELECT a.key, a.canvas_id, a.id, a.concept, a.box_x, a.box_y, a.box_w, a.box_h
            FROM reviewed CROSS JOIN annotations AS a INDEXED BY live_by_canvas
            ON a.key = reviewed.key AND a.canvas_id = reviewed.canvas_id
            WHERE a.deleted = 0 AND a.role = 'annotation' AND a.box_x IS NOT NULL
            AND (a.origin = 'machine' AND a.review_state = 'accepted'
                 OR a.origin != 'machine' AND coalesce(a.review_state, '') NOT IN ({hidden})
                    AND instr(json_extract(a.document, '$.motivation'), 'tagging') > 0)
            ORDER BY a.seq""",
            args,
        )

    def machine_detections(self, model_sha256: str) -> Iterator[tuple]:
        """Yield (canvas id, annotation id, class name or "", confidence or 0.0, x, y, w, h) of every live
        machine annotation of a model with a region, whatever its review state. Columns only."""
        yield from self._tuples().execute(
            """SELECT canvas_id, id, coalesce(concept, ''), coalesce(score, 0.0), box_x, box_y, box_w, box_h
            FROM annotations INDEXED BY machine_boxes WHERE model_sha256 = ? AND deleted = 0 AND role = 'annotation'
            AND origin = 'machine' AND box_x IS NOT NULL""",
            (model_sha256,),
        )

    def _set_review(self, db: sqlite3.Connection, row: sqlite3.Row, state: str, stamp: str) -> None:
        """Give annotation ROW the review state STATE (column and ``reviewState``), logged as an Update;
        its ``modified`` stays: a verdict is not an edit."""
        document = json.loads(row["document"])
        document["reviewState"] = state_iri(state)
        self._rewrite(db, row, document, origin=row["origin"], creator=None, stamp=stamp, kind="Update",
                      review_state=state)

    # evaluations and calibrations (enricher.evaluate, enricher.calibrate)

    def save_evaluation(
        self, evaluation_id: str, model_sha256: str, key: str | None, document: dict, created: str | None = None
    ) -> None:
        """Record an evaluation of a model on a collection (KEY; None: not one of ours, e.g. a COCO file)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO evaluations (id, model_sha256, key, created, document) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET document = excluded.document""",
                (evaluation_id, model_sha256, key, created or now(), json.dumps(document, ensure_ascii=False)),
            )

    def evaluations(self, model_sha256: str | None = None, key: str | None = None) -> list[StoredEvaluation]:
        """Return the evaluations (of a model, of a collection, when given), newest first."""
        rows = self.db.execute(
            """SELECT * FROM evaluations WHERE (? IS NULL OR model_sha256 = ?) AND (? IS NULL OR key = ?)
            ORDER BY created DESC, rowid DESC""",
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
                """INSERT INTO calibrations (id, model_sha256, key, method, params, created) VALUES (?, ?, ?, ?, ?, ?)
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
        return sorted(((sha, self.model_name(sha)) for sha in shas), key=lambda m: (m[1] is not None, m[1] or "", m[0]))

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
        """The rowid of the newest calibration (0 when none): it changes whenever one is added."""
        return self.db.execute("SELECT coalesce(max(rowid), 0) FROM calibrations").fetchone()[0]

    def calibration(self, model_sha256: str, key: str | None) -> StoredCalibration | None:
        """Return the latest calibration of a model on a collection, or None."""
        r = self.db.execute(
            "SELECT * FROM calibrations WHERE model_sha256 = ? AND key IS ? ORDER BY created DESC, rowid DESC LIMIT 1",
            (model_sha256, key),
        ).fetchone()
        return _calibration(r) if r else None

    def create(self, key: str, annotation: dict, creator: str) -> StoredAnnotation:
        """Store an annotation a person posted (its ``id`` already assigned by the caller).

        Adds ``created`` when absent; CREATOR is recorded with the row (the caller shapes the document's
        own ``creator``). Raises InputError without id or target, or when the id is taken.
        """
        document = _plain(annotation)
        anno_id = document.get("id")
        if not isinstance(anno_id, str) or not anno_id:
            raise InputError("the annotation has no id", pointer="/id")
        canvas_id = target_canvas(document)
        stamp = now()
        document.setdefault("created", stamp)
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM annotations WHERE id = ?", (anno_id,)).fetchone():
                raise InputError(f"annotation {anno_id} already exists", where=anno_id, pointer="/id")
            self._insert(db, key, canvas_id, document, "human", creator, None, stamp, concept=class_of(document))
        return self.get(anno_id)

    def update(self, anno_id: str, annotation: dict, if_match: str, creator: str) -> StoredAnnotation:
        """Replace an annotation if IF_MATCH still names its current ETag (atomic compare-and-swap).

        A machine annotation becomes ``edited``; ``modified`` is set, ``created`` kept.
        Raises NotFound, Gone, PreconditionFailed, InputError (an id in the body that differs).
        """
        document = _plain(annotation)
        stamp = now()
        with self.transaction() as db:
            row = self._current(db, anno_id, if_match)
            if document.setdefault("id", anno_id) != anno_id:
                raise InputError(f"the body's id {document['id']} is not {anno_id}", where=anno_id, pointer="/id")
            document.setdefault("created", json.loads(row["document"]).get("created", row["created"]))
            document["modified"] = stamp
            origin = "human" if row["origin"] == "human" else "edited"
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
        row = self.db.execute(f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE id = ?", (anno_id,)).fetchone()
        return _annotation(row) if row else None

    def page(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[StoredAnnotation]:
        """Return live annotations (ROLE ``verdict``: verdicts) of a container (None: all) in stable order,
        LIMIT from OFFSET."""
        return [_annotation(row) for row in self._page_rows(_ANNOTATION_COLUMNS, key, offset, limit, role)]

    def page_texts(self, key: str | None, offset: int, limit: int, role: str = "annotation") -> list[str]:
        """Return the stored JSON texts of the same page as ``page``, for writers that splice them unparsed.

        Only the document column is read: the columns stored after a document of kilobytes cost its
        overflow pages, four times the read of the documents alone.
        """
        return [row[0] for row in self._page_rows("document", key, offset, limit, role)]

    def _page_rows(self, columns: str, key: str | None, offset: int, limit: int, role: str) -> list[sqlite3.Row]:
        if offset < 0 or limit < 0:
            raise InputError(f"offset {offset} and limit {limit} must not be negative")
        if role not in ROLES:
            raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
        with self._snapshot() as db:
            stamp = self.last_change(key)  # same connection, same snapshot
            start, seq = self._page_starts.nearest((role, key), stamp, offset)
            args = (seq, limit + 1, offset - start)
            sql, args = (SEQS_SQL[role]["all"], args) if key is None else (SEQS_SQL[role]["key"], (key, *args))
            seqs = [row[0] for row in db.execute(sql, args)]
            if seqs:
                self._page_starts.remember((role, key), stamp, offset, seqs[0])
            if len(seqs) > limit:
                self._page_starts.remember((role, key), stamp, offset + limit, seqs.pop())
            if not seqs:
                return []
            # the page is exactly the live rows (of the container) between its first and last seq
            where = f"deleted = 0 AND role = '{role}' AND seq BETWEEN ? AND ?" + ("" if key is None else " AND key = ?")
            args = (seqs[0], seqs[-1]) + (() if key is None else (key,))
            return db.execute(f"SELECT {columns} FROM annotations WHERE {where} ORDER BY seq", args).fetchall()

    def count(self, key: str | None, role: str = "annotation") -> int:
        """Return how many live annotations (ROLE ``verdict``: verdicts) a container (None: all) holds."""
        if key is None:
            sql, args = "SELECT coalesce(sum(live), 0) FROM container_counts WHERE role = ?", (role,)
        else:
            sql, args = "SELECT live FROM container_counts WHERE role = ? AND key = ?", (role, key)
        row = self.db.execute(sql, args).fetchone()
        return row[0] if row else 0

    def canvas_annotations(self, key: str, canvas_id: str, *, public: bool = False) -> list[StoredAnnotation]:
        """Return the live annotations (not verdicts) of one canvas of a container, in stable order;
        PUBLIC: without the machine annotations curators rejected or replaced."""
        hidden = f" AND coalesce(review_state, 'pending') NOT IN {HIDDEN!r}" if public else ""
        # without the hint SQLite walks the container's partial index (every row of the manifest)
        rows = self.db.execute(
            f"""SELECT {_ANNOTATION_COLUMNS} FROM annotations INDEXED BY annotations_by_canvas
            WHERE key = ? AND canvas_id = ? AND deleted = 0 AND role = 'annotation'{hidden} ORDER BY seq""",
            (key, canvas_id),
        )
        return [_annotation(row) for row in rows]

    def container_etag(self, key: str | None, role: str = "annotation") -> str:
        """Return a strong ETag of a container (None: all) that changes with every change to its contents."""
        last = self.last_change(key)
        name = key or "" if role == "annotation" else f"{role}:{key or ''}"
        digest = hashlib.sha256(f"{name}\n{last}".encode("utf-8")).hexdigest()
        return f'"{digest[:32]}"'

    def last_change(self, key: str | None = None) -> int:
        """Return the seq of the latest change-log entry (of one container, if KEY); 0 when none."""
        if key is None:
            return self.db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
        return self.db.execute("SELECT coalesce(max(seq), 0) FROM changes WHERE key = ?", (key,)).fetchone()[0]

    def changes(self, after: int, limit: int, key: str | None = None) -> list[Change]:
        """Return change-log entries with seq above AFTER, oldest first (of one container, if KEY)."""
        if key is None:
            rows = self.db.execute("SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        else:
            rows = self.db.execute(
                "SELECT * FROM changes WHERE key = ? AND seq > ? ORDER BY seq LIMIT ?", (key, after, limit)
            )
        return [Change(r["seq"], r["time"], r["kind"], r["anno_id"], r["key"], r["canvas_id"]) for r in rows]

    def _current(self, db: sqlite3.Connection, anno_id: str, if_match: str | None) -> sqlite3.Row:
        row = db.execute("SELECT * FROM annotations WHERE id = ?", (anno_id,)).fetchone()
        if row is None:
            raise NotFound(f"no annotation {anno_id}", where=anno_id)
        if row["deleted"]:
            raise Gone(f"annotation {anno_id} was deleted", where=anno_id)
        if if_match is not None and not etag_matches(if_match, row["etag"]):
            raise PreconditionFailed(
                f"If-Match {if_match} does not match the current ETag {row['etag']}", where=anno_id
            )
        return row

    @staticmethod
    def _log(db: sqlite3.Connection, kind: str, anno_id: str, key: str, canvas_id: str, stamp: str) -> None:
        db.execute(
            "INSERT INTO changes (time, kind, anno_id, key, canvas_id) VALUES (?, ?, ?, ?, ?)",
            (stamp, kind, anno_id, key, canvas_id),
        )

    def _insert(self, db, key, canvas_id, document, origin, creator, model_sha256, stamp, *,
                role="annotation", review_state=None, concept=None, target_id=None) -> None:
        db.execute(
            """INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, creator, document, version,
            etag, created, modified, role, review_state, concept, target_id, box_x, box_y, box_w, box_h, score,
            classes) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                document["id"], key, canvas_id, model_sha256, origin, creator,
                json.dumps(document, ensure_ascii=False), make_etag(document, 1), stamp, stamp,
                role, review_state, concept, target_id, *_region(document), _classes(document, review_state),
            ),
        )
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
                canvas_id, stamp, review_state, concept, *_region(document), row["seq"],
            ),
        )
        self._log(db, kind, row["id"], row["key"], canvas_id, stamp)

    def _tombstone(self, db, row, origin: str, stamp: str) -> None:
        version = row["version"] + 1
        db.execute(
            "UPDATE annotations SET deleted = 1, version = ?, etag = ?, origin = ?, modified = ? WHERE seq = ?",
            (version, make_etag(json.loads(row["document"]), version), origin, stamp, row["seq"]),
        )
        self._log(db, "Delete", row["id"], row["key"], row["canvas_id"], stamp)

    # jobs

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
        ids = [row["id"] for row in rows]
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            for err in db.execute(
                f"""SELECT job_id, key, canvas_id, error FROM job_canvases WHERE error IS NOT NULL
                AND job_id IN ({','.join('?' * len(chunk))}) ORDER BY finished, key, canvas_id""",
                chunk,
            ):
                errors.setdefault(err["job_id"], []).append(
                    {"manifest": err["key"], "canvas": err["canvas_id"], "error": err["error"]}
                )
        return [
            StoredJob(
                id=row["id"], state=row["state"], params=json.loads(row["params"]), total=row["total"],
                done=row["done"], errors=errors.get(row["id"], []), manifests=json.loads(row["manifests"]),
                error=row["error"], created=row["created"], started=row["started"], finished=row["finished"],
            )
            for row in rows
        ]

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

        Fields: state, total, manifests (list of keys), error, started, finished. A finished state stamps
        ``finished`` unless given.
        """
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

    def mark_canvas_done(self, job_id: str, key: str, canvas_id: str, error: str | None) -> None:
        """Record that a job finished a canvas (with an error message when it failed)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO job_canvases (job_id, key, canvas_id, error, finished) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (job_id, key, canvas_id) DO UPDATE SET error = excluded.error, finished = excluded.finished""",
                (job_id, key, canvas_id, error, now()),
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


def _manifest(row: sqlite3.Row) -> StoredManifest:
    return StoredManifest(
        row["key"], row["manifest_id"], row["url"], row["label"], json.loads(row["document"]), row["saved"]
    )


def _exhaustive_where(keys: Sequence[str] | None, prefix: str = "") -> tuple[str, tuple]:
    """The WHERE clause (and its arguments) of the live exhaustiveness statements of containers KEYS
    (None: all), in the terms of the partial index exhaustive_live."""
    where = f"{prefix}deleted = 0 AND {prefix}review_state = 'exhaustive' AND {prefix}role = 'verdict'"
    if keys is None:
        return where, ()
    keys = tuple(keys)
    return f"{where} AND {prefix}key IN ({','.join('?' * len(keys))})", keys


def _evaluation(row: sqlite3.Row) -> StoredEvaluation:
    return StoredEvaluation(row["id"], row["model_sha256"], row["key"], row["created"], json.loads(row["document"]))


def _calibration(row: sqlite3.Row) -> StoredCalibration:
    return StoredCalibration(row["id"], row["model_sha256"], row["key"], row["method"], json.loads(row["params"]),
                             row["created"])


def _annotation(row: sqlite3.Row) -> StoredAnnotation:
    # positional, in the order of _ANNOTATION_COLUMNS and the dataclass fields
    return StoredAnnotation(*row[:8], bool(row[8]), *row[9:])


@dataclass(frozen=True)
class _Candidate:
    """A live annotation a new detection may match, with its region and class read once."""

    row: sqlite3.Row
    box: tuple[float, float, float, float] | None
    concept: str | None

    @classmethod
    def of(cls, row: sqlite3.Row) -> "_Candidate":
        # the region columns hold box_of(document), written with it: no parse of the document for them
        box = None if row["box_x"] is None else (row["box_x"], row["box_y"], row["box_w"], row["box_h"])
        return cls(row, box, row["concept"] or class_of(json.loads(row["document"])))


def _updatable(row: sqlite3.Row, model_sha256: str) -> bool:
    """Whether a re-run may change this annotation: a pending machine annotation of its model."""
    return row["origin"] == "machine" and row["model_sha256"] == model_sha256 and row["review_state"] in (None, "pending")


def _matchable(row: sqlite3.Row, model_sha256: str) -> bool:
    """Whether a new detection matching this live annotation is absorbed by it: it is the model's
    own pending one, or curators have spoken (a verdict, a human tag, an edit)."""
    if row["origin"] == "machine":
        return _updatable(row, model_sha256) or row["review_state"] not in (None, "pending")
    return "tagging" in json.loads(row["document"]).get("motivation", "")


def _best_match(annotation: dict, candidates) -> _Candidate | None:
    """The candidate of the same class whose region overlaps ANNOTATION's most, if by IoU >= MATCH_IOU."""
    box, name = box_of(annotation), class_of(annotation)
    if box is None:
        return None
    best, best_iou = None, MATCH_IOU
    for candidate in candidates:
        if candidate.box is not None and candidate.concept == name and (overlap := iou(box, candidate.box)) >= best_iou:
            best, best_iou = candidate, overlap
    return best
