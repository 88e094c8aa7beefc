"""The budget check: cells and claims of one study at two budgets, matched and compared (closed-form cases)."""

from __future__ import annotations

import csv
import math

import pytest

from pseval.errors import ConfigError
from pseval.study.budget_check import budget_cell_rows, budget_claim_rows, budget_panel_rows, read_summaries


def cell(sae: str, spec: tuple[float, float, float], f1: tuple[float, float, float], fvu: str = "0.3",
         readout: str = "context") -> dict[str, str]:
    return {"dataset": "wic:/d/dev", "dataset_hash": "h1", "readout": readout, "hook": "blocks.3.hook_resid_post",
            "sae": sae, "architecture": "topk", "expansion": "8", "specificity": str(spec[0]),
            "specificity_low": str(spec[1]), "specificity_high": str(spec[2]), "f1": str(f1[0]), "f1_low": str(f1[1]),
            "f1_high": str(f1[2]), "fvu": fvu, "converged": "False"}


def test_a_change_and_its_interval_from_the_two_runs():
    before = [cell("a", (0.5, 0.4, 0.6), (0.5, 0.45, 0.55), "0.30"), cell("b", (0.5, 0.4, 0.6), (0.5, 0.4, 0.6))]
    after = [cell("a", (0.8, 0.75, 0.85), (0.5, 0.45, 0.55), "0.24"), cell("b", (0.52, 0.42, 0.62), (0.5, 0.4, 0.6)),
             cell("new", (0.5, 0.4, 0.6), (0.5, 0.4, 0.6))]
    train = [{"hook": "blocks.3.hook_resid_post", "sae": s, "train_tokens": t} for s, t in (("a", "400"),)]
    rows = budget_cell_rows(after, before, train, [{**train[0], "train_tokens": "200"}])
    assert [r["sae"] for r in rows] == ["a", "b"]  # "new" is in one run only
    a = rows[0]
    assert a["d_specificity"] == pytest.approx(0.3)
    assert a["d_specificity_low"] == pytest.approx(0.3 - math.hypot(0.05, 0.1))
    assert a["d_specificity_high"] == pytest.approx(0.3 + math.hypot(0.05, 0.1))
    assert a["d_f1"] == pytest.approx(0) and (a["tokens_before"], a["tokens_after"]) == ("200", "400")
    (panel,) = budget_panel_rows(rows)
    # a moved up beyond its interval, b did not; FVU fell 20% for a and stayed for b: median -10%.
    assert (panel["cells"], panel["specificity_up"], panel["specificity_down"], panel["f1_up"]) == (2, 1, 0, 0)
    assert panel["median_abs_d_specificity"] == pytest.approx((0.3 + 0.02) / 2)
    assert panel["fvu_change_median"] == pytest.approx((-0.2 + 0.0) / 2)


def test_claims_are_matched_by_panel_claim_and_scale():
    before = [{"dataset": "wic:/old/path/dev", "readout": "context", "key": "width", "verdict": "inconclusive"},
              {"dataset": "wic:/old/path/dev", "readout": "context", "key": "depth", "verdict": "holds"}]
    after = [{"dataset": "wic:/new/dev", "readout": "context", "key": "width", "scale": "raw", "verdict": "holds"},
             {"dataset": "wic:/new/dev", "readout": "context", "key": "depth", "scale": "raw", "verdict": "holds"},
             {"dataset": "wic:/new/dev", "readout": "context", "key": "depth", "scale": "gain over controls",
              "verdict": "holds"}]
    rows = budget_claim_rows(after, before)
    assert [(r["key"], r["scale"], r["verdict_before"], r["changed"]) for r in rows] == [
        ("width", "raw", "inconclusive", "yes"), ("depth", "raw", "holds", "no"),
        ("depth", "gain over controls", "-", "-")]


def test_a_folder_without_the_summaries_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cells.csv: missing"):
        read_summaries(tmp_path)
    for name in ("cells.csv", "claims.csv", "training.csv"):
        with (tmp_path / name).open("w", newline="") as fh:
            csv.writer(fh).writerow(["hook", "sae"])
            csv.writer(fh).writerow(["h", "s"])
    with pytest.raises(ConfigError, match="no column"):
        read_summaries(tmp_path)
