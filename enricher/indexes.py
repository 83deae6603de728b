"""The RDF index seam: ``/sparql``, the dumps and VoID go through an RDFIndex, so a remote SPARQL 1.1
Protocol store can stand beside the embedded Oxigraph. ``open_index`` picks the implementation by
setting ``index`` from INDEXES; a new one is one module plus one entry here. The embedded index
(enricher.index on disk, shared by every process of the instance through enricher.shared_index, see
enricher.web.indexing) is the default; the remote one (enricher.remote_index) queries an external
triplestore over the SPARQL 1.1 Protocol, which the pusher (enricher.push) feeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import IO, TYPE_CHECKING, Protocol

from .config import Config
from .errors import ConfigError

if TYPE_CHECKING:
    from .follow import FollowerThread
    from .index import Answer
    from .store import Store

# setting index -> "module:function"; the function takes (config, store) and returns an RDFIndex
INDEXES = {"embedded": "enricher.web.indexing:load", "remote": "enricher.remote_index:RemoteIndex"}


class RDFIndex(Protocol):
    """What the service asks of an RDF index."""

    def query(self, sparql: str, *, accept: str | None = None, format: str | None = None,
              timeout: float | None = None, default_graphs: Sequence[str] = (), named_graphs: Sequence[str] = (),
              where: str | None = None, max_rows: int = 0, max_triples: int = 0) -> Answer:
        """Run a read-only SPARQL query and serialize its answer, of at most MAX_ROWS rows or MAX_TRIPLES
        triples (0: any) (raises QueryError, UpdateRefused, NotAcceptable, ResultTooLarge, QueryTimeout)."""

    def write_dump(self, output: IO[bytes], format: str) -> None: """Write every quad (nquads or ntriples)."""

    def refresh(self, store: Store) -> int:
        """Bring the index up to date with STORE before a read (a remote one waits, briefly, for its feeder)."""

    def follower(self, store: Store, interval: float) -> FollowerThread | None:
        """The thread that keeps the index up to date between reads (None: something else feeds it)."""

    def close(self) -> None: """Refuse further queries and release what the index holds."""


def open_index(config: Config, store: Store) -> RDFIndex:
    """The RDF index setting index names, loaded and up to date with STORE.

    Raises ConfigError for an unknown index, EnricherError when it cannot be loaded.
    """
    if config.index not in INDEXES:
        raise ConfigError(f"no RDF index {config.index!r}; known: {', '.join(sorted(INDEXES))}", where="index")
    module, name = INDEXES[config.index].split(":")
    return getattr(import_module(module), name)(config, store)
