"""The shipped sweep configs parse and expand to the study they describe."""

from __future__ import annotations

from pathlib import Path

from pseval.study.sweep_config import load_sweep_config
from pseval.study.units import plan_saes

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_paper_minilm_plan(minilm):
    cfg = load_sweep_config(CONFIGS / "paper-minilm.toml")
    plans = plan_saes(cfg, minilm)
    hooks = {p.hook for p in plans}
    assert len(hooks) == 18  # 6 layers x 3 components
    at3 = {p.label for p in plans if p.hook == "blocks.3.hook_resid_post"}
    for arch in ("standard", "topk", "batchtopk", "jumprelu", "gated"):
        assert sum(label.startswith(arch + "-") for label in at3) == 3  # three widths
    assert cfg.datasets[0].startswith("wic:/") and cfg.datasets[0].endswith("shared/data/wic/dev")


def test_paper_gpt2_parses():
    cfg = load_sweep_config(CONFIGS / "paper-gpt2.toml")
    assert cfg.model == "gpt2" and cfg.device == "cuda"
    assert cfg.datasets == ["hf:gouki510/Wic_data_for_SAE-Eval:test"]
    assert {a for g in cfg.grids for a in g.architectures} == {"standard", "topk", "batchtopk", "jumprelu", "gated"}


def test_paper_minilm_fits_its_model():
    """Every k fits its dictionary and the context fits MiniLM's positions (what `pseval sweep` checks first)."""
    from pseval.models.loading import model_shape

    cfg = load_sweep_config(CONFIGS / "paper-minilm.toml")
    shape = model_shape(cfg.model)
    assert shape.d_model == 384 and shape.max_positions == 512
    cfg.check_model(*shape)
    assert cfg.executor == "serial" and "executor" not in cfg.settings()


def test_paper_minilm_converged_plans_the_same_study_on_twice_the_tokens(minilm):
    base_cfg = load_sweep_config(CONFIGS / "paper-minilm.toml")
    base = plan_saes(base_cfg, minilm)
    cfg = load_sweep_config(CONFIGS / "paper-minilm-converged.toml")
    plans = plan_saes(cfg, minilm)
    assert {(p.hook, p.label) for p in plans} == {(p.hook, p.label) for p in base}  # the same SAEs and baselines
    # One budget for every SAE, never below the standard config's.
    assert {p.tokens for p in plans if p.train is not None} == {400_000} and base_cfg.train_tokens == 200_000
    assert cfg.eval == base_cfg.eval  # scored exactly as the paper's study
    cfg.check_model(384, 512)
