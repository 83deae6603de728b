"""The system of record behind a small interface (interface.py), with one backend per URL scheme.

``open_store(url)`` picks the backend from BACKENDS by the URL's scheme: ``sqlite:///relative/path``,
``sqlite:////absolute/path`` or a plain path (SQLite, the default), ``postgresql://user@host/db``
(PostgreSQL, with the ``postgres`` extra installed). A new backend is one module that
implements ``interface.Store`` plus one entry here; backends load lazily.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from ..errors import ConfigError
from .interface import Leadership, Store
from .records import (
    Activity,
    Change,
    ClassCount,
    Cursor,
    HarvestRecord,
    HarvestSet,
    StoredAnnotation,
    StoredCalibration,
    StoredEvaluation,
    StoredJob,
    StoredManifest,
    etag_matches,
    target_canvas,
)

# URL scheme -> "module:class"; the class has open(location) for the rest of the URL
BACKENDS = {
    "sqlite": "enricher.store.sqlite:SQLiteStore",
    "postgresql": "enricher.store.postgres:PostgresStore",
}

__all__ = [
    "BACKENDS", "Activity", "Change", "ClassCount", "Cursor", "HarvestRecord", "HarvestSet", "Leadership", "Store",
    "StoredAnnotation", "StoredCalibration", "StoredEvaluation", "StoredJob", "StoredManifest", "etag_matches",
    "open_store", "split_url", "target_canvas",
]


def split_url(url: str | Path) -> tuple[str, str]:
    """Return (scheme, location) of a store URL; a plain path is SQLite's."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep or "/" in scheme or not scheme:
        return "sqlite", text
    if scheme == "sqlite":
        return scheme, rest.removeprefix("/")  # sqlite:///a -> a, sqlite:////a -> /a
    return scheme.split("+", 1)[0], text


def open_store(url: str | Path) -> Store:
    """Open the store URL names, with the backend registered for its scheme (migrating it as needed).

    Raises ConfigError for a scheme no backend is registered for, EnricherError when the store cannot
    be opened.
    """
    scheme, location = split_url(url)
    if scheme not in BACKENDS:
        raise ConfigError(
            f"no store backend for {scheme!r} URLs; known: {', '.join(sorted(BACKENDS))}", where=str(url)
        )
    module, name = BACKENDS[scheme].split(":")
    try:
        backend = getattr(import_module(module), name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the {scheme} backend needs the Python package {exc.name}: pip install 'enricher[postgres]'",
            where=str(url),
        ) from None
    return backend.open(location)
