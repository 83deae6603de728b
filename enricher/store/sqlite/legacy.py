"""Files made before the one migration history: until then SQLite ran its own migrations (``PRAGMA
user_version`` counted them, ten in all). ``adopt`` brings such a file onto the history: a file below
6 runs the old steps up to 6 (kept here for that alone), the tables numbered by their rowid then get
the column ``number`` the history has (the rowid's value, so every order stays), and the file is
stamped with the revision that stands for its version (6 -> 0001, 7 -> 0002, ... 10 -> 0005)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from ...errors import EnricherError
from ...review import class_of
from .. import migrations
from ..columns import PENDING, classes_column, region_columns

BACKFILL_BATCH = 5000  # rows per read while a step fills new columns
LAST_VERSION = 10  # the old migrations' count when the history took over
# user_version of a file on the history: above LAST_VERSION, so enricher before the history refuses the
# file as newer instead of writing rows without their number
ON_HISTORY = LAST_VERSION + 1


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
            updates.append((*region_columns(document), classes_column(document, state), class_of(document) if classless else None, seq))
        db.executemany(
            """UPDATE annotations SET box_x = ?, box_y = ?, box_w = ?, box_h = ?, score = ?, classes = ?,
            concept = coalesce(concept, ?) WHERE seq = ?""",
            updates,
        )
        last = rows[-1][0]


def _cursor_rows(db: sqlite3.Connection) -> None:
    """Bring the cursors that Change Discovery and the pusher kept in tables of their own (created on
    first use before migration 6) into the one table of follower cursors."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "discovery_cursor" in tables:
        db.execute("INSERT INTO followers (name, seq) SELECT 'discovery', seq FROM discovery_cursor")
        db.execute("DROP TABLE discovery_cursor")
    if "push_cursor" in tables:
        db.execute(
            """INSERT INTO followers (name, seq, failures, error, updated)
            SELECT 'push ' || target, seq, failures, error, updated FROM push_cursor"""
        )
        db.execute("DROP TABLE push_cursor")


# A step is SQL, or a function of the connection for what SQL cannot compute (parsing regions).
STEPS: tuple[tuple[str | Callable[[sqlite3.Connection], None], ...], ...] = (
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
    # 6: what the change-log followers keep: a cursor per follower (enricher.follow) with the delivery
    # state of a pusher, and Change Discovery's stream (enricher.discovery). Before this migration the
    # followers created their own tables on first use; IF NOT EXISTS keeps what those hold.
    (
        """CREATE TABLE followers (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, failures INTEGER NOT NULL DEFAULT 0,
            error TEXT, updated TEXT) WITHOUT ROWID""",
        _cursor_rows,
        """CREATE TABLE IF NOT EXISTS discovery_activities (
            position INTEGER PRIMARY KEY, type TEXT NOT NULL, object_id TEXT NOT NULL,
            object_type TEXT NOT NULL, end_time TEXT NOT NULL)""",
        # where each live annotation is, so a change that moves one to another canvas touches both pages
        """CREATE TABLE IF NOT EXISTS discovery_members (
            anno_id TEXT PRIMARY KEY, key TEXT NOT NULL, canvas_id TEXT NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS discovery_members_by_canvas ON discovery_members (key, canvas_id)",
        # objects whose last activity was a Create or an Update
        "CREATE TABLE IF NOT EXISTS discovery_published (object_id TEXT PRIMARY KEY) WITHOUT ROWID",
    ),
)


# the tables whose insertion order was the rowid, as revision 0001 makes them, with the rowid as number
NUMBERED = {
    "manifests": (
        """CREATE TABLE numbered (key TEXT NOT NULL, manifest_id TEXT NOT NULL, url TEXT NOT NULL,
            label TEXT NOT NULL, document TEXT NOT NULL, saved TEXT NOT NULL, number BIGINT NOT NULL,
            PRIMARY KEY (key), UNIQUE (number))""",
        "key, manifest_id, url, label, document, saved",
        (),
    ),
    "evaluations": (
        """CREATE TABLE numbered (id TEXT NOT NULL, model_sha256 TEXT NOT NULL, key TEXT, created TEXT NOT NULL,
            document TEXT NOT NULL, number BIGINT NOT NULL, PRIMARY KEY (id), UNIQUE (number))""",
        "id, model_sha256, key, created, document",
        ("CREATE INDEX evaluations_by_model ON evaluations (model_sha256, key, created)",),
    ),
    "calibrations": (
        """CREATE TABLE numbered (id TEXT NOT NULL, model_sha256 TEXT NOT NULL, key TEXT, method TEXT NOT NULL,
            params TEXT NOT NULL, created TEXT NOT NULL, number BIGINT NOT NULL, PRIMARY KEY (id), UNIQUE (number))""",
        "id, model_sha256, key, method, params, created",
        ("CREATE INDEX calibrations_by_model ON calibrations (model_sha256, key, created)",),
    ),
}


def _number(db: sqlite3.Connection) -> None:
    """Give the tables numbered by their rowid the column number, holding the rowid."""
    for table, (create, columns, indexes) in NUMBERED.items():
        db.execute(create)
        db.execute(f"INSERT INTO numbered ({columns}, number) SELECT {columns}, rowid FROM {table} ORDER BY rowid")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE numbered RENAME TO {table}")
        for statement in indexes:
            db.execute(statement)


def adopt(db: sqlite3.Connection, where: str) -> str | None:
    """Bring a file of the old migrations onto the history, in the caller's transaction; return the
    revision to stamp it with (None: a new, empty file, for the history to make from the start).

    Raises EnricherError for a version the old migrations never had.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        return None
    if version > LAST_VERSION:
        raise EnricherError(f"the database has schema version {version}, which this software does not know",
                            where=where)
    for statements in STEPS[version:]:
        for statement in statements:
            statement(db) if callable(statement) else db.execute(statement)
    _number(db)
    return migrations.revisions()[max(version, migrations.BASELINE_VERSION) - migrations.BASELINE_VERSION]
