"""Confidence calibration: expected calibration error and per-class Platt or temperature scaling.

A fit sees ``(label, score, correct)`` triples, one per detection at or above the publishing threshold,
``correct`` meaning it matched a ground-truth box (see ``evaluate.evaluate``). Both methods map a raw score
``s`` through its logit ``z = ln(s / (1 - s))`` to ``sigmoid(a * z + b)``; temperature scaling is the
special case ``b = 0``, ``a = 1 / T``.

Params format (a JSON object, stored by ``Store.save_calibration`` and read by ``apply``)::

    {"method": "platt" | "temperature",
     "bins": 10,                                   # equal-width bins of the ECE figures
     "classes": {"dog": {"a": 1.31, "b": -0.42, "n": 120, "ece_before": 0.12, "ece_after": 0.03}, ...},
     "default": {"a": 1.1, "b": -0.2, "n": 900, "ece_before": 0.09, "ece_after": 0.02}}

``classes`` holds classes with at least ``min_samples`` pairs; any other label uses ``default`` (fitted
on every pair); without ``default`` the score passes through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

METHODS = ("platt", "temperature")
BINS = 10
MIN_SAMPLES = 20
EPS = 1e-6
# Ridge on (a - 1, b): keeps a fit on a handful of all-correct pairs from running off to infinity.
RIDGE = 1e-3


def _entry(params: Mapping, label: str) -> Mapping | None:
    """The fitted (a, b) that applies to LABEL: its class's, else the default, else None."""
    return params.get("classes", {}).get(label) or params.get("default")


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # finite for any u, unlike 1 / (1 + e^-u)


def _bin_of(s: np.ndarray, bins: int) -> np.ndarray:
    """The equal-width bin of [0, 1] each score falls in (1.0 in the last)."""
    return np.minimum((s * bins).astype(int), bins - 1)


def apply(params: Mapping, label: str, score: float) -> float:
    """Return the calibrated confidence of a detection of LABEL with raw SCORE under PARAMS."""
    entry = _entry(params, label)
    if not entry:
        return float(score)
    s = min(max(float(score), EPS), 1.0 - EPS)
    t = entry["a"] * math.log(s / (1.0 - s)) + entry["b"]
    return 1.0 / (1.0 + math.exp(-t)) if t >= 0 else math.exp(t) / (1.0 + math.exp(t))


def apply_all(params: Mapping, labels: Sequence[str], scores: Sequence[float]) -> np.ndarray:
    """Return ``apply`` of every (label, score) pair, vectorised."""
    raw = np.asarray(scores, dtype=float)
    names = np.asarray(labels, dtype=object)
    a, b = np.ones_like(raw), np.zeros_like(raw)
    calibrated = np.zeros(raw.shape, dtype=bool)
    for label in set(labels):
        entry = _entry(params, label)
        if entry:
            mask = names == label
            a[mask], b[mask] = entry["a"], entry["b"]
            calibrated |= mask
    s = np.clip(raw, EPS, 1.0 - EPS)
    return np.where(calibrated, _sigmoid(a * np.log(s / (1.0 - s)) + b), raw)


def ece(scores: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> float:
    """Return the expected calibration error over BINS equal-width bins of [0, 1] (0.0 for no pairs)."""
    s = np.asarray(scores, dtype=float)
    c = np.asarray(correct, dtype=float)
    if s.size == 0:
        return 0.0
    index = _bin_of(s, bins)
    gap = np.abs(np.bincount(index, weights=c, minlength=bins) - np.bincount(index, weights=s, minlength=bins))
    return float(gap.sum() / s.size)


def reliability(scores: Sequence[float], correct: Sequence[bool], bins: int = BINS) -> list[dict]:
    """Return per bin: lower and upper edge, count, mean score and accuracy (None when empty)."""
    s = np.asarray(scores, dtype=float)
    c = np.asarray(correct, dtype=float)
    index = _bin_of(s, bins)
    rows = []
    for k in range(bins):
        inside = index == k
        n = int(inside.sum())
        rows.append({
            "lower": k / bins, "upper": (k + 1) / bins, "count": n,
            "confidence": float(s[inside].mean()) if n else None,
            "accuracy": float(c[inside].mean()) if n else None,
        })
    return rows


def fit(
    triples: Sequence[tuple[str, float, bool]],
    method: str = "platt",
    *,
    bins: int = BINS,
    min_samples: int = MIN_SAMPLES,
) -> dict:
    """Fit per-class calibration on (label, score, correct) triples; return the params ``apply`` reads."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")
    # columns, and a class number per triple: a hundred thousand triples are not gathered one by one
    n, codes = len(triples), {}
    label_of = np.fromiter((codes.setdefault(t[0], len(codes)) for t in triples), np.intp, n)
    scores = np.fromiter((t[1] for t in triples), float, n)
    correct = np.fromiter((t[2] for t in triples), float, n)
    params: dict = {"method": method, "bins": bins, "classes": {}}
    if triples:
        params["default"] = _fit_one(scores, correct, method, bins)
    for label in sorted(codes):
        mine = label_of == codes[label]
        if np.count_nonzero(mine) >= min_samples:
            params["classes"][label] = _fit_one(scores[mine], correct[mine], method, bins)
    return params


def _fit_one(scores: Sequence[float], correct: Sequence[bool], method: str, bins: int) -> dict:
    s = np.clip(np.asarray(scores, dtype=float), EPS, 1.0 - EPS)
    y = np.asarray(correct, dtype=float)
    z = np.log(s / (1.0 - s))
    # Platt's smoothed targets: no perfect separation, so the likelihood has a finite optimum.
    positives = y.sum()
    negatives = y.size - positives
    t = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = _newton(z, t, with_bias=method == "platt")
    if a < 0:
        # A falling curve would reverse the ranking; the best constant is the honest answer here.
        a, b = 0.0, float(np.log(t.mean() / (1.0 - t.mean())))
    after = _sigmoid(a * z + b)
    return {
        "a": a, "b": b, "n": int(y.size),
        "ece_before": ece(s, y, bins), "ece_after": ece(after, y, bins),
    }


def _newton(z: np.ndarray, t: np.ndarray, *, with_bias: bool, steps: int = 100) -> tuple[float, float]:
    """Minimise the cross-entropy of sigmoid(a z + b) against targets T (ridge towards the identity)."""
    X = np.stack([z, np.ones_like(z)], axis=1) if with_bias else z[:, None]
    prior = np.array([1.0, 0.0])[: X.shape[1]]

    def loss(w: np.ndarray) -> float:
        u = X @ w
        # log(1 + e^u) - t u, written to stay finite for large |u|
        return float((np.logaddexp(0.0, u) - t * u).sum() + 0.5 * RIDGE * ((w - prior) ** 2).sum())

    w = prior.copy()
    current = loss(w)
    for _ in range(steps):
        p = _sigmoid(X @ w)
        grad = X.T @ (p - t) + RIDGE * (w - prior)
        hess = (X * (p * (1 - p))[:, None]).T @ X + RIDGE * np.eye(w.size)
        step = np.linalg.solve(hess, grad)
        # Backtracking: a full Newton step overshoots when the start is far from the optimum.
        scale = 1.0
        while scale > 1e-8 and loss(w - scale * step) > current:
            scale *= 0.5
        w = w - scale * step
        previous, current = current, loss(w)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    return float(w[0]), float(w[1]) if with_bias else 0.0
