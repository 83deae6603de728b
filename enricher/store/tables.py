"""The one schema definition of the system of record, as SQLAlchemy Core ``MetaData``: every table,
column, constraint and index, with the partial indexes' conditions written once for both dialects.

Both backends are made by the one Alembic history in ``migrations/`` (a schema change is one revision
there), and tests/test_store_schema.py compares every backend's database with this definition.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import sqlite

from .writes import CONCEPT_TERMS

metadata = MetaData()

# a position in a growing sequence: 64 bits in PostgreSQL; exactly INTEGER in SQLite (the rowid when a key)
SEQ = BigInteger().with_variant(Integer(), "sqlite")
REAL = Float().with_variant(sqlite.REAL(), "sqlite")  # double precision in both
LIVE = "deleted = 0 AND role = 'annotation'"
LIVE_VERDICT = "deleted = 0 AND role = 'verdict'"


def _partial(name: str, table_columns: tuple, where: str) -> Index:
    """An index over the rows WHERE holds for, the same condition in both dialects."""
    return Index(name, *table_columns, sqlite_where=text(where), postgresql_where=text(where))


def _number() -> Column:
    """The insertion order of a table that has no number of its own (SQLite's writes fill it)."""
    return Column("number", BigInteger, Identity(), nullable=False, unique=True)


manifests = Table(
    "manifests", metadata,
    Column("key", Text, primary_key=True),
    Column("manifest_id", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("document", Text, nullable=False),
    Column("saved", Text, nullable=False),
    _number(),
)

annotations = Table(
    "annotations", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False, unique=True),
    Column("key", Text, nullable=False),
    Column("canvas_id", Text, nullable=False),
    Column("model_sha256", Text),
    Column("origin", Text, CheckConstraint("origin IN ('machine', 'human', 'edited')"), nullable=False),
    Column("creator", Text),
    Column("document", Text, nullable=False),  # the JSON text as written: pages splice it unparsed
    Column("version", Integer, nullable=False),
    Column("etag", Text, nullable=False),
    Column("created", Text, nullable=False),
    Column("modified", Text, nullable=False),
    Column("deleted", Integer, CheckConstraint("deleted IN (0, 1)"), nullable=False, server_default="0"),
    Column("role", Text, CheckConstraint("role IN ('annotation', 'verdict')"), nullable=False,
           server_default="annotation"),
    Column("review_state", Text,
           CheckConstraint("review_state IN ('pending', 'accepted', 'rejected', 'corrected', 'exhaustive')")),
    Column("concept", Text),
    Column("target_id", Text),
    Column("box_x", REAL), Column("box_y", REAL), Column("box_w", REAL), Column("box_h", REAL),
    Column("score", REAL),
    Column("classes", Text),  # an exhaustiveness statement's class names, one per line
    sqlite_autoincrement=True,
)
_a = annotations.c
Index("annotations_by_canvas", _a.key, _a.canvas_id, _a.model_sha256)
_partial("annotations_live_by_key", (_a.key, _a.seq), LIVE)
_partial("annotations_live", (_a.seq,), LIVE)
_partial("verdicts_live_by_key", (_a.key, _a.seq), LIVE_VERDICT)
_partial("verdicts_live", (_a.seq,), LIVE_VERDICT)
_partial("verdicts_by_target", (_a.target_id, _a.seq), "target_id IS NOT NULL")
_partial("annotations_by_model", (_a.model_sha256, _a.canvas_id), "deleted = 0")
# covering in SQLite, which counts an index as covering only with the partial condition's columns in it
_partial("exhaustive_live", (_a.key, _a.seq, _a.canvas_id, _a.classes, _a.deleted, _a.review_state, _a.role),
         "deleted = 0 AND review_state = 'exhaustive'")
_partial("machine_boxes", (_a.model_sha256, _a.canvas_id, _a.id, _a.concept, _a.score, _a.box_x, _a.box_y,
                           _a.box_w, _a.box_h, _a.deleted, _a.role, _a.origin),
         "deleted = 0 AND role = 'annotation' AND origin = 'machine' AND box_x IS NOT NULL")
_partial("live_by_canvas", (_a.key, _a.canvas_id, _a.model_sha256, _a.origin, _a.review_state, _a.concept,
                            _a.box_x, _a.box_y, _a.box_w, _a.box_h, _a.id, _a.deleted, _a.role), LIVE)

changes = Table(
    "changes", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("time", Text, nullable=False),
    Column("kind", Text, CheckConstraint("kind IN ('Create', 'Update', 'Delete')"), nullable=False),
    Column("anno_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("canvas_id", Text, nullable=False),
    sqlite_autoincrement=True,
)
Index("changes_by_key", changes.c.key, changes.c.seq)

# live annotations per role and container; kept by triggers (revision 0001, one per dialect)
container_counts = Table(
    "container_counts", metadata,
    Column("role", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("live", Integer, nullable=False),
    PrimaryKeyConstraint("role", "key"),
    sqlite_with_rowid=False,
)

# live annotations per role, container and block of seqs (seq / writes.PAGE_BLOCK), so a page's first row
# is found without stepping through the rows before it; kept by triggers (revision 0006)
page_blocks = Table(
    "page_blocks", metadata,
    Column("role", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("block", SEQ, nullable=False),
    Column("live", Integer, nullable=False),
    PrimaryKeyConstraint("role", "key", "block"),
    sqlite_with_rowid=False,
)

# live annotations (not verdicts) per model class and model ('': written by a person); kept by triggers
# (revision 0008), read by the statistics graph (enricher.statistics)
class_counts = Table(
    "class_counts", metadata,
    Column("concept", Text, nullable=False),
    Column("model_sha256", Text, nullable=False),
    Column("live", Integer, nullable=False),
    PrimaryKeyConstraint("concept", "model_sha256"),
    sqlite_with_rowid=False,
)

jobs = Table(
    "jobs", metadata,
    Column("number", SEQ, primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False, unique=True),
    Column("state", Text, CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'cancelled')"),
           nullable=False),
    Column("params", Text, nullable=False),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("manifests", Text, nullable=False, server_default="[]"),
    Column("error", Text),
    Column("created", Text, nullable=False),
    Column("started", Text),
    Column("finished", Text),
    Column("provenance", Text),  # what the run used (revision 0005, SQLite's migration 10)
    sqlite_autoincrement=True,
)
Index("jobs_by_state", jobs.c.state, jobs.c.number)

job_canvases = Table(
    "job_canvases", metadata,
    Column("job_id", Text, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("canvas_id", Text, nullable=False),
    Column("error", Text),
    Column("finished", Text, nullable=False),
    Column("skipped", Text),  # why the canvas had nothing to look at (revision 0002, SQLite's migration 7)
    PrimaryKeyConstraint("job_id", "key", "canvas_id"),
    sqlite_with_rowid=False,
)

evaluations = Table(
    "evaluations", metadata,
    Column("id", Text, primary_key=True),
    Column("model_sha256", Text, nullable=False),
    Column("key", Text),
    Column("created", Text, nullable=False),
    Column("document", Text, nullable=False),
    _number(),
)
Index("evaluations_by_model", evaluations.c.model_sha256, evaluations.c.key, evaluations.c.created)

calibrations = Table(
    "calibrations", metadata,
    Column("id", Text, primary_key=True),
    Column("model_sha256", Text, nullable=False),
    Column("key", Text),
    Column("method", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("created", Text, nullable=False),
    _number(),
)
Index("calibrations_by_model", calibrations.c.model_sha256, calibrations.c.key, calibrations.c.created)

followers = Table(
    "followers", metadata,
    Column("name", Text, primary_key=True),
    Column("seq", SEQ, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Column("updated", Text),
    sqlite_with_rowid=False,
)

discovery_activities = Table(
    "discovery_activities", metadata,
    Column("position", SEQ, primary_key=True, autoincrement=False),
    Column("type", Text, nullable=False),
    Column("object_id", Text, nullable=False),
    Column("object_type", Text, nullable=False),
    Column("end_time", Text, nullable=False),
)

# where each live annotation is, so a change that moves one to another canvas touches both pages
discovery_members = Table(
    "discovery_members", metadata,
    Column("anno_id", Text, primary_key=True),
    Column("key", Text, nullable=False),
    Column("canvas_id", Text, nullable=False),
    sqlite_with_rowid=False,
)
Index("discovery_members_by_canvas", discovery_members.c.key, discovery_members.c.canvas_id)

# objects whose last activity was a Create or an Update
discovery_published = Table(
    "discovery_published", metadata,
    Column("object_id", Text, primary_key=True),
    sqlite_with_rowid=False,
)

# the token buckets of the rate limits; a bucket that has refilled (full_at passed) is dropped
# (revision 0003, SQLite's migration 8)
rate_buckets = Table(
    "rate_buckets", metadata,
    Column("name", Text, primary_key=True),
    Column("tokens", REAL, nullable=False),
    Column("updated", REAL, nullable=False),
    Column("full_at", REAL, nullable=False),
    sqlite_with_rowid=False,
)
Index("rate_buckets_full", rate_buckets.c.full_at)

# what OAI-PMH harvests: a record per enriched manifest at its place in the harvest order (a position never
# reused: a moved record never takes a place a harvester has passed), its sets, and the sets' names
# (revision 0004, SQLite's migration 9)
harvest_records = Table(
    "harvest_records", metadata,
    Column("position", SEQ, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("datestamp", Text, nullable=False),
    Column("deleted", Integer, CheckConstraint("deleted IN (0, 1)"), nullable=False),
    sqlite_autoincrement=True,
)
Index("harvest_records_by_datestamp", harvest_records.c.datestamp, harvest_records.c.position)

harvest_sets = Table(
    "harvest_sets", metadata,
    Column("spec", Text, primary_key=True),
    Column("name", Text, nullable=False),
    sqlite_with_rowid=False,
)

harvest_members = Table(
    "harvest_members", metadata,
    Column("key", Text, nullable=False),
    Column("spec", Text, nullable=False),
    PrimaryKeyConstraint("key", "spec"),
    sqlite_with_rowid=False,
)
Index("harvest_members_by_spec", harvest_members.c.spec, harvest_members.c.key)

# the search index: a row per index term of each public annotation, written with it; counts per
# container, term and motivation kept by triggers (revision 0005, SQLite's migration 10)
search_index = Table(
    "search_index", metadata,
    Column("key", Text, nullable=False),
    Column("term", Text, nullable=False),
    Column("motivation", Text, nullable=False),
    Column("seq", SEQ, nullable=False),
    PrimaryKeyConstraint("key", "term", "seq"),
    sqlite_with_rowid=False,
)
Index("search_index_by_seq", search_index.c.seq)

search_counts = Table(
    "search_counts", metadata,
    Column("key", Text, nullable=False),
    Column("term", Text, nullable=False),
    Column("motivation", Text, nullable=False),
    Column("live", Integer, nullable=False),
    PrimaryKeyConstraint("key", "term", "motivation"),
    sqlite_with_rowid=False,
)
# the rows of concept IRIs, read by Store.written_concepts without the rows of every class (revision 0009)
_partial("search_counts_concepts", (search_counts.c.term, search_counts.c.live), CONCEPT_TERMS)
