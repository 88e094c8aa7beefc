"""Trivial predictors and the chance-corrected figures against hand computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pseval.metrics.chance import chance_fields, trivial_predictors
from pseval.metrics.confusion import Confusion
from pseval.metrics.statistics import metrics_from_counts
from pseval.ps_eval.intervals import PairArrays, bootstrap_intervals


def test_trivial_predictors_by_hand():
    t = trivial_predictors(3, 5)  # S = 3 same-sense, D = 5 different-sense pairs
    same, diff, coin = (t[k].metrics() for k in ("always_same", "always_different", "coin"))
    assert same["accuracy"] == 3 / 8 and same["precision"] == 3 / 8 and same["recall"] == 1
    assert same["specificity"] == 0 and same["f1"] == pytest.approx(6 / 11)  # 2S / (2S + D)
    assert diff["accuracy"] == 5 / 8 and math.isnan(diff["precision"]) and diff["recall"] == 0
    assert diff["specificity"] == 1 and diff["f1"] == 0
    p = 3 / 8
    assert coin["accuracy"] == pytest.approx(p * p + (1 - p) ** 2)
    assert coin["recall"] == pytest.approx(p) and coin["specificity"] == pytest.approx(1 - p)
    assert coin["precision"] == pytest.approx(p) and coin["f1"] == pytest.approx(p)
    for m in (same, diff, coin):
        assert m["mcc"] == pytest.approx(0, abs=1e-12) and m["balanced_accuracy"] == pytest.approx(0.5)


def test_coin_is_the_exact_expectation_of_its_linear_metrics():
    # Enumerate every outcome of the coin on 2 same + 3 different pairs: accuracy, recall and specificity are linear
    # in the counts, so their expectations are those of the expected confusion.
    y = np.array([1, 1, 0, 0, 0], dtype=bool)
    p = y.mean()
    expect = {"accuracy": 0.0, "recall": 0.0, "specificity": 0.0}
    for pred in itertools.product([False, True], repeat=len(y)):
        pr = np.array(pred)
        prob = float(np.prod(np.where(pr, p, 1 - p)))
        c = Confusion.from_predictions(y.tolist(), pr.tolist())
        for m in expect:
            expect[m] += prob * getattr(c, m)
    coin = trivial_predictors(2, 3)["coin"].metrics()
    for m, v in expect.items():
        assert coin[m] == pytest.approx(v)


def test_mcc_by_hand_zero_margins_and_perfect():
    c = Confusion(tp=4, fp=1, tn=3, fn=2)
    assert c.mcc == pytest.approx((4 * 3 - 1 * 2) / math.sqrt(5 * 6 * 4 * 5))
    assert c.balanced_accuracy == pytest.approx((4 / 6 + 3 / 4) / 2)
    assert Confusion(5, 0, 7, 0).mcc == 1.0 and Confusion(0, 7, 0, 5).mcc == -1.0
    assert Confusion(5, 7, 0, 0).mcc == 0.0 and Confusion(0, 0, 7, 5).mcc == 0.0  # a zero margin
    vec = metrics_from_counts(np.array([4, 5]), np.array([1, 0]), np.array([3, 7]), np.array([2, 0]))
    assert vec["mcc"] == pytest.approx([c.mcc, 1.0])
    assert c.metrics()["mcc"] == c.mcc


def test_chance_fields_and_mcc_interval():
    f = chance_fields(4, 6)
    assert f["prevalence"] == 0.4 and f["always_same_f1"] == pytest.approx(8 / 14)
    assert f["always_different_precision"] is None  # undefined: nothing predicted same
    # MCC gets a pair-bootstrap interval like every confusion metric; a perfect predictor's is [1, 1].
    rng = np.random.default_rng(0)
    y = rng.random(60) < 0.5
    f1 = rng.integers(0, 50, 60)
    f2 = np.where(y, f1, f1 + 1)
    z = np.zeros(60)
    a = PairArrays(y, f1, f2, z, z, z, z, z * np.nan, z * np.nan)
    iv = bootstrap_intervals(a, 200, 0)
    assert iv["ps_eval.mcc"].value == 1.0 and iv["ps_eval.mcc"].low == 1.0
    assert iv["ps_eval.balanced_accuracy"].value == 1.0
