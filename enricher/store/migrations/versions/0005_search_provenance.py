"""The search index (enricher.search): a row per index term of each public annotation, written with it,
and counts per container, term and motivation kept by a trigger; the public annotations already stored
are indexed. And what a job's run used (enricher.provenance). The old SQLite migration 10.

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

from enricher.store.writes import search_rows

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BACKFILL_BATCH = 5000  # annotations per read while the index is filled

# search_counts follows every insert and delete of an index row (rows are never updated)
POSTGRESQL_COUNT_TRIGGER = (
    """CREATE FUNCTION search_counted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            UPDATE search_counts SET live = live - 1
            WHERE key = OLD.key AND term = OLD.term AND motivation = OLD.motivation;
        ELSE
            INSERT INTO search_counts AS counts (key, term, motivation, live)
            VALUES (NEW.key, NEW.term, NEW.motivation, 1)
            ON CONFLICT (key, term, motivation) DO UPDATE SET live = counts.live + 1;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER search_counted AFTER INSERT OR DELETE ON search_index
        FOR EACH ROW EXECUTE FUNCTION search_counted()""",
)
SQLITE_COUNT_TRIGGER = (
    """CREATE TRIGGER search_counted_insert AFTER INSERT ON search_index BEGIN
        INSERT INTO search_counts (key, term, motivation, live) VALUES (new.key, new.term, new.motivation, 1)
        ON CONFLICT (key, term, motivation) DO UPDATE SET live = live + 1;
    END""",
    """CREATE TRIGGER search_counted_delete AFTER DELETE ON search_index BEGIN
        UPDATE search_counts SET live = live - 1
        WHERE key = old.key AND term = old.term AND motivation = old.motivation;
    END""",
)
COUNT_TRIGGER = {"postgresql": POSTGRESQL_COUNT_TRIGGER, "sqlite": SQLITE_COUNT_TRIGGER}


def _backfill() -> None:
    """Index the public annotations already stored."""
    db, last = op.get_bind(), 0
    while rows := db.execute(sa.text(
        """SELECT seq, key, document, origin, role, review_state, concept FROM annotations
        WHERE seq > :last AND deleted = 0 ORDER BY seq LIMIT :batch"""), {"last": last, "batch": BACKFILL_BATCH}
    ).all():
        entries = [
            {"key": key, "term": term, "motivation": motivation, "seq": seq}
            for row in rows
            for key, term, motivation, seq in search_rows(
                row.seq, row.key, json.loads(row.document), origin=row.origin, role=row.role,
                review_state=row.review_state, concept=row.concept, deleted=False)
        ]
        if entries:
            db.execute(sa.text("INSERT INTO search_index (key, term, motivation, seq) "
                               "VALUES (:key, :term, :motivation, :seq)"), entries)
        last = rows[-1].seq


def upgrade() -> None:
    op.create_table(
        "search_index",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("motivation", sa.Text(), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.PrimaryKeyConstraint("key", "term", "seq"),
        sqlite_with_rowid=False,
    )
    op.create_index("search_index_by_seq", "search_index", ["seq"])
    op.create_table(
        "search_counts",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("motivation", sa.Text(), nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "term", "motivation"),
        sqlite_with_rowid=False,
    )
    for statement in COUNT_TRIGGER[op.get_bind().dialect.name]:
        op.execute(statement)
    _backfill()
    op.add_column("jobs", sa.Column("provenance", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "provenance")
    op.drop_table("search_counts")
    op.drop_table("search_index")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION search_counted")
