"""The readout-activation cache returns exactly what a fresh collection gives, without running the model."""

from __future__ import annotations

import torch

from pseval.data.wic import load_wic
from pseval.ps_eval import PSEvalSettings, score_sae
from pseval.ps_eval.cache import cached_pair_activations
from pseval.saes import identity_sae

HOOKS = ["blocks.2.hook_attn_out", "blocks.4.hook_resid_post"]


def test_cache_round_trip(minilm, wic_dev, tmp_path, monkeypatch):
    pairs = load_wic(wic_dev)[:50]
    cfg = PSEvalSettings()
    first = cached_pair_activations(minilm, "minilm", pairs, HOOKS, cfg, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2

    def boom(*a, **k):
        raise AssertionError("the model ran although everything was cached")

    monkeypatch.setattr(minilm.model, "forward", boom)
    second = cached_pair_activations(minilm, "minilm", pairs, HOOKS, cfg, tmp_path)
    for hook in HOOKS:
        a, b = first[hook], second[hook]
        assert torch.equal(a.acts_1, b.acts_1) and torch.equal(a.acts_2, b.acts_2)
        assert torch.equal(a.same_sense, b.same_sense) and a.pair_index == b.pair_index and a.counts == b.counts
        assert score_sae(a, identity_sae(384)).metrics == score_sae(b, identity_sae(384)).metrics
    other = cached_pair_activations  # a different readout is a different entry
    monkeypatch.undo()
    other(minilm, "minilm", pairs, HOOKS[:1], PSEvalSettings(seed=1, balance="exact"), tmp_path)
    assert len(list(tmp_path.iterdir())) == 3


def test_cache_keeps_the_reference_protocols_unscored_pairs(tmp_path):
    # Protocol reference also reads the valid pairs balancing left out (for the reference's cosine sets): a cached
    # entry must give them back, or a cache hit would silently drop the reference's cosines.
    from pseval.ps_eval.cache import load_pair_activations, save_pair_activations
    from pseval.ps_eval.scoring import PairActivations

    pa = PairActivations("h", torch.randn(3, 4), torch.randn(3, 4), torch.tensor([True, False, True]), [0, 1, 3],
                         counts={"pairs_read": 5}, unscored_1=torch.randn(1, 4), unscored_2=torch.randn(1, 4),
                         unscored_same=torch.tensor([True]), unscored_index=[4])
    save_pair_activations(pa, tmp_path / "e")
    back = load_pair_activations(tmp_path / "e")
    assert back is not None and back.unscored_index == [4] and back.unscored_same.tolist() == [True]
    assert torch.equal(back.unscored_1, pa.unscored_1) and torch.equal(back.unscored_2, pa.unscored_2)
