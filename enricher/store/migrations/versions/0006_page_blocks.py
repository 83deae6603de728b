"""Live annotations per role, container and block of seqs (page_blocks), kept by a trigger and filled
from the annotations already stored, so a container page is found without OFFSET stepping through every
row before it (enricher.store.writes.page_start).

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
POSTGRESQL_BLOCK_TRIGGER = (
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
SQLITE_BLOCK_TRIGGER = (
    f"""CREATE TRIGGER annotations_blocked_insert AFTER INSERT ON annotations WHEN new.deleted = 0 BEGIN
        INSERT INTO page_blocks (role, key, block, live) VALUES (new.role, new.key, new.seq / {PAGE_BLOCK}, 1)
        ON CONFLICT (role, key, block) DO UPDATE SET live = live + 1;
    END""",
    f"""CREATE TRIGGER annotations_blocked_update AFTER UPDATE OF key, deleted, role ON annotations
    WHEN old.key IS NOT new.key OR old.deleted IS NOT new.deleted OR old.role IS NOT new.role BEGIN
        UPDATE page_blocks SET live = live - 1
        WHERE role = old.role AND key = old.key AND block = old.seq / {PAGE_BLOCK} AND old.deleted = 0;
        INSERT INTO page_blocks (role, key, block, live) VALUES (new.role, new.key, new.seq / {PAGE_BLOCK}, 1 - new.deleted)
        ON CONFLICT (role, key, block) DO UPDATE SET live = live + 1 - new.deleted;
    END""",
    f"""CREATE TRIGGER annotations_blocked_delete AFTER DELETE ON annotations WHEN old.deleted = 0 BEGIN
        UPDATE page_blocks SET live = live - 1 WHERE role = old.role AND key = old.key AND block = old.seq / {PAGE_BLOCK};
    END""",
)
BLOCK_TRIGGER = {"postgresql": POSTGRESQL_BLOCK_TRIGGER, "sqlite": SQLITE_BLOCK_TRIGGER}


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
    for statement in BLOCK_TRIGGER[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER annotations_blocked_update ON annotations")
        op.execute("DROP TRIGGER annotations_blocked_insert ON annotations")
        op.drop_table("page_blocks")
        op.execute("DROP FUNCTION annotations_blocked")
    else:  # SQLite drops a table's triggers with it, not those on annotations
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER annotations_blocked_{name}")
        op.drop_table("page_blocks")
