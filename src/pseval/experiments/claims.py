"""The paper's claims, each tested on a sweep's cells with paired bootstrap intervals, with a verdict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pseval.experiments.results_table import CellRow
from pseval.metrics.statistics import Interval, bootstrap_statistic, difference

HOLDS, NOT_HOLDS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
EQUIVALENCE = 0.05  # |difference| below this, with the whole CI inside, counts as 'no dependence'


@dataclass
class Claim:
    """One claim of the paper, the comparisons made, and the verdict at the bootstrap CI."""

    key: str
    statement: str
    verdict: str = INCONCLUSIVE
    evidence: list[str] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)


def _fmt(i: Interval) -> str:
    return f"{i.value:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"


def _positive_verdict(intervals: list[Interval]) -> str:
    """A claim that a difference is positive: holds if some CI > 0 and none < 0, fails if some CI < 0."""
    if not intervals:
        return INCONCLUSIVE
    if any(i.high < 0 for i in intervals):
        return NOT_HOLDS
    if any(i.low > 0 for i in intervals):
        return HOLDS
    return INCONCLUSIVE


def _dependence_verdict(intervals: list[Interval]) -> str:
    """A claim that a metric depends on a factor: holds if some CI excludes 0, fails if all sit within +-EQUIVALENCE."""
    if not intervals:
        return INCONCLUSIVE
    if any(i.excludes_zero() for i in intervals):
        return HOLDS
    if all(-EQUIVALENCE < i.low and i.high < EQUIVALENCE for i in intervals):
        return NOT_HOLDS
    return INCONCLUSIVE


def frontier_claim(rows: Sequence[CellRow], n_boot: int, seed: int) -> Claim:
    """TopK / JumpReLU / BatchTopK / Gated SAEs that beat ReLU on MSE-vs-L0 need not separate senses better."""
    c = Claim("frontier", "SAEs that win the MSE-vs-L0 trade-off (TopK, JumpReLU, ...) do not necessarily separate "
                          "senses better than ReLU (standard) SAEs")
    base = {(r.hook, r.expansion): r for r in rows if r.architecture == "standard" and r.recon}
    worse, better_all = [], True
    for r in rows:
        b = base.get((r.hook, r.expansion))
        if b is None or r.architecture in ("standard", "identity") or not r.recon:
            continue
        if not (r.recon["fvu"] <= b.recon["fvu"] and r.recon["l0"] <= b.recon["l0"]):
            continue  # not a frontier winner over this ReLU SAE
        for metric in ("specificity", "f1"):
            d = difference(r.pair, b.pair, metric, n_boot, seed)
            c.intervals.append(d)
            c.evidence.append(f"{r.sae} vs {b.sae} at {r.hook}: FVU {r.recon['fvu']:.3f} vs {b.recon['fvu']:.3f}, "
                              f"L0 {r.recon['l0']:.1f} vs {b.recon['l0']:.1f}; delta {metric} {_fmt(d)}")
            worse.append(d.high < 0)
            better_all &= d.low > 0
    if not c.intervals:
        c.evidence.append("no SAE dominates a ReLU SAE of the same hook and width on both FVU and L0")
        return c
    c.verdict = HOLDS if any(worse) else (NOT_HOLDS if better_all else INCONCLUSIVE)
    return c


def _grouped(rows: Sequence[CellRow], key: tuple[str, ...]) -> dict[tuple, list[CellRow]]:
    out: dict[tuple, list[CellRow]] = defaultdict(list)
    for r in rows:
        out[tuple(getattr(r, k) for k in key)].append(r)
    return out


def width_claim(rows: Sequence[CellRow], n_boot: int, seed: int) -> Claim:
    """Specificity changes between the smallest and largest dictionary of one architecture."""
    c = Claim("width", "Specificity depends on dictionary size (expansion ratio)")
    for (hook, arch), grp in _grouped([r for r in rows if r.architecture != "identity"], ("hook", "architecture")
                                      ).items():
        widths = sorted({r.expansion for r in grp})
        if len(widths) < 2:
            continue
        small = next(r for r in grp if r.expansion == widths[0])
        large = next(r for r in grp if r.expansion == widths[-1])
        d = difference(large.pair, small.pair, "specificity", n_boot, seed)
        c.intervals.append(d)
        c.evidence.append(f"{arch} at {hook}: x{widths[-1]} minus x{widths[0]} specificity {_fmt(d)}")
    c.verdict = _dependence_verdict(c.intervals)
    return c


def activation_claim(rows: Sequence[CellRow], n_boot: int, seed: int) -> Claim:
    """Specificity differs between architectures at the same hook and width."""
    c = Claim("activation", "Specificity depends on the activation function (architecture)")
    for (hook, exp), grp in _grouped([r for r in rows if r.architecture != "identity"], ("hook", "expansion")).items():
        archs = {}
        for r in grp:
            archs.setdefault(r.architecture, r)
        if len(archs) < 2:
            continue
        ranked = sorted(archs.values(), key=lambda r: r.metrics["specificity"])
        lo, hi = ranked[0], ranked[-1]
        d = difference(hi.pair, lo.pair, "specificity", n_boot, seed)
        c.intervals.append(d)
        c.evidence.append(f"x{exp} at {hook}: {hi.architecture} minus {lo.architecture} specificity {_fmt(d)} "
                          f"(highest minus lowest of {len(archs)})")
    c.verdict = _dependence_verdict(c.intervals)
    return c


def _mean_diff(cells_a: list[CellRow], cells_b: list[CellRow], n_boot: int, seed: int) -> Interval:
    """mean(spec over A) - mean(spec over B), all cells on the same pairs, resampled jointly."""
    cells = [r.pair for r in cells_a + cells_b]
    na = len(cells_a)

    def stat(ms: list[dict[str, np.ndarray]]) -> np.ndarray:
        a = np.mean([m["specificity"] for m in ms[:na]], axis=0)
        b = np.mean([m["specificity"] for m in ms[na:]], axis=0)
        return a - b

    return bootstrap_statistic(cells, stat, n_boot, seed)


def depth_claim(rows: Sequence[CellRow], n_boot: int, seed: int) -> Claim:
    """Deeper half of the layers vs shallower half, per SAE kind and component."""
    c = Claim("depth", "Deeper layers separate senses better (higher specificity)")
    for (sae, comp), grp in _grouped([r for r in rows if r.layer is not None], ("sae", "component")).items():
        layers = sorted({r.layer for r in grp})
        if len(layers) < 3:
            continue
        half = len(layers) // 2
        shallow = [r for r in grp if r.layer in layers[:half]]
        deep = [r for r in grp if r.layer in layers[-half:]]
        d = _mean_diff(deep, shallow, n_boot, seed)
        c.intervals.append(d)
        c.evidence.append(f"{sae}, {comp}: layers {layers[-half:]} minus {layers[:half]} specificity {_fmt(d)}")
    c.verdict = _positive_verdict(c.intervals)
    return c


def attention_claim(rows: Sequence[CellRow], n_boot: int, seed: int) -> Claim:
    """Attention output vs MLP output and residual stream, averaged over the layers both have."""
    c = Claim("attention", "The attention output separates senses better than the MLP output and the residual stream")
    for sae, grp in _grouped([r for r in rows if r.layer is not None], ("sae",)).items():
        attn = {r.layer: r for r in grp if r.component == "attn_out"}
        for other in ("mlp_out", "resid_post"):
            oth = {r.layer: r for r in grp if r.component == other}
            shared = sorted(set(attn) & set(oth))
            if not shared:
                continue
            d = _mean_diff([attn[L] for L in shared], [oth[L] for L in shared], n_boot, seed)
            c.intervals.append(d)
            c.evidence.append(f"{sae[0]}: attn_out minus {other} specificity over layers {shared}: {_fmt(d)}")
    c.verdict = _positive_verdict(c.intervals)
    return c


def evaluate_claims(rows: Sequence[CellRow], n_boot: int = 1000, seed: int = 0) -> list[Claim]:
    """All claims on the cells of one panel (same dataset and readout)."""
    claims = [f(rows, n_boot, seed) for f in (frontier_claim, width_claim, activation_claim, depth_claim,
                                                attention_claim)]
    needs = {"width": "two or more widths of one architecture at one hook",
             "activation": "two or more architectures at one hook and width",
             "depth": "one SAE kind at three or more layers of one component",
             "attention": "attn_out and mlp_out or resid_post at the same layers"}
    for c in claims:
        if not c.evidence:
            c.evidence.append(f"not testable on these cells: needs {needs.get(c.key, 'more cells')}")
    return claims
