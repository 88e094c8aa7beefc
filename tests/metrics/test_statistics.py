"""Bootstrap intervals, paired differences and breakdowns."""

from __future__ import annotations

import numpy as np
import pytest

from pseval.metrics.confusion import Confusion
from pseval.metrics.statistics import bit_string, bits, bootstrap_metrics, breakdown, difference


def _cell(n: int, p_same_when_same: float, p_same_when_diff: float, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    p = np.where(y, rng.random(n) < p_same_when_same, rng.random(n) < p_same_when_diff)
    return y, p


def test_point_estimates_match_confusion_and_intervals_cover():
    y, p = _cell(800, 0.7, 0.3, 0)
    ci = bootstrap_metrics(y, p, n_boot=500, seed=1)
    c = Confusion.from_predictions(y.tolist(), p.tolist())
    for m in ("accuracy", "precision", "recall", "specificity", "f1"):
        assert ci[m].value == pytest.approx(getattr(c, m))
        assert ci[m].low <= ci[m].value <= ci[m].high
    assert 0.0 < ci["specificity"].high - ci["specificity"].low < 0.15
    assert ci == bootstrap_metrics(y, p, n_boot=500, seed=1)  # seeded


def test_paired_difference_detects_real_gap_and_not_a_null_one():
    y, _ = _cell(1000, 0.5, 0.5, 2)
    rng = np.random.default_rng(3)
    good = np.where(y, rng.random(1000) < 0.6, rng.random(1000) < 0.2)  # specificity ~0.8
    bad = np.where(y, rng.random(1000) < 0.6, rng.random(1000) < 0.5)  # specificity ~0.5
    d = difference((y, good), (y, bad), "specificity", n_boot=500)
    assert d.value > 0.2 and d.excludes_zero() and d.low > 0
    same = difference((y, good), (y, good), "specificity", n_boot=200)
    assert same.value == 0 and same.low == 0 and same.high == 0 and not same.excludes_zero()
    with pytest.raises(ValueError, match="same pairs"):
        difference((y, good), (y[:10], good[:10]))


def test_breakdown_and_bits():
    assert bits("0110").tolist() == [False, True, True, False]
    assert bit_string(np.array([False, True, True, False])) == "0110" and bit_string(np.zeros(0, bool)) == ""
    y = bits("1100")
    p = bits("1001")
    out = breakdown(y, p, ["n", "n", "v", "v"])
    assert out["n"]["pairs"] == 2 and out["n"]["recall"] == 0.5
    assert out["v"]["specificity"] == 0.5
