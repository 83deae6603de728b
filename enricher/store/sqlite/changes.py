"""The change log (every write appends Create, Update or Delete of an annotation), the cursors of the
followers that consume it (enricher.follow), and the state Change Discovery derives from it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ...clock import now
from ..records import Activity, Change, Cursor
from ..writes import stamped


class ChangeLog:
    """The change log and what its followers keep (a mixin of SQLiteStore)."""

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

    @staticmethod
    def _log(db: sqlite3.Connection, kind: str, anno_id: str, key: str, canvas_id: str, stamp: str) -> None:
        db.execute(
            "INSERT INTO changes (time, kind, anno_id, key, canvas_id) VALUES (?, ?, ?, ?, ?)",
            (stamp, kind, anno_id, key, canvas_id),
        )

    # follower cursors

    def cursor(self, name: str) -> Cursor:
        """Where follower NAME stands (seq 0 when it has never run)."""
        row = self.db.execute("SELECT name, seq, failures, error, updated FROM followers WHERE name = ?", (name,)).fetchone()
        return Cursor(*row) if row else Cursor(name)

    def move_cursor(self, name: str, seq: int) -> None:
        """Record that follower NAME has applied every change up to SEQ (its failures are over)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO followers (name, seq, failures, error, updated) VALUES (?, ?, 0, NULL, ?)
                ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, failures = 0, error = NULL,
                updated = excluded.updated""",
                (name, seq, now()),
            )

    def cursor_failed(self, name: str, error: str) -> None:
        """Record that follower NAME failed a round with ERROR (its position stays)."""
        with self.transaction() as db:
            db.execute(
                """INSERT INTO followers (name, seq, failures, error, updated) VALUES (?, 0, 1, ?, ?)
                ON CONFLICT (name) DO UPDATE SET failures = failures + 1, error = excluded.error,
                updated = excluded.updated""",
                (name, error, now()),
            )

    # Change Discovery's state (enricher.discovery decides what the activities are)

    def discovery_member(self, anno_id: str) -> tuple[str, str] | None:
        """The (key, canvas id) where Change Discovery last saw annotation ANNO_ID live, or None."""
        row = self.db.execute("SELECT key, canvas_id FROM discovery_members WHERE anno_id = ?", (anno_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_discovery_member(self, anno_id: str, place: tuple[str, str] | None) -> None:
        """Record where annotation ANNO_ID is live now (PLACE: key, canvas id), or that it is not (None)."""
        with self.transaction() as db:
            if place is None:
                db.execute("DELETE FROM discovery_members WHERE anno_id = ?", (anno_id,))
            else:
                db.execute("INSERT OR REPLACE INTO discovery_members (anno_id, key, canvas_id) VALUES (?, ?, ?)",
                           (anno_id, *place))

    def discovery_page_live(self, key: str, canvas_id: str) -> bool:
        """Whether Change Discovery knows a live annotation on canvas CANVAS_ID of container KEY."""
        return self.db.execute(
            "SELECT 1 FROM discovery_members WHERE key = ? AND canvas_id = ? LIMIT 1", (key, canvas_id)
        ).fetchone() is not None

    def set_published(self, object_id: str, live: bool) -> bool:
        """Record whether OBJECT_ID's last activity published it (LIVE) or deleted it; return whether it
        was published before."""
        with self.transaction() as db:
            was = db.execute("SELECT 1 FROM discovery_published WHERE object_id = ?", (object_id,)).fetchone() is not None
            if live and not was:
                db.execute("INSERT INTO discovery_published (object_id) VALUES (?)", (object_id,))
            elif was and not live:
                db.execute("DELETE FROM discovery_published WHERE object_id = ?", (object_id,))
        return was

    def append_activities(self, activities: Sequence[tuple[str, str, str, str]]) -> int:
        """Append (type, object id, object type, time) activities to the stream, each stamped no earlier
        than the one before it; return how many."""
        with self.transaction() as db:
            last = db.execute(
                "SELECT position, end_time FROM discovery_activities ORDER BY position DESC LIMIT 1"
            ).fetchone()
            position, end_time = (last[0] + 1, last[1]) if last else (0, "")
            db.executemany(
                "INSERT INTO discovery_activities (position, type, object_id, object_type, end_time) VALUES (?, ?, ?, ?, ?)",
                stamped(activities, position, end_time),
            )
        return len(activities)

    def activity_count(self) -> int:
        """How many activities the stream holds."""
        last = self.db.execute("SELECT max(position) FROM discovery_activities").fetchone()[0]
        return 0 if last is None else last + 1

    def activities(self, start: int, stop: int) -> list[Activity]:
        """The activities at positions START to STOP (inclusive), in order."""
        rows = self.db.execute(
            """SELECT position, type, object_id, object_type, end_time FROM discovery_activities
            WHERE position >= ? AND position <= ? ORDER BY position""",
            (start, stop),
        )
        return [Activity(*row) for row in rows]
