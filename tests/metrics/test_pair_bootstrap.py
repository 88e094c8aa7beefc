"""The pair bootstrap behind the claim tests: stratified resamples, cell metrics, centred p-values and max-T."""

from __future__ import annotations

import numpy as np
import pytest

from pseval.metrics.confusion import metrics_from_counts
from pseval.metrics.pair_bootstrap import (
    bootstrap_cell_metrics,
    centred_p,
    stratified_pair_counts,
    studentised_max_t,
)


def test_resamples_keep_each_labels_number_of_pairs_and_are_seeded():
    same = np.r_[np.ones(7, bool), np.zeros(11, bool)]
    w = stratified_pair_counts(same, 50, seed=3)
    assert (w[:, same].sum(1) == 7).all() and (w[:, ~same].sum(1) == 11).all()
    assert np.array_equal(w, stratified_pair_counts(same, 50, seed=3))
    assert not np.array_equal(w, stratified_pair_counts(same, 50, seed=4))
    assert len({tuple(r) for r in w}) > 40  # resamples differ from one another


def test_cell_metrics_on_the_data_and_on_a_resample_by_hand():
    rng = np.random.default_rng(0)
    same = np.r_[np.ones(30, bool), np.zeros(40, bool)]
    y = rng.random((3, 70)) < 0.5
    got = bootstrap_cell_metrics(y, same, ("specificity", "f1"), 20, seed=1)
    for m in ("specificity", "f1"):
        want = metrics_from_counts((y & same).sum(1), (y & ~same).sum(1), (~y & ~same).sum(1), (~y & same).sum(1))[m]
        np.testing.assert_allclose(got[m].observed, want)
    w = stratified_pair_counts(same, 20, seed=1)[5]  # resample 5, cell 2, counted by hand
    tp, fp = int((w * (y[2] & same)).sum()), int((w * (y[2] & ~same)).sum())
    assert got["specificity"].draws[5, 2] == pytest.approx(1 - fp / 40)
    assert got["f1"].draws[5, 2] == pytest.approx(2 * tp / (2 * tp + fp + 30 - tp))


def test_centred_p_and_max_t():
    rng = np.random.default_rng(2)
    draws = 0.3 + 0.05 * rng.standard_normal(999)  # an estimate of 0.3 with standard error 0.05: six SEs from 0
    assert centred_p(0.3, draws) == pytest.approx(1 / 1000)
    assert centred_p(0.0, draws - 0.3) > 0.4  # at the null the p is about a half
    obs = np.array([0.3, 0.0])
    both = np.stack([draws, 0.05 * rng.standard_normal(999)], axis=1)
    t, p, adjusted = studentised_max_t(obs, both)
    assert t == pytest.approx(6, rel=0.1) and p == pytest.approx(1 / 1000) and adjusted[1] > 0.4
    # A comparison that never varies carries no evidence; a shifted null moves t.
    t0, _, _ = studentised_max_t(np.array([0.2]), np.full((99, 1), 0.2))
    assert t0 == 0.0
    assert studentised_max_t(obs, both, 0.3)[0] == pytest.approx(0.0, abs=0.2)
