"""The headline of every PS-Eval table: what to read first, chance beside it, the random control, and the legend.

Every surface (`pseval eval`, `pseval compare`, the demo, `pseval.evaluate`'s table, the sweep report) leads with
these rows: the paper's F1 and specificity with intervals, the chance-corrected MCC, the gain in MCC over the SAE's
random controls with its verdict, and the share of the raw activations' ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pseval.ps_eval.concentration import DOMINANCE_THRESHOLD
from pseval.ps_eval.record import PSEvalRecord
from pseval.tables import fmt, with_ci

HEADLINE_COLUMNS = ("sae", "hook", "pairs", "F1 [95% CI]", "specificity [95% CI]", "MCC [95% CI]",
                    "MCC gain vs control", "share of ceiling")
CONTROL_COLUMNS = ("sae", "hook", "control", "L0 SAE", "L0 control", "control F1", "control specificity",
                   "control MCC", "gain F1", "gain specificity", "gain MCC", "gain AUC cosine")

# One line per column or flag that needs one, printed under the table that shows it.
LEGEND = {
    "headline": "F1, specificity: the paper's argmax PS-Eval (higher is better), 95% pair-bootstrap intervals. MCC: "
                "Matthews correlation of the same predictions: 0 is chance (every trivial predictor scores 0), 1 is "
                "perfect, below 0 is worse than chance.",
    "gain": "MCC gain vs control: the SAE's MCC minus that of seeded random SAEs of its architecture, shape and L0 "
            "(identity: random rotations of the neuron basis); 95% interval over pairs and control seeds; better / "
            "worse = the interval lies above / below 0, n.d. = not distinguishable (it covers 0); - = no controls "
            "(--controls 0).",
    "share": "share of ceiling: (AUC cosine - 0.5) / (ceiling AUC - 0.5), how much of the raw activations' "
             "separation of senses the codes keep (1 = all of it, 0 = none, - = the ceiling is at chance).",
    "dominated": f"DOMINATED: one feature is the top feature of more than {DOMINANCE_THRESHOLD:g} of the contexts, so "
                 "most 'same' predictions are that one feature firing, not sense.",
    "converged": "converged NO: the held-out FVU still fell by more than 3% over the last fifth of training: the "
                 "SAE is undertrained and its numbers are provisional.",
    "controls": "control: the random SAEs (architecture, k or calibrated L0, seeds); gains are the SAE minus the "
                "controls' mean, intervals over pairs and seeds, verdict after each. A rotation keeps every cosine, "
                "so the identity's AUC cosine gain is 0 by construction.",
}
SHORT_VERDICT = {"better": "better", "worse": "worse", "not distinguishable": "n.d.", "undefined": "?"}


def gain_cell(gain: Any, stat: str) -> str:
    """`+0.052 [0.010, 0.094] better` for one gain statistic of a record's gain category ('-' without one)."""
    if gain is None or getattr(gain, stat) is None:
        return "-"
    value = getattr(gain, stat)
    cell = with_ci(value, getattr(gain, f"{stat}_low"), getattr(gain, f"{stat}_high"))
    return f"{'+' if value >= 0 else ''}{cell} {SHORT_VERDICT[getattr(gain, f'{stat}_verdict')]}"


def headline_row(r: PSEvalRecord, label: str | None = None) -> dict[str, Any]:
    """The headline numbers of one record."""
    m = r.eval_result_metrics
    # Categories built with create_model: their bounds are fields a type checker cannot see.
    iv: Any = m.ps_eval_intervals
    ceiling: Any = m.ceiling
    return {"sae": label or r.sae_name, "hook": r.eval_config.hook_name, "pairs": m.counts.pairs_scored,
            "F1 [95% CI]": with_ci(m.ps_eval.f1, iv.f1_low, iv.f1_high),
            "specificity [95% CI]": with_ci(m.ps_eval.specificity, iv.specificity_low, iv.specificity_high),
            "MCC [95% CI]": with_ci(m.ps_eval.mcc, getattr(iv, "mcc_low", None), getattr(iv, "mcc_high", None)),
            "MCC gain vs control": gain_cell(m.gain_over_control, "mcc"),
            "share of ceiling": with_ci(ceiling.share_cosine, ceiling.share_cosine_low, ceiling.share_cosine_high)}


