"""Live annotations per model class and model (class_counts), kept by triggers and filled from the
annotations already stored, so the statistics graph (enricher.statistics) states how many annotations
tag each class without reading them: a count over the whole dataset costs as much at a million
annotations as at ten thousand. A person's annotation counts under model '' (no model).

Revision ID: 0008
Revises: 0007
"""

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COUNTED = "deleted = 0 AND role = 'annotation' AND concept IS NOT NULL"
# PostgreSQL: one statement-level trigger per event, as revision 0007 keeps the other counts
SPEC = ("annotations", ("concept", "model_sha256"), ("concept", "coalesce(model_sha256, '')"), COUNTED)
EVENTS = ("insert", "update", "delete")
# SQLite: row triggers, as it keeps the other counts
SQLITE_TRIGGERS = (
    """CREATE TRIGGER annotations_classed_insert AFTER INSERT ON annotations
    WHEN new.deleted = 0 AND new.role = 'annotation' AND new.concept IS NOT NULL BEGIN
        INSERT INTO class_counts (concept, model_sha256, live) VALUES (new.concept, coalesce(new.model_sha256, ''), 1)
        ON CONFLICT (concept, model_sha256) DO UPDATE SET live = live + 1;
    END""",
    """CREATE TRIGGER annotations_classed_update AFTER UPDATE OF concept, model_sha256, deleted, role ON annotations
    WHEN old.concept IS NOT new.concept OR old.model_sha256 IS NOT new.model_sha256 OR old.deleted IS NOT new.deleted
        OR old.role IS NOT new.role BEGIN
        UPDATE class_counts SET live = live - 1
        WHERE concept = old.concept AND model_sha256 = coalesce(old.model_sha256, '')
          AND old.deleted = 0 AND old.role = 'annotation';
        INSERT INTO class_counts (concept, model_sha256, live)
        SELECT new.concept, coalesce(new.model_sha256, ''), 1
        WHERE new.deleted = 0 AND new.role = 'annotation' AND new.concept IS NOT NULL
        ON CONFLICT (concept, model_sha256) DO UPDATE SET live = live + 1;
    END""",
    """CREATE TRIGGER annotations_classed_delete AFTER DELETE ON annotations
    WHEN old.deleted = 0 AND old.role = 'annotation' AND old.concept IS NOT NULL BEGIN
        UPDATE class_counts SET live = live - 1 WHERE concept = old.concept AND model_sha256 = coalesce(old.model_sha256, '');
    END""",
)


def _statement_trigger(event: str) -> tuple[str, str]:
    counts = importlib.import_module("enricher.store.migrations.versions.0007_statement_counts")
    return counts.statement_trigger("class_counts", event, SPEC)


def upgrade() -> None:
    op.create_table(
        "class_counts",
        sa.Column("concept", sa.Text(), nullable=False),
        sa.Column("model_sha256", sa.Text(), nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("concept", "model_sha256"),
        sqlite_with_rowid=False,
    )
    op.execute(f"""INSERT INTO class_counts (concept, model_sha256, live)
        SELECT concept, coalesce(model_sha256, ''), count(*) FROM annotations WHERE {COUNTED}
        GROUP BY concept, coalesce(model_sha256, '')""")
    if op.get_bind().dialect.name == "postgresql":
        for event in EVENTS:
            for statement in _statement_trigger(event):
                op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in EVENTS:
            op.execute(f"DROP TRIGGER class_counts_{event} ON annotations")
            op.execute(f"DROP FUNCTION class_counts_{event}")
    else:  # SQLite drops a table's triggers with it, not those on annotations
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER annotations_classed_{name}")
    op.drop_table("class_counts")
