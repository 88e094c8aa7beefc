"""ROC-AUC of a score separating positives from negatives, with ties counted half, for weighted samples.

AUC = sum over positive i, negative j of w_i w_j (1[s_i > s_j] + 1/2 1[s_i = s_j]) / (sum_pos w)(sum_neg w): the
Mann-Whitney U statistic, normalised. With unit weights it is the usual ROC-AUC (the area under the ROC curve with
ties drawn as diagonal segments); with bootstrap draw counts as weights it is the AUC of the resample.
"""

from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """AUC for each row of weights [b, n] (unit weights when None: one value); NaN where a class weighs nothing."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    w = np.ones((1, len(s))) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if len(s) == 0:
        return np.full(w.shape[0], np.nan)
    if np.isnan(s).any():
        raise ValueError("roc_auc: NaN scores")
    order = np.argsort(s, kind="stable")
    ordered = s[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first index of each run of equal scores
    wo, yo = w[:, order], y[order]
    pos = np.add.reduceat(wo * yo, starts, axis=1)
    neg = np.add.reduceat(wo * ~yo, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negative weight strictly below each score
    u = (pos * (below + 0.5 * neg)).sum(1)
    denom = pos.sum(1) * neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, u / denom, np.nan)
