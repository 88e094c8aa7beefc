"""Claim verdicts under simulated null sweeps (false-"holds" rate) and with planted effects (power).

Sweeps are simulated on WiC-dev sized pair sets (246 same-sense, 266 different-sense pairs) in two layouts: 5
architectures x 3 widths at one hook (activation, width and frontier claims) and 2 SAE kinds x 6 layers x 3
components (depth and attention claims), as configs/paper-minilm.toml has them. An SAE's "same top feature" outcome
is a latent below a threshold; the latent follows a per-pair difficulty shared by every SAE with weight rho.

Nulls: every SAE has the same marginal rates (recall 0.6, specificity 0.6), with
- the exchangeable null: one rho (0.5) for every SAE;
- the weak nulls: rho 0.95 for some SAEs and 0 for the others, and 0.6 / 0.2, grouped by architecture (TopK,
  JumpReLU, BatchTopK high), by width (x32 high), by layer (layers 3-5 high) or by component (attn_out high). The
  permutation test pseval used before says "holds" in 21% (depth, by layer) and 17% (attention, by component) of
  such sweeps at 0.95/0; the pair bootstrap must stay at 5%.
The frontier claim ("winners are not necessarily better") is false only when every winner is better by the margin:
its null sweeps put the winners (TopK, JumpReLU, BatchTopK) at specificity +0.05 and recall +0.06 (F1 about +0.057)
over the ReLU SAE, exchangeable and weak (winners rho 0.95 or 0.6, the others 0 or 0.2).

Each claim, tested alone at 5%, must say "holds" in at most 5% of N_NULL = 300 null sweeps per scenario plus three
Monte-Carlo standard errors (0.05 + 0.038). Power is measured on N_POWER = 60 sweeps per claim and effect size
(specificity shifted by 0.05 and 0.10 where the claim says it should be, rho 0.5); `pytest -s` prints every rate.
Claims run with 200 pair resamples per test and 100 bootstrap resamples per interval here (the report uses 2000 and
1000).

Gain over controls (`ClaimTests(gain=True)`): every simulated SAE gets N_CONTROLS random controls, cells of their own
on the same pairs. Their null puts the effect where the random SAEs have it too (a deeper layer, attn_out, TopK or
x32: SAE and controls +0.10 specificity), each control shifted by its own seed (sd SEED_SD): the gain claims must say
"holds" in at most 5% of N_GAIN_NULL sweeps (the raw claims say it in nearly all of them), and they must find an
effect of the SAE's own (+0.10 over controls that do not move) in at least half of N_POWER sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from statistics import NormalDist

import numpy as np
import pytest

from pseval.ps_eval.rows import CellRow
from pseval.study.claims import (
    HOLDS,
    NOT_HOLDS,
    Claim,
    ClaimTests,
    activation_claim,
    attention_claim,
    depth_claim,
    frontier_claim,
    width_claim,
)
from tests.study.test_claims import row

pytestmark = pytest.mark.slow

N_SAME, N_DIFF = 246, 266  # WiC dev as PS-Eval scores it: 246 same-sense and 266 different-sense pairs
P_SAME_FEATURE = {True: 0.6, False: 0.4}  # every SAE: recall 0.6, specificity 0.6 under the null
ARCHS = ("batchtopk", "gated", "jumprelu", "standard", "topk")
WIDTHS = (2, 8, 32)  # as configs/paper-minilm.toml
# Reconstruction per architecture: topk, jumprelu and batchtopk beat the ReLU SAE on FVU and L0, gated does not.
RECON = {"standard": (0.30, 60.0), "topk": (0.25, 40.0), "jumprelu": (0.26, 45.0), "batchtopk": (0.27, 50.0),
         "gated": (0.32, 55.0)}
LAYERS = range(6)
COMPONENTS = ("attn_out", "mlp_out", "resid_post")
SAE_KINDS = ("topk_x8", "standard_x8")
RHO = 0.5  # the exchangeable null's (and the power runs') dependence on the shared per-pair difficulty
WEAK = ((0.95, 0.0), (0.6, 0.2))  # weak nulls: (rho of the SAEs that follow the difficulty, rho of the others)
EFFECTS = (0.05, 0.10)  # planted: the affected SAEs' specificity is this far from the others'
N_NULL = 300  # simulated null sweeps per scenario
N_POWER = 60  # simulated sweeps with the planted effect per (claim, effect)
TESTS = ClaimTests(n_perm=200, n_boot=100, seed=0)  # 200 resamples: p resolves to 1/201, enough at alpha = 0.05
WINNERS = ("topk", "jumprelu", "batchtopk")  # beat the ReLU SAE on FVU and L0 (RECON)


@dataclass(frozen=True)
class Spec:
    """One simulated cell: where it is, and how much its specificity is shifted."""

    hook: str
    sae: str
    arch: str
    width: int
    shift: float = 0.0  # specificity shift
    rho: float | None = None  # dependence on the shared difficulty (None: the sweep's rho)
    recall_shift: float = 0.0


@cache
def _probit(p: float) -> float:
    return NormalDist().inv_cdf(p)


def simulate(specs: list[Spec], rho: float, rng: np.random.Generator) -> list[CellRow]:
    """Cells on one shared pair set; outcome = latent below a threshold, the latent following a shared per-pair
    difficulty with weight rho (per cell when its spec says): the marginal rates do not depend on rho."""
    same = np.r_[np.ones(N_SAME, bool), np.zeros(N_DIFF, bool)]
    z = rng.standard_normal(len(same))  # per-pair difficulty: easy or hard for every SAE that follows it
    rows = []
    for sp in specs:
        p = np.where(same, P_SAME_FEATURE[True] + sp.recall_shift, P_SAME_FEATURE[False] - sp.shift)
        thr = np.where(same, _probit(float(p[0])), _probit(float(p[-1])))
        r = rho if sp.rho is None else sp.rho
        latent = math.sqrt(r) * z + math.sqrt(1 - r) * rng.standard_normal(len(same))
        rows.append(row(sp.hook, sp.sae, sp.arch, sp.width, same, latent < thr, recon=RECON.get(sp.arch)))
    return rows


def grid(shift: Callable[[str, int], float] = lambda a, w: 0.0,
         rho: Callable[[str, int], float | None] = lambda a, w: None,
         recall: Callable[[str, int], float] = lambda a, w: 0.0) -> list[Spec]:
    """5 architectures x 3 widths at one hook."""
    return [Spec("blocks.2.hook_resid_post", f"{a}_x{w}", a, w, shift(a, w), rho(a, w), recall(a, w)) for a in ARCHS
            for w in WIDTHS]


def layers(shift: Callable[[int, str], float] = lambda L, c: 0.0,
           rho: Callable[[int, str], float | None] = lambda L, c: None) -> list[Spec]:
    """2 SAE kinds x 6 layers x 3 components (the depth and attention layouts)."""
    return [Spec(f"blocks.{L}.hook_{c}", k, k.split("_")[0], 8, shift(L, c), rho(L, c)) for k in SAE_KINDS
            for L in LAYERS for c in COMPONENTS]


def by_architecture(hi: float, lo: float) -> list[Spec]:
    """Equal rates; the frontier winners (TopK, JumpReLU, BatchTopK) follow the difficulty with rho hi, the rest lo."""
    return grid(rho=lambda a, w: hi if a in WINNERS else lo)


def by_width(hi: float, lo: float) -> list[Spec]:
    """Equal rates; x32 dictionaries follow the difficulty with rho hi, the smaller ones lo."""
    return grid(rho=lambda a, w: hi if w == 32 else lo)


def by_layer(hi: float, lo: float) -> list[Spec]:
    """Equal rates; layers 3-5 follow the difficulty with rho hi, layers 0-2 lo."""
    return layers(rho=lambda L, c: hi if L >= 3 else lo)


def by_component(hi: float, lo: float) -> list[Spec]:
    """Equal rates; attn_out follows the difficulty with rho hi, mlp_out and resid_post lo."""
    return layers(rho=lambda L, c: hi if c == "attn_out" else lo)


def frontier_null(hi: float | None, lo: float | None) -> list[Spec]:
    """The frontier claim's least favourable null: every winner better than the ReLU SAE by the margin."""
    def better(a: str, w: int) -> bool:
        return a in WINNERS
    return grid(shift=lambda a, w: TESTS.margin if better(a, w) else 0.0,
                rho=lambda a, w: (hi if better(a, w) else lo), recall=lambda a, w: 0.06 if better(a, w) else 0.0)


