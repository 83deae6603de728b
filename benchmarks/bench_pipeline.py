"""Pipeline throughput with default settings against the forced-PyTorch pipeline and against bare
inference on the runtime default settings chose, on the same pixels, in one run.

Enriches a manifest of N canvases served over IIIF on loopback and publishes the result as the CLI
does (each canvas's page, list and annotations as files as it finishes, then the manifest), three ways
taking turns: with default settings (on the CPU, PyTorch weights run exported to OpenVINO or ONNX
Runtime: enricher.runtimes), with ``runtime=torch`` (how every run went before), and bare
``model.predict`` of the default detector on the very images the pipeline requested (decoded up front,
so the baseline pays for no fetching, decoding, mapping, annotating or writing). Each of ``--rounds``
rounds runs the sides in turn (default, bare, torch), each timed the same way, so that pipeline and bare
meet the same load; the medians are kept. Prints the throughputs and two ratios: default / torch
(target >= 3) and default / bare (target >= 0.9: fetching, decoding and writing overlap with
inference), with each round's default / bare. Each round also runs the default pipeline with the model
replaced by the answers it gave (``Recorded``): its CPU is the pipeline's own work a canvas, measured
directly rather than as a difference of two runs that the load sways.

The bare baseline is a fair one: the same Detector object as the default pipeline, so the same model,
predictor and predict arguments (conf, iou, max_det, classes, imgsz, device); the same batch size
(Detector.predict cuts the list into batches of ``batch``, as the pipeline hands it one batch at a
time); and the same pixels (the same image request, plan_whole being the pipeline's whole-image
plan_region, decoded by the same Fetcher), only fetched and decoded before the clock starts.

By default the images come pre-rendered: the IIIF reference server renders every info.json and image
the pipeline asks for once, before timing, and a plain file server in another process answers with those
bytes over keep-alive connections, as image servers do (with Nagle's algorithm on, as Python's server
has it: the fetcher acknowledges at once, enricher.quickack, else each request waits 40 ms for nothing).
A real image server runs on another machine; the reference server in this process would take about
15 ms of this machine's CPU per image to resize and encode it, which on a 2-core machine comes out of
the model's share and is not the pipeline's work.
``--render`` serves through the reference server instead, to show that cost.

    python benchmarks/bench_pipeline.py --canvases 48 [--rounds 5] [--render]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

from enricher.config import load_config
from enricher.datafiles import DEMO_IMAGES, DEMO_WEIGHTS
from enricher.detect import Detector
from enricher.fetch import Fetcher
from enricher.imageapi import (
    ImageInfo,
    ImageRequest,
    load_request,
    parse_info,
    plan_whole,
    read_info,
)
from enricher.imageserver import serve_images, service_url
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher
from enricher.publish import publish_canvas, publish_manifest

IMAGES = DEMO_IMAGES
SERVING = re.compile(r"port (\d+)")


def sample_manifest(image_base: str, count: int, images: Path = IMAGES, pattern: str = "scene-*.jpg") -> dict:
    """A v3 manifest cycling over the images in IMAGES that match PATTERN (by default the sample scenes;
    the large image is left out: it is tiled)."""
    from PIL import Image

    scenes = sorted(p for p in images.glob(pattern))
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


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serve FOLDER with Python's static file server in a child process; yield its base URL."""
    command = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(folder),
               "--protocol", "HTTP/1.1"]  # keep-alive, as image servers answer
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = SERVING.search(process.stdout.readline()).group(1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


@contextmanager
def prerendered(
    config, scenes: list[str], folder: Path, images: Path = IMAGES, plan: Callable[[ImageInfo], list[ImageRequest]] | None = None
) -> Iterator[str]:
    """Render the info.json and the requests PLAN makes (by default the whole image at the inference size)
    of each of SCENES in IMAGES once with the reference server, write them under FOLDER at their URL paths,
    and serve that folder; yield the base URL."""
    plan = plan or (lambda info: [plan_whole(info, config.imgsz)])
    with file_server(folder) as base, serve_images(images) as upstream, Fetcher(config) as fetcher:
        for scene in scenes:
            ours, theirs = service_url(base, scene), service_url(upstream, scene)
            info = fetcher.get_json(f"{theirs}/info.json")
            info["id"] = ours
            path = folder / ours.removeprefix(base + "/")
            path.mkdir(parents=True, exist_ok=True)
            (path / "info.json").write_text(json.dumps(info))
            for part in {part for request in plan(parse_info(info, ours)) for part in request.parts}:
                target = folder / part.url.removeprefix(base + "/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(fetcher.get_bytes(theirs + part.url.removeprefix(ours)))
        yield base


def enrich_and_publish(enricher: Enricher, manifest, out: Path) -> None:
    """Enrich MANIFEST with ENRICHER and publish it under OUT as the CLI does."""
    config = enricher.config

    def write(name: str, data: dict) -> None:
        if name == "canvas_done":
            publish_canvas(data["result"], manifest, out, config)

    publish_manifest(enricher.enrich(manifest, on_event=write), out, config)


class Recorded:
    """DETECTOR's name and runtime, answering the images it is handed, in order, with ANSWERS (what
    DETECTOR found on them): a pipeline with it does all its own work and no inference."""

    def __init__(self, detector: Detector, answers: list):
        self.name, self.sha256, self.runtime, self.device = detector.name, detector.sha256, detector.runtime, detector.device
        self._answers, self._next = answers, 0

    def predict(self, images: list) -> list:
        found = self._answers[self._next : self._next + len(images)]
        self._next = (self._next + len(images)) % len(self._answers)
        return found


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Seconds and CPU seconds (this process, all threads) WORK takes."""
    start, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=48)
    parser.add_argument("--weights", default=str(DEMO_WEIGHTS))
    parser.add_argument("--rounds", type=int, default=5, help="Rounds, each running every side in turn; medians kept")
    parser.add_argument("--render", action="store_true", help="Render images with the reference server in this process")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    config = load_config({"weights": args.weights, "allow_private": True, "tiled": "off"})
    detector = Detector(config)  # default settings: the runtime enricher.runtimes chooses
    torch = Detector(config.replace(runtime="torch"))
    scenes = [p.stem for p in sorted(IMAGES.glob("scene-*.jpg"))]
    seconds: dict[str, list[tuple[float, float]]] = {"default": [], "bare": [], "torch": [], "own": []}
    with tempfile.TemporaryDirectory() as folder:
        server = serve_images(IMAGES) if args.render else prerendered(config, scenes, Path(folder))
        with server as base, Fetcher(config) as fetcher:
            manifest = parse_manifest(sample_manifest(base, args.canvases), "bench")
            images = [
                load_request(plan_whole(read_info(c.service_id, fetcher), config.imgsz), fetcher)
                for c in manifest.canvases
            ]
            for warm in (detector, torch):
                warm.predict(images[: config.batch])  # the first call builds the predictor
            recorded = Recorded(detector, detector.predict(images))
            enrichers = {"default": Enricher(config, detector=detector, fetcher=fetcher),
                         "torch": Enricher(config, detector=torch, fetcher=fetcher),
                         "own": Enricher(config, detector=recorded, fetcher=fetcher)}  # type: ignore[arg-type]
            for run in range(args.rounds):  # pipeline, bare, pipeline, bare...: both meet the same load
                for name in ("default", "bare", "torch", "own"):
                    if name == "bare":
                        seconds[name].append(timed(lambda: detector.predict(images)))
                    else:
                        out = Path(folder) / f"out-{name}-{run}"
                        seconds[name].append(timed(lambda: enrich_and_publish(enrichers[name], manifest, out)))
                print(f"round {run + 1}: default / bare {seconds['bare'][-1][0] / seconds['default'][-1][0]:.2f}, "
                      f"load average {os.getloadavg()[0]:.2f}", flush=True)
    n = len(manifest.canvases)
    rate = {name: n / median(wall for wall, _ in values) for name, values in seconds.items()}
    cpu = {name: 1000 * median(used for _, used in values) / n for name, values in seconds.items()}
    ratios = sorted(bare[0] / default[0] for default, bare in zip(seconds["default"], seconds["bare"]))
    served = "the reference server, rendering in this process" if args.render else "pre-rendered files"
    print(f"canvases: {n}, rounds: {args.rounds} (medians), device: {detector.device}, "
          f"runtime: {detector.runtime.describe()}, images: {served}")
    print(f"pipeline, default settings ({detector.runtime.name}):   {rate['default']:7.1f} canvases/s")
    print(f"pipeline, runtime=torch:                  {rate['torch']:7.1f} canvases/s")
    print(f"bare model.predict ({detector.runtime.name}), same pixels: {rate['bare']:7.1f} canvases/s")
    print(f"ratio default / torch: {rate['default'] / rate['torch']:.2f} (target >= 3)")
    print(f"ratio default / bare:  {rate['default'] / rate['bare']:.2f} (target >= 0.9; "
          f"rounds {' '.join(f'{r:.2f}' for r in ratios)})")
    print(f"CPU ms a canvas (this process, all threads): pipeline {cpu['default']:.1f}, bare {cpu['bare']:.1f}; "
          f"the pipeline's own work {cpu['own']:.1f} (its run with inference replaced by the answers it gave); "
          f"runtime=torch pipeline {cpu['torch']:.1f}")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