def headline_rows(records: Sequence[PSEvalRecord], labels: Sequence[str | None] | None = None) -> list[dict[str, Any]]:
    """The headline rows of records."""
    return [headline_row(r, label) for r, label in zip(records, labels or [None] * len(records), strict=True)]


def control_rows(records: Sequence[PSEvalRecord], labels: Sequence[str | None] | None = None) -> list[dict[str, Any]]:
    """Each record's random controls and its gains over them (records without controls are left out)."""
    rows = []
    for r, label in zip(records, labels or [None] * len(records), strict=True):
        m = r.eval_result_metrics
        c, g = m.controls, m.gain_over_control
        if c is None:
            continue
        what = "rotation" if c.kind == "random_rotation" else c.architecture + (f" k={c.k}" if c.k else "")
        what += f" x{c.controls}" + (" (TopK assumed)" if c.architecture_assumed else "")
        rows.append({"sae": label or r.sae_name, "hook": r.eval_config.hook_name, "control": what,
                     "L0 SAE": c.sae_l0, "L0 control": c.control_l0,
                     **{f"control {t}": _spread(c, s) for s, t in (("f1", "F1"), ("specificity", "specificity"),
                                                                    ("mcc", "MCC"))},
                     **{f"gain {t}": gain_cell(g, s) for s, t in (("f1", "F1"), ("specificity", "specificity"),
                                                                  ("mcc", "MCC"), ("auc_cosine", "AUC cosine"))}})
    return rows


def _spread(c: Any, stat: str) -> str:
    """`0.47 (0.45-0.49)`: the controls' mean and range over seeds."""
    mean, lo, hi = (getattr(c, f"{stat}_{a}") for a in ("mean", "min", "max"))
    return "-" if mean is None else f"{fmt(mean)} ({fmt(lo)}-{fmt(hi)})"


def chance_line(records: Sequence[PSEvalRecord]) -> str:
    """What chance scores on the records' pairs (the first record's; one line per distinct pair set)."""
    lines, seen = [], set()
    for r in records:
        ch: Any = r.eval_result_metrics.chance  # create_model fields, invisible to a type checker
        if ch is None or (ch.same_pairs, ch.different_pairs, r.eval_config.selection_hash) in seen:
            continue
        seen.add((ch.same_pairs, ch.different_pairs, r.eval_config.selection_hash))
        n = ch.same_pairs + ch.different_pairs
        lines.append(
            f"Chance on these {n} pairs ({ch.same_pairs} same, {ch.different_pairs} different sense): always "
            f"\"same\" F1 {fmt(ch.always_same_f1)}, specificity {fmt(ch.always_same_specificity)}; always "
            f"\"different\" F1 {fmt(ch.always_different_f1)}, specificity {fmt(ch.always_different_specificity)}; a "
            f"coin with p(same) = {fmt(ch.prevalence)} F1 {fmt(ch.coin_f1)}, specificity {fmt(ch.coin_specificity)}; "
            "MCC 0 for all three.")
    return "\n".join(lines)


def legend(*keys: str) -> str:
    """The legend lines for the given keys."""
    return "\n".join(f"  {LEGEND[k]}" for k in keys)


def headline_block(records: Sequence[PSEvalRecord], labels: Sequence[str | None] | None = None) -> str:
    """The headline table, the chance line and the legend, as printed first by every command."""
    from pseval.tables import text_table

    parts = ["Headline (read this first)\n" + text_table(headline_rows(records, labels), HEADLINE_COLUMNS),
             chance_line(records), legend("headline", "gain", "share")]
    if any(r.eval_result_metrics.training is not None and r.eval_result_metrics.training.converged is False
           for r in records):
        parts.append(legend("converged"))
    ctl = control_rows(records, labels)
    if ctl:
        parts.append("Random controls and the gain over them\n" + text_table(ctl, CONTROL_COLUMNS) + "\n"
                     + legend("controls"))
    return "\n".join(p for p in parts if p)
