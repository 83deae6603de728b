"""Chain the stages for one manifest: plan image requests and fetch and decode them in worker threads a
window ahead of the model, run the model batch after batch on the calling thread, and map boxes to canvas
coordinates, name them, annotate them and hand each finished canvas to the caller's writer on another
thread, so that with inference at 30 ms a canvas none of that work waits for the model or the model for it.
The helper threads run at a lower priority than the model's, so that on a machine with few cores their
work takes the time inference leaves idle rather than slowing it."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from PIL import Image

from . import __version__
from .annotate import Generator, build_annotation
from .clock import now
from .config import Config
from .detect import Detection, Detector
from .errors import EnricherError, RegionError
from .fetch import Fetcher
from .geometry import Box
from .imageapi import (
    ImageInfo,
    ImageRequest,
    load_request,
    parse_info,
    plan_region,
    plan_tiles,
    read_info,
    to_image_box,
)
from .manifest import Canvas, Manifest
from .painting import PaintedImage
from .placement import Placement, place
from .tiling import merge_passes
from .vocab import Vocabulary
from .workpool import LATER, URGENT, WorkPool

FETCH_WORKERS = 4
HELPER_NICENESS = 10  # added to the helper threads' nice value: the model's threads come first
EventHandler = Callable[[str, dict], None]


@dataclass
class CanvasResult:
    canvas: Canvas
    detections: list[Detection] = field(default_factory=list)  # canvas coordinates
    annotations: list[dict] = field(default_factory=list)
    error: EnricherError | None = None
    skipped: str | None = None  # why nothing on the canvas was looked at


@dataclass
class ManifestResult:
    manifest: Manifest
    canvases: list[CanvasResult]
    timings: dict[str, float]

    @property
    def annotation_count(self) -> int:
        return sum(len(c.annotations) for c in self.canvases)


@dataclass
class _Layer:
    """One image of a canvas: where it lands, what to request of it, and what the model found there."""

    placement: Placement
    region: Box  # image pixels looked at
    requests: list[ImageRequest]
    tiled: bool
    local: Image.Image | None = None  # the decoded plain image when it has no image service
    found: list[list[Detection]] = field(default_factory=list)


@dataclass
class _Plan:
    """What to request for one canvas, and how to map the answers back."""

    canvas: Canvas  # with a size: a canvas without one takes its first image's
    layers: list[_Layer]

    @property
    def complete(self) -> bool:
        return all(len(layer.found) == len(layer.requests) for layer in self.layers)


def _clip(box: Box, bounds: Box) -> Box | None:
    x0, y0 = max(box[0], bounds[0]), max(box[1], bounds[1])
    x1 = min(box[0] + box[2], bounds[0] + bounds[2])
    y1 = min(box[1] + box[3], bounds[1] + bounds[3])
    return (x0, y0, x1 - x0, y1 - y0) if x1 - x0 >= 1 and y1 - y0 >= 1 else None


def _centre_inside(box: Box, bounds: Box) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return bounds[0] <= cx <= bounds[0] + bounds[2] and bounds[1] <= cy <= bounds[1] + bounds[3]


def _in_background() -> None:
    """Lower the calling thread's priority by HELPER_NICENESS (Linux, where nice is a thread's own)."""
    if sys.platform.startswith("linux"):
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + HELPER_NICENESS))


class _Events:
    """Run work after inference in order on one helper thread: annotating a canvas (1-2 ms) and handing
    events to the handler (a job's commit, the CLI's files: 3-7 ms a canvas), so both overlap inference
    instead of pausing it. The first error skips the work after it and is raised here, at the next event
    or on exit."""

    def __init__(self, handler: EventHandler | None):
        self._handler = handler
        self._error: BaseException | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="enricher-events", initializer=_in_background)

    def __call__(self, name: str, data: dict) -> None:
        if self._handler is not None:
            self.run(self._handler, name, data)

    def run(self, work: Callable, *args) -> None:
        """Call WORK(*ARGS) on the helper thread after the work and events before it."""
        self._raise()
        self._thread.submit(self._deliver, work, *args)

    def _deliver(self, work: Callable, *args) -> None:
        if self._error is None:
            try:
                work(*args)
            except BaseException as exc:  # raised again in the enriching thread; the job runner's Stopped too
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "_Events":
        return self

    def __exit__(self, kind, *rest) -> None:
        self._thread.shutdown(wait=True)
        if kind is None:  # an error of the run itself wins over the handler's
            self._raise()


class Enricher:
    """The model, vocabulary and HTTP client of one configuration, loaded once and reused per manifest."""

    def __init__(
        self,
        config: Config,
        *,
        detector: Detector | None = None,
        vocabulary: Vocabulary | None = None,
        fetcher: Fetcher | None = None,
    ):
        self.config = config
        self.detector = detector or Detector(config)
        self.vocabulary = vocabulary or Vocabulary.load(config.vocab)
        self.fetcher = fetcher or Fetcher(config)
        self.generator = Generator(__version__, self.detector.name, self.detector.sha256, self.detector.runtime.describe())

    def enrich(
        self,
        manifest: Manifest,
        *,
        canvases: Sequence[Canvas] | None = None,
        region: Box | None = None,
        on_event: EventHandler | None = None,
    ) -> ManifestResult:
        """Detect, name and annotate the objects on the manifest's canvases (all, or the CANVASES of it
        the caller selected: manifest.select_canvases).

        ON_EVENT gets ``manifest_started`` and a ``canvas_done`` per canvas, in order, on a helper thread;
        all have been handled when this returns, and an error it raises stops the run and is raised here.
        """
        selected = list(manifest.canvases if canvases is None else canvases)
        timings = {"plan": 0.0, "fetch": 0.0, "infer": 0.0, "annotate": 0.0}
        results: dict[str, CanvasResult] = {c.id: CanvasResult(c, skipped=c.skip) for c in selected}
        finished: set[str] = set()
        started = time.perf_counter()
        with _Events(on_event) as emit, WorkPool(FETCH_WORKERS, "enricher-fetch", _in_background) as pool:
            emit("manifest_started", {"manifest": manifest, "total": len(selected)})
            batch: list[tuple[_Plan, _Layer, ImageRequest, Image.Image]] = []
            for item in self._loaded(pool, [c for c in selected if not c.skip], region, results, timings):
                batch.append(item)
                if len(batch) == self.config.batch:
                    self._infer(batch, manifest, results, timings, emit, finished)
                    batch = []
            self._infer(batch, manifest, results, timings, emit, finished)
            for canvas_id, result in results.items():  # failed, skipped, or nothing to request
                if canvas_id not in finished:
                    emit("canvas_done", {"result": result})
        timings["total"] = time.perf_counter() - started
        return ManifestResult(manifest, list(results.values()), timings)

    @staticmethod
    def _timed(timings: dict[str, float], stage: str, func: Callable, *args):
        start = time.perf_counter()
        try:
            return func(*args)
        finally:
            timings[stage] += time.perf_counter() - start

    def _plan(self, canvas: Canvas, region: Box | None) -> _Plan:
        if canvas.error is not None:
            raise canvas.error
        sources = [self._source(image) for image in canvas.images]
        if canvas.width is None or canvas.height is None:  # a canvas without a size takes its first image's
            first = place(canvas.images[0], (sources[0][0].width, sources[0][0].height), None, canvas.id)
            canvas = replace(canvas, width=round(first.target[2]), height=round(first.target[3]))
        if region is not None and not _clip(region, (0, 0, canvas.width, canvas.height)):
            raise RegionError(f"region {region} lies outside the canvas {canvas.width}x{canvas.height}", where=canvas.id)
        layers = [self._layer(canvas, image, info, local, region) for image, (info, local) in zip(canvas.images, sources)]
        return _Plan(canvas, [layer for layer in layers if layer is not None])

    def _source(self, image: PaintedImage) -> tuple[ImageInfo, Image.Image | None]:
        """The image's info.json, or for a plain image one made up from the decoded pixels (also returned)."""
        if image.service_id:
            return read_info(image.service_id, self.fetcher), None
        local = self.fetcher.get_image(image.url)
        return parse_info(_local_info(image.url, local.size), image.url), local

    def _layer(self, canvas: Canvas, image: PaintedImage, info: ImageInfo, local, region: Box | None) -> _Layer | None:
        """Plan the requests of one image of CANVAS; None when REGION misses it."""
        config = self.config
        placement = place(image, (info.width, info.height), (canvas.width, canvas.height), canvas.id)
        if region is None:
            image_region = placement.crop
        else:
            part = _clip(region, placement.target)
            if part is None:
                return None
            image_region = placement.to_image(part)
        pixels = tuple(round(v) for v in image_region)
        long_side = max(pixels[2], pixels[3])
        tiled = config.tiled == "on" or (config.tiled == "auto" and long_side > config.imgsz * config.tile_threshold)
        whole = plan_region(info, pixels, config.imgsz)
        requests = [whole]
        if tiled:  # the whole pass sees objects too large for a tile, the tiles those too small for it
            requests += [t for t in plan_tiles(info, pixels, config.tile_size, config.tile_overlap) if t != whole]
        return _Layer(placement, image_region, requests, tiled, local)

    def _load(self, layer: _Layer, request: ImageRequest) -> Image.Image:
        if layer.local is None:
            image = load_request(request, self.fetcher)
        else:
            x, y, w, h = request.region
            image = layer.local.crop((x, y, x + w, y + h)).resize(request.size)
        return layer.placement.turn(image)

    def _loaded(
        self,
        pool: WorkPool,
        canvases: list[Canvas],
        region: Box | None,
        results: dict[str, CanvasResult],
        timings: dict[str, float],
    ) -> Iterator[tuple[_Plan, _Layer, ImageRequest, Image.Image]]:
        """Yield decoded images (turned as shown) in canvas order, keeping a window of fetches in flight
        ahead of the model and as many plans ahead of those: planning every canvas first would keep the
        model waiting at the start. Fetches go before plans in the pool, and until the first batch is
        handed on an image goes as soon as it is there and no plan is ready, so the first batch waits for
        its own images rather than for a window of plans; after it the window is kept full, so the
        next batch is fetched while the model runs."""
        ahead = max(2 * self.config.batch, FETCH_WORKERS)
        upcoming = iter(canvases)
        planned: deque[tuple[Canvas, Future]] = deque()
        unsent: deque[tuple[_Plan, _Layer, ImageRequest]] = deque()
        window: deque[tuple[_Plan, _Layer, ImageRequest, Future]] = deque()

        def plan_next() -> None:
            canvas = next(upcoming, None)
            if canvas is not None:
                planned.append((canvas, pool.submit(LATER, self._timed, timings, "plan", self._plan, canvas, region)))

        def take_plan() -> None:
            canvas, future = planned.popleft()
            plan_next()
            try:
                plan = future.result()
            except EnricherError as exc:
                results[canvas.id].error = exc
                return
            unsent.extend((plan, layer, request) for layer in plan.layers for request in layer.requests)

        for _ in range(ahead):
            plan_next()
        handed = 0
        while window or unsent or planned:
            if unsent and len(window) < ahead:
                plan, layer, request = unsent.popleft()
                fetch = pool.submit(URGENT, self._timed, timings, "fetch", self._load, layer, request)
                window.append((plan, layer, request, fetch))
            elif planned and len(window) < ahead and (
                handed >= self.config.batch or planned[0][1].done() or not (window and window[0][3].done())
            ):
                take_plan()
            else:
                handed += 1
                yield from _ready(window.popleft(), results)

    def _infer(self, batch, manifest: Manifest, results, timings, emit: _Events, finished: set[str]) -> None:
        if not batch:
            return
        start = time.perf_counter()
        found = self.detector.predict([image for _, _, _, image in batch])
        timings["infer"] += time.perf_counter() - start
        for (plan, layer, request, image), detections in zip(batch, found):
            layer.found.append([_to_image(d, request, image.size, layer.placement) for d in detections])
            if plan.complete:
                result = results[plan.canvas.id]
                emit.run(self._timed, timings, "annotate", self._finish, plan, manifest, result)
                finished.add(plan.canvas.id)
                emit("canvas_done", {"result": result})

    def _finish(self, plan: _Plan, manifest: Manifest, result: CanvasResult) -> None:
        canvas = result.canvas = plan.canvas
        canvas_bounds = (0.0, 0.0, float(canvas.width), float(canvas.height))
        created = now()
        for layer in plan.layers:
            found = merge_passes(layer.requests, layer.found) if layer.tiled else [d for tile in layer.found for d in tile]
            for det in found:
                inside = _clip(det.box, layer.region) if _centre_inside(det.box, layer.region) else None
                box = _clip(layer.placement.to_canvas(inside), canvas_bounds) if inside else None
                if box is None:
                    continue
                detection = Detection(det.label, det.score, box)
                result.detections.append(detection)
                result.annotations.append(
                    build_annotation(
                        canvas=canvas,
                        manifest=manifest,
                        detection=detection,
                        mapping=self.vocabulary.lookup(det.label),
                        generator=self.generator,
                        created=created,
                        config=self.config,
                    )
                )


def _to_image(det: Detection, request: ImageRequest, shown: tuple[int, int], placement: Placement) -> Detection:
    """Map a detection in an image answering REQUEST, turned as PLACEMENT shows it (SHOWN pixels), to image pixels."""
    box, delivered = placement.unturn(det.box, shown)
    return Detection(det.label, det.score, to_image_box(box, request, delivered))


def _ready(entry, results: dict[str, CanvasResult]) -> Iterator[tuple[_Plan, _Layer, ImageRequest, Image.Image]]:
    plan, layer, request, future = entry
    result = results[plan.canvas.id]
    if result.error is not None:
        return
    try:
        yield plan, layer, request, future.result()
    except EnricherError as exc:
        result.error = exc


def _local_info(url: str, size: tuple[int, int]) -> dict:
    """An info.json for a plain image we already hold, so tiles and regions plan the same way."""
    return {
        "@context": "http://iiif.io/api/image/3/context.json",
        "id": url,
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level2",
        "width": size[0],
        "height": size[1],
    }
