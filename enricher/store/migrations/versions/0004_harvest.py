"""What OAI-PMH harvests (enricher.harvest): a record per enriched manifest at its place in the harvest
order, the sets it is in, and the names of the sets (the old SQLite migration 9).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "harvest_records",
        sa.Column("position", SEQ, autoincrement=True, nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("datestamp", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Integer(), sa.CheckConstraint("deleted IN (0, 1)"), nullable=False),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("key"),
        sqlite_autoincrement=True,
    )
    op.create_index("harvest_records_by_datestamp", "harvest_records", ["datestamp", "position"])
    op.create_table(
        "harvest_sets",
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("spec"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "harvest_members",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", "spec"),
        sqlite_with_rowid=False,
    )
    op.create_index("harvest_members_by_spec", "harvest_members", ["spec", "key"])


def downgrade() -> None:
    op.drop_table("harvest_members")
    op.drop_table("harvest_sets")
    op.drop_table("harvest_records")
