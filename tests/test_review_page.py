"""The review page in Debian's headless chromium (Playwright): on the boxes a real job found (demo weights,
a sample scene), a curator accepts one, rejects one, corrects one to another class with a moved corner
and marks the canvas exhaustively reviewed; the published IIIF page, the verdict collection and SPARQL
answers follow. An API error (a wrong token) is shown on the page.

Set REVIEW_SCREENSHOT to a path (such as docs/review.png) to keep the screenshot the test takes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from browser.mirador import StaticSite
from conftest import unavailable
from factories import make_manifest
from webclient import SECRET, Client, live_server, run_job, seed

from enricher import groundtruth
from enricher.annotate import manifest_key
from enricher.datafiles import DEMO_IMAGES, DEMO_WEIGHTS
from enricher.imageserver import serve_images, write_static_tree
from enricher.vocab import Vocabulary

SCENE = ("scene-1", 1200, 900)
LANGUAGE = "de"
VERDICTS = "https://w3id.org/enricher/verdicts/"
WAIT_MS = 60_000  # a ceiling for each act in the page
POLL_MS = 50  # how often a wait looks at the page
# The page has read its queue and shows the image, or an error.
SHOWN = """document.body.dataset.busy === 'false' && (!document.getElementById('error').hidden
  || (i => i.complete && i.naturalWidth > 0)(document.getElementById('image')))"""
# Record what the page's Content-Security-Policy blocks (the init script runs before the page's own).
WATCH_POLICY = """window.violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));"""
DRAG = 20  # display pixels the top-left corner is dragged up and left
ARROWS = {"ArrowRight": 3, "ArrowDown": 2}  # the corrected box grows by this many steps


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """A live service with the demo model's annotations of one sample scene, from a job it ran."""
    if not DEMO_WEIGHTS.is_file():
        unavailable(f"the demo weights are missing: {DEMO_WEIGHTS}")
    folder = tmp_path_factory.mktemp("review")
    with serve_images(DEMO_IMAGES, documents=folder) as images:
        document = make_manifest(3, [SCENE], f"{images}/iiif/3", label="Sample scene 1")
        (folder / "scene.json").write_text(json.dumps(document))
        url = f"{images}/manifests/scene.json"
        settings = {"job_worker": True, "weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu",
                    "batch": 1, "language": "en"}
        with live_server(folder, **settings) as server, Client(server) as client:
            job = run_job(client, {"manifest": url})
            assert job["state"] == "done", job
            yield server, client, manifest_key(document["id"])


def wait_until(page, expression: str) -> None:
    """Wait until EXPRESSION is true in PAGE, for WAIT_MS at most. Not page.wait_for_function: it runs
    the expression through eval in the page, which the page's Content-Security-Policy forbids."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"the page never came to {expression}"
        page.wait_for_timeout(POLL_MS)


def act(page, key: str) -> None:
    """Press KEY and wait until the write it starts has finished (whatever its outcome)."""
    before = int(page.get_attribute("body", "data-acts"))
    page.keyboard.press(key)
    wait_until(page, f"Number(document.body.dataset.acts) > {before}")


def open_review(chromium, url: str, token: str | None = None):
    """Open the review page at URL, wait until its queue is shown and type TOKEN if given; return the page,
    which records what its Content-Security-Policy blocked (``violations``)."""
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.add_init_script(WATCH_POLICY)
    page.response = page.goto(url)
    wait_until(page, SHOWN)
    if token is not None:
        type_token(page, token)
    return page


def type_token(page, token: str) -> None:
    """Type TOKEN into the page's token field and confirm it."""
    page.fill("#token", token)
    page.press("#token", "Enter")


def violations(page) -> list[str]:
    """What the page's Content-Security-Policy blocked so far."""
    return page.evaluate("window.violations")


def shown_error(page) -> str | None:
    """The error the page shows, or None."""
    return None if page.is_hidden("#error") else page.inner_text("#error")


