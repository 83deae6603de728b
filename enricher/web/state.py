"""What every view shares: the settings, the public URLs built on the base URL, and the Store."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from flask import current_app

from ..annotate import public_base
from ..config import Config
from ..manifest import Manifest, parse_manifest
from ..store import Store, StoredManifest
from .auth import token_names

MANIFEST_CACHE = 64  # parsed manifests kept per process


@dataclass
class Service:
    config: Config
    base: str = ""
    writers: dict[str, str] = field(default_factory=dict)
    _store: Store | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _manifests: dict[str, tuple[dict, Manifest]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.base = public_base(self.config.base_url)
        self.writers = token_names(self.config.tokens)

    def store(self) -> Store:
        """The Store, opened on first use (it keeps a connection per thread).

        Raises EnricherError when the database cannot be opened.
        """
        with self._lock:
            if self._store is None:
                self._store = Store(self.config.database)
            return self._store

    def close(self) -> None:
        """Close the Store's connections."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def parsed(self, stored: StoredManifest) -> Manifest:
        """STORED parsed, from a cache: parsing a large manifest per request would dominate the
        IIIF endpoints. An entry serves only while the stored document is still equal to it."""
        cached = self._manifests.get(stored.key)
        if cached is None or cached[0] != stored.document:
            cached = self._manifests[stored.key] = (stored.document, parse_manifest(stored.document, stored.url))
            while len(self._manifests) > MANIFEST_CACHE:
                self._manifests.pop(next(iter(self._manifests)))
        return cached[1]

    def container(self, key: str | None) -> str:
        """The URL of a manifest's container, or of the container of everything (KEY None)."""
        return f"{self.base}{key}/annotations/" if key else f"{self.base}annotations/"

    def manifest(self, key: str) -> str:
        return f"{self.base}{key}/manifest.json"

    def page(self, key: str, index: int) -> str:
        return f"{self.base}{key}/pages/{index}.json"

    def list(self, key: str, index: int) -> str:
        return f"{self.base}{key}/lists/{index}.json"

    def job(self, job_id: str) -> str:
        return f"{self.base}jobs/{job_id}"


def service() -> Service:
    """The Service of the current app."""
    return current_app.extensions["enricher"]
