"""The PS-Eval authors' own checkpoints (SAELens 3.4.1 fork layout) load as they are and encode as the fork does."""

from __future__ import annotations

import json

import pytest
import torch

from pseval.errors import SAEFormatError
from pseval.saes.formats.detect import detect_format, load_any
from tests.saes.fork_layout import fork_runner_config, write_fork_checkpoint

HOOK = "blocks.1.hook_resid_post"


def _fork_encode(state: dict[str, torch.Tensor], x: torch.Tensor, activation_fn: str, k: int,
                 apply_b_dec: bool) -> torch.Tensor:
    """The fork's SAE.encode: x - b_dec (if applied), @ W_enc + b_enc, then its activation (TopK: top k of the
    pre-activations, ReLU of their values; jump-relu: x * (x > 0.001), its fixed default)."""
    pre = (x - state["b_dec"] * apply_b_dec) @ state["W_enc"] + state["b_enc"]
    if activation_fn == "relu":
        return torch.relu(pre)
    if activation_fn == "jump-relu":
        return pre * (pre > 0.001)
    top = torch.topk(pre, k=k, dim=-1)
    return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))


@pytest.mark.parametrize(("activation_fn", "k"), [("relu", 1), ("topk", 5), ("jump-relu", 1)])
def test_fork_checkpoint_loads_and_encodes_like_the_fork(tmp_path, activation_fn, k):
    cfg = fork_runner_config(16, 64, activation_fn, k, HOOK, 1, "gpt2-small")
    state = write_fork_checkpoint(tmp_path / "ckpt", cfg)
    assert detect_format(tmp_path / "ckpt") == "saelens_legacy"
    sae = load_any(tmp_path / "ckpt")
    assert sae.architecture == {"relu": "standard", "topk": "topk", "jump-relu": "jumprelu"}[activation_fn]
    assert sae.cfg.k == (k if activation_fn == "topk" else None)
    x = torch.randn(50, 16, generator=torch.Generator().manual_seed(3))
    want = _fork_encode(state, x, activation_fn, k, cfg["apply_b_dec_to_input"])
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(x), want, atol=1e-5, rtol=1e-5)
    assert (want > 0).sum(-1).float().mean() > 0  # codes are not all zero: the comparison means something
    # The training-only tensor is ignored, and named where the record keeps the SAE's config.
    assert sae.cfg.metadata.extra["ignored_tensors"] == ["qz_loga"]
    assert sae.cfg.to_dict()["metadata"]["ignored_tensors"] == ["qz_loga"]
    assert sae.cfg.metadata.sae_lens_version == "3.4.1" and sae.cfg.metadata.hook_name == HOOK


def test_fork_cfg_is_the_plain_json_dump(tmp_path):
    # Guard on the fixture: one line, json.dump's default separators, the runner fields the loader must tolerate.
    cfg = fork_runner_config(16, 64, "topk", 5, HOOK, 1, "gpt2-small")
    write_fork_checkpoint(tmp_path / "c", cfg)
    text = (tmp_path / "c" / "cfg.json").read_text()
    assert "\n" not in text and text == json.dumps(cfg)
    assert {"activation_fn", "k", "jump", "model_from_pretrained_kwargs"} <= set(json.loads(text))
    assert "activation_fn_kwargs" not in text and "architecture" not in text


def test_disagreeing_k_spellings_are_refused(tmp_path):
    cfg = fork_runner_config(16, 64, "topk", 5, HOOK, 1, "gpt2-small", activation_fn_kwargs={"k": 7})
    write_fork_checkpoint(tmp_path / "c", cfg)
    with pytest.raises(SAEFormatError, match=r"cfg.json.*\bk\b.*activation_fn_kwargs.k=7"):
        load_any(tmp_path / "c")


def test_qz_loga_is_still_refused_beside_a_saelens_6_config(tmp_path):
    # Only the fork's pre-6.0 flat configs come with it; in a v6 folder an unknown tensor still means a mismatch.
    from safetensors.torch import load_file, save_file

    from pseval.saes import SAEConfig, save_sae
    from pseval.saes.standard import StandardSAE

    folder = save_sae(StandardSAE(SAEConfig("standard", 8, 16)), tmp_path / "v6")
    tensors = load_file(str(folder / "sae_weights.safetensors")) | {"qz_loga": torch.zeros(16)}
    save_file(tensors, str(folder / "sae_weights.safetensors"))
    with pytest.raises(SAEFormatError, match="qz_loga"):
        load_any(folder)
