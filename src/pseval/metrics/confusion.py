"""Confusion counts of same-sense prediction and the metrics derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True, slots=True)
class Confusion:
    """Positive class = same sense; predicted positive = same argmax feature in both contexts."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def total(self) -> int:
        """Number of scored pairs."""
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float:
        """(TP + TN) / all."""
        return self._metric("accuracy")

    @property
    def precision(self) -> float:
        """TP / (TP + FP); NaN when nothing is predicted positive."""
        return self._metric("precision")

    @property
    def recall(self) -> float:
        """TP / (TP + FN): share of same-sense pairs given the same feature."""
        return self._metric("recall")

    @property
    def specificity(self) -> float:
        """TN / (TN + FP): share of different-sense pairs given different features."""
        return self._metric("specificity")

    @property
    def f1(self) -> float:
        """2TP / (2TP + FP + FN)."""
        return self._metric("f1")

    def _metric(self, name: str) -> float:
        # The one formula of every metric (metrics_from_counts), for one confusion as for bootstrap replicates.
        return float(metrics_from_counts(self.tp, self.fp, self.tn, self.fn)[name])

    def metrics(self) -> dict[str, float | int]:
        """The nine PS-Eval numbers."""
        return {"accuracy": self.accuracy, "precision": self.precision, "recall": self.recall,
                "specificity": self.specificity, "f1": self.f1, "tp": self.tp, "fp": self.fp, "tn": self.tn,
                "fn": self.fn}

    @classmethod
    def from_predictions(cls, same_sense: list[bool], same_feature: list[bool]) -> Confusion:
        """Count from per-pair labels and predictions."""
        tp = fp = tn = fn = 0
        for y, p in zip(same_sense, same_feature, strict=True):
            if y and p:
                tp += 1
            elif y:
                fn += 1
            elif p:
                fp += 1
            else:
                tn += 1
        return cls(tp, fp, tn, fn)


def metrics_from_counts(tp: ArrayLike, fp: ArrayLike, tn: ArrayLike, fn: ArrayLike) -> dict[str, np.ndarray]:
    """Every PS-Eval metric from confusion counts (arrays of any shape; NaN where a denominator is 0)."""
    tp, fp, tn, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, tn, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"accuracy": (tp + tn) / (tp + tn + fp + fn), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
                "specificity": tn / (tn + fp), "f1": 2 * tp / (2 * tp + fp + fn)}
