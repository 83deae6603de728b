"""Where every data file enricher ships is, in a checkout and in an installed wheel alike.

The repository's top-level ``vocab/``, ``shapes/`` and demo ``samples/`` are the source of truth. A
wheel carries a copy of the folders named in ``SHIPPED`` under ``enricher/data/`` (made by the build
hook in ``setup.py``); a checkout and an editable install read them where they are. Files that live
inside the package (JSON-LD contexts, our terms, the OpenAPI document, the review page) are found
next to the code. Everything else finds them here.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent  # the repository, when enricher runs from a checkout
WHEEL_DATA_DIR = PACKAGE_DIR / "data"
# repository folder -> the files of it a wheel ships (glob patterns); setup.py copies exactly these
SHIPPED: dict[str, tuple[str, ...]] = {
    "vocab": ("*.ttl",),
    "shapes": ("*.ttl",),
    "samples/manifests": ("*.json",),
    "samples/images": ("*.jpg",),
    "samples/demo": ("*.pt",),
}
DATA_ROOT = WHEEL_DATA_DIR if WHEEL_DATA_DIR.is_dir() else PROJECT_ROOT

# SKOS mappings and vocabularies: served at /vocab, /verdicts and /metrics, loaded into the RDF index
COCO_VOCABULARY = DATA_ROOT / "vocab" / "coco.ttl"
VERDICT_VOCABULARY = DATA_ROOT / "vocab" / "verdicts.ttl"
METRICS_VOCABULARY = DATA_ROOT / "vocab" / "metrics.ttl"
# SHACL shapes of what we publish
ANNOTATION_SHAPES = DATA_ROOT / "shapes" / "annotation.ttl"
VERDICT_SHAPES = DATA_ROOT / "shapes" / "verdict.ttl"
PROVENANCE_SHAPES = DATA_ROOT / "shapes" / "provenance.ttl"
# the offline demo: manifests, the images they show, the weights of the demo detector
DEMO_MANIFESTS = DATA_ROOT / "samples" / "manifests"
DEMO_COLLECTION = DEMO_MANIFESTS / "collection.json"
DEMO_IMAGES = DATA_ROOT / "samples" / "images"
DEMO_WEIGHTS = DATA_ROOT / "samples" / "demo" / "demo-yolo.pt"

# inside the package
CONTEXTS_DIR = PACKAGE_DIR / "contexts"  # JSON-LD contexts, served locally to pyld
TERMS_FILE = CONTEXTS_DIR / "ns.ttl"  # our terms as RDFS/OWL, served at /ns
LDP_CONTEXT_FILE = PACKAGE_DIR / "web" / "contexts" / "ldp.jsonld"
OPENAPI_FILE = PACKAGE_DIR / "web" / "openapi.yaml"
REVIEW_STATIC_DIR = PACKAGE_DIR / "web" / "static"  # the review page
