"""The one Alembic migration history of the schema in enricher/store/tables.py, which both backends run
(``upgrade``). Revision ids are the leading digits of the version files' names, one after another, so a
store can tell it is up to date from the file names alone: opening one never imports Alembic for that.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import EnricherError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

HERE = Path(__file__).resolve().parent
BASELINE_VERSION = 6  # the first revision stands for the old SQLite migrations 1 to 6 (sqlite/legacy.py)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration of this history, without an ini file (env.py takes CONNECTION)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


@cache
def revisions() -> tuple[str, ...]:
    """Every revision of the history, oldest first: the versions/NNNN_*.py files in order."""
    return tuple(sorted(path.name.split("_", 1)[0] for path in (HERE / "versions").glob("[0-9]*_*.py")))


def head() -> str:
    """The newest revision."""
    return revisions()[-1]


def refuse_unknown(revision: str | None, where: str) -> None:
    """Raise EnricherError when the database is at a revision this software does not have (a newer one)."""
    if revision is not None and revision not in revisions():
        raise EnricherError(f"the database has schema revision {revision}, newer than this software's {head()}",
                            where=where)


def current(connection: Connection) -> str | None:
    """The revision the database on CONNECTION is at (None: none applied)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def stamp(connection: Connection, revision: str) -> None:
    """Record that the database on CONNECTION is at REVISION, running nothing (an adopted old file)."""
    from alembic import command

    command.stamp(alembic_config(connection), revision)


def upgrade(connection: Connection) -> None:
    """Apply every revision the database on CONNECTION lacks, in the caller's transaction."""
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def version_number(revision: str | None) -> int:
    """The schema version of REVISION, counted as the old SQLite migrations counted (0: none applied)."""
    return 0 if revision is None else BASELINE_VERSION + revisions().index(revision)
