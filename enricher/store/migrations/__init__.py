"""The Alembic migration history of the schema in enricher/store/tables.py (run by ``upgrade``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

HERE = Path(__file__).resolve().parent
BASELINE_VERSION = 6  # the first revision creates what SQLite's migrations 1 to 6 did (sqlite/schema.py)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration of this history, without an ini file (env.py takes CONNECTION)."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


@cache
def revisions() -> tuple[str, ...]:
    """Every revision of the history, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config()).walk_revisions()
    return tuple(reversed([script.revision for script in scripts]))


def current(connection: Connection) -> str | None:
    """The revision the database on CONNECTION is at (None: none applied)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    """Apply every revision the database on CONNECTION lacks, in the caller's transaction."""
    command.upgrade(alembic_config(connection), "head")


def version_number(revision: str | None) -> int:
    """The schema version of REVISION, counted as SQLite's migrations count (0: none applied)."""
    return 0 if revision is None else BASELINE_VERSION + revisions().index(revision)
