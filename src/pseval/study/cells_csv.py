"""cells.csv: one row per evaluated cell (like SAELens' all_eval_results.csv), plain numbers, no formatting.

It is the compact summary a report writes beside its pages: small enough to commit, and the one source that any
published table of cell figures is checked against."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pseval.files import write_text_atomic
from pseval.ps_eval.record import GAIN_TITLES
from pseval.ps_eval.rows import CellRow

# Identity of the cell first, then PS-Eval, its intervals, the gain over controls, reconstruction and provenance.
KEY_COLUMNS = ("model", "dataset", "dataset_hash", "readout", "hook", "layer", "component", "sae", "architecture",
               "expansion")
SCORE_COLUMNS = ("pairs", "tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "specificity", "f1", "mcc",
                 "f1_low", "f1_high", "specificity_low", "specificity_high", "mcc_low", "mcc_high")
GAIN_COLUMNS = tuple(f"gain_{s}{suffix}" for s in GAIN_TITLES for suffix in ("", "_low", "_high", "_verdict"))
TAIL_COLUMNS = ("share_of_ceiling", "mse_per_token", "fvu", "l0", "dead_fraction", "loss_recovered", "converged",
                "train_tokens", "git_commit")
CELL_CSV_COLUMNS = KEY_COLUMNS + SCORE_COLUMNS + GAIN_COLUMNS + TAIL_COLUMNS


def _number(value: Any) -> Any:
    """None and NaN as an empty field; everything else as is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def cell_csv_row(r: CellRow) -> dict[str, Any]:
    """The CSV row of one cell."""
    row: dict[str, Any] = {"model": r.model, "dataset": r.dataset, "dataset_hash": r.dataset_hash,
                           "readout": r.readout, "hook": r.hook, "layer": r.layer, "component": r.component,
                           "sae": r.sae, "architecture": r.architecture,
                           "expansion": round(r.expansion, 4) if r.expansion % 1 else int(r.expansion),
                           "pairs": len(r.same_sense), "git_commit": r.git_commit, "converged": r.converged}
    row.update({k: r.metrics.get(k) for k in ("tp", "fp", "tn", "fn")})
    row.update({k: r.metrics.get(k) for k in ("accuracy", "precision", "recall", "specificity", "f1", "mcc")})
    row.update({k: r.recon.get(k) for k in ("mse_per_token", "fvu", "l0", "dead_fraction")})
    row["loss_recovered"] = r.loss_recovered.get("loss_recovered_zero") if r.loss_recovered else None
    rec = r.record
    if rec is not None:
        m = rec.eval_result_metrics
        # Intervals and gains are create_model categories: their fields are read by name.
        iv: Any = m.ps_eval_intervals
        for s in ("f1", "specificity", "mcc"):
            row[f"{s}_low"], row[f"{s}_high"] = getattr(iv, f"{s}_low", None), getattr(iv, f"{s}_high", None)
        gain: Any = m.gain_over_control
        for s in GAIN_TITLES:
            for suffix in ("", "_low", "_high", "_verdict"):
                row[f"gain_{s}{suffix}"] = getattr(gain, f"{s}{suffix}", None) if gain is not None else None
        ceiling: Any = m.ceiling
        row["share_of_ceiling"] = getattr(ceiling, "share_cosine", None) if ceiling is not None else None
        row["train_tokens"] = m.training.tokens if m.training is not None else None
    return {c: _number(row.get(c)) for c in CELL_CSV_COLUMNS}


def cells_csv_text(rows: Iterable[CellRow]) -> str:
    """The CSV text of the cells, in the order given."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CELL_CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(cell_csv_row(r))
    return buf.getvalue()


def write_cells_csv(rows: Iterable[CellRow], path: str | Path) -> Path:
    """Write cells.csv atomically; returns its path."""
    write_text_atomic(cells_csv_text(rows), Path(path))
    return Path(path)


def read_cells_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a cells.csv, as strings keyed by column (for checks against a published page)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in KEY_COLUMNS if rows and c not in rows[0]]
    if missing:
        from pseval.errors import ConfigError
        raise ConfigError(f"{path}: not a pseval cells.csv (columns {', '.join(missing)} missing)")
    return rows


def sorted_cells(rows: Sequence[CellRow]) -> list[CellRow]:
    """Cells in a stable order: panel, then layer, component, architecture, expansion, SAE."""
    return sorted(rows, key=lambda r: (r.dataset, r.readout, r.model, r.dataset_hash,
                                       r.layer if r.layer is not None else -1, r.component, r.architecture,
                                       r.expansion, r.sae))
