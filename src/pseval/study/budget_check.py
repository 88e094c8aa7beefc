"""Does the training budget change the answer? The same study at two budgets, compared from their summaries.

A results page's summaries (cells.csv, claims.csv, training.csv, as `pseval report RUN --page` writes them) of the same
sweep at a shorter budget are the "before"; this run's are the "after". Cells are matched on (dataset content,
readout, hook, SAE label), claims on (dataset, readout, claim, scale).

The change of a cell's specificity or F1 has an approximate 95% interval from the two runs' own intervals, combined as
if the runs were independent: low = d - hypot(after - after_low, before_high - before), high = d + hypot(after_high -
after, before - before_low). Both runs score the same pairs, so the true (paired) interval is narrower: a change
beyond this one is real, one inside it may still be.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pseval.errors import ConfigError
from pseval.ps_eval.rows import short_dataset

SUMMARY_FILES = ("cells.csv", "claims.csv", "training.csv")
BUDGET_CELL_COLUMNS = ("dataset", "dataset_hash", "readout", "hook", "sae", "architecture", "expansion",
                       "tokens_before", "tokens_after", "fvu_before", "fvu_after", "l0_before", "l0_after",
                       "specificity_before", "specificity_after", "d_specificity", "d_specificity_low",
                       "d_specificity_high", "f1_before", "f1_after", "d_f1", "d_f1_low", "d_f1_high",
                       "converged_after")
BUDGET_CLAIM_COLUMNS = ("dataset", "readout", "key", "scale", "verdict_before", "verdict_after", "changed")
BUDGET_PANEL_COLUMNS = ("dataset", "readout", "cells", "specificity_up", "specificity_down", "f1_up", "f1_down",
                        "median_abs_d_specificity", "median_abs_d_f1", "fvu_change_median")


def read_summaries(folder: str | Path) -> dict[str, list[dict[str, str]]]:
    """The summaries of a results page's folder, by file name; a ConfigError names a missing file or column."""
    folder = Path(folder)
    need = {"cells.csv": ("dataset_hash", "readout", "hook", "sae", "specificity", "specificity_low",
                          "specificity_high", "f1", "f1_low", "f1_high"),
            "claims.csv": ("dataset", "readout", "key", "verdict"), "training.csv": ("hook", "sae", "train_tokens")}
    out = {}
    for name in SUMMARY_FILES:
        path = folder / name
        if not path.is_file():
            raise ConfigError(f"{path}: missing; a budget check compares the summaries a results page writes "
                              f"({', '.join(SUMMARY_FILES)})")
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        missing = [c for c in need[name] if rows and c not in rows[0]]
        if missing:
            raise ConfigError(f"{path}: no column(s) {', '.join(missing)}: not a results page's {name}")
        out[name] = rows
    return out


def _f(x: str | None) -> float:
    try:
        return float(x) if x not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _change(after: Mapping[str, str], before: Mapping[str, str], m: str) -> tuple[float, float, float]:
    """(after - before, its approximate low, high): the module's independent-runs interval."""
    a, a_lo, a_hi = _f(after[m]), _f(after[f"{m}_low"]), _f(after[f"{m}_high"])
    b, b_lo, b_hi = _f(before[m]), _f(before[f"{m}_low"]), _f(before[f"{m}_high"])
    d = a - b
    return d, d - math.hypot(a - a_lo, b_hi - b), d + math.hypot(a_hi - a, b - b_lo)


def budget_cell_rows(after: Sequence[Mapping[str, str]], before: Sequence[Mapping[str, str]],
                     training_after: Sequence[Mapping[str, str]], training_before: Sequence[Mapping[str, str]]
                     ) -> list[dict[str, Any]]:
    """One row per cell found in both runs (BUDGET_CELL_COLUMNS), in the after-run's order."""
    def key(r: Mapping[str, str]) -> tuple[str, ...]:
        return r["dataset_hash"], r["readout"], r["hook"], r["sae"]

    old = {key(r): r for r in before}
    tokens_after = {(r["hook"], r["sae"]): r["train_tokens"] for r in training_after}
    tokens_before = {(r["hook"], r["sae"]): r["train_tokens"] for r in training_before}
    rows = []
    for r in after:
        b = old.get(key(r))
        if b is None:
            continue
        ds, dlo, dhi = _change(r, b, "specificity")
        f, flo, fhi = _change(r, b, "f1")
        rows.append({"dataset": r["dataset"], "dataset_hash": r["dataset_hash"], "readout": r["readout"],
                     "hook": r["hook"], "sae": r["sae"], "architecture": r.get("architecture"),
                     "expansion": r.get("expansion"), "tokens_before": tokens_before.get((r["hook"], r["sae"])),
                     "tokens_after": tokens_after.get((r["hook"], r["sae"])), "fvu_before": b.get("fvu"),
                     "fvu_after": r.get("fvu"), "l0_before": b.get("l0"), "l0_after": r.get("l0"),
                     "specificity_before": b["specificity"],
                     "specificity_after": r["specificity"], "d_specificity": ds, "d_specificity_low": dlo,
                     "d_specificity_high": dhi, "f1_before": b["f1"], "f1_after": r["f1"], "d_f1": f, "d_f1_low": flo,
                     "d_f1_high": fhi, "converged_after": r.get("converged")})
    return rows


def budget_claim_rows(after: Sequence[Mapping[str, str]], before: Sequence[Mapping[str, str]]
                      ) -> list[dict[str, Any]]:
    """Each claim of the after-run with its verdict in the before-run (BUDGET_CLAIM_COLUMNS; '-' where it had none,
    e.g. a scale the before-run did not test). A summary without a scale column holds raw claims."""
    def key(r: Mapping[str, str]) -> tuple[str, ...]:
        return short_dataset(r["dataset"]), r["readout"], r["key"], r.get("scale") or "raw"

    old = {key(r): r["verdict"] for r in before}
    rows = []
    for r in after:
        was = old.get(key(r))
        rows.append({"dataset": r["dataset"], "readout": r["readout"], "key": r["key"],
                     "scale": r.get("scale") or "raw", "verdict_before": was or "-", "verdict_after": r["verdict"],
                     "changed": "-" if was is None else ("yes" if was != r["verdict"] else "no")})
    return rows


def budget_panel_rows(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (dataset, readout): cells compared, how many moved beyond their interval each way, the median absolute
    change, and the median relative change of FVU (trained SAEs only)."""
    panels: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in cells:
        panels.setdefault((r["dataset"], r["readout"]), []).append(r)

    def median(xs: list[float]) -> float | None:
        finite = [x for x in xs if math.isfinite(x)]
        return statistics.median(finite) if finite else None

    rows = []
    for (ds, ro), grp in panels.items():
        fvu = [_f(r["fvu_after"]) / _f(r["fvu_before"]) - 1 for r in grp
               if _f(r["fvu_before"]) > 0 and math.isfinite(_f(r["fvu_after"]))]
        rows.append({"dataset": ds, "readout": ro, "cells": len(grp),
                     "specificity_up": sum(r["d_specificity_low"] > 0 for r in grp),
                     "specificity_down": sum(r["d_specificity_high"] < 0 for r in grp),
                     "f1_up": sum(r["d_f1_low"] > 0 for r in grp), "f1_down": sum(r["d_f1_high"] < 0 for r in grp),
                     "median_abs_d_specificity": median([abs(r["d_specificity"]) for r in grp]),
                     "median_abs_d_f1": median([abs(r["d_f1"]) for r in grp]), "fvu_change_median": median(fvu)})
    return rows
