"""Confusion counts of same-sense prediction and the metrics derived from them."""

from __future__ import annotations

import math
from dataclasses import dataclass


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


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
        return _ratio(self.tp + self.tn, self.total)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); NaN when nothing is predicted positive."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN): share of same-sense pairs given the same feature."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        """TN / (TN + FP): share of different-sense pairs given different features."""
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def f1(self) -> float:
        """2TP / (2TP + FP + FN)."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

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
