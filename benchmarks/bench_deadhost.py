"""A manifest whose image host is down, with the circuit breaker per host against without it, in one run.

Enriches a manifest of N canvases whose images all sit on a dead host on loopback, once with the
default settings and once with ``breaker_failures=0`` (the breaker off: every canvas pays the whole
retry schedule, as before there was one), and prints both wall times and their ratio. Two kinds of
dead host: a closed port (connections refused at once) and a port that takes connections and never
answers (each try waits for the timeout; ``--timeout``, default 2 s, stands in for the 20 s default).

    python benchmarks/bench_deadhost.py --canvases 20
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from enricher.config import load_config
from enricher.datafiles import DEMO_WEIGHTS
from enricher.detect import Detector
from enricher.fetch import Fetcher
from enricher.manifest import parse_manifest
from enricher.pipeline import Enricher


def dead_manifest(image_base: str, count: int) -> dict:
    """A v3 manifest of COUNT canvases, each with an image service under IMAGE_BASE."""
    items = []
    for n in range(count):
        canvas, service = f"http://bench.example/canvas/{n}", f"{image_base}/image-{n}"
        body = {"id": f"{service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg", "width": 640,
                "height": 480, "service": [{"id": service, "type": "ImageService3", "profile": "level2"}]}
        painting = {"id": f"{canvas}/painting", "type": "Annotation", "motivation": "painting", "body": body, "target": canvas}
        items.append({"id": canvas, "type": "Canvas", "width": 640, "height": 480,
                      "items": [{"id": f"{canvas}/page", "type": "AnnotationPage", "items": [painting]}]})
    return {"@context": "http://iiif.io/api/presentation/3/context.json", "id": "http://bench.example/manifest.json",
            "type": "Manifest", "label": {"en": ["dead host"]}, "items": items}


@contextmanager
def dead_host(kind: str) -> Iterator[str]:
    """Yield the base URL of a host that refuses connections, or one that takes them and never answers
    (a listening socket nobody accepts from: the kernel completes the handshake, no byte comes back)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    port = listener.getsockname()[1]
    if kind == "refused":
        listener.close()
    try:
        yield f"http://127.0.0.1:{port}/iiif"
    finally:
        listener.close()


def enrich_seconds(settings: dict, detector: Detector, document: dict) -> tuple[float, int]:
    """Enrich DOCUMENT with SETTINGS; return the wall time and how many canvases failed."""
    config = load_config(settings, env={})
    with Fetcher(config) as fetcher:
        start = time.perf_counter()
        result = Enricher(config, detector=detector, fetcher=fetcher).enrich(parse_manifest(document, document["id"]))
        seconds = time.perf_counter() - start
    return seconds, sum(c.error is not None for c in result.canvases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=2.0, help="Seconds before a try on the silent host gives up")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    base = {"weights": str(DEMO_WEIGHTS), "allow_private": True, "device": "cpu", "timeout": args.timeout}
    defaults = load_config(base, env={})
    print(f"retries {defaults.retries}, backoff {defaults.backoff} s, timeout {defaults.timeout} s, "
          f"breaker after {defaults.breaker_failures} failures, cool-down {defaults.breaker_cooldown} s")
    detector = Detector(defaults)
    for kind in ("refused", "silent"):
        with dead_host(kind) as image_base:
            document = dead_manifest(image_base, args.canvases)
            off, failed_off = enrich_seconds({**base, "breaker_failures": 0}, detector, document)
            on, failed_on = enrich_seconds(base, detector, document)
        assert failed_on == failed_off == args.canvases, (failed_on, failed_off)
        print(f"{kind:8} host, {args.canvases} canvases: breaker off {off:6.2f} s, on {on:6.2f} s: "
              f"{on / off:.3f} of the time ({off / on:.0f}x faster)")


if __name__ == "__main__":
    main()