def test_a_curator_reviews_a_canvas(chromium, reviewed, tmp_path):
    server, client, key = reviewed
    queue = client.get(f"/{key}/review/queue", params={"lang": LANGUAGE}).json()
    items = queue["items"]
    assert len(items) >= 3, f"the demo model found too few boxes to review: {items}"
    assert [i["reviewState"] for i in items] == ["pending"] * len(items)
    assert [i["confidence"] for i in items] == sorted(i["confidence"] for i in items)
    vocabulary = Vocabulary.load()
    assert all(i["label"] == vocabulary.lookup(i["name"]).label(LANGUAGE)[0] for i in items)
    accepted, rejected, corrected = items[:3]
    new_class = "cat" if corrected["name"] != "cat" else "dog"
    new_label = vocabulary.lookup(new_class).label(LANGUAGE)[0]

    errors: list[str] = []
    page = open_review(chromium, f"{server.url}{key}/review?lang={LANGUAGE}")
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    try:
        assert shown_error(page) is None
        assert page.inner_text("#label") == accepted["label"]
        assert page.inner_text("#progress-text") == f"0 of {len(items)} reviewed"
        # the image comes from its IIIF Image service (level 2: a width that fits the page)
        src = page.get_attribute("#image", "src")
        assert src.startswith(accepted["image"] + "/full/") and src.endswith("/0/default.jpg"), src
        assert page.locator("#boxes rect").count() == len(items)

        # a wrong token: the service's problem is shown, nothing is written
        type_token(page, "not-the-token")
        act(page, "a")
        assert "the bearer token is not valid" in (shown_error(page) or ""), shown_error(page)
        assert page.inner_text("#progress-text") == f"0 of {len(items)} reviewed"

        type_token(page, SECRET)
        act(page, "a")
        assert shown_error(page) is None
        assert page.inner_text("#progress-text") == f"1 of {len(items)} reviewed"
        assert page.inner_text("#label") == rejected["label"]  # the next lowest-confidence pending box
        act(page, "r")
        assert shown_error(page) is None
        assert page.inner_text("#label") == corrected["label"]

        page.keyboard.press("c")
        page.select_option("#class", new_class)
        handle = page.locator("#boxes .handle.nw").bounding_box()  # drag the top-left corner up and left
        x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - DRAG, y - DRAG, steps=4)
        page.mouse.up()
        scale = page.locator("#image").bounding_box()["width"] / SCENE[1]  # display pixels per canvas pixel
        for key_name, times in ARROWS.items():
            for _ in range(times):
                page.keyboard.press(key_name)
        page.screenshot(path=str(tmp_path / "review.png"))
        act(page, "Enter")
        assert shown_error(page) is None
        assert page.inner_text("#progress-text") == f"3 of {len(items)} reviewed"
        act(page, "e")
        assert shown_error(page) is None
        assert not errors, errors
        assert not violations(page), violations(page)  # the whole review works under the policy
    finally:
        page.close()
        keep = os.environ.get("REVIEW_SCREENSHOT")
        if keep and (tmp_path / "review.png").is_file():
            Path(keep).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp_path / "review.png", keep)

    # the public IIIF page: the rejected and the replaced box are gone, the correction is there
    served = client.get(f"/{key}/pages/0.json").json()["items"]
    by_id = {a["id"]: a for a in served}
    assert rejected["id"] not in by_id and corrected["id"] not in by_id
    assert by_id[accepted["id"]]["reviewState"] == VERDICTS + "accepted"
    (correction,) = [a for a in served if a.get("replaces") == corrected["id"]]
    assert correction["motivation"] == "tagging" and correction["creator"]["nickname"] == "curator"
    assert correction["body"][0]["value"] == new_label
    step = max(1, round(SCENE[1] / 200))  # an arrow key's step in canvas pixels
    x, y, w, h = corrected["box"]
    dragged = DRAG / scale
    right, bottom = x + w + ARROWS["ArrowRight"] * step, y + h + ARROWS["ArrowDown"] * step
    expected = (x - dragged, y - dragged, right - (x - dragged), bottom - (y - dragged))
    box = [int(v) for v in correction["target"]["selector"]["value"].removeprefix("xywh=").split(",")]
    assert box == pytest.approx(expected, abs=2), (box, expected)  # a pixel from rounding, one from the mouse
    assert len(served) == len(items) - 1  # two left, one came

    # the verdict collection: one verdict per act, each on what it judged, made by the curator
    container = client.get(f"/{key}/verdicts/").json()
    verdicts = {v["body"][0]["value"]: v for v in container["first"]["items"]}
    assert container["total"] == 4 and sorted(verdicts) == ["accepted", "corrected", "exhaustive", "rejected"]
    for item, name in ((accepted, "accepted"), (rejected, "rejected"), (corrected, "corrected")):
        verdict = verdicts[name]
        assert verdict["motivation"] == "assessing" and verdict["body"][0]["subject"] == VERDICTS + name
        assert verdict["target"]["source"] == item["id"]
        assert verdict["target"]["state"] == {"type": "TimeState", "sourceDate": item["version"]}
        assert verdict["creator"]["nickname"] == "curator"
    assert {b["subject"] for b in verdicts["corrected"]["body"][1:]} == {VERDICTS + "wrong-concept", VERDICTS + "bad-box"}
    statement = verdicts["exhaustive"]
    assert statement["target"]["source"]["id"] == accepted["canvasId"]
    reviewed_classes = {b["subject"] for b in statement["body"][1:] if b["purpose"] == "classifying"}
    assert reviewed_classes == {c["concept"] for c in queue["classes"]}

    # SPARQL: review states, verdicts and the correction
    states = sparql(client, """SELECT ?annotation ?state WHERE { ?annotation enricher:reviewState ?state }""")
    assert {row["annotation"]: row["state"].removeprefix(VERDICTS) for row in states} == {
        item["id"]: {accepted["id"]: "accepted", rejected["id"]: "rejected", corrected["id"]: "corrected"}.get(item["id"], "pending")
        for item in items
    }
    judged = sparql(client, """SELECT ?verdict ?source ?judgement WHERE {
        ?verdict oa:motivatedBy oa:assessing ; oa:hasBody ?body ; oa:hasTarget ?target .
        ?body oa:hasPurpose oa:assessing ; dcterms:subject ?judgement . ?target oa:hasSource ?source }""")
    assert {(row["source"], row["judgement"]) for row in judged} == {
        (accepted["id"], VERDICTS + "accepted"), (rejected["id"], VERDICTS + "rejected"),
        (corrected["id"], VERDICTS + "corrected"), (accepted["canvasId"], VERDICTS + "exhaustive"),
    }
    replaced = sparql(client, """SELECT ?correction ?old WHERE { ?correction dcterms:replaces ?old }""")
    assert replaced == [{"correction": correction["id"], "old": corrected["id"]}]


