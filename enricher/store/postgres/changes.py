"""The change log, the cursors of its followers and Change Discovery's state.

The log's order is its commit order: a writer takes the transaction-level advisory lock ``change log``
before its first entry and keeps it to its commit, so no entry ever appears behind a seq a follower
has already passed (with concurrent writers, sequence numbers alone would not give that)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from ...clock import now
from ..records import Activity, Change, Cursor
from ..tables import (
    changes,
    discovery_activities,
    discovery_members,
    discovery_published,
    followers,
)
from ..writes import stamped

CHANGE = (changes.c.seq, changes.c.time, changes.c.kind, changes.c.anno_id, changes.c.key, changes.c.canvas_id)
ACTIVITY = discovery_activities.c


class ChangeLog:
    """The change log and what its followers keep (a mixin of PostgresStore)."""

    def last_change(self, key: str | None = None) -> int:
        """Return the seq of the latest change-log entry (of one container, if KEY); 0 when none."""
        statement = select(func.coalesce(func.max(changes.c.seq), 0))
        return int(self._scalar(statement if key is None else statement.where(changes.c.key == key)))

    def changes(self, after: int, limit: int, key: str | None = None) -> list[Change]:
        """Return change-log entries with seq above AFTER, oldest first (of one container, if KEY)."""
        statement = select(*CHANGE).where(changes.c.seq > after)
        if key is not None:
            statement = statement.where(changes.c.key == key)
        return [Change(*row) for row in self._rows(statement.order_by(changes.c.seq).limit(limit))]

    def _hold_log(self, db: Connection) -> None:
        """Take the change log for this transaction (see the module docstring)."""
        self._hold(db, "change log")

    def _log(self, db: Connection, kind: str, anno_id: str, key: str, canvas_id: str, stamp: str) -> None:
        self._hold_log(db)
        db.execute(changes.insert().values(time=stamp, kind=kind, anno_id=anno_id, key=key, canvas_id=canvas_id))

    # follower cursors

    def cursor(self, name: str) -> Cursor:
        """Where follower NAME stands (seq 0 when it has never run)."""
        f = followers.c
        row = self._first(select(f.name, f.seq, f.failures, f.error, f.updated).where(f.name == name))
        return Cursor(*row) if row else Cursor(name)

    def move_cursor(self, name: str, seq: int) -> None:
        """Record that follower NAME has applied every change up to SEQ (its failures are over)."""
        statement = insert(followers).values(name=name, seq=seq, failures=0, error=None, updated=now())
        with self.transaction() as db:
            db.execute(statement.on_conflict_do_update(index_elements=["name"], set_={
                "seq": statement.excluded.seq, "failures": 0, "error": None, "updated": statement.excluded.updated,
            }))

    def cursor_failed(self, name: str, error: str) -> None:
        """Record that follower NAME failed a round with ERROR (its position stays)."""
        statement = insert(followers).values(name=name, seq=0, failures=1, error=error, updated=now())
        with self.transaction() as db:
            db.execute(statement.on_conflict_do_update(index_elements=["name"], set_={
                "failures": followers.c.failures + 1, "error": statement.excluded.error,
                "updated": statement.excluded.updated,
            }))

    # Change Discovery's state (enricher.discovery decides what the activities are)

    def discovery_member(self, anno_id: str) -> tuple[str, str] | None:
        """The (key, canvas id) where Change Discovery last saw annotation ANNO_ID live, or None."""
        m = discovery_members.c
        row = self._first(select(m.key, m.canvas_id).where(m.anno_id == anno_id))
        return (row[0], row[1]) if row else None

    def set_discovery_member(self, anno_id: str, place: tuple[str, str] | None) -> None:
        """Record where annotation ANNO_ID is live now (PLACE: key, canvas id), or that it is not (None)."""
        with self.transaction() as db:
            if place is None:
                db.execute(discovery_members.delete().where(discovery_members.c.anno_id == anno_id))
                return
            statement = insert(discovery_members).values(anno_id=anno_id, key=place[0], canvas_id=place[1])
            db.execute(statement.on_conflict_do_update(index_elements=["anno_id"], set_={
                "key": statement.excluded.key, "canvas_id": statement.excluded.canvas_id,
            }))

    def discovery_page_live(self, key: str, canvas_id: str) -> bool:
        """Whether Change Discovery knows a live annotation on canvas CANVAS_ID of container KEY."""
        m = discovery_members.c
        return self._first(select(literal(1)).where(m.key == key, m.canvas_id == canvas_id).limit(1)) is not None

    def set_published(self, object_id: str, live: bool) -> bool:
        """Record whether OBJECT_ID's last activity published it (LIVE) or deleted it; return whether it
        was published before."""
        p = discovery_published.c
        with self.transaction() as db:
            if live:
                added = db.execute(insert(discovery_published).values(object_id=object_id)
                                   .on_conflict_do_nothing().returning(p.object_id)).first()
                return added is None
            return db.execute(discovery_published.delete().where(p.object_id == object_id)).rowcount > 0

    def append_activities(self, activities: Sequence[tuple[str, str, str, str]]) -> int:
        """Append (type, object id, object type, time) activities to the stream, each stamped no earlier
        than the one before it; return how many."""
        with self.transaction() as db:
            self._hold(db, "activities")
            last = db.execute(select(ACTIVITY.position, ACTIVITY.end_time)
                              .order_by(ACTIVITY.position.desc()).limit(1)).first()
            position, end_time = (last[0] + 1, last[1]) if last else (0, "")
            rows = [dict(zip(("position", "type", "object_id", "object_type", "end_time"), row))
                    for row in stamped(activities, position, end_time)]
            if rows:
                db.execute(discovery_activities.insert(), rows)
        return len(activities)

    def activity_count(self) -> int:
        """How many activities the stream holds."""
        last = self._scalar(select(func.max(ACTIVITY.position)))
        return 0 if last is None else last + 1

    def activities(self, start: int, stop: int) -> list[Activity]:
        """The activities at positions START to STOP (inclusive), in order."""
        rows = self._rows(select(ACTIVITY.position, ACTIVITY.type, ACTIVITY.object_id, ACTIVITY.object_type,
                                 ACTIVITY.end_time).where(ACTIVITY.position.between(start, stop))
                          .order_by(ACTIVITY.position))
        return [Activity(*row) for row in rows]
