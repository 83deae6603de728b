"""Pipeline throughput against bare inference on the same pixels, in one run.

Serves the sample images through the IIIF reference server on loopback, enriches a manifest of N
canvases, then times bare ``model.predict`` on the very images the pipeline requested (decoded up front,
so the baseline pays for no fetching, decoding, mapping or annotating). Prints both throughputs and the
ratio pipeline / bare (target >= 0.9: fetching and decoding overlap with inference).

    python benchmarks/bench_pipeline.py --canvases 48
"""

from __future__ import annotations

import argparse
import time

from enricher.config import DEMO_WEIGHTS, PROJECT_ROOT, load_config
from enricher.detect import Detector
from enricher.fetch import Fetcher
from enricher.imageapi import load_request, plan_whole, read_info
from enricher.imageserver import serve_images, service_url
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher

IMAGES = PROJECT_ROOT / "samples" / "images"


def sample_manifest(image_base: str, count: int) -> dict:
    """A v3 manifest cycling over the sample scenes (the large image is left out: it is tiled)."""
    from PIL import Image

    scenes = sorted(p for p in IMAGES.glob("scene-*.jpg"))
    items = []
    for n in range(count):
        path = scenes[n % len(scenes)]
        width, height = Image.open(path).size
        service = service_url(image_base, path.stem)
        canvas = f"http://bench.example/canvas/{n}"
        items.append(
            {
                "id": canvas,
                "type": "Canvas",
                "width": width,
                "height": height,
                "items": [
                    {
                        "id": f"{canvas}/page",
                        "type": "AnnotationPage",
                        "items": [
                            {
                                "id": f"{canvas}/image",
                                "type": "Annotation",
                                "motivation": "painting",
                                "target": canvas,
                                "body": {
                                    "id": f"{service}/full/max/0/default.jpg",
                                    "type": "Image",
                                    "width": width,
                                    "height": height,
                                    "service": [{"id": service, "type": "ImageService3", "profile": "level2"}],
                                },
                            }
                        ],
                    }
                ],
            }
        )
    return {
        "@context": "http://iiif.io/api/presentation/3/context.json",
        "id": "http://bench.example/manifest",
        "type": "Manifest",
        "label": {"en": ["benchmark"]},
        "items": items,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=48)
    parser.add_argument("--weights", default=str(DEMO_WEIGHTS))
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each side; the best is kept")
    args = parser.parse_args()
    config = load_config({"weights": args.weights, "allow_private": True, "tiled": "off"})
    detector = Detector(config)
    with serve_images(IMAGES) as base, Fetcher(config) as fetcher:
        manifest = parse_manifest(sample_manifest(base, args.canvases), "bench")
        enricher = Enricher(config, detector=detector, fetcher=fetcher)
        images = [
            load_request(plan_whole(read_info(c.service_id, fetcher), config.imgsz), fetcher) for c in manifest.canvases
        ]
        detector.predict(images[: config.batch])  # warm-up: first call builds the predictor
        pipeline_s, bare_s = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = enricher.enrich(manifest)
            pipeline_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            detector.predict(images)
            bare_s.append(time.perf_counter() - start)
    n = len(manifest.canvases)
    pipeline, bare = n / min(pipeline_s), n / min(bare_s)
    print(f"canvases: {n}, annotations per run: {result.annotation_count}, device: {detector.device}")
    print(f"pipeline (fetch + decode + infer + annotate): {pipeline:7.1f} canvases/s")
    print(f"bare model.predict on the same pixels:        {bare:7.1f} canvases/s")
    print(f"ratio pipeline / bare: {pipeline / bare:.2f} (target >= 0.9)")


if __name__ == "__main__":
    main()