PREFIXES = """PREFIX oa: <http://www.w3.org/ns/oa#>
PREFIX dcterms: <http://purl.org/dc/terms/>
PREFIX enricher: <https://w3id.org/enricher/ns#>
"""


def sparql(client: Client, query: str) -> list[dict[str, str]]:
    """The rows of a SELECT query's answer, each variable to its value."""
    response = client.get("/sparql", params={"query": PREFIXES + query}, headers={"Accept": "application/sparql-results+json"})
    assert response.status_code == 200, response.text
    return [{k: v["value"] for k, v in row.items()} for row in response.json()["results"]["bindings"]]

def test_a_level0_image_is_requested_in_a_listed_size(chromium, image_dir, tmp_path):
    with StaticSite({}) as site:  # a static level-0 tree, with CORS as IIIF asks of info.json
        base = site.mount("/tree", tmp_path / "tree") + "3"
        write_static_tree(image_dir, tmp_path / "tree" / "3", base, "3.0")
        info = json.loads((tmp_path / "tree" / "3" / "gradient" / "info.json").read_text())
        sizes = sorted((s["width"], s["height"]) for s in info["sizes"])
        with live_server(tmp_path) as server:
            key, _ = seed(server, make_manifest(3, [("gradient", 1000, 700)], base, level=0), [2])
            page = open_review(chromium, f"{server.url}{key}/review")
            try:
                assert shown_error(page) is None
                src = page.get_attribute("#image", "src")
            finally:
                page.close()
    # the page shows it about 1000 pixels wide: the largest size listed is the closest
    assert src == f"{base}/gradient/full/%d,%d/0/default.jpg" % sizes[-1]


def test_a_stale_verdict_is_shown_and_the_box_read_again(chromium, iiif_server, tmp_path):
    with live_server(tmp_path) as server, Client(server) as client:
        key, _ = seed(server, make_manifest(3, [("gradient", 1000, 700)], f"{iiif_server}/iiif/3"), [2])
        page = open_review(chromium, f"{server.url}{key}/review", SECRET)
        try:
            shown = client.get(f"/{key}/review/queue").json()["items"][0]
            # someone moves the box while the curator looks at it
            edited = client.get(shown["id"]).json()
            edited["target"]["selector"]["value"] = "xywh=10,10,50,40"
            put = client.put(shown["id"], edited, headers={"If-Match": shown["etag"]})
            assert put.status_code == 200
            act(page, "a")
            assert "has changed since" in (shown_error(page) or ""), shown_error(page)
            assert page.inner_text("#progress-text") == "0 of 2 reviewed"
            act(page, "a")  # the page read the box again: judging its current version works
            assert shown_error(page) is None
            assert page.inner_text("#progress-text") == "1 of 2 reviewed"
            (verdict,) = client.get(f"/{key}/verdicts/").json()["first"]["items"]
        finally:
            page.close()
    assert verdict["target"]["source"] == shown["id"]
    assert verdict["target"]["state"]["sourceDate"] == put.json()["modified"] != shown["version"]


