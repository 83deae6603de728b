"""What OAI-PMH harvests (enricher.harvest decides it from the change log): a record per enriched
manifest at its place in the harvest order, with its datestamp, deleted flag and sets. The rules are
the SQLite backend's (enricher/store/sqlite/harvest.py)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert

from ..records import HarvestRecord, HarvestSet
from ..tables import harvest_members, harvest_records, harvest_sets
from .search import BYTES

R, M, S = harvest_records.c, harvest_members.c, harvest_sets.c


class Harvest:
    """OAI-PMH records and sets (a mixin of PostgresStore)."""

    def save_harvest_record(self, key: str, datestamp: str, deleted: bool, sets: Mapping[str, str]) -> HarvestRecord:
        """Move record KEY to the end of the harvest order with DATESTAMP (raised to the latest datestamp
        where it is earlier: the log's clock may step back a second between writers, and a harvest from a
        date must not miss a record placed after it), its deleted flag and its SETS (spec -> name)."""
        with self.transaction() as db:
            # one writer at a time, to its commit: positions then appear in commit order, and the
            # latest datestamp read here is still the latest when this record is placed
            self._hold(db, "harvest")
            latest = db.execute(select(func.max(R.datestamp))).scalar()
            stamp = max(datestamp, latest or datestamp)
            db.execute(delete(harvest_records).where(R.key == key))
            db.execute(harvest_records.insert().values(key=key, datestamp=stamp, deleted=int(deleted)))
            db.execute(delete(harvest_members).where(M.key == key))
            if sets:
                db.execute(harvest_members.insert(), [{"key": key, "spec": spec} for spec in sets])
                named = insert(harvest_sets).values([{"spec": spec, "name": name} for spec, name in sets.items()])
                db.execute(named.on_conflict_do_update(index_elements=["spec"], set_={"name": named.excluded.name}))
        return self.harvest_record(key)

    def harvest_record(self, key: str) -> HarvestRecord | None:
        """Record KEY, deleted or not; None when it was never harvestable."""
        records = self._records(self._rows(select(R.key, R.position, R.datestamp, R.deleted).where(R.key == key)))
        return records[0] if records else None

    def harvest_records(self, after: int, upto: int, limit: int, *, since: str | None = None,
                        until: str | None = None, set_spec: str | None = None) -> list[HarvestRecord]:
        """Records at positions AFTER < p <= UPTO, in order, at most LIMIT, with datestamps from SINCE to
        UNTIL (inclusive, either open), in set SET_SPEC or a set below it (``a:b`` is below ``a``)."""
        statement = select(R.key, R.position, R.datestamp, R.deleted).where(
            R.position > after, R.position <= upto, *_where(since, until, set_spec))
        return self._records(self._rows(statement.order_by(R.position).limit(limit)))

    def harvest_count(self, upto: int, *, since: str | None = None, until: str | None = None,
                      set_spec: str | None = None) -> int:
        """How many records harvest_records(0, UPTO, ...) would give without a limit."""
        return int(self._scalar(select(func.count()).select_from(harvest_records).where(
            R.position <= upto, *_where(since, until, set_spec))))

    def harvest_position(self) -> int:
        """The position of the last record in the harvest order (0: none yet)."""
        return int(self._scalar(select(func.coalesce(func.max(R.position), 0))))

    def harvest_sets(self) -> list[HarvestSet]:
        """Every set that has held a record, by spec."""
        return [HarvestSet(spec, name) for spec, name in self._rows(select(S.spec, S.name).order_by(S.spec.collate(BYTES)))]

    def earliest_datestamp(self) -> str | None:
        """The earliest datestamp of a record, deleted ones included (None: no record yet)."""
        return self._scalar(select(func.min(R.datestamp)))

    def _records(self, rows) -> list[HarvestRecord]:
        if not rows:
            return []
        sets: dict[str, list[str]] = {}
        members = select(M.key, M.spec).where(M.key.in_([row[0] for row in rows])).order_by(M.spec.collate(BYTES))
        for key, spec in self._rows(members):
            sets.setdefault(key, []).append(spec)
        return [HarvestRecord(key, position, datestamp, bool(deleted), tuple(sets.get(key, ())))
                for key, position, datestamp, deleted in rows]


def _where(since: str | None, until: str | None, set_spec: str | None) -> tuple:
    where = ()
    if since is not None:
        where += (R.datestamp >= since,)
    if until is not None:
        where += (R.datestamp <= until,)
    if set_spec is not None:
        below = func.starts_with(M.spec, literal(set_spec + ":"))
        where += (R.key.in_(select(M.key).where(or_(M.spec == set_spec, below))),)
    return where
