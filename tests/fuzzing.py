"""Hypothesis strategies and settings for the fuzz tests: JSON as a client or a remote server may send
it (wrong types, huge and non-finite numbers, unicode, deep nesting), and IIIF documents built from the
structure of the Presentation and Image API schemas with such JSON anywhere in them.

Sizes: FUZZ_EXAMPLES (not ENRICHER_...: those are the service's settings) sets every fuzz test's examples (the long campaign, benchmarks/fuzz_long.py);
unset, each test runs its small in-suite default, derandomized so CI sees the examples a local run saw.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from enricher.errors import EnricherError

LONG = int(os.environ.get("FUZZ_EXAMPLES", "0"))


def fuzz_settings(examples: int) -> settings:
    """EXAMPLES generated inputs in the suite (fixed: derandomized, no database), FUZZ_EXAMPLES
    random ones in the long campaign."""
    return settings(
        max_examples=LONG or examples,
        derandomize=not LONG,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def assert_one_line(error: EnricherError) -> None:
    """An error the CLI prints as one line: no line break in its message."""
    assert "\n" not in str(error) and "\r" not in str(error), repr(str(error))


def returns_or_refuses(function, *args, **kwargs) -> Any:
    """Call FUNCTION: it returns a value or raises an EnricherError with a one-line message; anything
    else propagates and fails the test. Returns the value, or the error."""
    try:
        return function(*args, **kwargs)
    except EnricherError as error:
        assert_one_line(error)
        return error


# --- JSON ----------------------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(-10, 5000),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 0.5, 1e308, float("inf"), float("-inf"), float("nan"), 2**63, -(2**63)]),
)
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["", " ", "\n", "\x00", "#", "xywh=", "http://", "🦆", "\u202e", "a" * 300]),
    st.from_regex(r"\d{1,400}", fullmatch=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
KEYS = st.one_of(
    st.sampled_from([
        "@context", "@id", "id", "@type", "type", "label", "items", "sequences", "canvases", "images", "resource",
        "on", "body", "target", "source", "selector", "value", "width", "height", "service", "profile", "default",
        "item", "motivation", "format", "@language", "@value", "en", "none", "manifests", "collections", "members",
        "sizes", "tiles", "scaleFactors", "maxWidth", "maxHeight", "maxArea", "region", "rotation", "full",
    ]),
    st.text(max_size=8),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


def deep(levels: int) -> Any:
    """Nested lists LEVELS deep around an object."""
    value: Any = {"id": "x"}
    for _ in range(levels):
        value = [value]
    return value


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """STRATEGY mostly, any JSON sometimes: a wrong type where the schema wants one."""
    return st.one_of(strategy, strategy, strategy, JSON)


def obj(required: dict, optional: dict | None = None) -> st.SearchStrategy:
    """A JSON object with REQUIRED keys (values may be wrong-typed) and some OPTIONAL ones, or any JSON."""
    shape = st.fixed_dictionaries({k: maybe(v) for k, v in required.items()},
                                  optional={k: maybe(v) for k, v in (optional or {}).items()})
    return st.one_of(shape, shape, shape, shape, st.dictionaries(KEYS, JSON, max_size=4))


# --- IIIF pieces ---------------------------------------------------------------------------------------

# literal private addresses: a collection reader fetching a member is refused before any lookup or connection
URL = st.one_of(
    st.sampled_from(["https://192.0.2.1/iiif/a", "http://127.0.0.1/x", "https://192.0.2.1/c/1#xywh=1,2,3,4", "http://[::1]/"]),
    st.builds(lambda n: f"https://192.0.2.1/{n}", st.integers(0, 20)),
    TEXT,
)
SIZE = st.one_of(st.integers(1, 4000), NUMBERS, st.from_regex(r"\d{1,30}", fullmatch=True))
REGION_TEXT = st.one_of(
    st.sampled_from(["full", "square", "pct:10,10,50,50", "0,0,0,0"]),
    st.from_regex(r"(pct:)?\d{1,400}(\.\d{1,5})?,\d{1,4},\d{1,400},\d{1,4}", fullmatch=True),
    TEXT,
)
FRAGMENT_TEXT = st.one_of(
    st.from_regex(r"(xywh=)?((pixel|percent):)?-?\d{1,400}(\.\d{1,3})?,-?\d{1,4},\d{1,400}(\.\d)?,\d{1,4}", fullmatch=True),
    st.builds(lambda url, fragment: f"{url}#{fragment}", URL, st.from_regex(r"xywh=\d{1,5},\d,\d{1,400},\d", fullmatch=True)),
    TEXT,
)
ROTATION = st.one_of(st.sampled_from([0, 90, "!180", "270", 45, "-90", "!"]), st.from_regex(r"!?\d{1,400}", fullmatch=True), JSON)
LABEL = st.recursive(
    st.one_of(TEXT, st.none(), NUMBERS),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["en", "none", "de", "@value", "@language"]), children, max_size=3),
        st.fixed_dictionaries({"@language": JSON, "@value": JSON}),
    ),
    max_leaves=8,
)
IMAGE_CONTEXTS = st.sampled_from([
    "http://iiif.io/api/image/2/context.json", "http://iiif.io/api/image/3/context.json", "http://iiif.io/api/image/1/context.json",
])
PROFILE = st.one_of(
    st.sampled_from(["level0", "level1", "level2", "http://iiif.io/api/image/2/level0.json", "http://iiif.io/api/image/2/level2.json"]),
    obj({}, {"supports": st.lists(st.sampled_from(["regionByPx", "sizeByW", "sizeByH", "sizeByWh"])), "maxWidth": SIZE,
             "maxHeight": SIZE, "maxArea": SIZE}),
)
SERVICE = obj({"id": URL, "type": st.sampled_from(["ImageService2", "ImageService3", "ImageService1"])},
              {"@id": URL, "@context": IMAGE_CONTEXTS, "profile": st.one_of(PROFILE, st.lists(PROFILE, max_size=3))})
SELECTOR = st.one_of(
    obj({"type": st.sampled_from(["ImageApiSelector", "iiif:ImageApiSelector"])}, {"region": REGION_TEXT, "rotation": ROTATION}),
    obj({"type": st.sampled_from(["FragmentSelector", "oa:FragmentSelector"]), "value": FRAGMENT_TEXT}, {"rdf:value": FRAGMENT_TEXT}),
)
IMAGE = obj({"id": URL, "type": st.sampled_from(["Image", "dctypes:Image", "Sound", "Text"])},
            {"@id": URL, "@type": st.sampled_from(["dctypes:Image", "dctypes:Sound"]), "format": st.sampled_from(["image/jpeg", "audio/mp3", "text/html"]),
             "width": SIZE, "height": SIZE, "service": st.one_of(SERVICE, st.lists(SERVICE, max_size=2))})


def _body(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        obj({"type": st.sampled_from(["SpecificResource", "oa:SpecificResource"]), "source": st.one_of(children, URL)},
            {"selector": st.one_of(SELECTOR, st.lists(SELECTOR, max_size=3)), "full": children}),
        obj({"type": st.sampled_from(["Choice", "oa:Choice"])},
            {"items": st.lists(children, max_size=3), "item": st.lists(children, max_size=3), "default": children}),
    )


BODY = st.recursive(IMAGE, _body, max_leaves=4)
TARGET = st.one_of(URL, FRAGMENT_TEXT, obj({"type": st.just("SpecificResource"), "source": URL}, {"selector": SELECTOR}))
CANVAS_FIELDS = {"label": LABEL, "width": SIZE, "height": SIZE}
ANNOTATION_V3 = obj({"type": st.just("Annotation"), "motivation": st.sampled_from(["painting", "commenting"]), "body": BODY},
                    {"target": TARGET, "id": URL})
CANVAS_V3 = obj(
    {"id": URL, "type": st.just("Canvas")},
    {**CANVAS_FIELDS, "items": st.lists(obj({"type": st.just("AnnotationPage")},
                                            {"items": st.lists(ANNOTATION_V3, max_size=3)}), max_size=2)},
)
ANNOTATION_V2 = obj({"@type": st.just("oa:Annotation"), "motivation": st.just("sc:painting"), "resource": BODY}, {"on": TARGET})
CANVAS_V2 = obj({"@id": URL, "@type": st.just("sc:Canvas")}, {**CANVAS_FIELDS, "images": st.lists(ANNOTATION_V2, max_size=3)})
PRESENTATION_CONTEXTS = st.sampled_from([
    "http://iiif.io/api/presentation/2/context.json", "http://iiif.io/api/presentation/3/context.json",
    "http://iiif.io/api/presentation/4/context.json",
])
MANIFEST_V3 = obj(
    {"@context": st.one_of(PRESENTATION_CONTEXTS, st.lists(st.one_of(PRESENTATION_CONTEXTS, URL), max_size=3)),
     "id": URL, "type": st.sampled_from(["Manifest", "Collection"])},
    {"label": LABEL, "items": st.lists(CANVAS_V3, max_size=3)},
)
MANIFEST_V2 = obj(
    {"@context": PRESENTATION_CONTEXTS, "@id": URL, "@type": st.sampled_from(["sc:Manifest", "sc:Collection"])},
    {"label": LABEL, "sequences": st.lists(obj({"@type": st.just("sc:Sequence")}, {"canvases": st.lists(CANVAS_V2, max_size=3)}), max_size=2)},
)
MANIFEST = st.one_of(MANIFEST_V3, MANIFEST_V2)
# a collection: members by reference (never fetched: see test_fuzz_parsers) or embedded whole
MEMBER = st.one_of(
    obj({"id": URL, "type": st.sampled_from(["Manifest", "Collection"])}),
    obj({"@id": URL, "@type": st.sampled_from(["sc:Manifest", "sc:Collection"])}),
    MANIFEST,
)
COLLECTION = st.one_of(
    obj({"@context": PRESENTATION_CONTEXTS, "id": URL, "type": st.just("Collection")}, {"items": st.lists(MEMBER, max_size=4)}),
    obj({"@context": PRESENTATION_CONTEXTS, "@id": URL, "@type": st.just("sc:Collection")},
        {"manifests": st.lists(MEMBER, max_size=3), "collections": st.lists(MEMBER, max_size=2),
         "members": st.lists(MEMBER, max_size=3)}),
)
INFO = obj(
    {"@context": st.one_of(IMAGE_CONTEXTS, st.lists(IMAGE_CONTEXTS, max_size=2)), "width": SIZE, "height": SIZE,
     "profile": st.one_of(PROFILE, st.lists(PROFILE, max_size=3))},
    {"id": URL, "@id": URL, "type": st.sampled_from(["ImageService2", "ImageService3"]), "protocol": st.just("http://iiif.io/api/image"),
     "sizes": st.lists(obj({"width": SIZE, "height": SIZE}), max_size=3),
     "tiles": st.lists(obj({"width": SIZE}, {"height": SIZE, "scaleFactors": st.lists(SIZE, max_size=4)}), max_size=2),
     "maxWidth": SIZE, "maxHeight": SIZE, "maxArea": SIZE, "extraFeatures": st.lists(TEXT, max_size=3)},
)