def test_a_missed_object_is_added(chromium, iiif_server, tmp_path):
    with live_server(tmp_path) as server, Client(server) as client:
        key, _ = seed(server, make_manifest(3, [("gradient", 1000, 700)], f"{iiif_server}/iiif/3"), [1])
        page = open_review(chromium, f"{server.url}{key}/review?lang=fr", SECRET)
        try:
            page.keyboard.press("b")
            page.select_option("#class", "cat")
            page.keyboard.press("ArrowRight")
            act(page, "Enter")
            assert shown_error(page) is None
            assert page.inner_text("#progress-text") == "0 of 1 reviewed"  # an addition judges no box
        finally:
            page.close()
        served = client.get(f"/{key}/pages/0.json").json()["items"]
    (added,) = [a for a in served if "generator" not in a]
    assert "replaces" not in added and added["creator"]["nickname"] == "curator"
    assert added["body"][0] == {"type": "TextualBody", "value": "chat", "language": "fr", "format": "text/plain",
                                "purpose": "tagging"}
    step = round(1000 / 200)
    assert added["target"]["selector"]["value"] == f"xywh=400,280,{200 + step},140"


def test_a_canvas_without_machine_boxes_is_boxed_and_stated_complete(chromium, iiif_server, tmp_path):
    canvases = [("gradient", 1000, 700), ("gradient", 1000, 700)]
    with live_server(tmp_path) as server, Client(server) as client:
        key, manifest = seed(server, make_manifest(3, canvases, f"{iiif_server}/iiif/3"), [1, 0])  # nothing found on 2
        queue = client.get(f"/{key}/review/queue").json()
        assert {i["canvas"] for i in queue["items"]} == {0}
        assert [(c["id"], c["exhaustive"]) for c in queue["canvases"]] == [(c.id, False) for c in manifest.canvases]
        page = open_review(chromium, f"{server.url}{key}/review", SECRET)
        try:
            page.keyboard.press("Shift+N")  # the next canvas
            assert page.inner_text("#position") == "canvas 2 of 2"
            assert page.locator("#boxes rect").count() == 0
            page.keyboard.press("b")
            page.select_option("#class", "cat")
            act(page, "Enter")
            assert shown_error(page) is None
            act(page, "e")
            assert shown_error(page) is None
            assert page.inner_text("#position") == "canvas 2 of 2 (marked complete)"
        finally:
            page.close()
        assert [c["exhaustive"] for c in client.get(f"/{key}/review/queue").json()["canvases"]] == [False, True]
        with server.store() as store:
            (truth,) = groundtruth.reviewed_canvases(store)
    assert truth.canvas_id == manifest.canvases[1].id
    assert [(b.label, b.box) for b in truth.boxes] == [("cat", (400, 280, 200, 140))]


# Text that runs as script when a page inserts it as markup: a person can type it into an annotation's
# class, a manifest into its labels
ATTACKS = ("""<img src=x onerror="window.pwned='img';console.log('pwned')">""",
           "</script><script>window.pwned='script';console.log('pwned')</script>")


def test_text_from_annotations_and_manifests_is_shown_as_text_and_no_script_of_it_runs(chromium, iiif_server, tmp_path):
    document = make_manifest(3, [("gradient", 1000, 700)], f"{iiif_server}/iiif/3", label=ATTACKS[1])
    document["items"][0]["label"] = {"en": [" ".join(ATTACKS)]}
    with live_server(tmp_path) as server:
        key, _ = seed(server, document, [2], label=ATTACKS[0])
        fired: list[str] = []
        page = open_review(chromium, f"{server.url}{key}/review", SECRET)
        page.on("console", lambda message: fired.append(message.text) if "pwned" in message.text else None)
        page.on("dialog", lambda dialog: fired.append(f"dialog {dialog.message}"))
        page.on("request", lambda request: fired.append(request.url) if request.url.endswith("/x") else None)
        try:
            policy = page.response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe-inline" not in policy
            assert page.response.headers["x-content-type-options"] == "nosniff"
            # every text appears as written
            assert page.inner_text("#label") == ATTACKS[0]
            assert page.inner_text("#title") == f"Review: {ATTACKS[1]}" and page.title() == f"Review: {ATTACKS[1]}"
            assert ATTACKS[0] in page.inner_text("#queue li")
            drawn = page.eval_on_selector_all("#boxes text", "texts => texts.map((t) => t.textContent)")
            assert drawn[0].startswith(ATTACKS[0])
            assert " ".join(ATTACKS) in page.inner_text("#canvas option")
            assert page.locator("#boxes rect").count() == 2
            # and the page works: a verdict is written
            act(page, "a")
            assert shown_error(page) is None and page.inner_text("#progress-text") == "1 of 2 reviewed"
            assert page.evaluate("window.pwned") is None and not fired, fired
            assert page.locator("script:not([src]), img[src='x']").count() == 0
            assert not violations(page), violations(page)
            # markup with a handler, should a later change insert some, would not run either: the policy stops it
            page.evaluate("(html) => document.body.insertAdjacentHTML('beforeend', html)", ATTACKS[0])
            wait_until(page, "window.violations.length > 0")
            assert page.evaluate("window.pwned") is None
            assert all("script-src" in violation for violation in violations(page)), violations(page)
        finally:
            page.close()
