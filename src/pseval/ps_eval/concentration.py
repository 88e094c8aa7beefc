"""How concentrated the top features are: can one feature win PS-Eval's "same" predictions on its own?

Over the 2n contexts of n scored pairs (each pair's two top features), for a sample weighted by how often each pair
is drawn (all ones for the sample itself):

* top_feature_share: the share of contexts whose top feature is the most common one (ties: the lowest id);
* effective_top_features: exp of the entropy (natural log) of the top-feature distribution; 1 when one feature wins
  every context, the number of features when they win equally often;
* same_by_top_share: of the pairs predicted "same" (equal top features), the share whose feature is that most common
  one; NaN when nothing is predicted "same".

A cell is flagged `dominated` when top_feature_share exceeds DOMINANCE_THRESHOLD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One feature winning more than a quarter of all contexts, over pairs of many different words, cannot be tracking
# their senses: the cell's recall and F1 then say more about that feature than about the dictionary.
DOMINANCE_THRESHOLD = 0.25
TOP_FEATURES_LISTED = 5


@dataclass(frozen=True)
class TopFeature:
    """One of the most common top features."""

    feature: int
    contexts: int
    share: float
    same_predictions: int


def _weighted_counts(codes: np.ndarray, w: np.ndarray, m: int) -> np.ndarray:
    """[b, m] sums of each row of w [b, n] per code value (codes [n] in 0..m-1)."""
    b = w.shape[0]
    flat = (codes[None, :] + m * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, weights=w.ravel(), minlength=b * m).reshape(b, m)


def concentration_replicates(feature_1: np.ndarray, feature_2: np.ndarray,
                             w: np.ndarray) -> dict[str, np.ndarray]:
    """top_feature_share, effective_top_features and same_by_top_share for each row of pair weights w [b, n]."""
    f = np.concatenate([feature_1, feature_2])
    if f.size == 0:
        nan = np.full(w.shape[0], np.nan)
        return {"top_feature_share": nan, "effective_top_features": nan, "same_by_top_share": nan}
    ids, inv = np.unique(f, return_inverse=True)
    m, n = len(ids), len(feature_1)
    counts = _weighted_counts(inv[:n], w, m) + _weighted_counts(inv[n:], w, m)
    total = counts.sum(1)
    mode = counts.argmax(1)  # first maximum: the lowest feature id among ties
    rows = np.arange(w.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / total[:, None]
        entropy = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(1)
        same = feature_1 == feature_2
        same_counts = _weighted_counts(inv[:n][same], w[:, same], m)
        return {"top_feature_share": counts[rows, mode] / total, "effective_top_features": np.exp(entropy),
                "same_by_top_share": same_counts[rows, mode] / same_counts.sum(1)}


def most_common_features(feature_1: np.ndarray, feature_2: np.ndarray,
                         limit: int = TOP_FEATURES_LISTED) -> list[TopFeature]:
    """The `limit` most common top features over both contexts (ties: lower id first), with their "same" counts."""
    f = np.concatenate([feature_1, feature_2])
    if f.size == 0:
        return []
    ids, counts = np.unique(f, return_counts=True)
    order = np.lexsort((ids, -counts))[:limit]
    same = feature_1[feature_1 == feature_2]
    return [TopFeature(int(ids[i]), int(counts[i]), float(counts[i] / f.size), int((same == ids[i]).sum()))
            for i in order]


def context_concentration(features: np.ndarray) -> tuple[int | None, float, float]:
    """(most common feature, its share, effective number) over one list of contexts' top features; the same
    definitions as `concentration_replicates`, which works over the two contexts of weighted pairs."""
    f = np.asarray(features, dtype=np.int64)
    if f.size == 0:
        return None, float("nan"), float("nan")
    ids, counts = np.unique(f, return_counts=True)
    mode = int(np.argmax(counts))  # first maximum: the lowest id among ties
    p = counts / f.size
    return int(ids[mode]), float(p[mode]), float(np.exp(-(p * np.log(p)).sum()))
