"""ROC-AUC with ties and weights, against hand computations and the pairwise definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pseval.metrics.auc import roc_auc


def _pairwise(scores, labels, weights=None) -> float:
    """The definition, pair by pair: P(s_pos > s_neg) + 1/2 P(s_pos = s_neg), weighted."""
    w = np.ones(len(scores)) if weights is None else weights
    num = den = 0.0
    for i, j in itertools.product(range(len(scores)), repeat=2):
        if labels[i] and not labels[j]:
            num += w[i] * w[j] * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0)
            den += w[i] * w[j]
    return num / den


def test_hand_computed_values():
    # Positives 0.35, 0.8 vs negatives 0.1, 0.4: 0.35 beats 0.1 only, 0.8 beats both -> 3 of 4.
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))[0] == 0.75
    # Ties count half: positives 0.5, 0.5 vs negatives 0.5, 0.2 -> (0.5 + 1 + 0.5 + 1) / 4.
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.2]), np.array([1, 1, 0, 0]))[0] == 0.75
    # Everything tied is chance; perfect and reversed separations are 1 and 0.
    assert roc_auc(np.zeros(6), np.array([1, 0, 1, 0, 1, 0]))[0] == 0.5
    assert roc_auc(np.array([3.0, 2.0, 1.0, 0.0]), np.array([1, 1, 0, 0]))[0] == 1.0
    assert roc_auc(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0, 0, 1, 1]))[0] == 0.0
    # Jaccard-like scores, many ties: positives {0, 1/3, 1/3, 1}, negatives {0, 0, 1/3}.
    s = np.array([0, 1 / 3, 1 / 3, 1, 0, 0, 1 / 3])
    y = np.array([1, 1, 1, 1, 0, 0, 0], dtype=bool)
    # Per positive, wins + ties/2 over 3 negatives: 0 -> 1 (two ties), 1/3 -> 2.5 (twice), 1 -> 3; total 9 of 12.
    assert roc_auc(s, y)[0] == pytest.approx(9 / 12)


def test_one_class_missing_is_nan():
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))[0])
    assert np.isnan(roc_auc(np.zeros(0), np.zeros(0, dtype=bool))[0])


def test_matches_pairwise_definition_with_ties_and_weights():
    rng = np.random.default_rng(0)
    s = np.round(rng.random(40), 1)  # one decimal: many ties
    y = rng.random(40) < 0.5
    w = rng.integers(0, 4, size=(5, 40)).astype(float)
    got = roc_auc(s, y, w)
    for row, want in zip(w, got, strict=True):
        assert want == pytest.approx(_pairwise(s, y, row), abs=1e-12)
    assert roc_auc(s, y)[0] == pytest.approx(_pairwise(s, y), abs=1e-12)


def test_weight_two_equals_a_duplicate():
    s, y = np.array([0.3, 0.7, 0.5, 0.5]), np.array([1, 0, 1, 0], dtype=bool)
    dup = roc_auc(np.r_[s, s[2]], np.r_[y, y[2]])[0]
    assert roc_auc(s, y, np.array([[1, 1, 2, 1]]))[0] == dup
