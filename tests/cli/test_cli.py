"""The command line as a user runs it: eval on real WiC with MiniLM, clear errors, and the demo job."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from pseval.cli import main
from pseval.ps_eval.record import PSEvalRecord
from pseval.saes import SAEConfig, SAEMetadata, save_sae
from pseval.saes.topk import TopKSAE
from pseval.tables import fmt
from tests.study.chromium import load_page


def test_eval_writes_saebench_shaped_json(tmp_path, wic_dev):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "80", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "identity" in res.output and "specificity" in res.output
    rec = json.loads(out.read_text())
    assert rec["eval_type_id"] == "ps_eval" and rec["schema_version"] == 3
    m, c = rec["eval_result_metrics"]["ps_eval"], rec["eval_result_metrics"]["counts"]
    assert set(m) == {"accuracy", "precision", "recall", "specificity", "f1", "tp", "fp", "tn", "fn", "mcc",
                      "balanced_accuracy"}
    assert m["tp"] + m["fp"] + m["tn"] + m["fn"] == c["pairs_scored"] == len(rec["eval_result_details"])
    assert c["pairs_read"] == 80 == rec["eval_config"]["pairs_selected"]
    assert rec["eval_config"]["hook_name"] == "blocks.3.hook_resid_post"
    assert len(rec["eval_config"]["dataset_hash"]) == 64 and rec["pseval_version"]
    outcomes = [d["outcome"] for d in rec["eval_result_details"]]
    assert outcomes.count("TP") == m["tp"] and outcomes.count("TN") == m["tn"]
    # Rows of the file: all 638 dev lines read and kept, in the record and on the summary line.
    assert rec["eval_result_unstructured"]["data_rows"] == {"unit": "lines", "read": 638, "kept": 638, "dropped": {}}
    assert "80 of 638 pairs" in res.output and "lines read 638, kept 638, dropped: none" in res.output


@pytest.mark.slow
def test_eval_reports_standard_metrics(tmp_path, wic_dev):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "30",
                                    "--reconstruction-tokens", "800", "--loss-recovered-tokens", "200",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "fvu" in res.output and "is on the sentence_embedding objective" in res.output
    rec = json.loads(out.read_text())["eval_result_metrics"]
    assert rec["reconstruction"]["fvu"] < 1e-9 and rec["reconstruction"]["tokens"] == 800  # identity: exact
    lr = rec["loss_recovered"]
    assert lr["objective"] == "sentence_embedding" and "masked-LM head" in lr["reason"]
    assert abs(lr["loss_recovered_zero"] - 1.0) < 1e-4  # identity changes nothing


def test_eval_several_saes_share_a_pass(tmp_path, wic_dev, monkeypatch):
    import pseval.models.loading as loading

    real_load, forwards = loading.load_model, []

    def counting_load(*args, **kwargs):
        lm = real_load(*args, **kwargs)
        lm.model.register_forward_pre_hook(lambda *_: forwards.append(1))
        return lm

    monkeypatch.setattr(loading, "load_model", counting_load)
    sae = TopKSAE(SAEConfig("topk", 384, 768, k=8,
                            metadata=SAEMetadata(model_name="minilm", hook_name="blocks.2.hook_attn_out")))
    save_sae(sae, tmp_path / "sae")
    args = ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "40", "--sae", "identity"]
    assert CliRunner().invoke(main, args).exit_code == 0
    alone = len(forwards)
    forwards.clear()
    outdir = tmp_path / "out"
    res = CliRunner().invoke(main, [*args, "--sae", str(tmp_path / "sae"), "--out", str(outdir)])
    assert res.exit_code == 0, res.output
    # A second SAE at another hook costs no forward pass: every hook is read in the same passes.
    assert alone > 0 and len(forwards) == alone
    files = sorted(p.name.rsplit("__", 1)[0] for p in (outdir / "cells").iterdir())
    # identity at the default hook, the SAE at the hook it records: one record per cell in the results store
    assert files == ["blocks.2.hook_attn_out__sae__template", "blocks.3.hook_resid_post__identity__template"]


def test_clear_errors(tmp_path, wic_dev):
    sae = TopKSAE(SAEConfig("topk", 100, 200, k=4))
    save_sae(sae, tmp_path / "small")
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "10", "--sae",
                                    str(tmp_path / "small"), "--hook", "blocks.1.hook_mlp_out"])
    assert res.exit_code == 2 and "d_in=100 does not match the width 384" in res.output
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--hook", "blocks.9.hook_mlp_out"])
    assert res.exit_code == 2 and "6 blocks" in res.output
    res = CliRunner().invoke(main, ["eval", "--data", "wac:/x"])
    assert res.exit_code == 2 and "unknown data spec" in res.output


@pytest.mark.slow
def test_demo_small(tmp_path, wic_dev):
    """The demo is a sweep: its SAEs, cells and report are the sweep's, and a second run resumes instead of redoing."""
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--train-tokens", "6000", "--max-pairs", "150", "--wic", str(wic_dev)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    names = ("identity", "topk-x8-k32", "standard-x8-c2")
    report = (out / "report.md").read_text()
    assert "## WiC dev, template readout" in report and "## WordNet" in report
    for name in names:
        assert f"| blocks.3.hook_resid_post | {name} |" in report and name in res.output
    assert (out / "saes" / "blocks.3.hook_resid_post" / "topk-x8-k32" / "cfg.json").is_file()
    records = [PSEvalRecord.model_validate(json.loads(p.read_text())) for p in (out / "cells").glob("*.json")]
    assert sorted((r.sae_name, r.eval_config.dataset.split(":")[0]) for r in records) == \
        sorted((n, d) for n in names for d in ("wic", "wordnet"))
    for rec in records:  # each table row is its record's own number and interval
        m, iv = rec.eval_result_metrics.ps_eval, rec.eval_result_metrics.ps_eval_intervals
        assert f"{fmt(m.f1)} [{fmt(iv.f1_low)}, {fmt(iv.f1_high)}]" in report
    # The headline leads, chance and the random controls beside it, every odd column explained.
    for text in (report, res.output):
        assert "MCC gain vs control" in text and 'always "same" F1' in text and "converged NO:" in text
    assert "In plain words:" in res.output and "random-weight SAEs of its shape" in res.output
    assert "Random controls and the gain over them" in res.output and "rotation x5" in res.output
    page = (out / "report.html").read_text()
    assert "http" not in page.replace("data:image", "").replace("http://www.w3.org", "")  # self-contained
    assert load_page(out / "report.html", tmp_path) == []
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "0 cell(s) evaluated, 6 already in the store" in again.output


