"""The token buckets of the rate limits, shared by every process on the store (the old SQLite migration 8).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

REAL = sa.Float().with_variant(sa.dialects.sqlite.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("tokens", REAL, nullable=False),
        sa.Column("updated", REAL, nullable=False),
        sa.Column("full_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sqlite_with_rowid=False,
    )
    op.create_index("rate_buckets_full", "rate_buckets", ["full_at"])


def downgrade() -> None:
    op.drop_index("rate_buckets_full", table_name="rate_buckets")
    op.drop_table("rate_buckets")
