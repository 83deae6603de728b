"""The schema as the old SQLite migrations 1 to 6 left it (sqlite/legacy.py adopts such files): every
table and index of enricher/store/tables.py then, and the triggers that keep container_counts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REAL = sa.Float().with_variant(sa.dialects.sqlite.REAL(), "sqlite")  # double precision in both

# container_counts follows every insert, delete and change of key, role or deletion of an annotation
POSTGRESQL_COUNT_TRIGGER = (
    """CREATE FUNCTION annotations_counted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.deleted = 0 THEN
            UPDATE container_counts SET live = live - 1 WHERE role = OLD.role AND key = OLD.key;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.deleted = 0 THEN
            INSERT INTO container_counts AS counts (role, key, live) VALUES (NEW.role, NEW.key, 1)
            ON CONFLICT (role, key) DO UPDATE SET live = counts.live + 1;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER annotations_counted_insert AFTER INSERT OR DELETE ON annotations
        FOR EACH ROW EXECUTE FUNCTION annotations_counted()""",
    """CREATE TRIGGER annotations_counted_update AFTER UPDATE OF key, deleted, role ON annotations FOR EACH ROW
        WHEN (OLD.key IS DISTINCT FROM NEW.key OR OLD.deleted <> NEW.deleted OR OLD.role <> NEW.role)
        EXECUTE FUNCTION annotations_counted()""",
)
SQLITE_COUNT_TRIGGER = (
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
)
COUNT_TRIGGER = {"postgresql": POSTGRESQL_COUNT_TRIGGER, "sqlite": SQLITE_COUNT_TRIGGER}


def upgrade() -> None:
    op.create_table('annotations',
    sa.Column('seq', SEQ, autoincrement=True, nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('canvas_id', sa.Text(), nullable=False),
    sa.Column('model_sha256', sa.Text(), nullable=True),
    sa.Column('origin', sa.Text(), sa.CheckConstraint("origin IN ('machine', 'human', 'edited')"), nullable=False),
    sa.Column('creator', sa.Text(), nullable=True),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('etag', sa.Text(), nullable=False),
    sa.Column('created', sa.Text(), nullable=False),
    sa.Column('modified', sa.Text(), nullable=False),
    sa.Column('deleted', sa.Integer(), sa.CheckConstraint('deleted IN (0, 1)'), server_default='0', nullable=False),
    sa.Column('role', sa.Text(), sa.CheckConstraint("role IN ('annotation', 'verdict')"), server_default='annotation',
              nullable=False),
    sa.Column('review_state', sa.Text(),
              sa.CheckConstraint("review_state IN ('pending', 'accepted', 'rejected', 'corrected', 'exhaustive')"),
              nullable=True),
    sa.Column('concept', sa.Text(), nullable=True),
    sa.Column('target_id', sa.Text(), nullable=True),
    sa.Column('box_x', REAL, nullable=True),
    sa.Column('box_y', REAL, nullable=True),
    sa.Column('box_w', REAL, nullable=True),
    sa.Column('box_h', REAL, nullable=True),
    sa.Column('score', REAL, nullable=True),
    sa.Column('classes', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id'),
    sqlite_autoincrement=True
    )
    op.create_index('annotations_by_canvas', 'annotations', ['key', 'canvas_id', 'model_sha256'], unique=False)
    op.create_index('annotations_by_model', 'annotations', ['model_sha256', 'canvas_id'], unique=False, sqlite_where=sa.text('deleted = 0'), postgresql_where=sa.text('deleted = 0'))
    op.create_index('annotations_live', 'annotations', ['seq'], unique=False, sqlite_where=sa.text("deleted = 0 AND role = 'annotation'"), postgresql_where=sa.text("deleted = 0 AND role = 'annotation'"))
    op.create_index('annotations_live_by_key', 'annotations', ['key', 'seq'], unique=False, sqlite_where=sa.text("deleted = 0 AND role = 'annotation'"), postgresql_where=sa.text("deleted = 0 AND role = 'annotation'"))
    op.create_index('exhaustive_live', 'annotations', ['key', 'seq', 'canvas_id', 'classes', 'deleted', 'review_state', 'role'], unique=False, sqlite_where=sa.text("deleted = 0 AND review_state = 'exhaustive'"), postgresql_where=sa.text("deleted = 0 AND review_state = 'exhaustive'"))
    op.create_index('live_by_canvas', 'annotations', ['key', 'canvas_id', 'model_sha256', 'origin', 'review_state', 'concept', 'box_x', 'box_y', 'box_w', 'box_h', 'id', 'deleted', 'role'], unique=False, sqlite_where=sa.text("deleted = 0 AND role = 'annotation'"), postgresql_where=sa.text("deleted = 0 AND role = 'annotation'"))
    op.create_index('machine_boxes', 'annotations', ['model_sha256', 'canvas_id', 'id', 'concept', 'score', 'box_x', 'box_y', 'box_w', 'box_h', 'deleted', 'role', 'origin'], unique=False, sqlite_where=sa.text("deleted = 0 AND role = 'annotation' AND origin = 'machine' AND box_x IS NOT NULL"), postgresql_where=sa.text("deleted = 0 AND role = 'annotation' AND origin = 'machine' AND box_x IS NOT NULL"))
    op.create_index('verdicts_by_target', 'annotations', ['target_id', 'seq'], unique=False, sqlite_where=sa.text('target_id IS NOT NULL'), postgresql_where=sa.text('target_id IS NOT NULL'))
    op.create_index('verdicts_live', 'annotations', ['seq'], unique=False, sqlite_where=sa.text("deleted = 0 AND role = 'verdict'"), postgresql_where=sa.text("deleted = 0 AND role = 'verdict'"))
    op.create_index('verdicts_live_by_key', 'annotations', ['key', 'seq'], unique=False, sqlite_where=sa.text("deleted = 0 AND role = 'verdict'"), postgresql_where=sa.text("deleted = 0 AND role = 'verdict'"))
    op.create_table('calibrations',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('model_sha256', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=True),
    sa.Column('method', sa.Text(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('created', sa.Text(), nullable=False),
    sa.Column('number', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('calibrations_by_model', 'calibrations', ['model_sha256', 'key', 'created'], unique=False)
    op.create_table('changes',
    sa.Column('seq', SEQ, autoincrement=True, nullable=False),
    sa.Column('time', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), sa.CheckConstraint("kind IN ('Create', 'Update', 'Delete')"), nullable=False),
    sa.Column('anno_id', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('canvas_id', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sqlite_autoincrement=True
    )
    op.create_index('changes_by_key', 'changes', ['key', 'seq'], unique=False)
    op.create_table('container_counts',
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('live', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('role', 'key'),
    sqlite_with_rowid=False
    )
    op.create_table('discovery_activities',
    sa.Column('position', SEQ, autoincrement=False, nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('object_id', sa.Text(), nullable=False),
    sa.Column('object_type', sa.Text(), nullable=False),
    sa.Column('end_time', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('position')
    )
    op.create_table('discovery_members',
    sa.Column('anno_id', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('canvas_id', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('anno_id'),
    sqlite_with_rowid=False
    )
    op.create_index('discovery_members_by_canvas', 'discovery_members', ['key', 'canvas_id'], unique=False)
    op.create_table('discovery_published',
    sa.Column('object_id', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('object_id'),
    sqlite_with_rowid=False
    )
    op.create_table('evaluations',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('model_sha256', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=True),
    sa.Column('created', sa.Text(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('number', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('evaluations_by_model', 'evaluations', ['model_sha256', 'key', 'created'], unique=False)
    op.create_table('followers',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('seq', SEQ, nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name'),
    sqlite_with_rowid=False
    )
    op.create_table('jobs',
    sa.Column('number', SEQ, autoincrement=True, nullable=False),
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('state', sa.Text(), sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'cancelled')"),
              nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('manifests', sa.Text(), server_default='[]', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created', sa.Text(), nullable=False),
    sa.Column('started', sa.Text(), nullable=True),
    sa.Column('finished', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('number'),
    sa.UniqueConstraint('id'),
    sqlite_autoincrement=True
    )
    op.create_index('jobs_by_state', 'jobs', ['state', 'number'], unique=False)
    op.create_table('manifests',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('manifest_id', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('label', sa.Text(), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('saved', sa.Text(), nullable=False),
    sa.Column('number', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.PrimaryKeyConstraint('key'),
    sa.UniqueConstraint('number')
    )
    op.create_table('job_canvases',
    sa.Column('job_id', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('canvas_id', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('finished', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'key', 'canvas_id'),
    sqlite_with_rowid=False
    )
    for statement in COUNT_TRIGGER[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    for table in ("job_canvases", "jobs", "manifests", "followers", "evaluations", "calibrations", "discovery_published",
                  "discovery_members", "discovery_activities", "container_counts", "changes", "annotations"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION annotations_counted")
