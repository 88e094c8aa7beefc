"""Pair-bootstrap tests of PS-Eval contrasts between SAEs scored on the same pairs, valid under the weak null.

A claim about SAEs is a claim about their marginal rates (specificity, F1). A permutation test that exchanges SAEs'
outcomes pair by pair also assumes that every SAE depends on per-pair difficulty in the same way (full
exchangeability); when SAEs have equal rates but different dependence (one follows a shared difficulty, another does
not) it rejects far too often. The pair bootstrap needs no such assumption: each resample draws pairs with
replacement (within each label, so every resample keeps the design's numbers of same- and different-sense pairs) and
keeps every cell's outcomes of a drawn pair together, so the joint dependence of the cells is whatever the data show.

Tests are centred: the distribution of an estimate around its true value is approximated by the resamples around the
estimate (`draws - observed`), so a p-value asks how often that spread reaches the observed distance from the null.
Several comparisons are combined with a studentised max-T (each difference divided by its bootstrap standard error,
the maximum referred to the resamples' maximum), which controls the family-wise error whatever the correlation
between the comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pseval.metrics.confusion import metrics_from_counts


def stratified_pair_counts(same_sense: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n_pairs] how often each pair is drawn: same-sense pairs resampled among themselves, different-sense
    pairs among themselves (each label keeps its number of pairs)."""
    s = np.asarray(same_sense, dtype=bool)
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, len(s)), dtype=np.int64)
    for mask in (s, ~s):
        n = int(mask.sum())
        if n:  # n draws with replacement per resample, counted per pair (one bincount over all resamples)
            idx = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
            out[:, mask] = np.bincount(idx.ravel(), minlength=n * n_boot).reshape(n_boot, n)
    return out


@dataclass(frozen=True)
class BootstrappedMetric:
    """One metric of every cell: on the data and on each pair resample."""

    observed: np.ndarray  # [n_cells]
    draws: np.ndarray  # [n_boot, n_cells]


def bootstrap_cell_metrics(same_feature: np.ndarray, same_sense: np.ndarray, metrics: Sequence[str], n_boot: int,
                           seed: int) -> dict[str, BootstrappedMetric]:
    """Each named metric of each cell (rows of same_feature [n_cells, n_pairs]) under the same pair resamples."""
    # Integer products: exact counts, and no BLAS threads (which cost more than they save on matrices this small).
    y = np.asarray(same_feature, dtype=np.int64)
    s = np.asarray(same_sense, dtype=bool)
    if y.ndim != 2 or y.shape[1] != len(s):
        raise ValueError(f"same_feature has shape {y.shape}; expected [n_cells, {len(s)}] (one row per cell)")
    drawn = np.vstack([np.ones((1, len(s)), dtype=np.int64), stratified_pair_counts(s, n_boot, seed)])
    tp, fp = drawn[:, s] @ y[:, s].T, drawn[:, ~s] @ y[:, ~s].T  # [1 + n_boot, n_cells]
    n_same, n_diff = int(s.sum()), int((~s).sum())
    values = metrics_from_counts(tp, fp, n_diff - fp, n_same - tp)
    return {m: BootstrappedMetric(values[m][0], values[m][1:]) for m in metrics}


def centred_p(observed: float, draws: np.ndarray) -> float:
    """One-sided p of 'the estimand is above 0': (1 + #{draws - observed >= observed}) / (1 + n_boot)."""
    d = np.asarray(draws, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not np.isfinite(observed) or not len(d):
        return 1.0
    return float((1 + ((d - observed) >= observed - 1e-12 * max(1.0, abs(observed))).sum()) / (1 + len(d)))


def centred_null_p(observed: float, null_draws: np.ndarray) -> float:
    """p of a statistic against draws of its centred null version: (1 + #{null_draws >= observed}) / (1 + n)."""
    d = np.asarray(null_draws, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not np.isfinite(observed) or not len(d):
        return 1.0
    return float((1 + (d >= observed - 1e-12 * max(1.0, abs(observed))).sum()) / (1 + len(d)))


def studentised_max_t(observed: np.ndarray, draws: np.ndarray, null_value: float | np.ndarray = 0.0
                      ) -> tuple[float, float, np.ndarray]:
    """One-sided max-T of 'some estimand is above null_value': (max t, its p, each comparison's adjusted p).

    t_k = (observed_k - null_value_k) / se_k with se_k the resamples' standard deviation; the null distribution of
    the maximum is that of max_k (draws_k - observed_k) / se_k. A comparison that never varies carries no evidence
    (t = 0).
    """
    obs = np.asarray(observed, dtype=np.float64)
    dr = np.asarray(draws, dtype=np.float64)
    if not len(obs):
        return 0.0, 1.0, np.zeros(0)
    se = np.nanstd(dr, axis=0)
    ok = (se > 1e-12 * np.maximum(1.0, np.abs(obs))) & np.isfinite(obs)  # float noise of a constant is no spread
    t = np.where(ok, (obs - null_value) / np.where(ok, se, 1.0), 0.0)
    null = np.where(ok, (dr - obs) / np.where(ok, se, 1.0), 0.0)
    null_max = np.nan_to_num(null, nan=-np.inf).max(1)
    adjusted = np.array([centred_null_p(float(ti), null_max) for ti in t])
    t_max = float(t.max())
    return t_max, centred_null_p(t_max, null_max), adjusted
