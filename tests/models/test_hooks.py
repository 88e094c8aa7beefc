"""Hook resolution for every model family, checked against hidden_states on tiny random models."""

from __future__ import annotations

import pytest
import torch

from pseval.errors import HookError
from pseval.models.capture import hooked
from pseval.models.hooks import HOOK_KINDS, expand_hook_pattern, resolve_hook, valid_hook_names
from tests.conftest import FAMILIES, tiny_model


def _capture(model, names, stop_early=True):
    got = {}
    ids = torch.randint(5, 1000, (2, 9))
    with hooked(model, names, lambda n, t: got.__setitem__(n, t.detach().clone()), stop_early=stop_early) as run:
        run(input_ids=ids, attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    return got, ref.hidden_states


@pytest.mark.parametrize("family", FAMILIES)
def test_every_hook_resolves_with_shape(family):
    model = tiny_model(family)
    names = valid_hook_names(model)
    assert len(names) == 3 * len(HOOK_KINDS)
    got, _ = _capture(model, names)
    assert set(got) == set(names)
    for t in got.values():
        assert t.shape == (2, 9, 64)


@pytest.mark.parametrize("family", FAMILIES)
def test_resid_matches_hidden_states(family):
    model = tiny_model(family)
    n = 3
    names = [f"blocks.{L}.hook_resid_post" for L in range(n)] + [f"blocks.{L}.hook_resid_pre" for L in range(n)]
    got, hs = _capture(model, names, stop_early=False)
    for L in range(n):
        torch.testing.assert_close(got[f"blocks.{L}.hook_resid_pre"], hs[L])
    # Decoders apply their final norm to the last hidden state, so resid_post equals hidden_states[L+1]
    # for every block but the last; BERT has no final norm.
    last = n if family == "bert" else n - 1
    for L in range(last):
        torch.testing.assert_close(got[f"blocks.{L}.hook_resid_post"], hs[L + 1])


# BERT is post-LN: its sublayer outputs pass through LayerNorm before the stream, so no such sum.
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "bert"])
def test_resid_post_is_pre_plus_attn_and_mlp_for_pre_ln_families(family):
    model = tiny_model(family)
    names = ["blocks.1.hook_resid_pre", "blocks.1.hook_attn_out", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post"]
    got, _ = _capture(model, names)
    total = got["blocks.1.hook_resid_pre"] + got["blocks.1.hook_attn_out"] + got["blocks.1.hook_mlp_out"]
    torch.testing.assert_close(total, got["blocks.1.hook_resid_post"], atol=1e-5, rtol=1e-4)


def test_bert_hooks_are_the_documented_modules():
    model = tiny_model("bert")
    assert resolve_hook(model, "blocks.2.hook_attn_out").module is model.encoder.layer[2].attention.output.dense
    assert resolve_hook(model, "blocks.2.hook_mlp_out").module is model.encoder.layer[2].output.dense
    assert resolve_hook(model, "blocks.2.hook_resid_post").module is model.encoder.layer[2]


def test_early_stop_gives_same_values_and_skips_later_blocks():
    model = tiny_model("gpt2")
    ids = torch.randint(5, 1000, (2, 9))
    results = {}
    for stop in (True, False):
        calls, got = [], {}
        handle = model.transformer.h[2].register_forward_hook(lambda *a, c=calls: c.append(1))
        with hooked(model, ["blocks.1.hook_mlp_out"], lambda n, t, g=got: g.__setitem__(n, t.clone()),
                    stop_early=stop) as run:
            run(input_ids=ids)
        handle.remove()
        results[stop] = (calls, got["blocks.1.hook_mlp_out"])
    assert results[True][0] == []  # block 2 never ran
    assert results[False][0] == [1]
    torch.testing.assert_close(results[True][1], results[False][1])


def test_unknown_hook_lists_valid_names():
    model = tiny_model("llama")
    with pytest.raises(HookError, match="blocks.0.hook_resid_pre"):
        resolve_hook(model, "blocks.0.hook_resid_mid")
    with pytest.raises(HookError, match="3 blocks"):
        resolve_hook(model, "blocks.7.hook_resid_post")


def test_module_path_and_glob():
    model = tiny_model("gpt2")
    assert resolve_hook(model, "transformer.h.1.mlp").module is model.transformer.h[1].mlp
    assert expand_hook_pattern(model, "blocks.*.hook_attn_out") == [f"blocks.{i}.hook_attn_out" for i in range(3)]


def test_minilm_hooks_real(minilm):
    ids = minilm.tokenizer(["The bank of the river."], return_tensors="pt")
    got = {}
    names = ["blocks.3.hook_resid_post", "blocks.5.hook_resid_post", "blocks.0.hook_resid_pre"]
    with hooked(minilm.model, names, lambda n, t: got.__setitem__(n, t.clone()), stop_early=False) as run:
        run(**ids)
    with torch.no_grad():
        hs = minilm.model(**ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(got["blocks.3.hook_resid_post"], hs[4])
    torch.testing.assert_close(got["blocks.5.hook_resid_post"], hs[6])
    torch.testing.assert_close(got["blocks.0.hook_resid_pre"], hs[0])
    assert got["blocks.3.hook_resid_post"].shape[-1] == 384
