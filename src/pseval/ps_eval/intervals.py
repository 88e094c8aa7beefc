"""Every pair-level PS-Eval statistic, its seeded pair-bootstrap interval, and paired differences between SAEs.

All statistics are functions of per-pair arrays (`PairArrays`) and of how often each pair is drawn, so one set of
resamples serves every statistic of a cell, and the same resamples serve several cells scored on the same pairs:
a difference's interval is then paired (it reflects how the two cells move together). The per-pair arrays are
exactly what the record's per-pair outcomes hold, so intervals recomputed from a saved record equal the stored ones.

Statistic names are `category.field`, the record's metric category and field (e.g. `ps_eval.f1`,
`threshold_free.auc_cosine`, `ceiling.share_cosine`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pseval.metrics.auc import roc_auc
from pseval.metrics.statistics import Interval, percentile_interval, resample_weights, weighted_metrics
from pseval.ps_eval.concentration import concentration_replicates

LEVEL = 0.95
# Statistics the pair bootstrap cannot bound: a resample holds about 63% of the distinct pairs, so the diversity of
# the top features (exp of their entropy) is biased low in every resample, and on WiC dev the TopK SAE's value (267)
# lay above all 1000 replicates. They get a value and no interval (NaN bounds).
NO_INTERVAL = frozenset({"concentration.effective_top_features"})
CONFUSION_CATEGORIES = ("ps_eval", "ps_eval_at_k", "ps_eval_robust")
COSINE_FIELDS = ("enc_cos_same", "enc_cos_different", "dec_cos_same", "dec_cos_different")


@dataclass
class PairArrays:
    """Per-pair values of one scored cell, in pair order (as in the record's per-pair outcomes)."""

    same_sense: np.ndarray  # bool
    feature_1: np.ndarray  # int: argmax latent per context
    feature_2: np.ndarray
    cosine: np.ndarray  # float: cosine of the two codes
    jaccard: np.ndarray  # float: Jaccard of the two top-k active sets
    raw_cosine: np.ndarray  # float: the same on the raw activations (the ceiling)
    raw_jaccard: np.ndarray
    enc_cos: np.ndarray  # float, NaN when unknown: cosine of the two top features' W_enc columns
    dec_cos: np.ndarray
    robust_1: np.ndarray | None = None  # int: argmax over non-dense latents (when --exclude-dense was given)
    robust_2: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.same_sense)

    @classmethod
    def from_details(cls, details: Sequence) -> PairArrays:
        """From a record's per-pair outcomes (PairOutcome objects)."""
        def col(name: str, dtype: type) -> np.ndarray:
            return np.array([np.nan if getattr(d, name) is None else getattr(d, name) for d in details], dtype=dtype)

        robust = bool(details) and all(d.feature_1_robust is not None for d in details)
        return cls(same_sense=np.array([d.same_sense for d in details], dtype=bool),
                   feature_1=np.array([d.feature_1 for d in details], dtype=np.int64),
                   feature_2=np.array([d.feature_2 for d in details], dtype=np.int64),
                   cosine=col("code_cosine", float), jaccard=col("code_jaccard", float),
                   raw_cosine=col("raw_cosine", float), raw_jaccard=col("raw_jaccard", float),
                   enc_cos=col("enc_cos", float), dec_cos=col("dec_cos", float),
                   robust_1=np.array([d.feature_1_robust for d in details], dtype=np.int64) if robust else None,
                   robust_2=np.array([d.feature_2_robust for d in details], dtype=np.int64) if robust else None)


def _share(auc: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """(AUC - 0.5) / (ceiling - 0.5): the part of the ceiling's margin over chance the SAE keeps; NaN at or below
    a chance-level ceiling."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ceiling > 0.5, (auc - 0.5) / (ceiling - 0.5), np.nan)


def _label_mean(values: np.ndarray, mask: np.ndarray, w: np.ndarray) -> np.ndarray:
    ok = mask & np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w[:, ok] @ values[ok]) / w[:, ok].sum(1)


def pair_statistics(a: PairArrays, w: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every statistic for each row of pair weights w [b, n] (None: the sample itself, b = 1)."""
    w = np.ones((1, len(a))) if w is None else w
    y = a.same_sense
    out: dict[str, np.ndarray] = {}
    predictions = {"ps_eval": a.feature_1 == a.feature_2, "ps_eval_at_k": a.jaccard > 0}
    if a.robust_1 is not None and a.robust_2 is not None:
        predictions["ps_eval_robust"] = a.robust_1 == a.robust_2
    for cat, pred in predictions.items():
        out.update({f"{cat}.{m}": v for m, v in weighted_metrics(y, pred, w).items()})
    for name, scores in (("cosine", a.cosine), ("jaccard", a.jaccard)):
        out[f"threshold_free.auc_{name}"] = roc_auc(scores, y, w)
    for name, scores in (("cosine", a.raw_cosine), ("jaccard", a.raw_jaccard)):
        out[f"ceiling.auc_{name}"] = ceiling = roc_auc(scores, y, w)
        out[f"ceiling.share_{name}"] = _share(out[f"threshold_free.auc_{name}"], ceiling)
    out.update({f"concentration.{k}": v for k, v in concentration_replicates(a.feature_1, a.feature_2, w).items()})
    for field in COSINE_FIELDS:
        values = a.enc_cos if field.startswith("enc") else a.dec_cos
        out[f"feature_cosine.{field}"] = _label_mean(values, y if field.endswith("same") else ~y, w)
    return out


def bootstrap_intervals(a: PairArrays, n_boot: int = 1000, seed: int = 0, level: float = LEVEL
                        ) -> dict[str, Interval]:
    """The percentile interval of every statistic, pairs resampled n_boot times with `seed`."""
    return paired_intervals([a], [], n_boot, seed, level)[0][0]


def paired_intervals(cells: Sequence[PairArrays], contrasts: Sequence[tuple[int, int]], n_boot: int = 1000,
                     seed: int = 0, level: float = LEVEL
                     ) -> tuple[list[dict[str, Interval]], list[dict[str, Interval]]]:
    """Intervals of every cell's statistics and, for each (i, j) in `contrasts`, of cell i minus cell j, all from
    the same resamples of the pairs (the cells must share their pairs and labels)."""
    if not cells:
        return [], []
    n = len(cells[0])
    for c in cells:
        if len(c) != n or not np.array_equal(c.same_sense, cells[0].same_sense):
            raise ValueError("paired intervals need cells scored on the same pairs")
    points = [pair_statistics(c) for c in cells]
    reps: list[dict[str, list[np.ndarray]]] = [{} for _ in cells]
    if n:
        for w in resample_weights(n, n_boot, seed):
            for c, r in zip(cells, reps, strict=True):
                for k, v in pair_statistics(c, w).items():
                    r.setdefault(k, []).append(v)
    stacked = [{k: np.concatenate(v) for k, v in r.items()} for r in reps]

    def intervals(point: dict[str, np.ndarray], rep: dict[str, np.ndarray]) -> dict[str, Interval]:
        return {k: percentile_interval(float(point[k][0]), np.zeros(0) if k in NO_INTERVAL else rep.get(k, np.zeros(0)),
                                       level) for k in point}

    per_cell = [intervals(p, r) for p, r in zip(points, stacked, strict=True)]
    diffs = []
    for i, j in contrasts:
        common = [k for k in points[i] if k in points[j]]
        diffs.append(intervals({k: points[i][k] - points[j][k] for k in common},
                               {k: stacked[i][k] - stacked[j][k] for k in common if k in stacked[i]}))
    return per_cell, diffs
