"""The paper's claims, each tested on a sweep's cells as ONE hypothesis with family-wise error at a stated level.

How a verdict is reached (level alpha = 0.05 unless set otherwise):

- **Test.** Every claim is one paired permutation test (`pseval.metrics.significance`): under the null, the SAEs
  being compared are exchangeable pair by pair, so a draw shuffles each pair's "same top feature" outcome among them
  (independently per pair), keeping the correlation between SAEs scored on the same pairs. The statistic pools all
  of the claim's comparisons into one number, so one p-value decides the claim and there is no multiplicity left:
  - *depends on dictionary size / activation function*: the mean over groups (one hook and architecture, or one hook
    and width) of the range (max - min) of specificity across the factor's levels; the range is taken after the
    data chose the highest and lowest level, in every draw alike, so the selection is part of the null;
  - *deeper layers are better*: the mean over (SAE, component) groups of mean specificity of the deeper half of
    the layers minus the shallower half, one-sided;
  - *attention output is better than the MLP output and the residual stream*: one one-sided test per other
    component (mean attn_out minus other over matching SAE and layer); the claim is a conjunction, so it holds only
    if every one rejects (an intersection-union test: its error is at most alpha with no correction);
  - *frontier winners are not necessarily better than ReLU*: one-sided max-T over every (winner, metric) comparison
    of a ReLU SAE minus an SAE that beats it on both FVU and L0 (studentised by the draws' spread), so the claim
    holds when some winner is worse, at family-wise alpha.
  The per-comparison numbers (per-group p-values with Holm's adjustment, max-T adjusted p-values, bootstrap
  intervals) are kept as supporting evidence; they do not decide the verdict.
- **"Does not hold"** needs positive evidence of no effect: every comparison's 90% paired bootstrap interval (two
  one-sided tests at 5%) lies inside +-margin (0.05 specificity or F1) for "depends on" claims, below +margin for
  "better" claims, above -margin for the frontier claim. Concluding that *all* comparisons are negligible is an
  intersection-union test too, so no correction is needed (the attention claim fails if either comparison set
  does, so there each interval is at level 1 - 2 alpha / 2, Bonferroni). Otherwise the verdict is "inconclusive".
- **Unconverged SAEs.** A claim that compares cells whose SAE training was flagged unconverged names them, and its
  verdict is marked.

`tests/study/test_claims_calibration.py` simulates null sweeps (independent and correlated outcomes) and
checks the false-"holds" rate of every claim, and measures each claim's power for a planted effect.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

from pseval.metrics.significance import holm, max_t, permutation_p, permute_within_blocks
from pseval.metrics.statistics import Interval, bootstrap_contrasts
from pseval.ps_eval.rows import CellRow

HOLDS, NOT_HOLDS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
ALPHA = 0.05
EQUIVALENCE = 0.05  # a difference in specificity (or F1) smaller than this counts as no effect


@dataclass(frozen=True)
class ClaimTests:
    """How claims are tested: permutation draws, bootstrap resamples, seed, level and equivalence margin."""

    n_perm: int = 2000
    n_boot: int = 1000
    seed: int = 0
    alpha: float = ALPHA
    margin: float = EQUIVALENCE


@dataclass
class Claim:
    """One claim of the paper, the one test that decides it, the verdict, and per-comparison supporting evidence."""

    key: str
    statement: str
    verdict: str = INCONCLUSIVE
    test: str = ""  # the test behind the verdict, in words
    statistic: str = ""  # what the test measures, in words
    value: float = math.nan  # the statistic on the data
    p_value: float | None = None
    comparisons: int = 0  # comparisons the one test covers (each with a supporting interval)
    level: float = ALPHA
    margin: float = EQUIVALENCE
    unconverged: list[str] = field(default_factory=list)  # compared cells whose SAE training did not converge
    evidence: list[str] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)

    @property
    def verdict_label(self) -> str:
        """The verdict, marked when it rests on SAEs flagged unconverged."""
        if not self.unconverged:
            return self.verdict
        return f"{self.verdict} (rests on {len(self.unconverged)} unconverged SAE(s): {', '.join(self.unconverged)})"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        d = asdict(self)
        d["value"] = None if math.isnan(self.value) else self.value
        return d


def _p(p: float) -> str:
    return f"{p:.3g}"


def _ci(i: Interval) -> str:
    return f"{i.value:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"


def _stack(cells: Sequence[CellRow]) -> tuple[np.ndarray, np.ndarray]:
    """[n_cells, n_pairs] outcomes and the shared labels; cells must be scored on the same pairs."""
    y = cells[0].same_sense
    for r in cells[1:]:
        if len(r.same_sense) != len(y) or not np.array_equal(r.same_sense, y):
            raise ValueError(f"{r.sae} at {r.hook} is scored on other pairs than {cells[0].sae} at {cells[0].hook}: "
                             "claims compare cells of one panel (same dataset and readout)")
    return np.stack([r.same_feature for r in cells]), y


def _mark_unconverged(c: Claim, cells: Sequence[CellRow]) -> None:
    c.unconverged = sorted({f"{r.sae} at {r.hook}" for r in cells if r.converged is False})


def _verdict(p: float, alpha: float, negligible: bool) -> str:
    if p <= alpha:
        return HOLDS
    return NOT_HOLDS if negligible else INCONCLUSIVE


def _grouped(rows: Sequence[CellRow], key: tuple[str, ...]) -> dict[tuple, list[CellRow]]:
    out: dict[tuple, list[CellRow]] = defaultdict(list)
    for r in rows:
        out[tuple(getattr(r, k) for k in key)].append(r)
    return out


def _factor_claim(c: Claim, groups: list[tuple[str, list[tuple[str, CellRow]]]], factor: str,
                  cfg: ClaimTests) -> Claim:
    """Specificity depends on a factor: permutation test of the mean within-group range across its levels."""
    cells = [r for _, lv in groups for _, r in lv]
    blocks, start = [], 0
    for _, lv in groups:
        blocks.append(list(range(start, start + len(lv))))
        start += len(lv)
    y, s = _stack(cells)
    counts = permute_within_blocks(y, s, blocks, cfg.n_perm, cfg.seed)
    obs, draws = counts.metric("specificity")
    ranges = np.array([np.ptp(obs[b]) for b in blocks])
    range_draws = np.stack([np.ptp(draws[:, b], axis=1) for b in blocks], axis=1)
    c.value = float(ranges.mean())
    c.p_value = float(permutation_p(c.value, range_draws.mean(1)))
    group_p = permutation_p(ranges, range_draws)
    group_holm = holm(group_p)
    # Every pairwise difference within a group, for the equivalence check: later level minus earlier.
    rows_w = []
    for b in blocks:
        for i, j in ((i, j) for i in b for j in b if i > j):
            w = np.zeros(len(cells))
            w[i], w[j] = 1.0, -1.0
            rows_w.append(w)
    c.intervals = bootstrap_contrasts([r.pair for r in cells], np.array(rows_w), "specificity", cfg.n_boot,
                                      cfg.seed, 1 - 2 * cfg.alpha)
    c.comparisons = len(c.intervals)
    k = 0
    for g, ((label, lv), b) in enumerate(zip(groups, blocks, strict=True)):
        mine = c.intervals[k:k + len(b) * (len(b) - 1) // 2]
        k += len(mine)
        worst = max(max(abs(i.low), abs(i.high)) for i in mine)
        c.evidence.append(f"{label}: specificity " + ", ".join(f"{lvl} {obs[i]:.3f}" for (lvl, _), i in zip(lv, b,
                                                                                                         strict=True))
                          + f"; range {ranges[g]:.3f} (group p={_p(group_p[g])}, Holm {_p(group_holm[g])}); "
                          f"largest absolute bound of its {len(mine)} pairwise 90% CIs {worst:.3f}")
    negligible = all(-cfg.margin < i.low and i.high < cfg.margin for i in c.intervals)
    c.test = f"paired permutation test ({cfg.n_perm} draws; outcomes exchanged among a group's {factor}s per pair)"
    c.statistic = f"mean over {len(groups)} group(s) of the range of specificity across {factor}s"
    c.verdict = _verdict(c.p_value, cfg.alpha, negligible)
    _mark_unconverged(c, cells)
    return c


def width_claim(rows: Sequence[CellRow], cfg: ClaimTests = ClaimTests()) -> Claim:
    """Specificity differs between the dictionary sizes of one architecture at one hook."""
    c = Claim("width", "Specificity depends on dictionary size (expansion ratio)", level=cfg.alpha, margin=cfg.margin)
    groups = []
    for (hook, arch), grp in _grouped([r for r in rows if not r.is_identity], ("hook", "architecture")
                                      ).items():
        by_width: dict[int, CellRow] = {}
        for r in grp:
            by_width.setdefault(r.expansion, r)
        if len(by_width) >= 2:
            groups.append((f"{arch} at {hook}", [(f"x{w}", by_width[w]) for w in sorted(by_width)]))
    return _factor_claim(c, groups, "width", cfg) if groups else c


def activation_claim(rows: Sequence[CellRow], cfg: ClaimTests = ClaimTests()) -> Claim:
    """Specificity differs between architectures at the same hook and width."""
    c = Claim("activation", "Specificity depends on the activation function (architecture)", level=cfg.alpha,
              margin=cfg.margin)
    groups = []
    for (hook, exp), grp in _grouped([r for r in rows if not r.is_identity], ("hook", "expansion")).items():
        by_arch: dict[str, CellRow] = {}
        for r in grp:
            by_arch.setdefault(r.architecture, r)
        if len(by_arch) >= 2:
            groups.append((f"x{exp} at {hook}", [(a, by_arch[a]) for a in sorted(by_arch)]))
    return _factor_claim(c, groups, "architecture", cfg) if groups else c


Sides = list[tuple[list[int], list[int]]]


def _one_sided(comparisons: list[tuple[str, list[CellRow], list[CellRow]]],
               blocks_of: Callable[[Sides], list[list[int]]], cfg: ClaimTests,
               level: float) -> tuple[float, float, list[Interval], list[float], list[CellRow]]:
    """Mean over comparisons of mean(A) - mean(B) specificity: value, one-sided p, intervals, per-comparison p."""
    cells: list[CellRow] = []
    index: dict[int, int] = {}

    def at(r: CellRow) -> int:
        if id(r) not in index:
            index[id(r)] = len(cells)
            cells.append(r)
        return index[id(r)]

    sides: Sides = [([at(r) for r in a], [at(r) for r in b]) for _, a, b in comparisons]
    y, s = _stack(cells)
    counts = permute_within_blocks(y, s, blocks_of(sides), cfg.n_perm, cfg.seed)
    obs, draws = counts.metric("specificity")
    w = np.zeros((len(sides), len(cells)))
    for k, (ia, ib) in enumerate(sides):
        w[k, ia] += 1 / len(ia)
        w[k, ib] -= 1 / len(ib)
    d_obs, d_draws = w @ obs, draws @ w.T
    value = float(d_obs.mean())
    p = float(permutation_p(value, d_draws.mean(1)))
    intervals = bootstrap_contrasts([r.pair for r in cells], w, "specificity", cfg.n_boot, cfg.seed, level)
    return value, p, intervals, list(permutation_p(d_obs, d_draws)), cells


def depth_claim(rows: Sequence[CellRow], cfg: ClaimTests = ClaimTests()) -> Claim:
    """Deeper half of the layers vs shallower half, per SAE kind and component: one one-sided test over all."""
    c = Claim("depth", "Deeper layers separate senses better (higher specificity)", level=cfg.alpha,
              margin=cfg.margin)
    comps = []
    for (sae, comp), grp in _grouped([r for r in rows if r.layer is not None], ("sae", "component")).items():
        by_layer: dict[int, CellRow] = {}
        for r in grp:
            by_layer.setdefault(cast(int, r.layer), r)  # rows without a layer were filtered out above
        layers = sorted(by_layer)
        if len(layers) < 3:
            continue
        half = len(layers) // 2
        comps.append((f"{sae}, {comp}: layers {layers[-half:]} minus {layers[:half]}",
                      [by_layer[L] for L in layers[-half:]], [by_layer[L] for L in layers[:half]]))
    if not comps:
        return c

    def blocks(sides: Sides) -> list[list[int]]:
        return [ia + ib for ia, ib in sides]  # the layers of one SAE kind and component are exchanged

    c.value, c.p_value, c.intervals, group_p, cells = _one_sided(comps, blocks, cfg, 1 - 2 * cfg.alpha)
    adj = holm(group_p)
    for (label, _, _), i, gp, ap in zip(comps, c.intervals, group_p, adj, strict=True):
        c.evidence.append(f"{label} specificity {_ci(i)} (90% CI; group p={_p(gp)}, Holm {_p(ap)})")
    c.comparisons = len(c.intervals)
    c.test = f"one-sided paired permutation test ({cfg.n_perm} draws; outcomes exchanged among the layers per pair)"
    c.statistic = f"mean over {len(comps)} (SAE, component) group(s) of deeper-half minus shallower-half specificity"
    c.verdict = _verdict(c.p_value, cfg.alpha, all(i.high < cfg.margin for i in c.intervals))
    _mark_unconverged(c, cells)
    return c


def attention_claim(rows: Sequence[CellRow], cfg: ClaimTests = ClaimTests()) -> Claim:
    """attn_out vs mlp_out and vs resid_post at matching SAE kind and layer: every comparison set must show it."""
    c = Claim("attention", "The attention output separates senses better than the MLP output and the residual stream",
              level=cfg.alpha, margin=cfg.margin)
    per_other: dict[str, list[tuple[str, list[CellRow], list[CellRow]]]] = {}
    for (sae,), grp in _grouped([r for r in rows if r.layer is not None], ("sae",)).items():
        attn: dict[int, CellRow] = {}
        for r in grp:
            if r.component == "attn_out":
                attn.setdefault(cast(int, r.layer), r)  # rows without a layer were filtered out above
        for other in ("mlp_out", "resid_post"):
            oth: dict[int, CellRow] = {}
            for r in grp:
                if r.component == other:
                    oth.setdefault(cast(int, r.layer), r)
            shared = sorted(set(attn) & set(oth))
            if shared:
                per_other.setdefault(other, []).append((f"{sae}: attn_out minus {other} specificity over layers "
                                                        f"{shared}", [attn[L] for L in shared],
                                                        [oth[L] for L in shared]))
    if not per_other:
        return c

    def blocks(sides: Sides) -> list[list[int]]:
        return [[a, b] for ia, ib in sides for a, b in zip(ia, ib, strict=True)]  # attn vs other, same layer

    level = 1 - 2 * cfg.alpha / len(per_other)  # 'fails' if either set is negligible: Bonferroni over the sets
    ps, values, negligible, all_cells = [], [], False, []
    for other, comps in sorted(per_other.items()):
        value, p, intervals, _, cells = _one_sided(comps, blocks, cfg, level)
        ps.append(p)
        values.append(value)
        all_cells += cells
        negligible |= all(i.high < cfg.margin for i in intervals)
        c.intervals += intervals
        c.evidence.append(f"attn_out minus {other}: mean {value:+.3f} over {sum(len(a) for _, a, _ in comps)} "
                          f"(SAE, layer) pair(s), one-sided p={_p(p)}")
        c.evidence += [f"{label}: {_ci(i)} ({level:.1%} CI)" for (label, _, _), i in zip(comps, intervals,
                                                                                      strict=True)]
    if len(per_other) < 2:
        c.evidence.append(f"only {next(iter(per_other))} is in these cells: the claim is tested against it alone")
    c.value, c.p_value = min(values), max(ps)  # intersection-union: the weakest comparison set decides
    c.comparisons = len(c.intervals)
    c.test = (f"intersection-union of one-sided paired permutation tests ({cfg.n_perm} draws each; attn_out and the "
              f"other component's outcomes exchanged per pair), one per other component ({len(per_other)})")
    c.statistic = "smallest over the other components of mean attn_out minus other specificity"
    c.verdict = _verdict(c.p_value, cfg.alpha, negligible)
    _mark_unconverged(c, all_cells)
    return c


def frontier_claim(rows: Sequence[CellRow], cfg: ClaimTests = ClaimTests()) -> Claim:
    """TopK / JumpReLU / BatchTopK / Gated SAEs that beat ReLU on MSE-vs-L0 need not separate senses better."""
    c = Claim("frontier", "SAEs that win the MSE-vs-L0 trade-off (TopK, JumpReLU, ...) do not necessarily separate "
                          "senses better than ReLU (standard) SAEs", level=cfg.alpha, margin=cfg.margin)
    groups: dict[tuple[str, int], list[CellRow]] = {}
    for r in rows:
        if r.architecture == "standard" and r.recon:
            groups.setdefault((r.hook, r.expansion), [r])
    for r in rows:
        grp = groups.get((r.hook, r.expansion))
        if grp is None or r.is_identity or r.architecture == "standard" or not r.recon:
            continue
        relu = grp[0]
        if r.recon["fvu"] <= relu.recon["fvu"] and r.recon["l0"] <= relu.recon["l0"]:
            grp.append(r)  # a frontier winner over this ReLU SAE
    groups = {k: g for k, g in groups.items() if len(g) > 1}
    if not groups:
        c.evidence.append("no SAE dominates a ReLU SAE of the same hook and width on both FVU and L0")
        return c
    cells = [r for g in groups.values() for r in g]
    blocks, comps, start = [], [], 0
    for g in groups.values():
        blocks.append(list(range(start, start + len(g))))
        comps += [(start, start + k, m) for k in range(1, len(g)) for m in ("specificity", "f1")]
        start += len(g)
    y, s = _stack(cells)
    counts = permute_within_blocks(y, s, blocks, cfg.n_perm, cfg.seed)
    metric = {m: counts.metric(m) for m in ("specificity", "f1")}
    d_obs = np.array([metric[m][0][b] - metric[m][0][w] for b, w, m in comps])  # ReLU minus winner: > 0 = worse
    d_draws = np.stack([metric[m][1][:, b] - metric[m][1][:, w] for b, w, m in comps], axis=1)
    c.value, c.p_value, adjusted = max_t(d_obs, d_draws)
    weights = np.zeros((len(comps), len(cells)))
    for k, (b, w, _) in enumerate(comps):
        weights[k, w], weights[k, b] = 1.0, -1.0  # winner minus ReLU, for the non-inferiority check
    by_metric = {m: iter(bootstrap_contrasts([r.pair for r in cells], weights[[k for k, x in enumerate(comps)
                                                                                 if x[2] == m]],
                                             m, cfg.n_boot, cfg.seed, 1 - 2 * cfg.alpha))
                 for m in ("specificity", "f1")}
    for (b, w, m), adj in zip(comps, adjusted, strict=True):
        i = next(by_metric[m])
        c.intervals.append(i)
        r, base = cells[w], cells[b]
        c.evidence.append(f"{r.sae} vs {base.sae} at {r.hook}: FVU {r.recon['fvu']:.3f} vs {base.recon['fvu']:.3f}, "
                          f"L0 {r.recon['l0']:.1f} vs {base.recon['l0']:.1f}; delta {m} {_ci(i)} (90% CI; max-T "
                          f"adjusted p={_p(adj)})")
    negligible = all(i.low > -cfg.margin for i in c.intervals)
    c.comparisons = len(comps)
    c.test = (f"one-sided max-T paired permutation test ({cfg.n_perm} draws; outcomes exchanged among a ReLU SAE and "
              "the SAEs that beat it, per pair)")
    c.statistic = "largest studentised (ReLU minus winner) difference in specificity or F1"
    c.verdict = _verdict(c.p_value, cfg.alpha, negligible)
    _mark_unconverged(c, cells)
    return c


_NEEDS = {"width": "two or more widths of one architecture at one hook",
          "activation": "two or more architectures at one hook and width",
          "depth": "one SAE kind at three or more layers of one component",
          "attention": "attn_out and mlp_out or resid_post at the same layers"}


def evaluate_claims(rows: Sequence[CellRow], n_boot: int = 1000, seed: int = 0, n_perm: int = 2000,
                    alpha: float = ALPHA, margin: float = EQUIVALENCE) -> list[Claim]:
    """All claims on the cells of one panel (same dataset and readout)."""
    cfg = ClaimTests(n_perm=n_perm, n_boot=n_boot, seed=seed, alpha=alpha, margin=margin)
    claims = [f(rows, cfg) for f in (frontier_claim, width_claim, activation_claim, depth_claim, attention_claim)]
    for c in claims:
        if not c.evidence:
            c.evidence.append(f"not testable on these cells: needs {_NEEDS.get(c.key, 'more cells')}")
    return claims
