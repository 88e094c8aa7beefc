"""Paired permutation tests of PS-Eval metrics across SAEs scored on the same pairs, and multiplicity adjustments.

The null hypothesis of a test is that, within each block of compared cells (SAEs scored on the same pairs), the
cells are exchangeable pair by pair: for every pair, which cell produced which 'same top feature' outcome carries no
information. A draw shuffles each pair's outcomes among the cells of its block, independently per pair and per
block, so the correlation between SAEs (pairs that every SAE finds easy or hard) is kept, and any statistic of the
cells' metrics gets an exact Monte-Carlo p-value, (1 + #{draws >= observed}) / (1 + draws), valid at any number of
draws. Because only the outcomes of the cells being compared are exchanged, the test makes no assumption about the
pairs being independent of one another (pairs sharing a target word, say).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pseval.metrics.confusion import metrics_from_counts


@dataclass(frozen=True)
class PermutedCounts:
    """Each cell's count of 'same top feature' among same-sense and among different-sense pairs: observed and drawn."""

    same: np.ndarray  # [n_cells] observed TP
    diff: np.ndarray  # [n_cells] observed FP
    same_draws: np.ndarray  # [n_perm, n_cells]
    diff_draws: np.ndarray  # [n_perm, n_cells]
    n_same: int
    n_diff: int

    def metric(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(observed [n_cells], draws [n_perm, n_cells]) of one PS-Eval metric."""

        def of(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
            return metrics_from_counts(tp, fp, self.n_diff - fp, self.n_same - tp)[name]

        return of(self.same, self.diff), of(self.same_draws, self.diff_draws)


def shuffled_counts(ones: Sequence[np.ndarray], k: int, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """[len(ones), n_perm, k] counts of ones each of k cells receives when each pair's outcomes are shuffled.

    ones: one array per independent set of pairs (a block and label), each giving how many of the k cells have a 1
    at each pair. Drawn slot by slot instead of shuffling pair by pair: a pair with r ones left for k - j remaining
    cells gives cell j a one with probability r / (k - j), pairs independently, so the number of pairs in state r
    that do is Binomial(count in state r, r / (k - j)). This is exactly the distribution of an explicit shuffle, at
    a cost of k * (k + 1) binomial draws per permutation and set, whatever the number of pairs.
    """
    state = np.zeros((len(ones), n_perm, k + 1), dtype=np.int64)
    for i, o in enumerate(ones):
        state[i] = np.bincount(np.asarray(o, dtype=np.int64), minlength=k + 1)[: k + 1]
    r = np.arange(k + 1)
    out = np.empty((len(ones), n_perm, k), dtype=np.int64)
    for j in range(k):
        p = np.broadcast_to(np.minimum(r / (k - j), 1.0), state.shape)  # states with r > k - j are empty
        got = np.where(p >= 1.0, state, 0)
        random = (state > 0) & (p > 0) & (p < 1)  # only these need a draw
        got[random] = rng.binomial(state[random], p[random])
        out[:, :, j] = got.sum(2)
        state -= got
        state[:, :, :-1] += got[:, :, 1:]
    return out


def permute_within_blocks(same_feature: np.ndarray, same_sense: np.ndarray, blocks: Sequence[Sequence[int]],
                          n_perm: int, seed: int) -> PermutedCounts:
    """Counts under n_perm draws, each pair's outcomes shuffled among the cells (rows of same_feature) of each block.

    same_feature: [n_cells, n_pairs] bool; same_sense: [n_pairs] bool; blocks: disjoint lists of row indices. Cells in
    no block keep their outcomes. Every metric is a function of the counts, so the shuffled outcomes are never built.
    """
    y = np.asarray(same_feature, dtype=bool)
    s = np.asarray(same_sense, dtype=bool)
    if y.ndim != 2 or y.shape[1] != s.shape[0]:
        raise ValueError(f"same_feature has shape {y.shape}; expected [n_cells, {s.shape[0]}] (one row per cell)")
    seen = [i for b in blocks for i in b]
    if len(seen) != len(set(seen)):
        raise ValueError("permutation blocks must not share cells")
    if any(not 0 <= i < len(y) for i in seen):
        raise ValueError(f"permutation blocks name cells outside 0..{len(y) - 1}")
    same, diff = (y & s).sum(1), (y & ~s).sum(1)
    same_draws = np.broadcast_to(same, (n_perm, len(y))).copy()
    diff_draws = np.broadcast_to(diff, (n_perm, len(y))).copy()
    rng = np.random.default_rng(seed)
    by_size: dict[int, list[list[int]]] = {}
    for block in blocks:
        if len(block) >= 2:
            by_size.setdefault(len(block), []).append(list(block))
    for k, bs in sorted(by_size.items()):  # blocks of one size are drawn together
        ones = [y[b].sum(0) for b in bs]
        drawn = shuffled_counts([o[label] for o in ones for label in (s, ~s)], k, n_perm, rng)
        for i, b in enumerate(bs):
            same_draws[:, b], diff_draws[:, b] = drawn[2 * i], drawn[2 * i + 1]
    return PermutedCounts(same, diff, same_draws, diff_draws, int(s.sum()), int((~s).sum()))


def permutation_p(observed: float | np.ndarray, draws: np.ndarray) -> np.ndarray:
    """One-sided Monte-Carlo p-value(s) of 'observed is large': (1 + #{draws >= observed}) / (1 + n_draws).

    draws: [n_perm] or [n_perm, m] for m statistics at once. A tolerance absorbs float noise, so ties count as
    at least as extreme.
    """
    obs = np.asarray(observed, dtype=np.float64)
    dr = np.asarray(draws, dtype=np.float64)
    tol = 1e-12 * np.maximum(1.0, np.abs(obs))
    return (1 + (dr >= obs - tol).sum(0)) / (1 + dr.shape[0])


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def max_t(observed: np.ndarray, draws: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Single-step max-T over m one-sided comparisons: (max t, its p-value, each comparison's adjusted p).

    Each statistic is studentised by its spread over the draws (so metrics of different variance weigh alike), and
    the maximum over comparisons is referred to the maximum in each draw, which controls the family-wise error at
    the test's level whatever the correlation between comparisons (Westfall & Young 1993).
    """
    obs = np.asarray(observed, dtype=np.float64)
    dr = np.asarray(draws, dtype=np.float64)
    sd = np.vstack([obs[None], dr]).std(0)  # the observed one included, so every member of the set is treated alike
    ok = sd > 0  # a comparison whose cells agree on every pair cannot move: it carries no evidence
    t = np.where(ok, obs / np.where(ok, sd, 1.0), 0.0)
    t_draws = np.where(ok, dr / np.where(ok, sd, 1.0), 0.0)
    max_draws = t_draws.max(1)
    adjusted = np.array([float(permutation_p(ti, max_draws)) for ti in t])
    t_max = float(t.max()) if len(t) else 0.0
    return t_max, float(permutation_p(t_max, max_draws)), adjusted