EQUAL_RATE_CLAIMS = {"grid": (activation_claim, width_claim), "layers": (depth_claim, attention_claim)}
# (name, specs, claims checked): every null scenario.
NULLS: list[tuple[str, Callable[[], list[Spec]], tuple[Callable[..., Claim], ...]]] = [
    ("grid, exchangeable rho 0.5", grid, EQUAL_RATE_CLAIMS["grid"]),
    *[(f"grid, weak rho {hi}/{lo} {how.__name__.replace('_', ' ')}", lambda hi=hi, lo=lo, how=how: how(hi, lo),
       EQUAL_RATE_CLAIMS["grid"]) for how in (by_architecture, by_width) for hi, lo in WEAK],
    ("layers, exchangeable rho 0.5", layers, EQUAL_RATE_CLAIMS["layers"]),
    *[(f"layers, weak rho {hi}/{lo} {how.__name__.replace('_', ' ')}", lambda hi=hi, lo=lo, how=how: how(hi, lo),
       EQUAL_RATE_CLAIMS["layers"]) for how in (by_layer, by_component) for hi, lo in WEAK],
    ("frontier boundary, exchangeable rho 0.5", lambda: frontier_null(None, None), (frontier_claim,)),
    *[(f"frontier boundary, weak rho {hi}/{lo} by architecture", lambda hi=hi, lo=lo: frontier_null(hi, lo),
       (frontier_claim,)) for hi, lo in WEAK],
]
PLANTED: dict[str, tuple[Callable[..., Claim], Callable[[float], list[Spec]], str]] = {
    "activation": (activation_claim, lambda e: grid(lambda a, w: e if a == "topk" else 0.0),
                   "topk specificity +{e} at every width"),
    "width": (width_claim, lambda e: grid(lambda a, w: e if w == 32 else 0.0),
              "x32 specificity +{e} for every architecture"),
    "frontier": (frontier_claim, lambda e: grid(lambda a, w: -e if a == "topk" else 0.0),
                 "topk (a frontier winner) specificity -{e} at every width"),
    "depth": (depth_claim, lambda e: layers(lambda L, c: e if L >= 3 else 0.0),
              "layers 3-5 specificity +{e} in every SAE kind and component"),
    "attention": (attention_claim, lambda e: layers(lambda L, c: e if c == "attn_out" else 0.0),
                  "attn_out specificity +{e} at every layer"),
}


