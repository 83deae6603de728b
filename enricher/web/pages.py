"""Container pages as bytes that already exist: each response of a container or its pages is kept as a
file named by what its strong ETag is derived from, so a repeated GET reads one file instead of the
store, and a conditional one (If-None-Match) is answered 304 before anything is read or built.

- The ETag of a container response already changes with every write to the container and every new
  calibration (it is derived from the store's change log); with the representation (``?iris=``, the
  Prefer view, the page and page size) and the RDF format it names one body. A file's name is a hash of
  that ETag with what else shapes the body (the database, the public base URL, enricher's version), so
  variants never mix and a write makes every stale file unreachable at once.
- Files live in setting ``page_cache`` (default next to the database: ``x.sqlite3`` -> ``x.pages``),
  shared by every worker on the host; each is written to a temporary name and renamed, so readers see
  whole files only. A kept body is sent from its open file (gunicorn hands it to ``sendfile``): nothing
  is read into or held in memory.
- ``Materializer``: one process of those on the store (leadership role ``pages``) writes every page of
  every annotation container (the default representation) once the change log has been quiet for a
  round, so a harvester's first walk finds them built; a request that misses builds its page as before
  and leaves the file behind. Each round then deletes the files the current pages do not use, and the
  oldest ones past ``page_cache_bytes``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from flask import Response, request

from .. import __version__, rdf
from ..config import Config
from ..store import Store, split_url
from .media import ANNO_JSONLD, etag_of, send, send_file, tags

log = logging.getLogger(__name__)

SUFFIX = ".page"
ROUND_SECONDS = 2.0  # how often the materializer looks at the change log
STALE_SECONDS = 60.0  # a file the current pages do not use is deleted once it is this old
# (store, public base URL, page size) -> the ETag of every page to keep, each with a function building its body
PageBuilder = Callable[[Store, str, int], Iterable[tuple[str, Callable[[], bytes]]]]


def cache_folder(config: Config) -> Path:
    """Where page files live: setting page_cache, or next to an SQLite database (elsewhere in the
    instance folder)."""
    if config.page_cache:
        return Path(config.page_cache)
    scheme, location = split_url(config.database)
    return Path(location if scheme == "sqlite" else "instance/enricher").with_suffix(".pages")


class PageFiles:
    """The response bodies of container pages, one file each, named by their ETag (see the module docstring)."""

    def __init__(self, folder: Path, salt: str, budget: int):
        self.folder, self.budget = folder, budget
        self._salt = salt.encode("utf-8") + b"\0"
        self._prefix = os.path.join(folder, "")  # joined as a string: pathlib costs more than the read

    @classmethod
    def from_config(cls, config: Config, base: str) -> PageFiles:
        """The page files of this service's settings (BASE: its public base URL)."""
        return cls(cache_folder(config), f"{config.database}\0{base}\0{__version__}", config.page_cache_bytes)

    @property
    def enabled(self) -> bool:
        """Whether pages are kept at all (page_cache_bytes 0: never)."""
        return self.budget > 0

    def path(self, etag: str) -> Path:
        """The file of the body whose ETag is ETAG."""
        return Path(self._name(etag))

    def _name(self, etag: str) -> str:
        return self._prefix + hashlib.sha256(self._salt + etag.encode("utf-8")).hexdigest()[:40] + SUFFIX

    def open(self, etag: str) -> BinaryIO | None:
        """The file of the body whose ETag is ETAG, open for reading, or None when none is kept."""
        if not self.enabled:
            return None
        try:
            # unbuffered: the body goes by sendfile, a read buffer would go unused; the response closes it
            return open(self._name(etag), "rb", buffering=0)
        except FileNotFoundError:
            return None

    def put(self, etag: str, body: bytes) -> Path | None:
        """Keep BODY as the body whose ETag is ETAG; return its file (None when pages are not kept)."""
        if not self.enabled:
            return None
        path = self.path(etag)
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_bytes(body)
        os.replace(temporary, path)  # readers see the whole file or none
        return path

    def sweep(self, used: set[Path], now: float) -> int:
        """Delete the files not in USED once older than STALE_SECONDS, then the oldest until the rest
        fit in the budget; return how many were deleted."""
        files = []
        for entry in os.scandir(self.folder) if self.folder.is_dir() else ():
            try:
                stat = entry.stat()
            except FileNotFoundError:  # another process swept it meanwhile
                continue
            files.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        doomed = {path for mtime, _, path in files if path not in used and now - mtime > STALE_SECONDS}
        size = sum(size for _, size, path in files if path not in doomed)
        for _, file_size, path in sorted(files):
            if size <= self.budget:
                break
            if path not in doomed:
                doomed.add(path)
                size -= file_size
        for path in doomed:
            path.unlink(missing_ok=True)
        return len(doomed)


def respond(
    files: PageFiles, etag: str, fmt: rdf.Format | None, headers: dict, build: Callable[[], Response]
) -> Response:
    """Answer with the kept body of ETAG (that of the JSON-LD; FMT: the RDF format asked for, None for
    JSON-LD), 304 when If-None-Match names it; else BUILD the response and keep its body."""
    final, mimetype = (etag, ANNO_JSONLD) if fmt is None else (etag_of(etag, fmt.name), fmt.content_type)
    if request.method in ("GET", "HEAD") and final in tags(request.headers.get("If-None-Match", "")):
        return send(b"", mimetype, headers=headers, etag=final)  # send turns it into a 304
    kept = files.open(final)
    if kept is not None:
        return send_file(kept, mimetype, headers=headers, etag=final)
    response = build()
    if response.status_code == 200 and response.headers.get("ETag") == final:
        files.put(final, response.get_data())
    return response


class Materializer:
    """Writes every page of the annotation containers once the change log is quiet (see the module
    docstring), in one process of those on the store; BUILD yields the ETag of each page of the current
    version with a function that builds its body."""

    def __init__(
        self, store: Store, files: PageFiles, build: Callable[[Store], Iterable[tuple[str, Callable[[], bytes]]]]
    ):
        self.store, self.files, self.build = store, files, build
        self._leader = store.leader("pages")
        self._seen: tuple[int, int] | None = None  # the change log's mark at the previous round
        self._done: tuple[int, int] | None = None  # the mark the files were last written for
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="enricher-pages", daemon=True)

    def start(self) -> None:
        """Run rounds in a background thread until stopped."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the rounds and let another process take the role."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._leader.release()

    def round(self) -> int:
        """Write the pages when the change log has not moved since the previous round and they are not
        written yet; return how many were written."""
        mark = (self.store.last_change(), self.store.last_calibration())
        quiet, self._seen = mark == self._seen, mark
        if not quiet or mark == self._done:
            return 0
        started, used = time.time(), set()
        for etag, body in self.build(self.store):
            path = self.files.path(etag)
            if not path.exists():
                self.files.put(etag, body())
            used.add(path)
        self.files.sweep(used, started)
        self._done = mark
        return len(used)

    def _run(self) -> None:
        while not self._stop.wait(ROUND_SECONDS):
            try:
                if self._leader.held or self._leader.acquire():
                    self.round()
            except Exception:  # the next round tries again; requests build their pages meanwhile
                log.exception("materializing container pages")
