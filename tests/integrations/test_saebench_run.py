"""PS-Eval as a SAEBench eval: SAEBench's run_eval signature, its file names, skip-unless-forced, and files its own
pydantic classes accept."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from pseval.errors import ConfigError, MissingResourceError
from pseval.integrations.saebench import PSEvalSAEBenchConfig, results_filepath, run_eval, validate_with_saebench
from pseval.saes import SAEConfig, SAEMetadata
from pseval.saes.topk import TopKSAE

HOOK = "blocks.3.hook_resid_post"


class Identity(nn.Module):
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture()
def topk():
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig("topk", 384, 768, k=16, metadata=SAEMetadata(model_name="minilm", hook_name=HOOK)))
    return sae.eval()


def test_run_eval_writes_validates_and_skips(tmp_path, minilm, wic_dev, topk):
    pytest.importorskip("sae_bench.evals.base_eval_output")
    cfg = PSEvalSAEBenchConfig(model_name="minilm", dataset=f"wic:{wic_dev}", hook_name=HOOK, max_pairs=100)
    selected = [("my/identity", Identity()), ("topk", topk)]
    out = tmp_path / "eval_results" / "ps_eval"
    first = run_eval(cfg, selected, "cpu", str(out), model=minilm)
    names = sorted(p.name for p in out.iterdir())
    # SAEBench's names: {release}_{sae_id}_eval_results.json, slashes replaced, sae_id custom_sae for objects
    assert names == ["my_identity_custom_sae_eval_results.json", "topk_custom_sae_eval_results.json"]
    assert set(first) == {"my/identity_custom_sae", "topk_custom_sae"}
    for release, _ in selected:
        path = results_filepath(out, release, "custom_sae")
        data = json.loads(path.read_text())
        obj = validate_with_saebench(data)  # SAEBench's BaseEvalOutput subclass accepts it
        assert obj.eval_type_id == "ps_eval" and obj.sae_lens_release_id == release and obj.sae_lens_id == "custom_sae"
        assert obj.sae_bench_commit_hash.startswith("sae-bench 0.6")  # the installed SAEBench, not a made-up commit
        assert data == first[f"{release}_custom_sae"]
        m = data["eval_result_metrics"]["ps_eval"]
        assert m["tp"] + m["fp"] + m["tn"] + m["fn"] == data["eval_result_metrics"]["counts"]["pairs_scored"] > 0
    ident = json.loads(results_filepath(out, "my/identity", "custom_sae").read_text())
    assert ident["eval_result_metrics"]["feature_cosine"] is None  # a module without weights
    assert json.loads(results_filepath(out, "topk", "custom_sae").read_text())[
        "eval_result_metrics"]["feature_cosine"]["enc_cos_same"] is not None

    before = {p.name: p.read_text() for p in out.iterdir()}
    assert run_eval(cfg, selected, "cpu", str(out), model=minilm) == {}  # finished: skipped, files untouched
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    forced = run_eval(cfg, selected[1:], "cpu", str(out), force_rerun=True, model=minilm)
    assert list(forced) == ["topk_custom_sae"]
    again = json.loads(results_filepath(out, "topk", "custom_sae").read_text())
    old = json.loads(before["topk_custom_sae_eval_results.json"])
    assert again["eval_id"] != old["eval_id"]  # a new run ...
    assert again["eval_result_metrics"] == old["eval_result_metrics"]  # ... with the same numbers
    assert again["eval_result_details"] == old["eval_result_details"]


def test_run_eval_needs_a_hook_and_the_release_directory(tmp_path, minilm, wic_dev):
    cfg = PSEvalSAEBenchConfig(model_name="minilm", dataset=f"wic:{wic_dev}", max_pairs=10)
    with pytest.raises(ConfigError, match="hook_name"):
        run_eval(cfg, [("ident", Identity())], "cpu", str(tmp_path), model=minilm)
    with pytest.raises(ConfigError, match="pairs"):
        run_eval(cfg, ["not-a-pair"], "cpu", str(tmp_path), model=minilm)  # type: ignore[list-item]
    try:
        import sae_lens  # noqa: F401
    except ImportError:
        # a (release, sae_id) pair is read through SAELens' release directory
        with pytest.raises(MissingResourceError, match="sae_lens"):
            run_eval(cfg, [("gpt2-small-res-jb", "blocks.8.hook_resid_pre")], "cpu", str(tmp_path), model=minilm)
    assert not list(tmp_path.glob("*_eval_results.json"))


def test_report_of_a_saebench_results_folder(tmp_path, minilm, wic_dev, topk):
    """SAEBench's own output folder (a plain module without an SAE config beside a TopK SAE) is a report's input."""
    pytest.importorskip("sae_bench.evals.base_eval_output")
    pytest.importorskip("matplotlib")
    from pseval.study.cells_csv import read_cells_csv
    from pseval.study.report import write_report

    cfg = PSEvalSAEBenchConfig(model_name="minilm", dataset=f"wic:{wic_dev}", hook_name=HOOK, max_pairs=100)
    results = run_eval(cfg, [("plain", Identity()), ("topk", topk)], "cpu", str(tmp_path / "eval_results" / "ps_eval"),
                       model=minilm)
    md, _ = write_report([tmp_path], tmp_path / "report", n_boot=50, inspect=False, log=lambda _: None)
    rows = {r["sae"]: r for r in read_cells_csv(tmp_path / "report" / "cells.csv")}
    assert len(rows) == 2
    for data in results.values():
        assert float(rows[data["sae_name"]]["f1"]) == data["eval_result_metrics"]["ps_eval"]["f1"]
    assert "2 cell(s) of 2 SAE(s) at 1 hook(s)" in md.read_text()


def test_llm_dtype_is_model_dtype_and_a_given_model_keeps_its_own(tmp_path, minilm, wic_dev):
    assert PSEvalSAEBenchConfig(llm_dtype="bfloat16").model_dtype == "bfloat16"
    with pytest.raises(ConfigError, match="name one setting"):
        PSEvalSAEBenchConfig(llm_dtype="bfloat16", model_dtype="float16")
    cfg = PSEvalSAEBenchConfig(model_name="minilm", dataset=f"wic:{wic_dev}", hook_name=HOOK, max_pairs=20,
                               controls=0)
    (rec,) = run_eval(cfg, [("ident", Identity())], "cpu", str(tmp_path / "a"), model=minilm).values()
    assert rec["eval_config"]["model_dtype"] == "float32"  # the float32 model handed over, as it is
    asked = PSEvalSAEBenchConfig(model_name="minilm", dataset=f"wic:{wic_dev}", hook_name=HOOK, max_pairs=20,
                                 controls=0, llm_dtype="bfloat16")
    with pytest.raises(ConfigError, match="already loaded in float32"):
        run_eval(asked, [("ident", Identity())], "cpu", str(tmp_path / "b"), model=minilm)
