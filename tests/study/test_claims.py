"""Claim verdicts on hand-built cells: holds, does not hold, inconclusive, and the unconverged mark."""

from __future__ import annotations

import numpy as np
import pytest

from pseval.metrics.confusion import metrics_from_counts
from pseval.models.hooks import parse_hook_name
from pseval.ps_eval.rows import CellRow
from pseval.study.claims import (
    HOLDS,
    INCONCLUSIVE,
    NOT_HOLDS,
    ClaimTests,
    activation_claim,
    attention_claim,
    depth_claim,
    evaluate_claims,
    frontier_claim,
    width_claim,
)


def row(hook: str, sae: str, arch: str, width: int, same_sense: np.ndarray, same_feature: np.ndarray,
        recon: tuple[float, float] | None = None, converged: bool | None = None) -> CellRow:
    """A cell as row_from_record would build it, from per-pair outcomes."""
    parsed = parse_hook_name(hook)
    layer, comp = (parsed[0], parsed[1].removeprefix("hook_")) if parsed else (None, hook)
    return CellRow(hook=hook, layer=layer, component=comp, sae=sae, architecture=arch, expansion=width,
                   dataset="wic:dev", readout="template", loss_recovered={}, counts={},
                   metrics={k: float(v) for k, v in metrics_from_counts(
                       (same_sense & same_feature).sum(), (~same_sense & same_feature).sum(),
                       (~same_sense & ~same_feature).sum(), (same_sense & ~same_feature).sum()).items()},
                   recon={"fvu": recon[0], "l0": recon[1]} if recon else {}, same_sense=same_sense,
                   same_feature=same_feature, targets=[], pos="", cos_enc=np.zeros(0), cos_dec=np.zeros(0),
                   converged=converged)


N = 400  # pairs per label in the hand-built panels
SAME = np.r_[np.ones(N, bool), np.zeros(N, bool)]
HOOK = "blocks.3.hook_resid_post"
FAST = ClaimTests(n_perm=500, n_boot=300, seed=0)


def outcomes(specificity: float, seed: int, recall: float = 0.6) -> np.ndarray:
    """'same top feature' per pair: a share `recall` of same-sense pairs and 1 - specificity of the others."""
    rng = np.random.default_rng(seed)
    return np.where(SAME, rng.random(2 * N) < recall, rng.random(2 * N) >= specificity)


def near_copy(base: np.ndarray, flips: int, seed: int) -> np.ndarray:
    """base with a few pairs' outcomes flipped: an SAE that agrees with another almost everywhere."""
    out = base.copy()
    out[np.random.default_rng(seed).choice(len(base), flips, replace=False)] ^= True
    return out


def archs(*outs: np.ndarray, converged: tuple[bool | None, ...] | None = None) -> list[CellRow]:
    names = ("standard", "topk", "jumprelu", "gated", "batchtopk")
    conv = converged or (None,) * len(outs)
    return [row(HOOK, f"{a}_x8", a, 8, SAME, o, converged=cv) for a, o, cv in zip(names, outs, conv, strict=False)]


def test_activation_claim_holds_on_a_real_difference_and_names_its_test():
    base = outcomes(0.5, 0)
    c = activation_claim(archs(base, outcomes(0.8, 1), outcomes(0.5, 2)), FAST)
    assert c.verdict == HOLDS
    assert "pair bootstrap" in c.test and "range of specificity" in c.statistic
    assert c.p_value is not None and c.p_value <= 1 / (FAST.n_perm + 1) + 1e-12  # no resample's spread reaches 0.3
    assert 0.2 < c.value < 0.4  # the observed range of specificity across the three architectures
    assert c.comparisons == 3 == len(c.intervals)  # three pairwise differences in one group
    assert not c.unconverged and c.verdict_label == HOLDS


def test_activation_claim_does_not_hold_when_every_difference_is_inside_the_margin():
    base = outcomes(0.6, 3)
    c = activation_claim(archs(base, near_copy(base, 4, 4), near_copy(base, 4, 5)), FAST)
    assert c.p_value is not None and c.p_value > FAST.alpha
    assert all(-FAST.margin < i.low and i.high < FAST.margin for i in c.intervals)
    assert c.verdict == NOT_HOLDS


