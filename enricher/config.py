"""Every setting, declared once: name, default, help. Read from overrides, ``ENRICHER_*`` env vars
or a TOML/JSON file, in that order of precedence."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .datafiles import PROJECT_ROOT
from .errors import ConfigError

ENV_PREFIX = "ENRICHER_"
DEFAULT_WEIGHTS = "yolo11n.pt"
DEFAULT_CONFORMANCE_DIR = PROJECT_ROOT.parent / "shared" / "conformance"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _pixels(value: Any) -> int:
    number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else -1.0
    if not number.is_integer() or number < 0:
        raise ValueError("must be a whole number of image pixels, 0 or more")
    return int(number)


def _count(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _tiled(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in {"auto", "on", "off"}:
        raise ValueError("must be auto, on or off")
    return text


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = str


SETTINGS: tuple[Setting, ...] = (
    # detection
    Setting("weights", DEFAULT_WEIGHTS, "YOLO weights: a local path (.pt, .onnx, OpenVINO dir) or a file name in ultralytics' weights folder; never downloaded"),
    Setting("vocab", "", "Extra SKOS mapping files (Turtle), comma-separated, for a custom model's classes", _list),
    Setting("device", "auto", "Inference device: auto (CUDA when present, else CPU), cpu, cuda, cuda:0 ..."),
    Setting("runtime", "auto", "Inference runtime on the CPU: auto (PyTorch weights are exported once to OpenVINO, else ONNX Runtime, and run there; PyTorch if that fails), torch, openvino or onnx. CUDA runs PyTorch; exported weights run on their own runtime"),
    Setting("model_cache", "", "Folder where exported models are cached, keyed by the weights' SHA-256, image size, batch and runtime version (empty: $XDG_CACHE_HOME/enricher, else ~/.cache/enricher)"),
    Setting("conf", 0.25, "Minimum confidence of a published detection", float),
    Setting("iou", 0.5, "IoU threshold of the model's non-maximum suppression within one image", float),
    Setting("max_det", 300, "Maximum detections per image", int),
    Setting("classes", "", "Only keep these class names, comma-separated (empty: all)", _list),
    Setting("imgsz", 640, "Inference size in pixels (long side)", int),
    Setting("batch", 8, "Images per inference batch", int),
    Setting("inference_threads", 0, "Threads each process infers on, on every runtime on the CPU: PyTorch (also ultralytics' pre- and post-processing), OpenVINO (threads unpinned) and ONNX Runtime (0: their defaults, about one a core). With several worker processes on one machine, keep processes x threads within its cores", _count),
    Setting("tiled", "auto", "Tiled mode: auto (by image size), on or off", _tiled),
    Setting("tile_size", 640, "Tile edge in image pixels; tiles are requested at full resolution", _pixels),
    Setting("tile_overlap", 192, "Least overlap of neighbouring tiles in image pixels: an object up to this size is whole in at least one tile", _pixels),
    Setting("tile_threshold", 2.0, "Auto tiling starts when the image's long side exceeds imgsz times this", float),
    # network edge
    Setting("timeout", 20.0, "Seconds before a request to a remote server gives up", float),
    Setting("retries", 3, "Retries on 429, 5xx, refused or broken connections and timeouts, with exponential backoff honouring Retry-After", int),
    Setting("backoff", 0.5, "First backoff delay in seconds", float),
    Setting("max_bytes", 64 * 1024 * 1024, "Largest response accepted, in bytes", int),
    Setting("max_pixels", 178_956_970, "Largest image decoded, in pixels (Pillow's decompression-bomb limit)", int),
    Setting("allow_private", False, "Allow private, loopback and link-local addresses", _bool),
    Setting("allowed_hosts", "", "Hosts allowed even when private, comma-separated", _list),
    Setting("user_agent", "enricher (+https://github.com/enricher)", "User-Agent sent with every request"),
    Setting("max_depth", 3, "How deep collections are followed", int),
    Setting("max_manifests", 200, "How many manifests one collection may yield", int),
    # publishing
    Setting("base_url", "http://localhost:8000/", "Public base URL of published annotations (ids are built on it)"),
    Setting("language", "en", "Language of the TextualBody label"),
    Setting("licence", "http://creativecommons.org/publicdomain/zero/1.0/", "Licence of published annotations"),
    # service
    Setting("database", "instance/enricher.sqlite3", "The system of record: a store URL (sqlite:///relative/path, sqlite:////absolute/path, postgresql://user@host/db) or a plain SQLite file path (relative to the working directory)"),
    Setting("host", "127.0.0.1", "Address `enricher serve` binds"),
    Setting("port", 8000, "Port `enricher serve` binds", int),
    Setting("workers", 2, "gunicorn worker processes", int),
    Setting("tokens", "", "Bearer tokens allowed to write, comma-separated", _list),
    Setting("page_size", 100, "Annotations per page of a container", int),
    Setting("page_cache", "", "Folder of the built container pages every worker on the host serves from; empty: next to the database (x.sqlite3 -> x.pages)"),
    Setting("page_cache_bytes", 1024**3, "Most bytes of built container pages kept on disk (0: none kept, every page built per request)", int),
    Setting("max_body", 1024 * 1024, "Largest request body accepted, in bytes", int),
    Setting("job_worker", True, "Run the background job worker in this process", _bool),
    Setting("job_queue", "thread", "Job queue: thread (a runner thread in one process of those on the database) or dramatiq (`enricher worker` processes on a message broker; a broker setting chooses it)"),
    Setting("index", "embedded", "RDF index behind /sparql, the dumps and VoID: embedded (one Oxigraph folder on disk, shared by the service's processes) or remote (a SPARQL 1.1 triplestore at index_url, fed through push_url)"),
    Setting("index_url", "", "SPARQL 1.1 Protocol query endpoint of the triplestore the remote index asks (index remote), e.g. http://127.0.0.1:7878/query"),
    Setting("index_path", "", "The on-disk RDF index (an Oxigraph folder) every process of the service reads and writes in turn; empty: next to the database (x.sqlite3 -> x.oxigraph)"),
    Setting("sparql_timeout", 30.0, "Seconds a SPARQL query may run before the endpoint answers 503", float),
    Setting("activity_page_size", 100, "Activities per page of the IIIF Change Discovery stream (pages are numbered by it: keep it fixed)", int),
    Setting("conformance_dir", str(DEFAULT_CONFORMANCE_DIR), "Folder with the W3C/IIIF schemas and JSON-LD contexts (tests)"),
    # external triplestore
    Setting("push_url", "", "Graph Store Protocol or SPARQL Update endpoint every change is pushed to (empty: none)"),
    Setting("push_protocol", "gsp", "How changes are pushed: gsp (Graph Store Protocol) or update (SPARQL 1.1 Update)"),
    Setting("push_interval", 5.0, "Seconds between pushes of the backlog (doubling after each failure, up to 5 minutes)", float),
    # network edge: circuit breaker per image host
    Setting("breaker_failures", 5, "Connection failures in a row after which a host is taken as down and not contacted for a cool-down (0: never)", int),
    Setting("breaker_cooldown", 30.0, "Seconds a host taken as down is left alone before one request may try it again", float),
    # abuse limits of the service
    Setting("write_rate", 600.0, "Writes (POST, PUT, DELETE) per minute each client address and each token may make on average; more answer 429 (0: no limit)", float),
    Setting("write_burst", 120, "Writes each client address and each token may make at once before write_rate applies", int),
    Setting("job_rate", 2.0, "Jobs per minute each client address and each token may submit on average; more answer 429 (0: no limit)", float),
    Setting("job_burst", 20, "Jobs each client address and each token may submit at once before job_rate applies", int),
    Setting("trusted_proxies", 0, "Reverse proxies in front of the service whose X-Forwarded-For names the client address the limits count (0: the connecting address)", int),
    Setting("max_canvases", 10000, "Most canvases one job may enrich; a job over it fails, a POST listing more is refused (0: no cap)", int),
    Setting("sparql_max_rows", 100000, "Most rows a SELECT may answer through /sparql; a query past it answers 422 (0: no cap)", int),
    Setting("sparql_max_triples", 1000000, "Most triples a CONSTRUCT or DESCRIBE may answer through /sparql; a query past it answers 422 (0: no cap)", int),
    # distributed jobs: Dramatiq workers on a broker, polite to each IIIF host across the cluster
    Setting("broker", "", "Message broker of the distributed job queue: amqp://user:password@host:5672/ (RabbitMQ) or redis://host:6379/0 (empty: none, jobs run in the thread queue)"),
    Setting("worker_threads", 2, "Threads of each `enricher worker` process, each on one message at a time (the model runs one batch at a time per process)", int),
    Setting("message_canvases", 4, "Canvases per message: the distributed queue fans a job out into messages of this many canvases", int),
    Setting("job_retries", 5, "Times a message that fails for another reason than its canvases' own errors is retried, with backoff, before it goes to the dead-letter queue", int),
    Setting("host_rate", 0.0, "Requests per second to one IIIF host from all workers together (0: no limit; shared through Redis)", float),
    Setting("host_concurrency", 0, "Requests in flight to one IIIF host from all workers together (0: no limit; shared through Redis)", int),
    Setting("limits_url", "", "Redis that holds the per-host limits, redis://host:6379/0 (empty: the broker's, when it is Redis)"),
    # aggregators: OAI-PMH, EDM and the Europeana Annotations API profile
    Setting("oai_repository_name", "enricher", "The repository name OAI-PMH Identify gives (and edm:provider where the aggregation file names none)"),
    Setting("oai_admin_email", "", "The administrator's e-mail address OAI-PMH Identify gives (empty: webmaster@ the base URL's host)"),
    Setting("oai_max_records", 100, "Most records (headers, sets) in one OAI-PMH response; a resumption token carries on", int),
    Setting("aggregation_file", "", "TOML or JSON file mapping manifest URIs to the provider's object URIs and Europeana items, naming the data provider, provider and rights, and grouping manifests into OAI-PMH sets (empty: none)"),
    Setting("aggregation_threshold", 0.5, "Confidence (calibrated where a calibration applies) from which a pending machine annotation's concept goes to aggregators; accepted ones always go, rejected ones never", float),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


class Config:
    """Resolved settings; attribute access by setting name."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **overrides: Any) -> "Config":
        """Return a copy with some settings changed (None means keep)."""
        return load_config(overrides={**self._values, **{k: v for k, v in overrides.items() if v is not None}}, env={})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def _read_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read settings file: {exc}", where=str(path)) from None


def load_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Resolve every setting from overrides, then env vars, then a settings file, then defaults."""
    env = os.environ if env is None else env
    file = file or env.get(ENV_PREFIX + "CONFIG")
    layers: list[Mapping[str, Any]] = [_read_file(file) if file else {}]
    layers.append({k[len(ENV_PREFIX):].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    values: dict[str, Any] = {}
    for layer in layers:
        for name, raw in layer.items():
            if name == "config":
                continue
            setting = SETTINGS_BY_NAME.get(name)
            if setting is None:
                raise ConfigError(f"unknown setting {name!r}")
            try:
                values[name] = setting.parse(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"setting {name}={raw!r}: {exc}") from None
    return Config({s.name: values.get(s.name, s.default) for s in SETTINGS})
