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
from typing import Any, Iterator

from .errors import EnricherError, Gone, InputError, NotFound, PreconditionFailed

BUSY_TIMEOUT_MS = 30_000
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")
JOB_FIELDS = ("state", "total", "manifests", "error", "started", "finished")
# A re-run stamps new times; an annotation that differs only there is unchanged.
VOLATILE = ("created", "modified")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
)

_ANNOTATION_COLUMNS = "id, key, canvas_id, document, etag, origin, created, modified, deleted, seq, creator, version, model_sha256"
# A page: skip rows on the covering partial index from a known start (seq >= ?), then read only the
# rows of the page (one more seq tells where the next page starts).
PAGE_SEQS_SQL = {
    "key": "SELECT seq FROM annotations WHERE key = ? AND deleted = 0 AND seq >= ? ORDER BY seq LIMIT ? OFFSET ?",
    "all": "SELECT seq FROM annotations WHERE deleted = 0 AND seq >= ? ORDER BY seq LIMIT ? OFFSET ?",
}


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
                    db.execute(statement)
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
        """Make ANNOTATIONS the machine annotations of this canvas and model, in one transaction.

        New ids are created; changed ones updated; unchanged ones (ignoring ``created``) left alone with
        no change-log row; live machine ones missing from the set become tombstones. Annotations a person
        created or edited are never touched. Idempotent. Returns counts created/updated/deleted/kept.
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
            for anno_id, annotation in incoming.items():
                row = db.execute("SELECT * FROM annotations WHERE id = ?", (anno_id,)).fetchone()
                if row is None:
                    self._insert(db, key, canvas_id, annotation, "machine", None, model_sha256, stamp)
                    counts["created"] += 1
                elif row["origin"] != "machine":
                    counts["kept"] += 1
                elif row["deleted"]:
                    self._rewrite(db, row, annotation, origin="machine", creator=None, stamp=stamp, kind="Create")
                    counts["created"] += 1
                elif _content(old := json.loads(row["document"])) != _content(annotation):
                    changed = {**annotation, "created": old.get("created", row["created"]), "modified": stamp}
                    self._rewrite(db, row, changed, origin="machine", creator=None, stamp=stamp, kind="Update")
                    counts["updated"] += 1
                else:
                    counts["kept"] += 1
            stale = db.execute(
                """SELECT * FROM annotations WHERE key = ? AND canvas_id = ? AND model_sha256 = ?
                AND origin = 'machine' AND deleted = 0""",
                (key, canvas_id, model_sha256),
            ).fetchall()
            for row in stale:
                if row["id"] not in incoming:
                    self._tombstone(db, row, "machine", stamp)
                    counts["deleted"] += 1
        return counts

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
            self._insert(db, key, canvas_id, document, "human", creator, None, stamp)
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
            self._rewrite(db, row, document, origin=origin, creator=creator, stamp=stamp, kind="Update")
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

    def page(self, key: str | None, offset: int, limit: int) -> list[StoredAnnotation]:
        """Return live annotations of a container (None: all) in stable order, LIMIT from OFFSET."""
        if offset < 0 or limit < 0:
            raise InputError(f"offset {offset} and limit {limit} must not be negative")
        with self._snapshot() as db:
            stamp = self.last_change(key)  # same connection, same snapshot
            start, seq = self._page_starts.nearest(key, stamp, offset)
            args = (seq, limit + 1, offset - start)
            sql, args = (PAGE_SEQS_SQL["all"], args) if key is None else (PAGE_SEQS_SQL["key"], (key, *args))
            seqs = [row[0] for row in db.execute(sql, args)]
            if seqs:
                self._page_starts.remember(key, stamp, offset, seqs[0])
            if len(seqs) > limit:
                self._page_starts.remember(key, stamp, offset + limit, seqs.pop())
            if not seqs:
                return []
            # the page is exactly the live rows (of the container) between its first and last seq
            where = "deleted = 0 AND seq BETWEEN ? AND ?" + ("" if key is None else " AND key = ?")
            args = (seqs[0], seqs[-1]) + (() if key is None else (key,))
            rows = db.execute(f"SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE {where} ORDER BY seq", args)
            return [_annotation(row) for row in rows]

    def count(self, key: str | None) -> int:
        """Return how many live annotations a container (None: all) holds."""
        if key is None:
            return self.db.execute("SELECT coalesce(sum(live), 0) FROM container_counts").fetchone()[0]
        row = self.db.execute("SELECT live FROM container_counts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    def canvas_annotations(self, key: str, canvas_id: str) -> list[StoredAnnotation]:
        """Return the live annotations of one canvas of a container, in stable order."""
        rows = self.db.execute(
            f"""SELECT {_ANNOTATION_COLUMNS} FROM annotations WHERE key = ? AND canvas_id = ? AND deleted = 0
            ORDER BY seq""",
            (key, canvas_id),
        )
        return [_annotation(row) for row in rows]

    def container_etag(self, key: str | None) -> str:
        """Return a strong ETag of a container (None: all) that changes with every change to its contents."""
        last = self.last_change(key)
        digest = hashlib.sha256(f"{key or ''}\n{last}".encode("utf-8")).hexdigest()
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

    def _insert(self, db, key, canvas_id, document, origin, creator, model_sha256, stamp) -> None:
        db.execute(
            """INSERT INTO annotations (id, key, canvas_id, model_sha256, origin, creator, document, version,
            etag, created, modified) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)""",
            (
                document["id"], key, canvas_id, model_sha256, origin, creator,
                json.dumps(document, ensure_ascii=False), make_etag(document, 1), stamp, stamp,
            ),
        )
        self._log(db, "Create", document["id"], key, canvas_id, stamp)

    def _rewrite(self, db, row, document, *, origin, creator, stamp, kind) -> None:
        version = row["version"] + 1
        canvas_id = target_canvas(document)
        db.execute(
            """UPDATE annotations SET document = ?, version = ?, etag = ?, origin = ?, creator = coalesce(?, creator),
            canvas_id = ?, modified = ?, deleted = 0 WHERE seq = ?""",
            (
                json.dumps(document, ensure_ascii=False), version, make_etag(document, version), origin, creator,
                canvas_id, stamp, row["seq"],
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


def _annotation(row: sqlite3.Row) -> StoredAnnotation:
    # positional, in the order of _ANNOTATION_COLUMNS and the dataclass fields
    return StoredAnnotation(*row[:8], bool(row[8]), *row[9:])
