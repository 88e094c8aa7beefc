"""Bootstrap confidence intervals for PS-Eval metrics (pairs resampled, seeded), breakdowns and differences."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pseval.metrics.confusion import Confusion, metrics_from_counts

METRICS = ("accuracy", "precision", "recall", "specificity", "f1")


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    value: float
    low: float
    high: float
    level: float = 0.95

    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of 0."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, float]:
        """Plain dict."""
        return asdict(self)


def bits(s: str) -> np.ndarray:
    """'0101' -> boolean array."""
    return np.frombuffer(s.encode(), dtype=np.uint8) == ord("1")


def bit_string(a: np.ndarray) -> str:
    """Boolean array -> '0101' (the inverse of `bits`)."""
    return np.where(np.asarray(a, dtype=bool), ord("1"), ord("0")).astype(np.uint8).tobytes().decode()


def _interval(point: float, reps: np.ndarray, level: float) -> Interval:
    reps = reps[np.isfinite(reps)]
    if reps.size == 0 or not np.isfinite(point):
        return Interval(float(point), float("nan"), float("nan"), level)
    a = (1 - level) / 2
    return Interval(float(point), float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a)), level)


def _all_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """[1 + n_boot, n] pair weights: row 0 the sample itself (ones), then every resample's draw counts."""
    return np.vstack([np.ones((1, n)), *resample_weights(n, n_boot, seed)])


def bootstrap_metrics(same_sense: np.ndarray, same_feature: np.ndarray, n_boot: int = 1000, seed: int = 0,
                      level: float = 0.95) -> dict[str, Interval]:
    """CI of every PS-Eval metric for one cell."""
    values = weighted_metrics(same_sense, same_feature, _all_weights(len(same_sense), n_boot, seed))
    return {m: _interval(float(values[m][0]), values[m][1:], level) for m in METRICS}


def bootstrap_statistic(cells: Sequence[tuple[np.ndarray, np.ndarray]],
                        statistic: Callable[[list[dict[str, np.ndarray]]], np.ndarray], n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95) -> Interval:
    """CI of any function of several cells' metrics scored on the same pairs (paired resampling)."""
    n = len(cells[0][0])
    for y, p in cells:
        if len(y) != n or len(p) != n:
            raise ValueError("paired bootstrap needs cells scored on the same pairs")
    values = np.asarray(statistic([weighted_metrics(y, p, _all_weights(n, n_boot, seed)) for y, p in cells]))
    return _interval(float(values[0]), values[1:], level)


def difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], metric: str = "specificity",
               n_boot: int = 1000, seed: int = 0) -> Interval:
    """metric(A) - metric(B) on the same pairs, with a paired bootstrap CI: 'A beats B' when low > 0."""
    return bootstrap_statistic([a, b], lambda ms: ms[0][metric] - ms[1][metric], n_boot, seed)


def bootstrap_contrasts(cells: Sequence[tuple[np.ndarray, np.ndarray]], weights: np.ndarray,
                        metric: str = "specificity", n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95) -> list[Interval]:
    """CIs of linear contrasts (rows of weights [n_contrasts, n_cells]) of one metric over cells on the same pairs.

    All cells are resampled with the same pair indices (paired), so a contrast's interval reflects the correlation
    between cells; `weights @ metrics` is e.g. one cell minus another, or a mean of some cells minus a mean of others.
    """
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.shape[1] != len(cells):
        raise ValueError(f"weights have {w.shape[1]} columns for {len(cells)} cells")
    y = np.asarray(cells[0][0], dtype=bool)
    for yy, p in cells:
        if len(yy) != len(y) or len(p) != len(y) or not np.array_equal(yy, y):
            raise ValueError("paired bootstrap needs cells scored on the same pairs")
    # How often each pair is drawn in each resample: the cells' counts are then one matrix product per label.
    # Integer products: exact counts, and no BLAS threads (which cost more than they save on matrices this small).
    drawn = _all_weights(len(y), n_boot, seed).astype(np.int64)
    pred = np.stack([np.asarray(p, dtype=np.int64) for _, p in cells])
    tp, fp = drawn[:, y] @ pred[:, y].T, drawn[:, ~y] @ pred[:, ~y].T
    n_same, n_diff = drawn[:, y].sum(1, keepdims=True), drawn[:, ~y].sum(1, keepdims=True)
    values = metrics_from_counts(tp, fp, n_diff - fp, n_same - tp)[metric]
    point, reps = values[0], values[1:]
    est = np.array([point[row != 0] @ row[row != 0] for row in w])  # a NaN in another cell must not spoil it
    boot = np.stack([reps[:, row != 0] @ row[row != 0] for row in w], axis=1)
    if not np.isfinite(boot).all() or not np.isfinite(est).all():
        return [_interval(float(est[j]), boot[:, j], level) for j in range(len(w))]
    a = (1 - level) / 2
    low, high = np.quantile(boot, [a, 1 - a], axis=0)  # one call for every contrast: the same as _interval's
    return [Interval(float(e), float(lo), float(hi), level) for e, lo, hi in zip(est, low, high, strict=True)]


def breakdown(same_sense: np.ndarray, same_feature: np.ndarray, groups: Sequence[str],
              min_pairs: int = 1) -> dict[str, dict[str, float | int]]:
    """Metrics per group (target word or POS), with the group's pair count."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = {}
    for g, idx in sorted(members.items()):
        if len(idx) < min_pairs:
            continue
        c = Confusion.from_predictions(same_sense[idx].tolist(), same_feature[idx].tolist())
        out[g] = {"pairs": len(idx), **{m: getattr(c, m) for m in METRICS}}
    return out


def percentile_interval(point: float, replicates: np.ndarray, level: float = 0.95) -> Interval:
    """The percentile interval of bootstrap replicates (non-finite replicates left out) around a point value."""
    return _interval(point, np.asarray(replicates, dtype=np.float64), level)


def resample_weights(n: int, n_boot: int, seed: int, max_elements: int = 2**21) -> Iterator[np.ndarray]:
    """How often each of n pairs is drawn in each of n_boot resamples, as float64 blocks [b, n] of consecutive
    resamples (b * n <= max_elements); resample i is row i of `default_rng(seed).integers(0, n, size=(n_boot, n))`."""
    rng = np.random.default_rng(seed)
    step = max(1, max_elements // max(1, n))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        flat = (idx + n * np.arange(b)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def weighted_metrics(same_sense: np.ndarray, same_feature: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Every PS-Eval metric for each row of pair weights w [b, n] (bootstrap draw counts, or ones for the sample)."""
    y = np.asarray(same_sense, dtype=bool)
    p = np.asarray(same_feature, dtype=bool)
    tp, fn, fp, tn = (w @ (a & b).astype(np.float64) for a, b in ((y, p), (y, ~p), (~y, p), (~y, ~p)))
    return metrics_from_counts(tp, fp, tn, fn)
