"""TransformerLens' centred residual stream: our conversion equals a GPT-2 whose writing weights are centred.

transformer_lens itself is not installed here (it is no dependency of pseval), so the test checks the documented
formula: a model with centred writing weights has exactly the mean-removed residual stream."""

from __future__ import annotations

import copy

import torch

from pseval.models.capture import hooked
from pseval.saes import SAEConfig, SAEMetadata
from pseval.saes.conventions import TL_CENTERED, to_sae_input
from pseval.saes.standard import StandardSAE
from tests.conftest import tiny_model

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.1.hook_attn_out", "blocks.2.hook_mlp_out"]


def _centre_writing_weights(model):
    """What TransformerLens' center_writing_weights does: remove the d_model mean of everything written."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for emb in (m.transformer.wte, m.transformer.wpe):
            emb.weight -= emb.weight.mean(dim=1, keepdim=True)
        for block in m.transformer.h:
            for proj in (block.attn.c_proj, block.mlp.c_proj):  # Conv1D: out = x @ W + b, W [in, d_model]
                proj.weight -= proj.weight.mean(dim=1, keepdim=True)
                proj.bias -= proj.bias.mean()
    return m


def _capture(model, ids):
    got = {}
    with hooked(model, HOOKS, lambda n, t: got.__setitem__(n, t.clone())) as run:
        run(input_ids=ids)
    return got


def test_centring_matches_centred_writing_weights():
    hf = tiny_model("gpt2")
    tl = _centre_writing_weights(hf)
    ids = torch.randint(0, 1000, (2, 11))
    raw, centred = _capture(hf, ids), _capture(tl, ids)
    meta = SAEMetadata(extra={"activation_convention": TL_CENTERED})
    sae = StandardSAE(SAEConfig("standard", 64, 128, metadata=meta))
    for hook in HOOKS:
        assert not torch.allclose(raw[hook], centred[hook], atol=1e-3)  # the conventions really differ
        torch.testing.assert_close(to_sae_input(raw[hook], sae), centred[hook], atol=1e-4, rtol=1e-4)
    # LayerNorm ignores the mean, so the two models predict the same tokens.
    torch.testing.assert_close(hf(input_ids=ids).logits, tl(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
