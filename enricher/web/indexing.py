"""The embedded RDF index of a service: one on-disk Oxigraph index that every process of the
instance (gunicorn's workers, the job runner, ``enricher reindex``) reads and writes in turn, none
holding a copy in memory (enricher.shared_index says how they take turns).

It lives at setting ``index_path``, by default next to the database (``x.sqlite3`` ->
``x.oxigraph``). The first process to use it builds it when it is missing, empty or was made from
another database. Freshness: every read (SPARQL, dumps, VoID) first applies what the store's change
log gained since the index's position, so it sees each write committed before the read began, by
any process, the job runner's included; one process of the instance (leadership role ``index``)
also applies changes every few seconds meanwhile, so a read after a long job does not pay for all
of them. ``enricher reindex`` builds a new index from the store beside the old one and swaps it
in: the service goes on answering from the old one meanwhile and reads the new one at the next
request.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..shared_index import SharedIndex
from ..store import Store, split_url
from ..urls import public_base

FOLLOW_SECONDS = 2.0  # how often the instance's index applies the change log between reads


def index_path(config: Config) -> Path:
    """Where the on-disk index lives: setting index_path, or next to an SQLite database (elsewhere in
    the instance folder)."""
    if config.index_path:
        return Path(config.index_path)
    scheme, location = split_url(config.database)
    return Path(location if scheme == "sqlite" else "instance/enricher").with_suffix(".oxigraph")


def _index(config: Config, wait: float | None) -> SharedIndex:
    """The on-disk index with this service's vocabulary and base URL; reads and writes wait up to WAIT s."""
    return SharedIndex(index_path(config), vocab=config.vocab, base=public_base(config.base_url), wait=wait)


def rebuild(config: Config, store: Store) -> int:
    """Rebuild the on-disk index from STORE (vocabulary, terms, every live annotation) and swap it in;
    return how many annotations it holds.

    Raises EnricherError when the index cannot be written or a vocabulary file cannot be read.
    """
    with _index(config, wait=None) as index:
        return index.build(store)


def load(config: Config, store: Store) -> SharedIndex:
    """Return the on-disk index, up to date with STORE (built first when it is missing, empty or was
    made from another database).

    Raises EnricherError when the index cannot be opened or a vocabulary file cannot be read.
    """
    index = _index(config, wait=config.sparql_timeout)
    index.refresh(store)
    return index
