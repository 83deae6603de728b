"""Calibration: ECE on hand cases, fits that recover a known distortion, and apply's fallbacks."""

import json
import math

import numpy as np
import pytest

from enricher import calibrate


def test_ece_of_a_hand_case():
    # Bin [0.2, 0.3): scores 0.25, 0.25, correct 1 of 2 -> |0.5 - 0.25| * 2/4
    # Bin [0.9, 1.0]: scores 0.9, 1.0, correct 2 of 2 -> |1.0 - 0.95| * 2/4
    value = calibrate.ece([0.25, 0.25, 0.9, 1.0], [True, False, True, True], bins=10)
    assert value == pytest.approx(0.5 * 0.25 + 0.5 * 0.05)


def test_ece_is_zero_when_perfect_and_for_no_pairs():
    assert calibrate.ece([0.05, 0.95], [False, True], bins=10) == pytest.approx(0.05)
    assert calibrate.ece([], []) == 0.0
    assert calibrate.ece([0.5, 0.5], [True, False], bins=10) == 0.0


def test_reliability_bins_count_every_pair():
    rows = calibrate.reliability([0.05, 0.5, 0.55, 1.0], [False, True, False, True], bins=4)
    assert [r["count"] for r in rows] == [1, 0, 2, 1]
    assert rows[2]["accuracy"] == 0.5 and rows[2]["confidence"] == pytest.approx(0.525)
    assert rows[1]["accuracy"] is None


def _overconfident(n=3000, power=3.0, seed=0):
    """Pairs whose true hit rate is p but whose score is sigmoid(POWER * logit(p))."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    hit = rng.uniform(size=n) < p
    score = 1 / (1 + np.exp(-power * np.log(p / (1 - p))))
    return score, hit


@pytest.mark.parametrize("method", calibrate.METHODS)
def test_fit_reduces_ece_and_recovers_the_temperature(method):
    score, hit = _overconfident()
    params = calibrate.fit([("dog", float(s), bool(h)) for s, h in zip(score, hit)], method)
    calibrated = [calibrate.apply(params, "dog", float(s)) for s in score]
    before, after = calibrate.ece(score, hit), calibrate.ece(calibrated, hit)
    assert before > 0.1
    assert after < before / 3
    assert params["classes"]["dog"]["a"] == pytest.approx(1 / 3, abs=0.05)
    assert params["classes"]["dog"]["ece_after"] == pytest.approx(after)
    json.dumps(params)  # the stored form


def test_fit_is_per_class_with_a_default_for_rare_labels():
    dog, dog_hit = _overconfident(power=3.0, seed=1)
    cat, cat_hit = _overconfident(power=0.5, seed=2)
    triples = [("dog", float(s), bool(h)) for s, h in zip(dog, dog_hit)]
    triples += [("cat", float(s), bool(h)) for s, h in zip(cat, cat_hit)]
    triples += [("horse", 0.9, True)] * 5
    params = calibrate.fit(triples)
    assert set(params["classes"]) == {"dog", "cat"}
    assert params["classes"]["dog"]["a"] < 1 < params["classes"]["cat"]["a"]
    assert calibrate.apply(params, "horse", 0.7) == pytest.approx(
        1 / (1 + math.exp(-(params["default"]["a"] * math.log(0.7 / 0.3) + params["default"]["b"]))))


def test_apply_keeps_the_order_and_passes_through_without_params():
    assert calibrate.apply({}, "dog", 0.37) == 0.37
    params = calibrate.fit([("dog", 0.9, False)] * 30 + [("dog", 0.2, False)] * 30)
    values = [calibrate.apply(params, "dog", s) for s in (0.0, 0.2, 0.5, 0.9, 1.0)]
    assert values == sorted(values)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="isotonic"):
        calibrate.fit([("dog", 0.5, True)], "isotonic")


def test_apply_all_is_apply_for_every_pair():
    score, hit = _overconfident(n=200)
    params = calibrate.fit([("dog", float(s), bool(h)) for s, h in zip(score, hit)], min_samples=150)
    labels = ["dog", "cat"] * 100
    expected = [calibrate.apply(params, label, float(s)) for label, s in zip(labels, score)]
    assert calibrate.apply_all(params, labels, score) == pytest.approx(expected)
    assert list(calibrate.apply_all({}, labels[:2], [0.3, 0.6])) == [0.3, 0.6]
