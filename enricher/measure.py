"""Measure a model on collections of the store: gather truth and predictions, evaluate, fit the
calibration, record both. Shared by ``enricher evaluate`` and ``POST /{key}/evaluations``.

URLs: an evaluation of one manifest is ``{base}{key}/evaluations/{id}``, of several (or a COCO file)
``{base}evaluations/{id}``; its calibration ``{base}calibrations/{id}``. The calibration is recorded
for the collection evaluated (store key: that manifest, or None for several) and, when the truth spans
several manifests, once more for each of them (``{id}-{key}``), so every annotation's own manifest
finds the calibration that applies to it.
"""

from __future__ import annotations

import gc
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import calibrate, groundtruth
from .annotate import manifest_key
from .clock import now
from .config import Config
from .errors import InputError
from .evaluate import evaluate, read_coco, read_coco_results
from .quality import make_record
from .store import Store
from .urls import calibration_url, evaluation_url, public_base, verdicts_url

SHA256 = re.compile(r"[0-9a-f]{64}")
KEY = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Model:
    sha256: str
    name: str


def resolve_keys(store: Store, manifests: Sequence[str]) -> list[str] | None:
    """Turn manifest keys or ids into keys (None: every manifest). Raises InputError for an unknown one."""
    if not manifests:
        return None
    keys = [m if KEY.fullmatch(m) else manifest_key(m) for m in manifests]
    for given, key in zip(manifests, keys):
        if store.manifest(key) is None:
            raise InputError("no such manifest in the store", where=given)
    return keys


def models(store: Store, keys: Sequence[str] | None) -> list[Model]:
    """Return the models with machine annotations on these manifests (None: all), by name."""
    return [Model(sha, name or sha[:12]) for sha, name in store.models(keys)]


def choose_model(store: Store, keys: Sequence[str] | None, given: str | None) -> Model:
    """Return the model GIVEN (a SHA-256, or a weights file to hash), or the only one with annotations here.

    Raises InputError when none is given and there are none or several, or the file cannot be read.
    """
    from .detect import weights_sha256

    if given and SHA256.fullmatch(given.lower()):
        return Model(given.lower(), store.model_name(given.lower()) or given.lower()[:12])
    if given:
        if not Path(given).exists():
            raise InputError("neither a SHA-256 nor a weights file", where=given)
        return Model(weights_sha256(given), Path(given).name)
    known = models(store, keys)
    if len(known) != 1:
        names = ", ".join(f"{m.name} ({m.sha256})" for m in known) or "none"
        raise InputError(f"choose the model to evaluate; models with annotations here: {names}", where="model")
    return known[0]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector for the block (it is on again after, if it was before).

    An evaluation builds about ten objects per detection (records, COCOeval's per-image results) that
    live until it ends, and the collector walks all of them again and again: a fifth of a run on
    100,000 detections. Nothing here makes reference cycles, so nothing waits for it meanwhile.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_collector_paused()
def run(
    store: Store,
    config: Config,
    model: Model,
    *,
    keys: Sequence[str] | None = None,
    threshold: float | None = None,
    coco: str | Path | None = None,
    results: str | Path | None = None,
    method: str = "platt",
) -> dict:
    """Evaluate MODEL against the reviews of manifests KEYS (None: all) or a COCO file, with its
    predictions from the store or a COCO RESULTS file; record evaluation and calibration, return the record.

    Raises InputError when there is no truth or an input file is unusable.
    """
    base = public_base(config.base_url)
    truth = read_coco(coco) if coco else groundtruth.reviewed_canvases(store, keys)
    if not truth:
        raise InputError("no canvas was reviewed exhaustively: nothing to measure against",
                         where=", ".join(keys) if keys else "all manifests")
    if results:
        if not coco:
            raise InputError("a COCO results file needs its COCO ground truth (--coco)", where=str(results))
        predictions = read_coco_results(results, coco)
    else:
        predictions = groundtruth.predictions(store, model.sha256, {c.canvas_id for c in truth})
    evaluation = evaluate(truth, predictions, config.conf if threshold is None else threshold)
    eid = uuid.uuid4().hex
    seen = sorted({c.manifest_key for c in truth if c.manifest_key})
    key = seen[0] if len(seen) == 1 and not coco else None
    url = evaluation_url(base, eid, key)
    sources = [Path(coco).resolve().as_uri()] if coco else [verdicts_url(base, k) for k in seen]
    calibration = None
    if evaluation.pairs and not results:  # a calibration applies to the annotations served from the store
        params = calibrate.fit(evaluation.pairs, method)
        calibration = {"id": calibration_url(base, eid), "method": method, "params": params}
    created = now()
    record = make_record(evaluation, url=url, created=created, model_sha256=model.sha256, model_name=model.name,
                         truth=sources, calibration=calibration)
    with store.transaction():  # one commit: the evaluation, its calibrations and the annotations' Updates
        store.save_evaluation(eid, model.sha256, key, record, created)
        if calibration:
            rows = [(eid, key)] + ([(f"{eid}-{k}", k) for k in seen] if key is None else [])
            for cid, ckey in rows:
                store.save_calibration(cid, model.sha256, ckey, method, calibration["params"], created)
    return record


def calibration_record(store: Store, calibration_id: str, base: str) -> dict | None:
    """Return calibration CALIBRATION_ID as served (its URL, model, manifest key, method, params), or None."""
    found = store.calibration_by_id(calibration_id)
    if found is None:
        return None
    return {"id": calibration_url(base, found.id), "modelSha256": found.model_sha256, "manifest": found.key,
            "method": found.method, "params": found.params, "created": found.created}