def test_activation_claim_is_inconclusive_when_noise_hides_any_effect():
    # Independent SAEs of equal specificity on 800 pairs: differences of +-0.07 cannot be excluded.
    c = activation_claim(archs(outcomes(0.6, 6), outcomes(0.6, 7), outcomes(0.6, 8)), FAST)
    assert c.p_value is not None and c.p_value > FAST.alpha
    assert any(i.high > FAST.margin or i.low < -FAST.margin for i in c.intervals)
    assert c.verdict == INCONCLUSIVE


def test_highest_minus_lowest_is_not_taken_as_evidence_by_itself():
    # Five equal SAEs: the old rule (highest minus lowest, unadjusted CI) often called this a dependence. The
    # permutation null selects the extremes in every draw too.
    outs = [outcomes(0.6, 20 + k) for k in range(5)]
    c = activation_claim(archs(*outs), FAST)
    spec = [1 - o[~SAME].mean() for o in outs]
    assert c.value == pytest.approx(max(spec) - min(spec))
    assert c.p_value is not None and c.p_value > FAST.alpha and c.verdict != HOLDS


def test_verdict_on_unconverged_saes_is_marked():
    rows = archs(outcomes(0.5, 0), outcomes(0.8, 1), outcomes(0.5, 2), converged=(True, False, None))
    c = activation_claim(rows, FAST)
    assert c.verdict == HOLDS
    assert c.unconverged == [f"topk_x8 at {HOOK}"]
    assert c.verdict_label.startswith("holds (rests on 1 unconverged SAE(s): topk_x8")
    assert c.to_dict()["unconverged"] == [f"topk_x8 at {HOOK}"]


def test_width_claim_groups_by_architecture_and_hook():
    rows = [row(HOOK, f"topk_x{w}", "topk", w, SAME, outcomes(s, w)) for w, s in ((2, 0.5), (8, 0.6), (32, 0.75))]
    rows += [row(HOOK, "identity", "identity", 1, SAME, outcomes(0.1, 9))]  # the baseline is no dictionary size
    c = width_claim(rows, FAST)
    assert c.verdict == HOLDS and c.comparisons == 3
    assert c.evidence[0].startswith(f"topk at {HOOK}: specificity x2 ")


def _layered(spec_of_layer, components=("resid_post",), per_label: int = N) -> list[CellRow]:
    keep = np.r_[0:per_label, N:N + per_label]  # the first pairs of each label
    return [row(f"blocks.{L}.hook_{comp}", "topk_x8", "topk", 8, SAME[keep],
                outcomes(spec_of_layer(L, comp), 10 * L + k)[keep])
            for L in range(6) for k, comp in enumerate(components)]


def test_depth_claim_holds_fails_or_is_inconclusive():
    up = depth_claim(_layered(lambda L, c: 0.5 + 0.05 * L), FAST)
    assert up.verdict == HOLDS and up.comparisons == 1
    assert "one-sided" in up.test and "layers [3, 4, 5] minus [0, 1, 2]" in up.evidence[0]
    down = depth_claim(_layered(lambda L, c: 0.8 - 0.05 * L), FAST)  # deeper is clearly worse: upper bound < +0.05
    assert down.verdict == NOT_HOLDS and down.intervals[0].high < FAST.margin
    # Each deeper layer: a shallower layer's outcomes shuffled within each label, so the same specificity exactly,
    # on too few pairs to bound the difference.
    rows = _layered(lambda L, c: 0.6, per_label=60)
    rng = np.random.default_rng(0)
    for deep, shallow in zip(rows[3:], rows[:3], strict=True):
        y = shallow.same_sense
        deep.same_feature = shallow.same_feature.copy()
        for label in (True, False):
            deep.same_feature[y == label] = rng.permutation(shallow.same_feature[y == label])
    flat = depth_claim(rows, FAST)
    assert flat.value == pytest.approx(0.0) and flat.intervals[0].high > FAST.margin
    assert flat.verdict == INCONCLUSIVE


