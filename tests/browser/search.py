"""Search a manifest in a real viewer in headless chromium: Mirador 3 or 4 through its search panel
(autocomplete, hits, choosing one) and the Universal Viewer 4 through its footer's search box, and read
what each shows. The viewers are served by a :class:`~browser.mirador.StaticSite`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from browser.mirador import (
    ERRORS,
    MIRADOR_NOISE,
    RECORD_ERRORS,
    VIEWER_PAGE,
    WAIT_MS,
    StaticSite,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SEARCH_INPUT = 'input[id^="search-"]'  # Mirador 3 and 4 name it search-{companion window id}
SUGGESTIONS = '[role="listbox"]'
# Mirador's state: every search response of the window, and the canvas it shows
STATE = """() => {
  const state = window.miradorInstance.store.getState();
  const responses = Object.values(state.searches || {}).flatMap((w) => Object.values(w))
    .flatMap((cw) => Object.values(cw.data || {})).map((r) => r.json || {});
  return {
    hits: responses.flatMap((json) => json.hits || []).length,
    resources: responses.flatMap((json) => (json.resources || []).map((r) => r['@id'])),
    canvas: Object.values(state.windows)[0].canvasId,
  };
}"""
# True once every search Mirador sent has its answer, or Mirador broke
SEARCHED = """({errors}) => {
  if (window.__errors.length || document.querySelector(errors)) return true;
  const state = window.miradorInstance.store.getState();
  const sent = Object.values(state.searches || {}).flatMap((w) => Object.values(w))
    .flatMap((cw) => Object.values(cw.data || {}));
  return sent.length > 0 && sent.every((r) => !r.isFetching);
}"""
UV_PAGE = "uv/uv.html"  # the Universal Viewer's dist folder mounted at /uv
# The Universal Viewer 4.4.0's own style sheet asks for a data: URL as a relative path, whatever the data
UV_NOISE = ("/images/data:image/",)
UV_RESULTS = re.compile(r"(\d+) results? found for")


@dataclass
class Searched:
    """What a viewer showed: autocomplete suggestions, the hits it lists, the annotation ids it got,
    the canvas after choosing a hit, and every error."""

    suggestions: list[str] = field(default_factory=list)
    hits: int | None = None
    panel: str = ""
    resources: list[str] = field(default_factory=list)
    canvas: str | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Describe the view for an assertion message."""
        return (f"suggestions {self.suggestions}; hits {self.hits}; canvas {self.canvas}; errors {self.errors}; "
                f"panel {self.panel[:1500]!r}")


def _watch(page: Page, errors: list[str], noise: tuple[str, ...]) -> None:
    """Record the page's uncaught errors and console errors, but those that mention NOISE."""

    def console(message) -> None:
        text = f"console: {message.text} ({message.location.get('url')})"
        if message.type == "error" and not any(known in text for known in noise):
            errors.append(text)

    page.add_init_script(RECORD_ERRORS)
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", console)
    page.set_default_timeout(WAIT_MS)


def search_mirador(browser: Browser, site: StaticSite, version: int, manifest_url: str, *, prefix: str, query: str,
                   choose: str, screenshot: Path) -> Searched:
    """Open MANIFEST_URL in Mirador VERSION with the search panel open; type PREFIX and read the
    suggestions, search QUERY, count the hits, then choose the hit whose text holds CHOOSE."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    seen = Searched()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _watch(page, seen.errors, MIRADOR_NOISE)
    try:
        page.goto(f"{site.url}/{VIEWER_PAGE}?{urlencode({'version': version, 'manifest': manifest_url, 'panel': 'search'})}")
        box = page.locator(SEARCH_INPUT)
        box.press_sequentially(prefix, delay=100)
        page.locator(SUGGESTIONS).wait_for()
        page.wait_for_load_state("networkidle")
        seen.suggestions = [text.strip() for text in page.locator(f"{SUGGESTIONS} li").all_inner_texts()]
        box.fill(query)
        box.press("Enter")
        page.wait_for_function(SEARCHED, arg={"errors": ERRORS})
        page.wait_for_load_state("networkidle")
        # the companion window holding the search box (its root comes before its parts in the document)
        panel = page.locator("[class*='mirador-companion-window-']").filter(has=page.locator(SEARCH_INPUT))
        seen.panel = panel.first.inner_text()
        state = page.evaluate(STATE)
        seen.hits, seen.resources = state["hits"], state["resources"]
        panel.first.get_by_text(choose, exact=True).first.click()
        page.wait_for_function(f"() => ({STATE})().canvas !== {state['canvas']!r}")
        seen.canvas = page.evaluate(STATE)["canvas"]
    except PlaywrightTimeout as exc:
        seen.errors.append(f"timeout: {exc.message.splitlines()[0]}")
    finally:
        seen.errors += [f"shown: {text}" for text in page.locator(ERRORS).all_inner_texts()]
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        page.close()
    return seen


def search_uv(browser: Browser, site: StaticSite, manifest_url: str, *, query: str, screenshot: Path) -> Searched:
    """Open MANIFEST_URL in the Universal Viewer (its dist folder mounted at /uv on SITE), search
    QUERY in its footer's search box and read how many results it says it found."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    seen = Searched()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    _watch(page, seen.errors, UV_NOISE)
    try:
        page.goto(f"{site.url}/{UV_PAGE}#?{urlencode({'manifest': manifest_url})}")
        box = page.locator("#searchWithinInput")
        box.click()
        box.fill(query)
        box.press("Enter")
        pager = page.locator(".searchPager .searchResultsInfo")
        pager.get_by_text(UV_RESULTS).wait_for()
        seen.panel = pager.inner_text()
        seen.hits = int(UV_RESULTS.search(seen.panel).group(1))
    except PlaywrightTimeout as exc:
        seen.errors.append(f"timeout: {exc.message.splitlines()[0]}")
    finally:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
        page.close()
    return seen
