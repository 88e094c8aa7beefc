"""Confusion counts of same-sense prediction and the metrics derived from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def mcc_from_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Matthews correlation (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) of confusion counts (arrays of any
    shape, expected counts allowed); 0 where a margin is 0, so every constant predictor scores 0 (chance), 1 is a
    perfect predictor and -1 a perfectly inverted one."""
    tp, fp, tn, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, tn, fn))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)


def balanced_accuracy_from_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """(recall + specificity) / 2: 0.5 for every predictor that ignores the pair; NaN when a class is empty."""
    tp, fp, tn, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, tn, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (tp / (tp + fn) + tn / (tn + fp)) / 2


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

    @property
    def mcc(self) -> float:
        """Matthews correlation: 0 for chance (and when a margin is 0), 1 for a perfect predictor."""
        return self._metric("mcc")

    @property
    def balanced_accuracy(self) -> float:
        """(recall + specificity) / 2: 0.5 is chance whatever the class balance."""
        return self._metric("balanced_accuracy")

    def metrics(self) -> dict[str, float | int]:
        """The nine PS-Eval numbers and the two chance-corrected ones (MCC, balanced accuracy)."""
        return {"accuracy": self.accuracy, "precision": self.precision, "recall": self.recall,
                "specificity": self.specificity, "f1": self.f1, "tp": self.tp, "fp": self.fp, "tn": self.tn,
                "fn": self.fn, "mcc": self.mcc, "balanced_accuracy": self.balanced_accuracy}

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
    """Every PS-Eval metric from confusion counts (arrays of any shape; NaN where a denominator is 0), and the
    chance-corrected MCC and balanced accuracy: the one formula of each, for one confusion as for resamples."""
    tp, fp, tn, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, tn, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"accuracy": (tp + tn) / (tp + tn + fp + fn), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
                "specificity": tn / (tn + fp), "f1": 2 * tp / (2 * tp + fp + fn),
                "mcc": mcc_from_counts(tp, fp, tn, fn), "balanced_accuracy": balanced_accuracy_from_counts(
                    tp, fp, tn, fn)}
