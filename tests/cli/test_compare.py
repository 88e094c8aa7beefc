"""`pseval eval` prints every metric with its interval and paired differences; `pseval compare` reproduces them from
the saved records and refuses records scored on different pairs, naming the files."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner

from pseval.cli import main
from pseval.cli.compare import load_records
from pseval.metrics.statistics import bootstrap_metrics
from pseval.ps_eval.headline import gain_cell
from pseval.ps_eval.intervals import PairArrays, bootstrap_intervals
from pseval.ps_eval.pipeline import _bounds
from pseval.ps_eval.rows import row_from_record
from pseval.saes import SAEConfig, SAEMetadata, save_sae
from pseval.saes.topk import TopKSAE
from pseval.study.report import _cell_intervals, _concentration


def _eval(tmp_path, wic_dev, out: str, max_pairs: int, *extra: str):
    sae_dir = tmp_path / "topk"
    if not sae_dir.exists():
        torch.manual_seed(0)
        sae = TopKSAE(SAEConfig("topk", 384, 1536, k=16, metadata=SAEMetadata(hook_name="blocks.3.hook_resid_post")))
        save_sae(sae, sae_dir)
    # --wide: one line per row whatever the terminal, so the rows can be parsed below
    res = CliRunner().invoke(main, ["--wide", "eval", "--data", f"wic:{wic_dev}", "--max-pairs", str(max_pairs),
                                    "--sae", "identity", "--sae", str(sae_dir), "--bootstrap-resamples", "300",
                                    "--out", str(tmp_path / out), *extra])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.slow
def test_eval_intervals_differences_and_compare(tmp_path, wic_dev):
    text = _eval(tmp_path, wic_dev, "a.json", 80, "--exclude-dense", "0.3", "--memory-budget", "1MiB")
    for heading in ("Details: PS-Eval (the paper's argmax metric)", "Threshold-free", "Top-feature concentration",
                    "Dense-feature-robust", "Paired differences against identity@blocks.3.hook_resid_post"):
        assert heading in text
    assert "DOMINATED" in text  # the identity's neuron 157 wins about half the contexts
    records, names = load_records([tmp_path / "a.json"])
    assert [r.sae_name for r in records] == ["identity", "topk"]
    for rec in records:
        m, cfg = rec.eval_result_metrics, rec.eval_config
        assert (cfg.bootstrap_resamples, cfg.bootstrap_seed, cfg.top_k, cfg.exclude_dense) == (300, 0, 8, 0.3)
        # The stored intervals are those recomputed from the stored pairs.
        ivs = bootstrap_intervals(PairArrays.from_details(rec.eval_result_details), 300, 0)
        assert m.ps_eval_intervals.model_dump() == _bounds("ps_eval", ivs)
        assert {k: v for k, v in m.threshold_free.model_dump().items() if k.endswith(("_low", "_high"))} == \
            _bounds("threshold_free", ivs)
        assert m.ps_eval_intervals.f1_low < m.ps_eval.f1 < m.ps_eval_intervals.f1_high
    assert records[0].eval_result_metrics.ceiling.share_cosine == 1.0  # the identity's codes are the activations
    assert records[0].eval_result_metrics.ps_eval_robust.excluded_latents == 384  # every neuron is non-zero
    assert records[1].eval_result_metrics.ps_eval_robust.f1 is not None

    # The report's cell table reads these intervals and the concentration flag from the records.
    rows = [row_from_record(r) for r in records]
    iv = records[1].eval_result_metrics.ps_eval_intervals
    assert _cell_intervals(rows[1], 300, 0)["f1"] == (iv.f1_low, iv.f1_high)
    other = bootstrap_metrics(rows[1].same_sense, rows[1].same_feature, 300, 1)["f1"]
    assert _cell_intervals(rows[1], 300, 1)["f1"] == (other.low, other.high)  # other resamples: recomputed
    assert _concentration(rows[0]).endswith("DOMINATED") and "DOMINATED" not in _concentration(rows[1])

    # compare over the saved records: same differences as eval printed.
    res = CliRunner().invoke(main, ["--wide", "compare", str(tmp_path / "a.json"), "--out",
                                    str(tmp_path / "cmp.json")])
    assert res.exit_code == 0, res.output
    printed = [re.split(r"\s{2,}", line.strip())[2:] for line in text.splitlines() if line.startswith("topk@")]
    again = [re.split(r"\s{2,}", line.strip())[2:] for line in res.output.splitlines()
             if "a.json[topk@" in line and "a.json[identity@" in line]
    assert printed == again and len(printed[0]) >= 5
    # Both lead with the headline, chance and the controls, read from the same records.
    for out in (text, res.output):
        assert "Headline (read this first)" in out and 'Chance on these' in out and "DOMINATED: one feature" in out
        assert "Random controls and the gain over them" in out and "rotation x5" in out and "topk k=16 x5" in out
        for rec in records:
            assert gain_cell(rec.eval_result_metrics.gain_over_control, "mcc") in out
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    d = cmp["differences"][0]["statistics"]["ps_eval.f1"]
    f1 = [r.eval_result_metrics.ps_eval.f1 for r in records]
    assert abs(d["value"] - (f1[1] - f1[0])) < 1e-12 and d["low"] <= d["value"] <= d["high"]


def test_compare_refuses_records_on_different_pairs(tmp_path, wic_dev):
    _eval(tmp_path, wic_dev, "a", 60)
    _eval(tmp_path, wic_dev, "b", 50)
    a, b = (sorted((tmp_path / "a" / "cells").glob("*__identity__*.json"))[0],
            sorted((tmp_path / "b" / "cells").glob("*__topk*.json"))[0])
    res = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert res.exit_code == 2
    assert str(a) in res.output and str(b) in res.output and "not scored on the same pairs" in res.output
    assert "selection_hash" in res.output