@pytest.mark.slow
def test_readme_gpt2_small_res_jb_command_offline(tmp_path, tiny_gpt2_dir, wic_dev):
    """The README's gpt2-small-res-jb command, with a tiny GPT-2, a local SAE folder in that release's layout
    (SAELens pre-6 cfg) and a local copy of the PS-Eval dataset layout, instead of the Hub."""
    from safetensors.torch import save_file

    from pseval.data.wic import load_wic

    sae_dir = tmp_path / "GPT2-Small-SAEs-Reformatted" / "blocks.1.hook_resid_pre"
    sae_dir.mkdir(parents=True)
    (sae_dir / "cfg.json").write_text(json.dumps({
        "model_name": "gpt2-small", "hook_point": "blocks.1.hook_resid_pre", "hook_point_layer": 1, "d_in": 64,
        "d_sae": 256, "dtype": "torch.float32", "context_size": 128, "lr": 4e-4, "l1_coefficient": 8e-5,
        "dataset_path": "Skylion007/openwebtext"}))
    g = torch.Generator().manual_seed(0)
    save_file({"W_enc": torch.randn(64, 256, generator=g), "b_enc": torch.zeros(256),
               "W_dec": torch.randn(256, 64, generator=g), "b_dec": torch.zeros(64)},
              str(sae_dir / "sae_weights.safetensors"))
    rows = [{"target_word": p.target, "context_1": p.context_1, "context_2": p.context_2,
             "label": int(p.same_sense)} for p in load_wic(wic_dev)[:60]]
    data = tmp_path / "wic_ps_eval.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "r.json"
    # The tiny model stands in for gpt2-small: pseval must say the SAE was trained on another model.
    with pytest.warns(UserWarning, match="trained on model 'gpt2-small'"):
        res = CliRunner().invoke(main, ["eval", "--model", str(tiny_gpt2_dir), "--sae", str(sae_dir), "--data",
                                        f"jsonl:{data}", "--multi-token", "last", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())
    assert rec["eval_config"]["hook_name"] == "blocks.1.hook_resid_pre"
    assert rec["sae_cfg_dict"]["metadata"]["activation_convention"] == "tl_centered"
    counts = rec["eval_result_metrics"]["counts"]
    assert counts["pairs_read"] == 60 and counts["pairs_scored"] > 0
