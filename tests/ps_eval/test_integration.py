"""PS-Eval on the real MiniLM over WiC dev, checked against an independent plain-transformers computation."""

from __future__ import annotations

import pytest
import torch

from pseval.data.pairs import WordInContextPair
from pseval.data.wic import load_wic
from pseval.ps_eval import PSEvalSettings, collect_pair_activations, score_sae
from pseval.saes import identity_sae

pytestmark = pytest.mark.slow

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
    labels, valid, same_feature = [], [], []
    for p in pairs:
        f1 = _reference_feature(minilm, p.context_1, p.target)
        f2 = _reference_feature(minilm, p.context_2, p.target)
        labels.append(p.same_sense)
        valid.append(f1 is not None and f2 is not None)
        same_feature.append(valid[-1] and f1 == f2)
    # The reference's balancing, written out: all valid label-0 rows (cnt_0), then the valid rows among the first
    # cnt_0 label-1 rows of the file.
    cnt_0 = sum(v and not y for v, y in zip(valid, labels, strict=True))
    first_label_1 = [i for i, y in enumerate(labels) if y][:cnt_0]
    keep = [i for i, (v, y) in enumerate(zip(valid, labels, strict=True)) if v and (not y or i in first_label_1)]
    tp = sum(labels[i] and same_feature[i] for i in keep)
    fp = sum((not labels[i]) and same_feature[i] for i in keep)
    tn = sum((not labels[i]) and not same_feature[i] for i in keep)
    fn = sum(labels[i] and not same_feature[i] for i in keep)
    assert (c.tp, c.fp, c.tn, c.fn) == (tp, fp, tn, fn)
    assert counts["pairs_valid"] == sum(valid)
    # WiC dev's invalid label-1 rows fall inside the first cnt_0, so fewer are scored than the valid-prefix rule's.
    valid_same = sum(v and y for v, y in zip(valid, labels, strict=True))
    assert counts["scored_same"] == sum(labels[i] for i in keep) < min(cnt_0, valid_same)


def test_context_readout_and_tiny_causal_model(bpe_tokenizer):
    from pseval.models.loading import LoadedModel
    from tests.conftest import tiny_model

    lm = LoadedModel(tiny_model("gpt2", vocab_size=len(bpe_tokenizer)), bpe_tokenizer, "tiny-gpt2", "memory")
    pairs = [WordInContextPair("bank", "n", "the bank of the river", "a bank loan", (4, 8), (2, 6), False, "a"),
             WordInContextPair("bank", "n", "the bank of the river", "on the bank of a lake", (4, 8), (7, 11),
                               True, "b"),
             WordInContextPair("bank", "n", "the river", "a bank", None, (2, 6), True, "c")]
    cfg = PSEvalSettings(readout="context", multi_token="mean", balance="none")
    pa = collect_pair_activations(lm, pairs, ["blocks.1.hook_resid_post"], cfg)["blocks.1.hook_resid_post"]
    assert pa.counts["dropped"] == {"target_not_in_context": 1}
    assert pa.acts_1.shape == (2, 64)
    # The same context gives the same vector wherever it is batched.
    torch.testing.assert_close(pa.acts_1[0], pa.acts_1[1])
    res = score_sae(pa, identity_sae(64))
    assert res.confusion.total == 2
