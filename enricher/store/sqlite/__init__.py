"""The SQLite backend, the embedded default: the system of record in one file in WAL mode.

Every write runs inside ``BEGIN IMMEDIATE``, so a compare-and-swap on an ETag cannot race and a killed
process loses at most the transaction in flight. Each concern lives in a module of its own, mixed in
here: annotations and manifests, curation, evaluations, jobs, the change log with what its followers
keep, the rate limits' token buckets, what OAI-PMH harvests, the search index, and raw rows for
``enricher migrate``; connection.py holds the file and the leadership locks, migrate.py runs the one
migration history on it (legacy.py adopts files from before that history).
"""

from __future__ import annotations

from pathlib import Path

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


class SQLiteStore(Annotations, Curation, Evaluations, Jobs, ChangeLog, Harvest, Search, Limits, Rows, Connection):
    """The system of record in one SQLite file; safe to share across threads (a connection each)."""

    scheme = "sqlite"

    @classmethod
    def open(cls, location: str) -> SQLiteStore:
        """Open (and migrate) the SQLite file at LOCATION, a path."""
        return cls(Path(location))

    @property
    def url(self) -> str:
        """The URL that opens this store again."""
        return f"sqlite:///{self.path}"
