"""The PostgreSQL backend: the system of record on a PostgreSQL server, for instances that outgrow one
machine (``ENRICHER_DATABASE=postgresql://user@host/db``; ``?options=-csearch_path%3Dname`` picks a schema).

SQLAlchemy Core 2 on psycopg 3, with a connection pool; the schema is enricher/store/tables.py, made by
the Alembic history in enricher/store/migrations. Writes lock what they change (``FOR UPDATE``), jobs
are claimed with ``SKIP LOCKED``, leadership is a session advisory lock, and the change log is kept in
commit order (changes.py). Each concern lives in a module of its own, as in the SQLite backend; nothing
is written next to the database or anywhere else on disk.
"""

from __future__ import annotations

from .annotations import Annotations
from .changes import ChangeLog
from .connection import Connection
from .curation import Curation
from .evaluations import Evaluations
from .harvest import Harvest
from .jobs import Jobs
from .limits import Limits
from .rows import Rows
from .search import Search


class PostgresStore(Annotations, Curation, Search, Harvest, Evaluations, Jobs, ChangeLog, Limits, Rows, Connection):
    """The system of record on a PostgreSQL server; safe to share across threads (a pool of connections)."""

    scheme = "postgresql"

    @classmethod
    def open(cls, location: str) -> PostgresStore:
        """Open (and migrate) the database the URL LOCATION names."""
        return cls(location)