N_CONTROLS = 5  # random controls per SAE, as pseval's default
SEED_SD = 0.03  # specificity spread of one SAE's controls from seed to seed
N_GAIN_NULL = 200
GAIN_TESTS = ClaimTests(n_perm=200, n_boot=100, seed=0, gain=True)


def simulate_with_controls(specs: list[Spec], place: Callable[[Spec], float], rng: np.random.Generator
                           ) -> list[CellRow]:
    """`simulate`, each SAE with N_CONTROLS controls: a control's specificity is shifted by its place's shift (what
    a random SAE at that hook and shape gets) and its seed's; the SAE's own shift is on top of its place's."""
    cells, ctl_specs = [], []
    for sp in specs:
        cells.append(replace(sp, shift=sp.shift + place(sp)))
        ctl_specs += [replace(sp, sae=f"{sp.sae}/control{j}", shift=place(sp) + SEED_SD * float(rng.standard_normal()))
                      for j in range(N_CONTROLS)]
    rows = simulate(cells + ctl_specs, RHO, rng)
    saes, ctls = rows[:len(specs)], rows[len(specs):]
    for i, r in enumerate(saes):
        r.control_same_feature = np.stack([c.same_feature for c in ctls[i * N_CONTROLS:(i + 1) * N_CONTROLS]])
    return saes


# (name, claim, SAE specs, where the random SAEs too are shifted): the gain nulls.
GAIN_NULLS: list[tuple[str, Callable[..., Claim], Callable[[], list[Spec]], Callable[[Spec], float]]] = [
    ("depth: layers 3-5 +0.10 for SAEs and controls", depth_claim, layers,
     lambda sp: 0.10 if int(sp.hook.split(".")[1]) >= 3 else 0.0),
    ("attention: attn_out +0.10 for SAEs and controls", attention_claim, layers,
     lambda sp: 0.10 if sp.hook.endswith("attn_out") else 0.0),
    ("activation: topk +0.10 for SAEs and controls", activation_claim, grid,
     lambda sp: 0.10 if sp.arch == "topk" else 0.0),
    ("width: x32 +0.10 for SAEs and controls", width_claim, grid, lambda sp: 0.10 if sp.width == 32 else 0.0),
]


