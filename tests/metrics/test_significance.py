"""Paired permutation draws, Monte-Carlo p-values, Holm and max-T, and paired bootstrap contrasts."""

from __future__ import annotations

import numpy as np
import pytest

from pseval.metrics.significance import holm, max_t, permutation_p, permute_within_blocks, shuffled_counts
from pseval.metrics.statistics import bootstrap_contrasts, difference


def test_shuffled_counts_have_the_distribution_of_an_explicit_shuffle():
    rng = np.random.default_rng(0)
    k, n, draws = 4, 300, 4000
    y = rng.random((n, k)) < rng.random((n, 1))  # pairs differ in how many cells have a 1
    fast = shuffled_counts([y.sum(1)], k, draws, np.random.default_rng(1))[0]
    slow = rng.permuted(np.broadcast_to(y, (draws, n, k)), axis=2).sum(1)
    assert (fast.sum(1) == y.sum()).all()  # each draw only moves ones between cells
    # Exact moments of a per-pair shuffle: mean sum(s)/k; variance sum s(k-s)/k^2; covariance -variance/(k-1).
    s = y.sum(1)
    var = (s * (k - s)).sum() / k**2
    assert fast.mean(0) == pytest.approx(np.full(k, s.sum() / k), abs=4 * np.sqrt(var / draws))
    exact_cov = np.where(np.eye(k, dtype=bool), var, -var / (k - 1))
    assert np.cov(fast.T) == pytest.approx(exact_cov, abs=0.1 * var)
    assert np.cov(slow.T) == pytest.approx(exact_cov, abs=0.1 * var)  # the reference itself meets the same bound
    # And the whole distribution of one cell's count: two-sample Kolmogorov-Smirnov distance.
    grid = np.arange(fast.min(), fast.max() + 1)
    cdf = [np.searchsorted(np.sort(x[:, 0]), grid, side="right") / draws for x in (fast, slow)]
    assert np.abs(cdf[0] - cdf[1]).max() < 0.05

def test_permute_within_blocks_keeps_cells_outside_blocks_and_labels_apart():
    rng = np.random.default_rng(2)
    same = np.r_[np.ones(50, bool), np.zeros(70, bool)]
    y = rng.random((4, 120)) < 0.5
    pc = permute_within_blocks(y, same, [[0, 1, 2]], n_perm=300, seed=0)
    assert (pc.same_draws[:, 3] == (y[3] & same).sum()).all() and (pc.diff_draws[:, 3] == (y[3] & ~same).sum()).all()
    assert (pc.same_draws[:, :3].sum(1) == (y[:3] & same).sum()).all()
    assert (pc.diff_draws[:, :3].sum(1) == (y[:3] & ~same).sum()).all()
    spec, spec_draws = pc.metric("specificity")
    assert spec == pytest.approx(1 - (y & ~same).sum(1) / 70)
    assert spec_draws.shape == (300, 4)
    with pytest.raises(ValueError, match="must not share"):
        permute_within_blocks(y, same, [[0, 1], [1, 2]], 10, 0)
    with pytest.raises(ValueError, match="one row per cell"):
        permute_within_blocks(y[:, :10], same, [[0, 1]], 10, 0)


def test_identical_cells_give_no_spread_and_a_p_of_one():
    rng = np.random.default_rng(3)
    same = rng.random(200) < 0.5
    row = rng.random(200) < 0.5
    pc = permute_within_blocks(np.stack([row, row, row]), same, [[0, 1, 2]], n_perm=99, seed=0)
    spec, draws = pc.metric("specificity")
    assert np.ptp(draws, axis=1).max() == 0
    assert float(permutation_p(np.ptp(spec), np.ptp(draws, axis=1))) == 1.0


def test_permutation_p_counts_ties_and_adds_one():
    assert float(permutation_p(2.0, np.array([0.0, 1.0, 2.0, 3.0]))) == pytest.approx(3 / 5)
    assert float(permutation_p(9.0, np.zeros(99))) == pytest.approx(1 / 100)
    both = permutation_p(np.array([0.5, 5.0]), np.array([[1.0, 1.0], [0.0, 6.0]]))
    assert both == pytest.approx([2 / 3, 2 / 3])


def test_holm_matches_the_step_down_rule():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]).size == 0


def test_max_t_adjusts_for_the_number_of_comparisons():
    rng = np.random.default_rng(4)
    draws = rng.standard_normal((999, 10))
    obs = np.r_[4.0, np.zeros(9)]
    t, p, adjusted = max_t(obs, draws)
    assert t == pytest.approx(4.0, rel=0.1) and p < 0.01 and adjusted[0] == p
    single = float(permutation_p(1.8, draws[:, 1]))  # ~0.04 alone, far from it among ten
    _, p2, adj2 = max_t(np.r_[1.8, np.zeros(9)], draws)
    assert single < 0.06 < p2 and adj2[0] == p2 and (adj2 >= single).all()


def test_bootstrap_contrasts_agree_with_the_paired_difference():
    rng = np.random.default_rng(5)
    y = rng.random(500) < 0.5
    a, b, c = (rng.random(500) < q for q in (0.3, 0.5, 0.4))
    w = np.array([[1.0, -1.0, 0.0], [0.5, 0.5, -1.0]])
    first, mean_vs = bootstrap_contrasts([(y, a), (y, b), (y, c)], w, "f1", n_boot=400, seed=7)
    ref = difference((y, a), (y, b), "f1", n_boot=400, seed=7)  # same resamples: the same interval
    assert (first.value, first.low, first.high) == pytest.approx((ref.value, ref.low, ref.high))
    f1 = [2 * (y & p).sum() / (2 * (y & p).sum() + (~y & p).sum() + (y & ~p).sum()) for p in (a, b, c)]
    assert mean_vs.value == pytest.approx((f1[0] + f1[1]) / 2 - f1[2])
    with pytest.raises(ValueError, match="same pairs"):
        bootstrap_contrasts([(y, a), (~y, b)], np.array([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="columns"):
        bootstrap_contrasts([(y, a), (y, b)], np.array([[1.0, -1.0, 0.0]]))
