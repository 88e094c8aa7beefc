"""`pseval compare A.json B.json ...`: saved records side by side, with paired differences against the first.

The records must hold the same scored pairs (ids, order, labels): a difference's interval resamples both records'
pairs together, which is what makes it narrower than the two records' own intervals. Records scored on different
pairs are refused, naming the files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pseval.errors import DataFormatError
from pseval.files import write_json_atomic
from pseval.logs import get_logger
from pseval.ps_eval.headline import headline_block, legend
from pseval.ps_eval.record import PSEvalRecord, read_record
from pseval.ps_eval.rows import (
    ARGMAX_COLUMNS,
    CONCENTRATION_COLUMNS,
    ROBUST_COLUMNS,
    THRESHOLD_FREE_COLUMNS,
    Comparison,
    argmax_rows,
    compare_records,
    concentration_rows,
    difference_columns,
    difference_rows,
    robust_rows,
    threshold_free_rows,
)
from pseval.tables import text_table

_log = get_logger("compare")  # messages; a notebook silences them on logging.getLogger("pseval")


def load_records(paths: list[Path]) -> tuple[list[PSEvalRecord], list[str]]:
    """Every record of the files (a file holds one record or a list) and a name for each: the file, and the SAE and
    hook when a file holds several."""
    records, names = [], []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFormatError(f"cannot read a PS-Eval result: {exc}", str(path)) from exc
        items = data if isinstance(data, list) else [data]
        for i, item in enumerate(items):
            rec = read_record(item, f"{path}[{i}]" if isinstance(data, list) else str(path))
            records.append(rec)
            names.append(f"{path}[{rec.sae_name}@{rec.eval_config.hook_name}]" if len(items) > 1 else str(path))
    return records, names


def comparison_json(cmp: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON: every statistic of each record and each difference, with its interval."""
    def ivs(d: dict) -> dict[str, dict[str, float]]:
        return {k: {"value": v.value, "low": v.low, "high": v.high} for k, v in sorted(d.items())}

    return {"bootstrap_resamples": cmp.n_boot, "bootstrap_seed": cmp.seed, "level": 0.95, "records": cmp.names,
            "statistics": {n: ivs(d) for n, d in zip(cmp.names, cmp.per_record, strict=True)},
            "differences": [{"record": n, "minus": cmp.names[0], "statistics": ivs(d)}
                            for n, d in zip(cmp.names[1:], cmp.differences, strict=True)],
            "notes": cmp.notes}


def run_compare(paths: list[Path], n_boot: int | None = None, seed: int | None = None, out: Path | None = None,
                log: Callable[[str], Any] = _log.info) -> Comparison:
    """Print the records' tables and the paired differences; optionally write them as JSON."""
    records, names = load_records(paths)
    cmp = compare_records(records, names, n_boot, seed)
    # Rows named by file where SAE names alone would be ambiguous.
    labels = names if len({(r.sae_name, r.eval_config.hook_name) for r in records}) < len(records) else None
    log(headline_block(records, labels))
    log("Details: PS-Eval (the paper's argmax metric), intervals as recorded\n"
        + text_table(argmax_rows(records, labels), ARGMAX_COLUMNS))
    log("Threshold-free and ceiling\n" + text_table(threshold_free_rows(records, labels), THRESHOLD_FREE_COLUMNS))
    log("Top-feature concentration\n" + text_table(concentration_rows(records, labels), CONCENTRATION_COLUMNS)
        + ("\n" + legend("dominated") if any(r.eval_result_metrics.concentration.dominated for r in records) else ""))
    robust = robust_rows(records, labels)
    if robust:
        log("Dense-feature-robust PS-Eval\n" + text_table(robust, ROBUST_COLUMNS))
    if len(records) > 1:
        diff = difference_rows(cmp)
        log(f"Paired differences against {names[0]} ({cmp.n_boot} resamples, seed {cmp.seed}; * = the 95% interval "
            "excludes 0)\n" + text_table(diff, difference_columns(diff)))
    for note in cmp.notes:
        log(f"note: {note}")
    if out is not None:
        write_json_atomic(comparison_json(cmp), out)
        log(f"wrote {out}")
    return cmp
