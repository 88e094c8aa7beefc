"""Claim verdicts under simulated null sweeps (false-"holds" rate) and with planted effects (power).

Sweeps are simulated on WiC-dev sized pair sets (246 same-sense, 266 different-sense pairs) in two layouts: 5
architectures x 3 widths at one hook (activation, width and frontier claims) and 2 SAE kinds x 6 layers x 3
components (depth and attention claims), as configs/paper-minilm.toml has them. Under the null every SAE's "same top
feature" outcome has one distribution (recall 0.6, specificity 0.6), either independently across SAEs or correlated
through a per-pair propensity (latent correlation 0.5). Each claim must say "holds" in at most 5% of N_NULL = 600
null sweeps per layout and correlation, plus three Monte-Carlo standard errors (0.05 + 0.027). Power is measured on
N_POWER = 100 sweeps per claim, correlation and effect size (specificity shifted by 0.05 and 0.10 where the claim
says it should be); `pytest -s` prints every rate. Claims run with 200 permutation draws and 100 bootstrap
resamples here (the report uses 2000 and 1000).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
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
RHOS = (0.0, 0.5)  # outcome correlation across SAEs: independent, and through a per-pair propensity
EFFECTS = (0.05, 0.10)  # planted: the affected SAEs' specificity is this far from the others'
N_NULL = 600  # simulated null sweeps per (layout, correlation)
N_POWER = 100  # simulated sweeps with the planted effect per (claim, correlation)
TESTS = ClaimTests(n_perm=200, n_boot=100, seed=0)  # 200 draws: p resolves to 1/201, enough at alpha = 0.05


@dataclass(frozen=True)
class Spec:
    """One simulated cell: where it is, and how much its specificity is shifted."""

    hook: str
    sae: str
    arch: str
    width: int
    shift: float = 0.0


@cache
def _probit(p: float) -> float:
    return NormalDist().inv_cdf(p)


def simulate(specs: list[Spec], rho: float, rng: np.random.Generator) -> list[CellRow]:
    """Cells on one shared pair set; outcome = latent below a threshold, the latent shared across SAEs by rho."""
    same = np.r_[np.ones(N_SAME, bool), np.zeros(N_DIFF, bool)]
    z = rng.standard_normal(len(same))  # per-pair propensity: easy or hard for every SAE alike
    rows = []
    for sp in specs:
        p = np.where(same, P_SAME_FEATURE[True], P_SAME_FEATURE[False] - sp.shift)  # shift raises specificity
        thr = np.vectorize(_probit)(p)
        latent = math.sqrt(rho) * z + math.sqrt(1 - rho) * rng.standard_normal(len(same))
        rows.append(row(sp.hook, sp.sae, sp.arch, sp.width, same, latent < thr, recon=RECON.get(sp.arch)))
    return rows


def grid(shift: Callable[[str, int], float] = lambda a, w: 0.0) -> list[Spec]:
    """5 architectures x 3 widths at one hook."""
    return [Spec("blocks.2.hook_resid_post", f"{a}_x{w}", a, w, shift(a, w)) for a in ARCHS for w in WIDTHS]


def layers(shift: Callable[[int, str], float] = lambda L, c: 0.0) -> list[Spec]:
    """2 SAE kinds x 6 layers x 3 components (the depth and attention layouts)."""
    return [Spec(f"blocks.{L}.hook_{c}", k, k.split("_")[0], 8, shift(L, c)) for k in SAE_KINDS for L in LAYERS
            for c in COMPONENTS]


LAYOUTS: dict[str, tuple[Callable[..., list[Spec]], tuple[Callable[..., Claim], ...]]] = {
    "5 architectures x 3 widths at one hook": (grid, (activation_claim, width_claim, frontier_claim)),
    "2 SAE kinds x 6 layers x 3 components": (layers, (depth_claim, attention_claim)),
}
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


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_null_sweeps_say_holds_at_most_alpha(layout, rho):
    make, claims = LAYOUTS[layout]
    rates = verdict_rates(claims, make(), rho, N_NULL, seed=int(10 * rho) + len(layout))
    for key, r in rates.items():
        print(f"null, {layout}, outcome correlation {rho}: {key} 'holds' in {r[HOLDS]:.1%} of {N_NULL} sweeps")
        assert r[HOLDS] <= mc_bound(TESTS.alpha, N_NULL), (key, r)


@pytest.mark.parametrize("rho", RHOS)
@pytest.mark.parametrize("effect", EFFECTS)
@pytest.mark.parametrize("key", PLANTED)
def test_planted_effect_power(key, effect, rho):
    claim, make, what = PLANTED[key]
    seed = 100 + int(10 * rho) + int(100 * effect) + len(key)
    r = verdict_rates((claim,), make(effect), rho, N_POWER, seed)[key]
    print(f"power, {key}, outcome correlation {rho}, {what.format(e=effect)}: 'holds' in {r[HOLDS]:.0%} of "
          f"{N_POWER} sweeps, 'does not hold' in {r[NOT_HOLDS]:.0%}")
    if effect >= 2 * TESTS.margin:
        # A test that never rejects would pass the null checks: it must find an effect twice the margin, and must
        # not call it 'no effect'.
        assert r[HOLDS] >= 0.5
        assert r[NOT_HOLDS] <= mc_bound(TESTS.alpha, N_POWER)
