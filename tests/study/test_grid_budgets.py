"""Per-grid training budgets ([[grid]] train_tokens): planned, refused when ambiguous, trained as asked, and absent
from the settings key of configs that do not use them."""

from __future__ import annotations

import pytest

from pseval.errors import ConfigError
from pseval.models.loading import load_model
from pseval.study.sweep import run_sweep
from pseval.study.sweep_config import load_sweep_config
from pseval.study.units import plan_saes
from tests.conftest import sweep_toml

# The tiny sweep with a second grid: ReLU SAEs at one of its hooks on twice the tokens.
SECOND = """
[[grid]]
hooks = ["blocks.1.hook_mlp_out"]
architectures = ["standard"]
expansions = [4]
identity = false
train_tokens = 6000
"""


def _config(tmp_path, tiny_gpt2_dir, wic_dev, extra: str):
    text = sweep_toml(tiny_gpt2_dir, wic_dev).replace("[eval]", extra + "\n[eval]")
    p = tmp_path / "budgets.toml"
    p.write_text(text)
    return load_sweep_config(p)


def test_each_grid_trains_on_its_own_budget(tmp_path, tiny_gpt2_dir, wic_dev):
    cfg = _config(tmp_path, tiny_gpt2_dir, wic_dev, SECOND)
    plans = {(p.hook, p.label): p.tokens for p in plan_saes(cfg, load_model(str(tiny_gpt2_dir)))}
    assert plans[("blocks.1.hook_mlp_out", "standard-x4-cdefault")] == 6000
    assert plans[("blocks.0.hook_attn_out", "topk-x2-k8")] == 3000  # [activations].train_tokens
    assert plans[("blocks.0.hook_attn_out", "identity")] == 0
    assert cfg.max_train_tokens == 6000 and cfg.settings()["grids"][1]["train_tokens"] == 6000
    store = run_sweep(cfg, tmp_path / "run", log=lambda _: None, progress=False)
    steps = {(r.eval_config.hook_name, r.sae_name): r.eval_result_metrics.training.steps
             for r in store.records() if r.sae_name != "identity"}
    assert steps[("blocks.1.hook_mlp_out", "standard-x4-cdefault")] == 6000 // 128
    assert steps[("blocks.1.hook_resid_post", "topk-x2-k8")] == 3000 // 128


def test_one_sae_with_two_budgets_is_refused(tmp_path, tiny_gpt2_dir, wic_dev):
    clash = SECOND.replace("blocks.1.hook_mlp_out", "blocks.1.hook_attn_out").replace(
        'architectures = ["standard"]\nexpansions = [4]', 'architectures = ["topk"]\nexpansions = [2]\nk = [8]')
    cfg = _config(tmp_path, tiny_gpt2_dir, wic_dev, clash)
    with pytest.raises(ConfigError, match=r"\[\[grid\]\] #2 plans topk-x2-k8 at blocks.1.hook_attn_out with "
                                          r"train_tokens = 6000, \[\[grid\]\] #1 with 3000"):
        plan_saes(cfg, load_model(str(tiny_gpt2_dir)))


def test_grids_without_budgets_keep_their_settings_key(tmp_path, tiny_gpt2_dir, wic_dev):
    cfg = _config(tmp_path, tiny_gpt2_dir, wic_dev, "")
    assert all("train_tokens" not in g for g in cfg.settings()["grids"])  # folders swept before still resume
    bad = SECOND.replace("train_tokens = 6000", "train_tokens = 0")
    with pytest.raises(ConfigError, match=r"\[\[grid\]\] #2.train_tokens = 0: expected an integer >= 1"):
        _config(tmp_path, tiny_gpt2_dir, wic_dev, bad)
