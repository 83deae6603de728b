"""Open a manifest in Mirador 3 or 4 in headless chromium and read what its annotation panel shows.

Mirador is the UMD build from the npm packages that setup.sh installs; it is served by a loopback
:class:`StaticSite` with :data:`VIEWER_PAGE`, next to whatever data the test mounts there.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlencode, urlsplit

if TYPE_CHECKING:  # imported when used, so a missing playwright is a skip, not a collection error
    from playwright.sync_api import Browser, ConsoleMessage, Playwright

HERE = Path(__file__).resolve().parent
SETUP = HERE / "setup.sh"
VIEWER_PAGE = "viewer.html"
CHROMIUM = Path(os.environ.get("MIRADOR_CHROMIUM", "/usr/bin/chromium"))
# Offline and quiet: no sandbox (tests run as root in containers), no GPU, no calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PANEL = ".mirador-window-sidebar-annotation-panel"
ERRORS = '[role="alert"], #error-dialog'  # Mirador's error boundary (an MUI Alert) and its error dialog
WAIT_MS = 120_000  # a ceiling, not a measure: two Miradors on a busy 2-core machine take tens of seconds
# Console errors Mirador logs by itself whatever the data (React's warnings about Mirador's own code).
MIRADOR_NOISE = ("Accessing element.ref was removed in React 19",)  # Mirador 4.0.0

# Record uncaught errors in the page too, so waiting can stop as soon as Mirador breaks.
RECORD_ERRORS = """
window.__errors = [];
addEventListener('error', (e) => window.__errors.push(String(e.message)));
addEventListener('unhandledrejection', (e) => window.__errors.push(String(e.reason)));
"""
# True once the panel shows every label, or something went wrong.
SETTLED = """({labels, errors, panel}) => {
  if (window.__errors.length || document.querySelector(errors)) return true;
  const shown = document.querySelector(panel);
  return !!shown && labels.every((label) => shown.textContent.includes(label));
}"""


def packages() -> dict[int, str]:
    """Return Mirador major version -> npm package alias, as package.json declares them."""
    declared = json.loads((HERE / "package.json").read_text())["dependencies"]
    return {int(spec.rsplit("@", 1)[1].split(".")[0]): alias for alias, spec in declared.items()}


def install(*args: str) -> Path:
    """Run setup.sh with ARGS (chromium and Mirador, or with "uv" the Universal Viewer, each only when
    missing); return its node_modules folder."""
    done = subprocess.run([str(SETUP), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{SETUP} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class _Files(SimpleHTTPRequestHandler):
    """Files of the site's mounts, readable from any origin (Mirador fetches manifests across origins)."""

    site: StaticSite

    def translate_path(self, path: str) -> str:
        path = posixpath.normpath(unquote(urlsplit(path).path))
        for prefix, folder in sorted(self.site.mounts.items(), key=lambda m: -len(m[0])):
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return str(folder / path[len(prefix):].lstrip("/"))
        return str(HERE / "missing")

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_OPTIONS(self) -> None:
        self.send_response(204)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass


class StaticSite:
    """A loopback HTTP server of folders mounted at URL paths (the longest mount wins), with CORS."""

    def __init__(self, mounts: Mapping[str, Path]) -> None:
        self.mounts: dict[str, Path] = {}
        handler = type("Files", (_Files,), {"site": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="static-site", daemon=True)
        self.thread.start()
        for prefix, folder in mounts.items():
            self.mount(prefix, folder)

    def mount(self, prefix: str, folder: Path) -> str:
        """Serve FOLDER at PREFIX (such as ``/data``); return its URL, ending in a slash."""
        path = "/" + prefix.strip("/")
        self.mounts[path] = Path(folder)
        return self.url + path.rstrip("/") + "/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self) -> StaticSite:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mirador_site(node_modules: Path) -> StaticSite:
    """Serve the viewer page at the root and each Mirador's dist folder at /mirador{version}/."""
    mounts = {f"/mirador{v}": node_modules / alias / "dist" for v, alias in packages().items()}
    return StaticSite({"/": HERE, **mounts})


def launch(playwright: Playwright) -> Browser:
    """Start Debian's chromium headless through Playwright (never Playwright's own browsers)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def _console(message: ConsoleMessage, errors: list[str]) -> None:
    if message.type == "error" and not any(noise in message.text for noise in MIRADOR_NOISE):
        errors.append(f"console: {message.text}")


@dataclass
class MiradorView:
    version: int
    panel: str  # text of the annotation panel ("" when it never appeared)
    errors: list[str]  # uncaught page errors, console errors and error messages Mirador shows
    screenshot: Path

    def missing(self, labels: Iterable[str]) -> list[str]:
        """Return the labels the panel does not show."""
        return [label for label in labels if label not in self.panel]

    def count(self) -> int | None:
        """Return the number of annotations the panel says it shows (None when it says nothing)."""
        found = re.search(r"Showing (\d+) annotation", self.panel)
        return int(found.group(1)) if found else None

    def summary(self) -> str:
        """Describe the view for an assertion message."""
        return f"Mirador {self.version}: errors {self.errors}; panel text {self.panel[:2000]!r}"


def open_mirador(
    browser: Browser, site: StaticSite, version: int, manifest_url: str, *, labels: Iterable[str], screenshot: Path
) -> MiradorView:
    """Open MANIFEST_URL in Mirador VERSION with the annotation panel open; wait until the panel shows
    every label or an error appears (or WAIT_MS passes), then until the network is idle; screenshot it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    labels = sorted(set(labels))
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.add_init_script(RECORD_ERRORS)
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        page.on("console", lambda message: _console(message, errors))
        query = urlencode({"version": version, "manifest": manifest_url})
        page.set_default_timeout(WAIT_MS)
        try:
            page.goto(f"{site.url}/{VIEWER_PAGE}?{query}")
            page.wait_for_function(SETTLED, arg={"labels": labels, "errors": ERRORS, "panel": PANEL})
            page.wait_for_load_state("networkidle")
        except PlaywrightTimeout as exc:  # neither every label nor an error came: say which step waited
            errors.append(f"timeout: {exc.message.splitlines()[0]}")
        errors += [f"shown: {text}" for text in page.locator(ERRORS).all_inner_texts()]
        panel = page.locator(PANEL)
        text = panel.first.text_content() if panel.count() else ""
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        return MiradorView(version, text or "", errors, screenshot)
    finally:
        page.close()
