"""An index over the search counts of concept IRIs (terms ``iri:``), so Store.written_concepts reads
those rows only, not a row per container and class: VoID's distinct concepts cost the same however
many containers the store holds.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from enricher.store.writes import CONCEPT_TERMS

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("search_counts_concepts", "search_counts", ["term", "live"], unique=False,
                    sqlite_where=sa.text(CONCEPT_TERMS), postgresql_where=sa.text(CONCEPT_TERMS))


def downgrade() -> None:
    op.drop_index("search_counts_concepts", table_name="search_counts")