def gain_rates(claim: Callable[..., Claim], specs: list[Spec], place: Callable[[Spec], float], n: int, seed: int,
               tests: ClaimTests) -> dict[str, float]:
    """Share of n simulated sweeps with controls in which the claim (at `tests`) holds / does not hold."""
    rng = np.random.default_rng(seed)
    verdicts = [claim(simulate_with_controls(specs, place, rng), tests).verdict for _ in range(n)]
    return {v: verdicts.count(v) / n for v in (HOLDS, NOT_HOLDS)}


@pytest.mark.parametrize("scenario", range(len(GAIN_NULLS)), ids=[n for n, *_ in GAIN_NULLS])
def test_gain_claims_discount_what_random_saes_do(scenario):
    name, claim, make, place = GAIN_NULLS[scenario]
    gain = gain_rates(claim, make(), place, N_GAIN_NULL, 2000 + scenario, GAIN_TESTS)
    raw = gain_rates(claim, make(), place, N_POWER, 3000 + scenario, TESTS)
    print(f"gain null, {name}: 'holds' on gains in {gain[HOLDS]:.1%} of {N_GAIN_NULL} sweeps, on raw metrics in "
          f"{raw[HOLDS]:.0%} of {N_POWER}")
    assert gain[HOLDS] <= mc_bound(GAIN_TESTS.alpha, N_GAIN_NULL)
    assert raw[HOLDS] >= 0.5  # the scenario does plant a raw effect: the gain is what discounts it


@pytest.mark.parametrize("key", ("depth", "activation"))
def test_gain_claims_find_an_effect_of_the_saes_own(key):
    claim, make, what = PLANTED[key]
    r = gain_rates(claim, make(0.10), lambda sp: 0.0, N_POWER, 4000 + len(key), GAIN_TESTS)
    print(f"gain power, {key}, {what.format(e=0.10)} over unmoved controls: 'holds' in {r[HOLDS]:.0%} of {N_POWER}")
    assert r[HOLDS] >= 0.5
    assert r[NOT_HOLDS] <= mc_bound(GAIN_TESTS.alpha, N_POWER)


def verdict_rates(claims: tuple[Callable[..., Claim], ...], specs: list[Spec], rho: float, n: int,
                  seed: int) -> dict[str, dict[str, float]]:
    """Per claim, the share of n simulated sweeps (shared by the claims) with each verdict."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    for _ in range(n):
        rows = simulate(specs, rho, rng)
        for claim in claims:
            c = claim(rows, TESTS)
            out.setdefault(c.key, []).append(c.verdict)
    return {k: {v: vs.count(v) / n for v in (HOLDS, NOT_HOLDS)} for k, vs in out.items()}


def mc_bound(rate: float, n: int) -> float:
    """rate plus three Monte-Carlo standard errors of a share estimated from n simulations."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("scenario", range(len(NULLS)), ids=[n for n, _, _ in NULLS])
def test_null_sweeps_say_holds_at_most_alpha(scenario):
    name, make, claims = NULLS[scenario]
    rates = verdict_rates(claims, make(), RHO, N_NULL, seed=1000 + scenario)
    for key, r in rates.items():
        print(f"null, {name}: {key} 'holds' in {r[HOLDS]:.1%} of {N_NULL} sweeps")
        assert r[HOLDS] <= mc_bound(TESTS.alpha, N_NULL), (name, key, r)


@pytest.mark.parametrize("effect", EFFECTS)
@pytest.mark.parametrize("key", PLANTED)
def test_planted_effect_power(key, effect):
    claim, make, what = PLANTED[key]
    seed = 100 + int(100 * effect) + len(key)
    r = verdict_rates((claim,), make(effect), RHO, N_POWER, seed)[key]
    print(f"power, {key}, rho {RHO}, {what.format(e=effect)}: 'holds' in {r[HOLDS]:.0%} of {N_POWER} sweeps, "
          f"'does not hold' in {r[NOT_HOLDS]:.0%}")
    if effect >= 2 * TESTS.margin:
        # A test that never rejects would pass the null checks: it must find an effect twice the margin, and must
        # not call it 'no effect'.
        assert r[HOLDS] >= 0.5
        assert r[NOT_HOLDS] <= mc_bound(TESTS.alpha, N_POWER)
