"""PS-Eval's statistics on synthetic SAEs whose answer is known: planted per-sense features, random features, one
always-on feature; hand-computed top-k sets, Jaccard, PS-Eval@k, cosines and the signed-argmax rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pseval.metrics.statistics import bits, bootstrap_metrics
from pseval.ps_eval import PSEvalSettings, score_sae
from pseval.ps_eval.codes import top_k_sets
from pseval.ps_eval.concentration import most_common_features
from pseval.ps_eval.scoring import PairActivations
from pseval.saes import SAEConfig, identity_sae
from pseval.saes.standard import StandardSAE
from tests.ps_eval.planted import SENSES, sense_pairs

D_IN = 16


def _sense_pairs(n: int, seed: int = 0) -> tuple[PairActivations, torch.Tensor, torch.Tensor]:
    """Planted pairs in 16 dimensions with N(0, 0.1²) noise; returns the pairs and both senses."""
    return sense_pairs(n, D_IN, 0.1, seed)


def _planted_sae(always_on: bool = False) -> StandardSAE:
    """Latent s reads sense direction s (ReLU(x_s - 1)); with always_on, latent 8 is 10 on every input."""
    sae = StandardSAE(SAEConfig("standard", D_IN, SENSES + 1))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.W_enc[:SENSES, :SENSES] = torch.eye(SENSES)
        sae.b_enc.fill_(-1.0)
        sae.b_enc[SENSES] = 10.0 if always_on else -1.0
        sae.b_dec.zero_()
    return sae


def test_planted_per_sense_features_separate_senses_perfectly():
    pa, s1, s2 = _sense_pairs(200)
    res = score_sae(pa, _planted_sae())
    assert torch.equal(res.features_1, s1) and torch.equal(res.features_2, s2)
    assert res.confusion.specificity == 1.0 and res.confusion.recall == 1.0
    st = res.statistics()
    assert st["threshold_free.auc_cosine"] == 1.0 and st["threshold_free.auc_jaccard"] == 1.0
    assert st["ps_eval_at_k.specificity"] == 1.0  # one active latent per context: overlap iff same sense
    assert st["concentration.effective_top_features"] == pytest.approx(SENSES, rel=0.05)
    ci = res.intervals(n_boot=300)
    assert ci["threshold_free.auc_cosine"].low == 1.0 and ci["ps_eval.specificity"].low == 1.0


def test_random_features_give_chance_auc_inside_the_interval():
    contains = {"threshold_free.auc_cosine": 0, "threshold_free.auc_jaccard": 0}
    for seed in range(10):
        gen = torch.Generator().manual_seed(100 + seed)
        a1, a2 = torch.randn(200, D_IN, generator=gen), torch.randn(200, D_IN, generator=gen)
        same = torch.rand(200, generator=gen) < 0.5  # labels unrelated to the contexts
        torch.manual_seed(seed)
        res = score_sae(PairActivations("h", a1, a2, same, list(range(200)), {}),
                        StandardSAE(SAEConfig("standard", D_IN, 64)), PSEvalSettings(bootstrap_resamples=300))
        ci = res.intervals(n_boot=300, seed=seed)
        for k in contains:
            contains[k] += ci[k].low <= 0.5 <= ci[k].high
    assert all(v >= 8 for v in contains.values()), contains  # a 95% interval: ~9.5 of 10 expected


def test_interval_shrinks_as_pairs_grow():
    widths = {}
    for n in (100, 1600):
        gen = torch.Generator().manual_seed(7)
        a1 = torch.randn(n, D_IN, generator=gen)
        same = torch.rand(n, generator=gen) < 0.5
        a2 = torch.where(same[:, None], a1 + torch.randn(n, D_IN, generator=gen), torch.randn(n, D_IN, generator=gen))
        torch.manual_seed(0)
        res = score_sae(PairActivations("h", a1, a2, same, list(range(n)), {}),
                        StandardSAE(SAEConfig("standard", D_IN, 64)))
        ci = res.intervals(n_boot=400)
        widths[n] = {k: ci[k].high - ci[k].low for k in ("ps_eval.f1", "ps_eval.specificity",
                                                         "threshold_free.auc_cosine", "ceiling.auc_cosine")}
    for k, w in widths[1600].items():
        assert 0 < w < 0.5 * widths[100][k], (k, widths)  # ~1/4 expected (1/sqrt(16))


def test_one_always_on_feature_concentration_and_the_robust_variant():
    pa, s1, s2 = _sense_pairs(200, seed=1)
    res = score_sae(pa, _planted_sae(always_on=True), PSEvalSettings(exclude_dense=0.5))
    # The paper's metric: latent 8 wins every context, every pair is "same".
    assert set(res.features_1.tolist()) == set(res.features_2.tolist()) == {SENSES}
    assert res.confusion.recall == 1.0 and res.confusion.specificity == 0.0
    st = res.statistics()
    assert st["concentration.top_feature_share"] == 1.0
    assert st["concentration.effective_top_features"] == 1.0
    assert st["concentration.same_by_top_share"] == 1.0
    assert most_common_features(res.features_1.numpy(), res.features_2.numpy())[0].share == 1.0
    # The robust variant leaves latent 8 out (non-zero on every context) and recovers the planted senses.
    rb = res.robust
    assert rb.excluded == 1 and rb.reference_contexts == 400
    assert torch.equal(rb.features_1, s1) and torch.equal(rb.features_2, s2)
    assert rb.confusion.recall == 1.0 and rb.confusion.specificity == 1.0
    assert st["ps_eval_robust.f1"] == 1.0
    # ... and without the option there is no robust variant.
    assert score_sae(pa, _planted_sae(always_on=True)).robust is None


def test_top_k_sets_jaccard_and_at_k_by_hand():
    rows = torch.tensor([
        [[5, 4, 0, 0, 1, 0], [0, 4, 3, 0, 0, 0]],            # {0,1} vs {1,2}: J = 1/3, overlap
        [[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0]],            # ties to the lowest index: {0,1} vs {2,3}: J = 0
        [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],            # all zero: empty sets, J = 0, argmax 0 = 0
        [[-1, -2, -0.5, -3, -4, -5], [-1, 0, -0.5, 0, 0, 0]],  # signed: {2,0} vs {2,0}: J = 1
        [[0, 0, 0, 0, 0, 7], [0, 0, 0, 0, 2, 7]],            # fewer than k non-zero: {5} vs {4,5}: J = 1/2
    ], dtype=torch.float32)
    a1, a2 = rows[:, 0], rows[:, 1]
    assert top_k_sets(a1, 2).nonzero().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [3, 0], [3, 2], [4, 5]]
    same = torch.tensor([True, False, False, True, True])
    res = score_sae(PairActivations("h", a1, a2, same, list(range(5)), {}), identity_sae(6), PSEvalSettings(top_k=2))
    assert res.codes.jaccard.tolist() == [round(1 / 3, 6), 0.0, 0.0, 1.0, 0.5]
    # The argmax is over signed values (row 3: -0.5 at index 2, and the zero at index 1 beats every negative entry);
    # only codes with every entry exactly 0 are counted as all-zero.
    assert res.features_1.tolist() == [0, 0, 0, 2, 5] and res.features_2.tolist() == [1, 2, 0, 1, 5]
    assert res.counts["all_zero_codes"] == 2
    # PS-Eval@k: same when the sets overlap -> rows 0, 3, 4; the argmax says same for rows 2 and 4.
    at_k = res.confusion_at_k
    assert (at_k.tp, at_k.fp, at_k.tn, at_k.fn) == (3, 0, 2, 0)
    assert (res.confusion.tp, res.confusion.fp, res.confusion.tn, res.confusion.fn) == (1, 1, 1, 2)
    cos0 = (4 * 4) / (math.sqrt(25 + 16 + 1) * math.sqrt(16 + 9))
    cos3 = (1 + 0.25) / (math.sqrt(1 + 4 + 0.25 + 9 + 16 + 25) * math.sqrt(1 + 0.25))
    assert res.codes.cosine.tolist() == [round(cos0, 6), round(1 / math.sqrt(6), 6), 0.0, round(cos3, 6),
                                         round(49 / (7 * math.sqrt(53)), 6)]
    # The identity's codes are the raw activations: its share of the ceiling is exactly 1.
    st = res.statistics()
    assert st["ceiling.auc_cosine"] == st["threshold_free.auc_cosine"] > 0.5 and st["ceiling.share_cosine"] == 1.0


def test_record_intervals_are_bootstrap_metrics():
    pa, _, _ = _sense_pairs(120, seed=3)
    torch.manual_seed(0)
    res = score_sae(pa, StandardSAE(SAEConfig("standard", D_IN, 32)))
    ci = res.intervals(n_boot=500, seed=4)
    ref = bootstrap_metrics(pa.same_sense.numpy(), (res.features_1 == res.features_2).numpy(), 500, 4)
    for m, iv in ref.items():
        assert (ci[f"ps_eval.{m}"].low, ci[f"ps_eval.{m}"].high) == (iv.low, iv.high) or math.isnan(iv.low), m
    assert bits("011").tolist() == [False, True, True]


def test_concentration_by_hand():
    f1, f2 = np.array([3, 3, 5, 7]), np.array([3, 5, 5, 3])
    st = score_free_concentration(f1, f2)
    # Contexts: 3 x4, 5 x3, 7 x1 of 8; same predictions: pairs 0 (3) and 2 (5) -> 1 of 2 by feature 3.
    p = np.array([4, 3, 1]) / 8
    assert st["top_feature_share"] == 0.5 and st["same_by_top_share"] == 0.5
    assert st["effective_top_features"] == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    tops = most_common_features(f1, f2)
    assert [(t.feature, t.contexts, t.same_predictions) for t in tops] == [(3, 4, 1), (5, 3, 1), (7, 1, 0)]


def score_free_concentration(f1: np.ndarray, f2: np.ndarray) -> dict[str, float]:
    from pseval.ps_eval.concentration import concentration_replicates

    return {k: float(v[0]) for k, v in concentration_replicates(f1, f2, np.ones((1, len(f1)))).items()}


def test_an_sae_of_the_embedded_models_hub_id_fits_minilm_without_a_warning():
    """`minilm` is all-MiniLM-L6-v2: an SAE naming its Hub id is not "applied to another model"; a real other model
    still warns."""
    import warnings

    from pseval.ps_eval.scoring import check_sae_fits
    from pseval.saes import SAEConfig, SAEMetadata
    from pseval.saes.topk import TopKSAE

    def sae(model: str) -> TopKSAE:
        return TopKSAE(SAEConfig("topk", 8, 16, k=2, metadata=SAEMetadata(model_name=model, hook_name="h")))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_sae_fits(sae("sentence-transformers/all-MiniLM-L6-v2"), 8, "h", "minilm")
    with pytest.warns(UserWarning, match="applied to 'minilm'"):
        check_sae_fits(sae("gpt2"), 8, "h", "minilm")
