"""Serve a folder of images over the IIIF Image API with the reference implementation (the ``iiif`` package).

URL layout under the base URL that :func:`serve_images` yields (identifier = file name without extension):

    {base}/iiif/2/{identifier}          Image API 2.1, level 2 (info.json declares level2)
    {base}/iiif/3/{identifier}          Image API 3.0, level 2
    {base}/iiif-level1/2/{identifier}   Image API 2.1, same images, info.json declares level1
    {base}/iiif-level1/3/{identifier}   Image API 3.0, same images, info.json declares level1
    {base}/manifests/{file name}        the JSON files of the ``documents`` folder, when one is given

:func:`write_static_tree` writes a level-0 tree (info.json with sizes and tiles, one file per tile) that any
static file server can answer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import iiif
from flask import Flask, g, request, send_from_directory
from iiif.error import IIIFError
from iiif.flask_utils import Config as IIIFConfig
from iiif.flask_utils import add_handler
from iiif.manipulator_pil import IIIFManipulatorPIL
from iiif.static import IIIFStatic
from PIL import Image
from werkzeug.serving import WSGIRequestHandler, make_server

IMAGE_SUFFIXES = (".jpg", ".png", ".tif")  # what the reference server looks up per identifier
PREFIXES = {2: "iiif", 1: "iiif-level1"}  # declared level -> first path segment
DECODED_CACHE = 4  # decoded source images kept (a 6000x4000 RGB image takes 72 MB)

log = logging.getLogger(__name__)


class _QuietIIIF(logging.Filter):
    """Drop the package's root-logger warning per handler installed: it is not a problem worth showing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(str(Path(iiif.__file__).parent))


def service_url(base: str, identifier: str, version: int = 3, level: int = 2) -> str:
    """Return the image service URL of an identifier on a server started by :func:`serve_images`."""
    return f"{base.rstrip('/')}/{PREFIXES[level]}/{version}/{identifier}"


class _RequestLog(WSGIRequestHandler):
    """Log each request at debug level: a tiled run makes hundreds."""

    def log(self, type: str, message: str, *args) -> None:
        log.debug(message, *args)


@lru_cache(maxsize=DECODED_CACHE)
def _decoded(path: str, mtime_ns: int) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


class _TidyPIL(IIIFManipulatorPIL):
    """The reference PIL manipulator, with two fixes for tiled runs: it decodes each source image once
    (the package decodes the whole file for every tile), and it notes the temporary file it answers from
    so that file can be removed (the package's Flask handler never removes it)."""

    def do_first(self) -> None:
        # every later step returns a new image, so the cached one is only ever read
        try:
            self.image = _decoded(self.srcfile, os.stat(self.srcfile).st_mtime_ns)
        except (OSError, ValueError) as exc:
            raise IIIFError(text=f"Failed to read image (PIL: {exc})") from None
        self.width, self.height = self.image.size

    def do_format(self, format) -> None:
        super().do_format(format)
        g.iiif_output = self.outtmp


def _remove_output(response):
    # send_file has opened the file by now, so on POSIX removing its name does not cut the answer short
    path = g.pop("iiif_output", None)
    if path:
        with suppress(OSError):
            os.unlink(path)
    return response


def _handler_config(folder: Path, host: str, api_version: str, prefix: str) -> IIIFConfig:
    config = IIIFConfig()
    config.__dict__.update(
        scheme="http",
        host=host,
        port=0,  # set once the socket is bound; handlers read it per request
        image_dir=str(folder),
        generator_dir="",
        tile_width=512,
        tile_height=512,
        scale_factors=["auto"],
        api_version=api_version,
        klass_name="pil",
        auth_type="none",
        include_osd=False,
        prefix=prefix,
        client_prefix=prefix,
        container_prefix="",
    )
    return config


def _declare_levels(response):
    """Rewrite the compliance level of info.json responses: the reference server always says level1,
    although its PIL manipulator implements level 2."""
    levels = [level for level, first in PREFIXES.items() if request.path.startswith(f"/{first}/")]
    if not levels or not request.path.endswith("/info.json") or response.status_code != 200:
        return response
    level = levels[0]
    info = json.loads(response.get_data())
    if isinstance(info["profile"], list):
        info["profile"][0] = f"http://iiif.io/api/image/2/level{level}.json"
    else:
        info["profile"] = f"level{level}"
    response.set_data(json.dumps(info, indent=2))
    return response


def create_app(
    folder: str | Path, host: str, api_versions: tuple[str, ...], documents: str | Path | None = None
) -> tuple[Flask, list[IIIFConfig]]:
    """Build the Flask app with one handler per API version and level; return it with the handler configs."""
    folder = Path(folder).resolve()
    for path in (folder, documents):
        if path is not None and not Path(path).is_dir():
            raise FileNotFoundError(f"folder not found: {Path(path).resolve()}")
    app = Flask(__name__)
    if documents is not None:
        root = str(Path(documents).resolve())
        app.add_url_rule("/manifests/<path:name>", "documents", lambda name: send_from_directory(root, name))
    configs = []
    quiet = _QuietIIIF()
    logging.getLogger().addFilter(quiet)
    try:
        for api_version in api_versions:
            for first in PREFIXES.values():
                config = _handler_config(folder, host, api_version, f"{first}/{api_version.split('.')[0]}")
                add_handler(app, config)
                configs.append(config)
    finally:
        logging.getLogger().removeFilter(quiet)
    for rule in app.url_map.iter_rules():
        if rule.defaults and rule.defaults.get("klass") is IIIFManipulatorPIL:
            rule.defaults["klass"] = _TidyPIL
    app.after_request(_declare_levels)
    app.after_request(_remove_output)
    return app, configs


@contextmanager
def serve_images(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    api_versions: tuple[str, ...] = ("2.1", "3.0"),
    documents: str | Path | None = None,
) -> Iterator[str]:
    """Serve FOLDER's images over IIIF (and DOCUMENTS' JSON files) in a background thread; yield the
    base URL ``http://host:port``."""
    app, configs = create_app(folder, host, api_versions, documents)
    server = make_server(host, port, app, threaded=True, request_handler=_RequestLog)
    for config in configs:
        config.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, name="iiif-image-server", daemon=True)
    thread.start()
    base = f"http://{host}:{server.server_port}"
    log.info("serving %s at %s", folder, base)
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_static_tree(
    folder: str | Path, out_dir: str | Path, base_url: str, api_version: str = "3.0", tile_size: int = 256
) -> list[str]:
    """Write a level-0 tree of every image in FOLDER to OUT_DIR, with ids ``{base_url}/{identifier}``;
    return the identifiers."""
    folder, out_dir = Path(folder), Path(out_dir)
    # osd_version only picks the size syntax of file names: "1.0.0" writes `w,h` (canonical in 3.0),
    # "2.0.0" writes `w,` (canonical in 2.x) plus `w,h` links for the listed sizes.
    osd_version = "1.0.0" if api_version.startswith("3") else "2.0.0"
    identifiers = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        static = IIIFStatic(
            dst=str(out_dir), tilesize=tile_size, api_version=api_version, prefix=base_url.rstrip("/"), osd_version=osd_version
        )
        static.generate(str(path), identifier=path.stem)
        identifiers.append(path.stem)
    return identifiers