def test_attention_claim_needs_both_components():
    comps = ("attn_out", "mlp_out", "resid_post")
    better = attention_claim(_layered(lambda L, c: 0.8 if c == "attn_out" else 0.5, comps), FAST)
    assert better.verdict == HOLDS and "intersection-union" in better.test
    assert any("attn_out minus resid_post" in e for e in better.evidence)
    # Better than mlp_out but the same as resid_post (identical outcomes): the conjunction does not hold.
    rows = _layered(lambda L, c: 0.5 if c == "mlp_out" else 0.8, comps)
    attn = {r.layer: r for r in rows if r.component == "attn_out"}
    for r in rows:
        if r.component == "resid_post":
            r.same_feature = attn[r.layer].same_feature.copy()
    half = attention_claim(rows, FAST)
    assert half.verdict == NOT_HOLDS
    assert half.p_value is not None and half.p_value > FAST.alpha


def test_frontier_claim_holds_when_a_winner_is_worse_or_ties_and_fails_when_every_winner_is_better():
    def grid(topk: np.ndarray) -> list[CellRow]:
        base = outcomes(0.7, 30, recall=0.7)
        return [row(HOOK, "standard_x8", "standard", 8, SAME, base, recon=(0.3, 60.0)),
                row(HOOK, "topk_x8", "topk", 8, SAME, topk, recon=(0.2, 40.0)),
                row(HOOK, "gated_x8", "gated", 8, SAME, outcomes(0.2, 31), recon=(0.4, 40.0))]  # not a winner

    worse = frontier_claim(grid(outcomes(0.4, 32, recall=0.7)), FAST)
    assert worse.verdict == HOLDS and worse.comparisons == 2  # topk vs standard on specificity and F1
    assert "max-T" in worse.test and all("adjusted p of 'below +0.05'" in e for e in worse.evidence)
    # "Not necessarily better" (the paper's words) also holds when the winner merely ties.
    base = grid(outcomes(0.7, 30))[0].same_feature
    same = frontier_claim(grid(near_copy(base, 3, 33)), FAST)
    assert same.verdict == HOLDS and all(-FAST.margin < i.low and i.high < FAST.margin for i in same.intervals)
    # It does not hold when every winner is better on every metric.
    better = frontier_claim(grid(outcomes(0.95, 34, recall=0.9)), FAST)
    assert better.verdict == NOT_HOLDS and all(i.low > 0 for i in better.intervals)
    assert better.p_value is not None and better.p_value > FAST.alpha


def test_claims_refuse_cells_on_different_pairs():
    rows = archs(outcomes(0.5, 0), outcomes(0.5, 1))
    rows[1].same_sense = ~rows[1].same_sense
    with pytest.raises(ValueError, match="other pairs"):
        activation_claim(rows, FAST)


def test_untestable_claims_say_what_they_need():
    claims = evaluate_claims(archs(outcomes(0.5, 0)), n_boot=50, n_perm=50)
    by_key = {c.key: c for c in claims}
    assert by_key["activation"].verdict == INCONCLUSIVE and by_key["activation"].p_value is None
    assert "needs two or more architectures" in by_key["activation"].evidence[0]


def test_the_five_claims_are_one_holm_family():
    # Three architectures that differ (activation holds alone) and two widths that do not: the family's adjusted
    # p-values are Holm's over the testable claims, and they decide "holds".
    rows = archs(outcomes(0.5, 0), outcomes(0.8, 1), outcomes(0.5, 2))
    rows += [row(HOOK, "standard_x32", "standard", 32, SAME, outcomes(0.5, 3))]
    claims = {c.key: c for c in evaluate_claims(rows, n_boot=100, n_perm=300)}
    tested = [c for c in claims.values() if c.p_value is not None]
    assert {c.key for c in tested} == {"activation", "width"}
    ps = sorted(c.p_value for c in tested)
    assert sorted(c.p_family for c in tested) == pytest.approx([min(1, 2 * ps[0]), max(min(1, 2 * ps[0]), ps[1])])
    assert claims["activation"].verdict == HOLDS and claims["activation"].p_family <= 0.05
    assert any("Holm-adjusted over the 2 testable claim(s)" in e for e in claims["activation"].evidence)
