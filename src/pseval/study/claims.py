"""The paper's claims, each tested on a sweep's cells as ONE hypothesis, the five claims as one Holm family.

How a verdict is reached (level alpha = 0.05 unless set otherwise):

- **Test.** Every claim is one pair-bootstrap test (`pseval.metrics.pair_bootstrap`): pairs are resampled with
  replacement (within each label) and every cell's outcomes of a pair stay together, so the test is valid when SAEs
  have equal marginal rates but depend differently on per-pair difficulty (the weak null; a permutation test that
  exchanges SAEs pair by pair is not). The statistic pools all of the claim's comparisons into one number, and its
  null distribution is the resamples' spread around the estimate (centred):
  - *depends on dictionary size / activation function*: the mean over groups (one hook and architecture, or one hook
    and width) of the range (max - min) of specificity across the factor's levels, against the same mean of ranges
    of each resample's deviations from the estimates (the range is taken after the data chose the highest and
    lowest level, in every resample alike);
  - *deeper layers are better*: the mean over (SAE, component) groups of mean specificity of the deeper half of
    the layers minus the shallower half, one-sided;
  - *attention output is better than the MLP output and the residual stream*: one one-sided test per other
    component (mean attn_out minus other over matching SAE and layer); the claim is a conjunction, so it holds only
    if every one rejects (an intersection-union test: its error is at most alpha with no correction);
  - *frontier winners are not necessarily better than ReLU* (the paper's wording): the claim is false only if every
    SAE that beats a ReLU SAE on both FVU and L0 is better than it by at least the margin, in specificity and F1.
    It holds when some (winner, metric) comparison shows the winner's advantage below the margin (worse, or merely
    tied): a one-sided studentised max-T over every (winner, metric) comparison at family-wise alpha.
  The per-comparison numbers (per-group p-values with Holm's adjustment, max-T adjusted p-values, bootstrap
  intervals) are kept as supporting evidence; they do not decide the verdict.
- **Family.** `evaluate_claims` Holm-adjusts the p-values of the claims testable on a panel (up to five): a claim
  "holds" when its adjusted p is at most alpha, so the chance of any false "holds" among the five stays at alpha.
  The functions of single claims (and the calibration test) give each claim at level alpha on its own.
- **"Does not hold"** needs positive evidence: every comparison's 90% paired bootstrap interval (two one-sided tests
  at 5%) lies inside +-margin (0.05 specificity or F1) for "depends on" claims, below +margin for "better" claims;
  for the frontier claim every winner's interval lies above 0 (each winner is better). Concluding that *all*
  comparisons agree is an intersection-union test, so no correction is needed (the attention claim fails if either
  comparison set does, so there each interval is at level 1 - 2 alpha / 2, Bonferroni). Otherwise the verdict is
  "inconclusive". This side is tested per claim at alpha (it is not part of the Holm family).
- **Gain over controls.** `evaluate_claims(..., gain=True)` tests every claim again on each SAE's gain over its
  random controls (pseval.ps_eval.controls) instead of its raw metric: a layer, component, width or architecture
  whose random SAEs already separate senses better is not credited for it. Each SAE's outcomes are resampled with
  its controls' under the same pair draws, and its gain in a draw is its metric minus its controls' mean; the
  controls' seed-to-seed variance beyond their pair noise (s2, the moment estimate of `gains_over_controls`), of
  which their mean carries s2 / N, is added to each draw as independent normal noise (each SAE has its own
  controls). Supporting intervals are then percentile intervals of those draws. Cells whose record keeps no
  per-pair outcomes of its controls are left out, with a note. The gain claims are a second Holm family.
- **Unconverged SAEs.** A claim that compares cells whose SAE training was flagged unconverged names them, and its
  verdict is marked.

`tests/study/test_claims_calibration.py` simulates null sweeps (independent outcomes, a shared per-pair
difficulty, and weak nulls where some SAEs follow the difficulty and others do not) and checks the false-"holds" rate
of every claim, and measures each claim's power for a planted effect.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

from pseval.metrics.pair_bootstrap import (
    BootstrappedMetric,
    bootstrap_cell_metrics,
    centred_null_p,
    centred_p,
    studentised_max_t,
)
from pseval.metrics.significance import holm
from pseval.metrics.statistics import Interval, bootstrap_contrasts, percentile_interval
from pseval.ps_eval.controls import seed_variance
from pseval.ps_eval.rows import CellRow

HOLDS, NOT_HOLDS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
ALPHA = 0.05
EQUIVALENCE = 0.05  # a difference in specificity (or F1) smaller than this counts as no effect
FAMILY = ("Family: the claims testable on this panel (up to five). Each claim's p-value is Holm-adjusted across them "
          "and a claim holds when the adjusted p is at most {alpha:g} (family-wise error {alpha:g}); 'does not hold' "
          "is an equivalence verdict per claim at {alpha:g}. Tests resample pairs (pair bootstrap), valid when SAEs "
          "share marginal rates but differ in how they follow per-pair difficulty. Where the cells keep their random "
          "controls' outcomes, the claims are tested again on each SAE's gain over its controls (on: gain over "
          "controls), a second family of their own.")


@dataclass(frozen=True)
class ClaimTests:
    """How claims are tested: pair resamples behind each test's p-value, resamples behind the supporting
    intervals, seed, level and equivalence margin."""

    n_perm: int = 2000  # pair-bootstrap resamples of each test (the name is kept from the permutation tests)
    n_boot: int = 1000
    seed: int = 0
    alpha: float = ALPHA
    margin: float = EQUIVALENCE
    gain: bool = False  # test each SAE's gain over its random controls instead of its raw metric


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
    p_family: float | None = None  # p_value Holm-adjusted across the panel's claims (evaluate_claims)
    refuted: bool = False  # positive evidence for "does not hold" (see the module)
    comparisons: int = 0  # comparisons the one test covers (each with a supporting interval)
    level: float = ALPHA
    margin: float = EQUIVALENCE
    scale: str = "raw"  # "raw" metrics, or each SAE's "gain over controls"
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


def _cell_metrics(cells: Sequence[CellRow], metrics: Sequence[str], cfg: ClaimTests
                  ) -> dict[str, BootstrappedMetric]:
    """Each metric of each cell on the data and on cfg.n_perm pair resamples: raw, or (cfg.gain) each cell's gain over
    its controls, resampled with them, plus their seed noise (the module's "Gain over controls")."""
    y, s = _stack(cells)
    if not cfg.gain:
        return bootstrap_cell_metrics(y, s, metrics, cfg.n_perm, cfg.seed)
    ctl = [r.control_same_feature for r in cells]
    if any(c is None for c in ctl):
        raise ValueError("a gain over controls needs every cell's per-pair control outcomes")
    boot = bootstrap_cell_metrics(np.vstack([y, *cast(list[np.ndarray], ctl)]), s, metrics, cfg.n_perm, cfg.seed)
    rng = np.random.default_rng([cfg.seed, 26])
    out = {}
    for m in metrics:
        obs, draws = boot[m].observed[:len(cells)].copy(), boot[m].draws[:, :len(cells)].copy()
        start = len(cells)
        for i, c in enumerate(cast(list[np.ndarray], ctl)):
            n = len(c)
            c_obs, c_draws = boot[m].observed[start:start + n], boot[m].draws[:, start:start + n]
            start += n
            obs[i] -= c_obs.mean()
            draws[:, i] -= c_draws.mean(1)
            if n > 1:  # their mean carries 1/N of the seeds' variance
                draws[:, i] += rng.normal(0.0, np.sqrt(seed_variance(c_obs, c_draws) / n), size=len(draws))
        out[m] = BootstrappedMetric(obs, draws)
    return out


def _contrasts(cells: Sequence[CellRow], boot: BootstrappedMetric, weights: np.ndarray, metric: str,
               cfg: ClaimTests, level: float) -> list[Interval]:
    """Supporting intervals of contrasts (rows of weights over cells): the paired bootstrap of the raw metric, or
    percentile intervals of the gain draws."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if not cfg.gain:
        return bootstrap_contrasts([r.pair for r in cells], w, metric, cfg.n_boot, cfg.seed, level)
    return [percentile_interval(float(row @ boot.observed), boot.draws @ row, level) for row in w]


def _what(metric: str, cfg: ClaimTests) -> str:
    return f"{metric} gain over controls" if cfg.gain else metric


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
    boot = _cell_metrics(cells, ("specificity",), cfg)["specificity"]
    obs, draws = boot.observed, boot.draws
    ranges = np.array([np.ptp(obs[b]) for b in blocks])
    # Under the null every level of a group has one specificity, so the observed range is the range of the estimates'
    # errors; the resamples' deviations from the estimates stand for those errors.
    null_ranges = np.stack([np.ptp(draws[:, b] - obs[b], axis=1) for b in blocks], axis=1)
    c.value = float(ranges.mean())
    c.p_value = centred_null_p(c.value, null_ranges.mean(1))
    group_p = np.array([centred_null_p(float(ranges[g]), null_ranges[:, g]) for g in range(len(blocks))])
    group_holm = holm(group_p)
    # Every pairwise difference within a group, for the equivalence check: later level minus earlier.
    rows_w = []
    for b in blocks:
        for i, j in ((i, j) for i in b for j in b if i > j):
            w = np.zeros(len(cells))
            w[i], w[j] = 1.0, -1.0
            rows_w.append(w)
    c.intervals = _contrasts(cells, boot, np.array(rows_w), "specificity", cfg, 1 - 2 * cfg.alpha)
    c.comparisons = len(c.intervals)
    k = 0
    for g, ((label, lv), b) in enumerate(zip(groups, blocks, strict=True)):
        mine = c.intervals[k:k + len(b) * (len(b) - 1) // 2]
        k += len(mine)
        worst = max(max(abs(i.low), abs(i.high)) for i in mine)
        levels = ", ".join(f"{lvl} {obs[i]:.3f}" for (lvl, _), i in zip(lv, b, strict=True))
        c.evidence.append(f"{label}: {_what('specificity', cfg)} {levels}"
                          + f"; range {ranges[g]:.3f} (group p={_p(group_p[g])}, Holm {_p(group_holm[g])}); "
                          f"largest absolute bound of its {len(mine)} pairwise 90% CIs {worst:.3f}")
    c.refuted = all(-cfg.margin < i.low and i.high < cfg.margin for i in c.intervals)
    c.test = (f"pair bootstrap ({cfg.n_perm} resamples; pairs drawn with every {factor}'s outcomes together), "
              "centred")
    c.statistic = f"mean over {len(groups)} group(s) of the range of {_what('specificity', cfg)} across {factor}s"
    c.verdict = _verdict(c.p_value, cfg.alpha, c.refuted)
    _mark_unconverged(c, cells)
    return c


def width_claim(rows: Sequence[CellRow], cfg: ClaimTests = ClaimTests()) -> Claim:
    """Specificity differs between the dictionary sizes of one architecture at one hook."""
    c = Claim("width", "Specificity depends on dictionary size (expansion ratio)", level=cfg.alpha, margin=cfg.margin)
    groups = []
    for (hook, arch), grp in _grouped([r for r in rows if not r.is_identity], ("hook", "architecture")
                                      ).items():
        by_width: dict[float, CellRow] = {}
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
               cfg: ClaimTests, level: float) -> tuple[float, float, list[Interval], list[float], list[CellRow]]:
    """Mean over comparisons of mean(A) - mean(B) specificity: value, one-sided p, intervals, per-comparison p."""
    cells: list[CellRow] = []
    index: dict[int, int] = {}

    def at(r: CellRow) -> int:
        if id(r) not in index:
            index[id(r)] = len(cells)
            cells.append(r)
        return index[id(r)]

    sides: Sides = [([at(r) for r in a], [at(r) for r in b]) for _, a, b in comparisons]
    boot = _cell_metrics(cells, ("specificity",), cfg)["specificity"]
    obs, draws = boot.observed, boot.draws
    w = np.zeros((len(sides), len(cells)))
    for k, (ia, ib) in enumerate(sides):
        w[k, ia] += 1 / len(ia)
        w[k, ib] -= 1 / len(ib)
    d_obs, d_draws = w @ obs, draws @ w.T
    value = float(d_obs.mean())
    p = centred_p(value, d_draws.mean(1))
    intervals = _contrasts(cells, boot, w, "specificity", cfg, level)
    return value, p, intervals, [centred_p(float(d_obs[k]), d_draws[:, k]) for k in range(len(sides))], cells


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
    c.value, c.p_value, c.intervals, group_p, cells = _one_sided(comps, cfg, 1 - 2 * cfg.alpha)
    adj = holm(group_p)
    for (label, _, _), i, gp, ap in zip(comps, c.intervals, group_p, adj, strict=True):
        c.evidence.append(f"{label} {_what('specificity', cfg)} {_ci(i)} (90% CI; group p={_p(gp)}, Holm {_p(ap)})")
    c.comparisons = len(c.intervals)
    c.test = f"one-sided pair bootstrap ({cfg.n_perm} resamples; pairs drawn with every layer's outcomes together)"
    c.statistic = (f"mean over {len(comps)} (SAE, component) group(s) of deeper-half minus shallower-half "
                   f"{_what('specificity', cfg)}")
    c.refuted = all(i.high < cfg.margin for i in c.intervals)
    c.verdict = _verdict(c.p_value, cfg.alpha, c.refuted)
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
    level = 1 - 2 * cfg.alpha / len(per_other)  # 'fails' if either set is negligible: Bonferroni over the sets
    ps, values, negligible, all_cells = [], [], False, []
    for other, comps in sorted(per_other.items()):
        value, p, intervals, _, cells = _one_sided(comps, cfg, level)
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
    c.test = (f"intersection-union of one-sided pair bootstraps ({cfg.n_perm} resamples each; pairs drawn with "
              f"every component's outcomes together), one per other component ({len(per_other)})")
    c.statistic = f"smallest over the other components of mean attn_out minus other {_what('specificity', cfg)}"
    c.refuted = negligible
    c.verdict = _verdict(c.p_value, cfg.alpha, negligible)
    _mark_unconverged(c, all_cells)
    return c


def frontier_claim(rows: Sequence[CellRow], cfg: ClaimTests = ClaimTests()) -> Claim:
    """SAEs that win the MSE-L0 frontier over a ReLU SAE are not necessarily better at separating senses: holds when
    some winner's advantage (specificity or F1) is shown below the margin; does not hold when every winner is better."""
    c = Claim("frontier", "SAEs that win the MSE-L0 frontier (TopK, JumpReLU, ...) are not necessarily better at "
                          "separating senses than ReLU (standard) SAEs", level=cfg.alpha, margin=cfg.margin)
    groups: dict[tuple[str, float], list[CellRow]] = {}
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
    comps, start = [], 0
    for g in groups.values():
        comps += [(start, start + k, m) for k in range(1, len(g)) for m in ("specificity", "f1")]
        start += len(g)
    boot = _cell_metrics(cells, ("specificity", "f1"), cfg)
    d_obs = np.array([boot[m].observed[w] - boot[m].observed[b] for b, w, m in comps])  # winner minus ReLU
    d_draws = np.stack([boot[m].draws[:, w] - boot[m].draws[:, b] for b, w, m in comps], axis=1)
    # The claim is false only if every winner is better by the margin or more (H0_k: delta_k >= margin for all k);
    # some comparison below the margin makes it hold: max-T of (margin - delta) at family-wise alpha.
    t, c.p_value, adjusted = studentised_max_t(-d_obs, -d_draws, -cfg.margin)
    c.value = float(d_obs.min())
    weights = np.zeros((len(comps), len(cells)))
    for k, (b, w, _) in enumerate(comps):
        weights[k, w], weights[k, b] = 1.0, -1.0  # winner minus ReLU
    by_metric = {m: iter(_contrasts(cells, boot[m], weights[[k for k, x in enumerate(comps) if x[2] == m]], m, cfg,
                                    1 - 2 * cfg.alpha)) for m in ("specificity", "f1")}
    for (b, w, m), adj in zip(comps, adjusted, strict=True):
        i = next(by_metric[m])
        c.intervals.append(i)
        r, base = cells[w], cells[b]
        c.evidence.append(f"{r.sae} vs {base.sae} at {r.hook}: FVU {r.recon['fvu']:.3f} vs {base.recon['fvu']:.3f}, "
                          f"L0 {r.recon['l0']:.1f} vs {base.recon['l0']:.1f}; winner minus ReLU "
                          f"{_what(m, cfg)} {_ci(i)} (90% CI; max-T adjusted p of 'below +{cfg.margin:g}' {_p(adj)})")
    c.refuted = all(i.low > 0 for i in c.intervals)  # every winner better on every metric: "necessarily better"
    c.comparisons = len(comps)
    c.test = (f"one-sided studentised max-T pair bootstrap ({cfg.n_perm} resamples; pairs drawn with the ReLU SAE's "
              "and its winners' outcomes together)")
    c.statistic = (f"smallest winner-minus-ReLU difference in {_what('specificity or F1', cfg)} (holds when "
                   f"some is shown below +{cfg.margin:g}: worse, or merely tied)")
    c.verdict = _verdict(c.p_value, cfg.alpha, c.refuted)
    _mark_unconverged(c, cells)
    return c


_NEEDS = {"width": "two or more widths of one architecture at one hook",
          "activation": "two or more architectures at one hook and width",
          "depth": "one SAE kind at three or more layers of one component",
          "attention": "attn_out and mlp_out or resid_post at the same layers"}


def evaluate_claims(rows: Sequence[CellRow], n_boot: int = 1000, seed: int = 0, n_perm: int = 2000,
                    alpha: float = ALPHA, margin: float = EQUIVALENCE, gain: bool = False) -> list[Claim]:
    """All claims on the cells of one panel (same dataset and readout): on raw metrics, or (gain) on each SAE's gain
    over its random controls, leaving out cells without per-pair control outcomes."""
    cfg = ClaimTests(n_perm=n_perm, n_boot=n_boot, seed=seed, alpha=alpha, margin=margin, gain=gain)
    kept = [r for r in rows if r.control_same_feature is not None] if gain else list(rows)
    claims = [f(kept, cfg) for f in (frontier_claim, width_claim, activation_claim, depth_claim, attention_claim)]
    for c in claims:
        if gain:
            c.scale = "gain over controls"
        if not c.evidence:
            c.evidence.append(f"not testable on these cells: needs {_NEEDS.get(c.key, 'more cells')}")
        if len(kept) < len(rows):
            c.evidence.append(f"{len(rows) - len(kept)} of {len(rows)} cells left out: their records keep no "
                              "per-pair outcomes of random controls (scored without controls, or before they were "
                              "kept)")
    # One family: Holm across the testable claims decides "holds" (see the module).
    tested = [c for c in claims if c.p_value is not None]
    for c, adj in zip(tested, holm([float(c.p_value) for c in tested if c.p_value is not None]), strict=True):
        c.p_family = float(adj)
        c.verdict = _verdict(c.p_family, cfg.alpha, c.refuted)
        c.evidence.append(f"Holm-adjusted over the {len(tested)} testable claim(s): p={_p(c.p_family)}")
    return claims


def family_note(alpha: float = ALPHA) -> str:
    """The line the report prints under the claims table: which family the verdicts control."""
    return FAMILY.format(alpha=alpha)
