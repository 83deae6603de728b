"""What every view shares: the settings, the public URLs built on the base URL, and a Store per thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app

from ..config import Config
from ..annotate import public_base
from .auth import token_names

if TYPE_CHECKING:
    from ..store import Store


@dataclass
class Service:
    config: Config
    base: str = ""
    writers: dict[str, str] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        self.base = public_base(self.config.base_url)
        self.writers = token_names(self.config.tokens)

    def store(self) -> Store:
        """This thread's Store (sqlite3 connections must stay in the thread that opened them)."""
        store = getattr(self._local, "store", None)
        if store is None:
            from ..store import Store

            store = self._local.store = Store(self.config.database)
        return store

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
