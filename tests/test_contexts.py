"""The official JSON-LD contexts shipped in the package: the same as the shared copies, and enough on their own."""

from __future__ import annotations

import pytest
from real_annotations import machine_annotations, manifest

from enricher.annotate import annotation_page
from enricher.datafiles import CONTEXTS_DIR
from enricher.jsonld import SHARED_CONTEXTS, to_graph
from enricher.vocab import Vocabulary


@pytest.mark.parametrize("name", sorted(SHARED_CONTEXTS.values()))
def test_shipped_context_is_the_official_copy(conformance_dir, name):
    assert (CONTEXTS_DIR / name).read_bytes() == (conformance_dir / "contexts" / name).read_bytes()


def test_a_page_becomes_rdf_without_the_conformance_folder(config, conformance_dir, tmp_path):
    settings = config(conformance_dir=str(tmp_path / "absent"))
    parsed = manifest()
    canvas = parsed.canvases[0]
    annotations = [a for a in machine_annotations(settings, Vocabulary.load(), parsed) if canvas.id in str(a["target"])]
    assert annotations
    page = annotation_page(canvas, annotations, "https://example.org/page/0")
    without = to_graph(page, None)
    with_shared = to_graph(page, conformance_dir)
    assert len(without) == len(with_shared) > 20 * len(annotations)
