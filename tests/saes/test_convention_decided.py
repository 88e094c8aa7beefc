"""The activation convention is never guessed: the SAE's config (model_from_pretrained_kwargs, a training-runner
config's defaults, a recorded value) or the explicit option decides it, or pseval refuses in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pseval.cli import main
from pseval.errors import ConfigError
from pseval.saes.conventions import HF, TL_CENTERED, check_default_convention, convention_of, set_convention
from pseval.saes.formats.detect import load_any
from tests.conftest import tiny_model
from tests.saes.fork_layout import fork_runner_config, write_fork_checkpoint

HOOK = "blocks.1.hook_resid_post"


def _fork(tmp_path, model_name: str, **overrides):
    cfg = fork_runner_config(64, 256, "topk", 8, HOOK, 1, model_name, **overrides)
    write_fork_checkpoint(tmp_path / "sae", cfg)
    return tmp_path / "sae"


def test_kwargs_decide_whatever_the_model_is_called(tmp_path):
    # The authors' runner config carries model_from_pretrained_kwargs {}: TransformerLens' defaults, so centred,
    # also for a model name without "gpt2" in it (the old guess skipped the centring there).
    sae = load_any(_fork(tmp_path, "tiny-stories-1L-21M"))
    assert convention_of(sae) == TL_CENTERED
    assert "model_from_pretrained_kwargs" in sae.cfg.metadata.extra["activation_convention_source"]
    off = load_any(_fork(tmp_path / "b", "gpt2-small", model_from_pretrained_kwargs={"center_writing_weights": False}))
    assert convention_of(off) == HF
    assert off.cfg.to_dict()["metadata"]["activation_convention_source"] == \
        "model_from_pretrained_kwargs.center_writing_weights=false"


def test_undecided_is_refused_and_the_option_decides(tmp_path):
    # Neither kwargs nor a runner config (SAE.save_model's own cfg.json has neither lr nor training_tokens).
    d = tmp_path / "plain"
    cfg = {"d_in": 64, "d_sae": 256, "dtype": "float32", "device": "cpu", "model_name": "gpt2", "hook_name": HOOK,
           "hook_layer": 1, "hook_head_index": None, "activation_fn_str": "relu", "apply_b_dec_to_input": False,
           "finetuning_scaling_factor": False, "sae_lens_training_version": "3.4.1", "prepend_bos": True,
           "dataset_path": "x", "dataset_trust_remote_code": True, "context_size": 128,
           "normalize_activations": "none", "k": 1, "jump": 0.001}
    write_fork_checkpoint(d, cfg)
    sae = load_any(d)
    assert sae.cfg.metadata.extra["activation_convention"] is None
    with pytest.raises(ConfigError, match=r"^plain: .*tl_centered.*hf.*pass --sae-convention hf\|tl_centered"):
        set_convention(sae, None, "plain")
    set_convention(sae, TL_CENTERED, "plain")
    assert convention_of(sae) == TL_CENTERED
    assert sae.cfg.metadata.extra["activation_convention_source"] == "the explicit option"


def test_option_cannot_contradict_an_explicit_config(tmp_path):
    off = load_any(_fork(tmp_path, "gpt2", model_from_pretrained_kwargs={"center_writing_weights": False}))
    with pytest.raises(ConfigError, match="the option says 'tl_centered' but its config says 'hf'"):
        set_convention(off, TL_CENTERED, "off")
    on = load_any(_fork(tmp_path / "b", "gpt2"))  # a TransformerLens default: the option may override it
    set_convention(on, HF, "on")
    assert convention_of(on) == HF


def test_default_centring_is_refused_for_a_model_without_layer_norm(tmp_path):
    sae = load_any(_fork(tmp_path, "some-llama"))
    check_default_convention(sae, tiny_model("gpt2"), "sae")  # LayerNorm: TransformerLens centres it
    with pytest.raises(ConfigError, match="no LayerNorm; pass --sae-convention"):
        check_default_convention(sae, tiny_model("llama"), "sae")


@pytest.mark.slow
def test_eval_refuses_before_the_model_and_records_the_source(tmp_path, tiny_gpt2_dir, wic_dev, monkeypatch):
    d = tmp_path / "plain"
    cfg = fork_runner_config(64, 256, "topk", 8, HOOK, 1, "tiny")
    del cfg["model_from_pretrained_kwargs"], cfg["lr"], cfg["training_tokens"], cfg["l1_coefficient"]
    write_fork_checkpoint(d, cfg)
    args = ["eval", "--model", str(tiny_gpt2_dir), "--sae", str(d), "--data", f"wic:{wic_dev}", "--max-pairs", "60",
            "--multi-token", "last"]
    import pseval.models.loading as loading

    with monkeypatch.context() as m:  # refused before the model is loaded
        m.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
        res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "pass --sae-convention" in res.output, res.output
    outs = {}
    for conv in ("tl_centered", "hf"):
        out = tmp_path / f"{conv}.json"
        with pytest.warns(UserWarning, match="trained on model 'tiny'"):
            res = CliRunner().invoke(main, [*args, "--sae-convention", conv, "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs[conv] = json.loads(out.read_text())
        meta = outs[conv]["sae_cfg_dict"]["metadata"]
        assert (meta["activation_convention"], meta["activation_convention_source"]) == (conv, "the explicit option")
    # The convention changes what the SAE reads: some pair's features differ.
    feats = {c: [(d["feature_1"], d["feature_2"]) for d in r["eval_result_details"]] for c, r in outs.items()}
    assert feats["tl_centered"] != feats["hf"]
