"""PS-Eval on the real MiniLM over WiC dev, checked against an independent plain-transformers computation."""

from __future__ import annotations

import torch

from pseval.data.pairs import WordInContextPair
from pseval.data.wic import load_wic
from pseval.metrics.ps_eval import PSEvalConfig, collect_pair_activations, score_sae
from pseval.metrics.ps_eval.runner import select_balanced
from pseval.models.readout import ReadoutConfig
from pseval.saes import identity_sae

HOOK = "blocks.3.hook_resid_post"


def _reference_feature(lm, context: str, word: str) -> int | None:
    """The reference's rule, written independently: single-token word, last occurrence, argmax of hidden_states."""
    tok = lm.tokenizer
    pieces = tok(word, add_special_tokens=False)["input_ids"]
    if len(pieces) != 1:
        return None
    ids = tok(f"{context} The {word} means", return_tensors="pt")
    where = (ids["input_ids"][0] == pieces[0]).nonzero().flatten()
    with torch.no_grad():
        hs = lm.model(**ids, output_hidden_states=True).hidden_states[4][0]  # resid_post of block 3
    return int(hs[int(where[-1])].argmax())


def test_identity_matches_independent_computation(minilm, wic_dev):
    pairs = load_wic(wic_dev)
    pa = collect_pair_activations(minilm, pairs, [HOOK])[HOOK]
    res = score_sae(pa, identity_sae(384))
    c = res.confusion
    counts = res.counts
    assert c.total == counts["pairs_scored"]
    assert counts["pairs_valid"] + sum(counts["dropped"].values()) == counts["pairs_read"] == 638
    assert set(counts["dropped"]) <= {"multi_token"}

    # Independent: per pair, two full forwards, the argmax of hidden_states at the template token.
    labels, same_feature = [], []
    for p in pairs:
        f1 = _reference_feature(minilm, p.context_1, p.target)
        f2 = _reference_feature(minilm, p.context_2, p.target)
        if f1 is None or f2 is None:
            continue
        labels.append(p.same_sense)
        same_feature.append(f1 == f2)
    keep = select_balanced(labels, "paper", 0)
    tp = sum(labels[i] and same_feature[i] for i in keep)
    fp = sum((not labels[i]) and same_feature[i] for i in keep)
    tn = sum((not labels[i]) and not same_feature[i] for i in keep)
    fn = sum(labels[i] and not same_feature[i] for i in keep)
    assert (c.tp, c.fp, c.tn, c.fn) == (tp, fp, tn, fn)
    assert counts["pairs_valid"] == len(labels)


def test_paper_balance_cuts_same_sense_by_order():
    labels = [True, True, False, True, False, True]
    assert select_balanced(labels, "paper", 0) == [0, 1, 2, 4]
    assert select_balanced(labels, "none", 0) == list(range(6))
    exact = select_balanced(labels, "exact", 0)
    assert sum(labels[i] for i in exact) == 2 and len(exact) == 4
    assert exact == select_balanced(labels, "exact", 0)


def test_context_readout_and_tiny_causal_model(bpe_tokenizer):
    from pseval.models.loading import LoadedModel
    from tests.conftest import tiny_model

    lm = LoadedModel(tiny_model("gpt2", vocab_size=len(bpe_tokenizer)), bpe_tokenizer, "tiny-gpt2", "memory")
    pairs = [WordInContextPair("bank", "n", "the bank of the river", "a bank loan", (4, 8), (2, 6), False, "a"),
             WordInContextPair("bank", "n", "the bank of the river", "on the bank of a lake", (4, 8), (7, 11),
                               True, "b"),
             WordInContextPair("bank", "n", "the river", "a bank", None, (2, 6), True, "c")]
    cfg = PSEvalConfig(readout=ReadoutConfig(position="context", multi_token="mean"), balance="none")
    pa = collect_pair_activations(lm, pairs, ["blocks.1.hook_resid_post"], cfg)["blocks.1.hook_resid_post"]
    assert pa.counts["dropped"] == {"target_not_in_context": 1}
    assert pa.acts_1.shape == (2, 64)
    # The same context gives the same vector wherever it is batched.
    torch.testing.assert_close(pa.acts_1[0], pa.acts_1[1])
    res = score_sae(pa, identity_sae(64))
    assert res.confusion.total == 2
