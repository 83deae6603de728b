"""A canvas a job skipped (nothing to look at: sound, video, text) says why, apart from the errors
(the old SQLite migration 7).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_canvases", sa.Column("skipped", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("job_canvases", "skipped")
