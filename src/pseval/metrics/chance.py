"""What chance scores on the scored pairs: three predictors that never look at a pair, computed exactly.

* always "same": every pair predicted same sense (TP = same-sense pairs, FP = different-sense pairs);
* always "different": every pair predicted different sense (TN = different-sense pairs, FN = same-sense pairs);
* a prevalence-matched coin: each pair predicted "same" with probability p = the share of same-sense pairs,
  independently of the pair. Its confusion is reported in expectation, in closed form (no sampling):
  E[TP] = p S, E[FN] = (1 - p) S, E[FP] = p D, E[TN] = (1 - p) D for S same- and D different-sense pairs.
  Accuracy (p² + (1 - p)²), recall (p) and specificity (1 - p) are then the coin's expected values exactly (they
  are linear in the counts); precision, F1 and MCC are those of the expected confusion (both p, p and 0).

MCC is 0 for all three (a margin is 0, or the prediction is independent of the label) and balanced accuracy 0.5:
those two read the same against chance whatever the pair balance, unlike F1 (always "same" gets 2S / (2S + D)).
"""

from __future__ import annotations

from dataclasses import dataclass

from pseval.metrics.statistics import metrics_from_counts

TRIVIAL_PREDICTORS = ("always_same", "always_different", "coin")
TRIVIAL_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "mcc", "balanced_accuracy")


@dataclass(frozen=True)
class TrivialPredictor:
    """One predictor that ignores the pair: its (expected) confusion counts and metrics."""

    name: str
    tp: float
    fp: float
    tn: float
    fn: float

    def metrics(self) -> dict[str, float]:
        """The PS-Eval metrics of its (expected) confusion; NaN where a denominator is 0."""
        return {k: float(v) for k, v in metrics_from_counts(self.tp, self.fp, self.tn, self.fn).items()}


def trivial_predictors(n_same: int, n_different: int) -> dict[str, TrivialPredictor]:
    """The three trivial predictors on S = n_same same-sense and D = n_different different-sense pairs."""
    if n_same < 0 or n_different < 0:
        raise ValueError(f"pair counts must be >= 0, got same={n_same}, different={n_different}")
    n = n_same + n_different
    p = n_same / n if n else 0.0
    return {"always_same": TrivialPredictor("always_same", n_same, n_different, 0, 0),
            "always_different": TrivialPredictor("always_different", 0, 0, n_different, n_same),
            "coin": TrivialPredictor("coin", p * n_same, p * n_different, (1 - p) * n_different, (1 - p) * n_same)}


def chance_fields(n_same: int, n_different: int) -> dict[str, float | int | None]:
    """The record's flat `chance` category: the pair counts, the prevalence and every trivial predictor's metrics
    as `<predictor>_<metric>` (NaN as None)."""
    n = n_same + n_different
    out: dict[str, float | int | None] = {"same_pairs": n_same, "different_pairs": n_different,
                                          "prevalence": n_same / n if n else None}
    for name, t in trivial_predictors(n_same, n_different).items():
        for m, v in t.metrics().items():
            out[f"{name}_{m}"] = v if v == v else None  # NaN -> None (JSON has no NaN)
    return out
