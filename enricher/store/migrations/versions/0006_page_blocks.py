"""Live annotations per role, container and block of seqs (page_blocks), kept by a trigger and filled
from the annotations already stored, so a container page is found without OFFSET stepping through every
row before it (enricher.store.writes.page_start). SQLite's migration 11.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from enricher.store.writes import PAGE_BLOCK

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# page_blocks follows every insert, delete and change of key, role or deletion of an annotation
BLOCK_TRIGGER = (
    f"""CREATE FUNCTION annotations_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.deleted = 0 THEN
            UPDATE page_blocks SET live = live - 1
            WHERE role = OLD.role AND key = OLD.key AND block = OLD.seq / {PAGE_BLOCK};
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.deleted = 0 THEN
            INSERT INTO page_blocks AS blocks (role, key, block, live) VALUES (NEW.role, NEW.key, NEW.seq / {PAGE_BLOCK}, 1)
            ON CONFLICT (role, key, block) DO UPDATE SET live = blocks.live + 1;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER annotations_blocked_insert AFTER INSERT OR DELETE ON annotations
        FOR EACH ROW EXECUTE FUNCTION annotations_blocked()""",
    """CREATE TRIGGER annotations_blocked_update AFTER UPDATE OF key, deleted, role ON annotations FOR EACH ROW
        WHEN (OLD.key IS DISTINCT FROM NEW.key OR OLD.deleted <> NEW.deleted OR OLD.role <> NEW.role)
        EXECUTE FUNCTION annotations_blocked()""",
)


def upgrade() -> None:
    op.create_table(
        "page_blocks",
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("block", SEQ, nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("role", "key", "block"),
        sqlite_with_rowid=False,
    )
    op.execute(f"""INSERT INTO page_blocks (role, key, block, live)
        SELECT role, key, seq / {PAGE_BLOCK}, count(*) FROM annotations WHERE deleted = 0
        GROUP BY role, key, seq / {PAGE_BLOCK}""")
    for statement in BLOCK_TRIGGER:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER annotations_blocked_update ON annotations")
    op.execute("DROP TRIGGER annotations_blocked_insert ON annotations")
    op.drop_table("page_blocks")
    op.execute("DROP FUNCTION annotations_blocked")
