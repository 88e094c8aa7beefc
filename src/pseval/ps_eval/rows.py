"""Records as rows: the one place a typed record is flattened, for tables (with their intervals and paired differences
between records on the same pairs) and, as `CellRow`s, for the study's plots and claims.

`pseval eval`, `pseval compare` and the demo print these; every interval shown is the record's own (95%,
pairs resampled with the record's bootstrap_resamples and bootstrap_seed), and a difference's interval comes from
resampling both records' pairs together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pseval.errors import ConfigError
from pseval.metrics.statistics import Interval, bits
from pseval.models.hooks import parse_hook_name
from pseval.ps_eval.concentration import DOMINANCE_THRESHOLD
from pseval.ps_eval.headline import HEADLINE_COLUMNS, headline_row
from pseval.ps_eval.intervals import PairArrays, paired_intervals
from pseval.ps_eval.record import PSEvalRecord
from pseval.saes.identity import is_identity_architecture
from pseval.tables import with_ci

CONFUSION = ("accuracy", "precision", "recall", "specificity", "f1")
RECON_COLUMNS = ("mse", "fvu", "l0", "dead", "loss_rec")


def _ci(cat: Any, bounds: Any, field: str) -> str:
    """A field of a category with its interval, from the category itself or its `_intervals` companion."""
    if cat is None:
        return "-"
    src = bounds if bounds is not None else cat
    return with_ci(getattr(cat, field), getattr(src, f"{field}_low", None), getattr(src, f"{field}_high", None))


def _head(r: PSEvalRecord, label: str | None = None) -> dict[str, Any]:
    return {"sae": label or r.sae_name, "hook": r.eval_config.hook_name,
            "pairs": r.eval_result_metrics.counts.pairs_scored}


def _labelled(records: Sequence[PSEvalRecord], labels: Sequence[str] | None) -> list[tuple[PSEvalRecord, str | None]]:
    names: Sequence[str | None] = labels or [None] * len(records)
    return list(zip(records, names, strict=True))


def argmax_rows(records: Sequence[PSEvalRecord], labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The paper's argmax PS-Eval, every metric with its interval, and the confusion counts."""
    rows = []
    for r, label in _labelled(records, labels):
        m = r.eval_result_metrics
        rows.append({**_head(r, label), **{c: _ci(m.ps_eval, m.ps_eval_intervals, c) for c in CONFUSION},
                     **{c: getattr(m.ps_eval, c) for c in ("tp", "fp", "tn", "fn")}})
    return rows


ARGMAX_COLUMNS = ("sae", "hook", "pairs", *CONFUSION, "tp", "fp", "tn", "fn")


def threshold_free_rows(records: Sequence[PSEvalRecord], labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """ROC-AUCs of the code cosine and top-k Jaccard, the raw-activation ceiling and the SAE's share, PS-Eval@k."""
    rows = []
    for r, label in _labelled(records, labels):
        m = r.eval_result_metrics
        tf, ce, at = m.threshold_free, m.ceiling, m.ps_eval_at_k
        rows.append({**_head(r, label), "k": tf.top_k, "AUC cosine": _ci(tf, None, "auc_cosine"),
                     "AUC Jaccard@k": _ci(tf, None, "auc_jaccard"), "ceiling AUC cosine": _ci(ce, None, "auc_cosine"),
                     "share of ceiling": _ci(ce, None, "share_cosine"),
                     "ceiling AUC Jaccard@k": _ci(ce, None, "auc_jaccard"),
                     "PS-Eval@k F1": _ci(at, m.ps_eval_at_k_intervals, "f1"),
                     "PS-Eval@k specificity": _ci(at, m.ps_eval_at_k_intervals, "specificity")})
    return rows


# PS-Eval@k is left out of the tables (kept in the record): with top_k 8 nearly every pair's two top-8 sets share a
# latent, so its specificity is 0.000 [0.000, 0.000] for every SAE and the columns said nothing.
THRESHOLD_FREE_COLUMNS = ("sae", "hook", "k", "AUC cosine", "AUC Jaccard@k", "ceiling AUC cosine", "share of ceiling",
                          "ceiling AUC Jaccard@k")


def concentration_rows(records: Sequence[PSEvalRecord], labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """How far one feature drives the argmax: distinct top features, the most common one's share of contexts and of
    the "same" predictions, the effective number, and the flag."""
    rows = []
    for r, label in _labelled(records, labels):
        c = r.eval_result_metrics.concentration
        rows.append({"sae": label or r.sae_name, "hook": r.eval_config.hook_name, "distinct": c.distinct_top_features,
                     "top feature": c.top_feature, "share of contexts": _ci(c, None, "top_feature_share"),
                     "effective number": _ci(c, None, "effective_top_features"),
                     "same predictions by it": f"{c.same_predictions_top_feature} of {c.same_predictions}",
                     "flag": f"DOMINATED (> {DOMINANCE_THRESHOLD:g})" if c.dominated else ""})
    return rows


CONCENTRATION_COLUMNS = ("sae", "hook", "distinct", "top feature", "share of contexts", "effective number",
                         "same predictions by it", "flag")


def robust_rows(records: Sequence[PSEvalRecord], labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The dense-feature-robust variant of the records that have it."""
    rows = []
    for r, label in _labelled(records, labels):
        m = r.eval_result_metrics
        rb = m.ps_eval_robust
        if rb is None:
            continue
        rows.append({**_head(r, label), "exclude dense >": rb.exclude_dense, "latents left out": rb.excluded_latents,
                     **{c: _ci(rb, m.ps_eval_robust_intervals, c) for c in ("f1", "specificity", "recall",
                                                                             "precision")}})
    return rows


ROBUST_COLUMNS = ("sae", "hook", "pairs", "exclude dense >", "latents left out", "f1", "specificity", "recall",
                  "precision")


@dataclass
class Comparison:
    """Every statistic of each record and, for each record after the first, its paired difference to the first."""

    names: list[str]
    per_record: list[dict[str, Interval]]
    differences: list[dict[str, Interval]]  # differences[i - 1]: record i minus record 0
    n_boot: int
    seed: int
    notes: list[str]


def check_same_pairs(records: Sequence[PSEvalRecord], names: Sequence[str]) -> None:
    """A ConfigError naming the records that were not scored on the same pairs (ids, order and labels)."""
    first = records[0]
    ids0 = [(d.pair_id, d.same_sense) for d in first.eval_result_details]
    for r, name in zip(records[1:], names[1:], strict=True):
        a, b = first.eval_config, r.eval_config
        # Pair ids name a file and a line (wic:dev:12), not the pair: equal ids over other data or another model's
        # activations would pair unrelated outcomes.
        if (a.model_name, a.model_convention) != (b.model_name, b.model_convention):
            raise ConfigError(f"{names[0]} and {name} are records of different models ({a.model_name!r} vs "
                              f"{b.model_name!r}): paired differences compare SAEs of one model")
        if a.dataset_hash != b.dataset_hash:
            raise ConfigError(f"{names[0]} and {name} were scored on different datasets (dataset_hash "
                              f"{a.dataset_hash[:12]} vs {b.dataset_hash[:12]}; {a.dataset!r} vs {b.dataset!r}): "
                              "paired differences need the same pairs")
        ids = [(d.pair_id, d.same_sense) for d in r.eval_result_details]
        if ids == ids0:
            continue
        why = []
        if a.dataset_hash != b.dataset_hash:
            why.append(f"dataset_hash {a.dataset_hash[:12]} vs {b.dataset_hash[:12]}")
        if a.selection_hash != b.selection_hash:
            why.append(f"selection_hash {a.selection_hash[:12]} vs {b.selection_hash[:12]}")
        diff = next((i for i, (x, y) in enumerate(zip(ids0, ids, strict=False)) if x != y), min(len(ids0), len(ids)))
        why.append(f"{len(ids0)} vs {len(ids)} scored pairs, first difference at pair #{diff}")
        raise ConfigError(f"{names[0]} and {name} were not scored on the same pairs ({'; '.join(why)}): paired "
                          "differences need the same pairs (same data, selection, readout and balancing)")


def compare_records(records: Sequence[PSEvalRecord], names: Sequence[str], n_boot: int | None = None,
                    seed: int | None = None) -> Comparison:
    """Paired differences of every statistic against the first record (resamples and seed: the first record's
    unless given). A statistic whose definition differs between two records (top_k, exclude_dense) is left out of
    their difference, with a note."""
    if not records:
        raise ConfigError("nothing to compare")
    check_same_pairs(records, names)
    cfg0 = records[0].eval_config
    n_boot = cfg0.bootstrap_resamples if n_boot is None else n_boot
    seed = cfg0.bootstrap_seed if seed is None else seed
    cells = [PairArrays.from_details(r.eval_result_details) for r in records]
    per_record, diffs = paired_intervals(cells, [(i, 0) for i in range(1, len(cells))], n_boot, seed)
    notes = []
    for i, r in enumerate(records[1:], start=1):
        c = r.eval_config
        drop = []
        if c.top_k != cfg0.top_k:
            drop += ["ps_eval_at_k.", "threshold_free.auc_jaccard", "ceiling.auc_jaccard", "ceiling.share_jaccard"]
            notes.append(f"{names[i]}: top_k {c.top_k} vs {cfg0.top_k}: top-k statistics not compared")
        if c.exclude_dense != cfg0.exclude_dense:
            drop.append("ps_eval_robust.")
            notes.append(f"{names[i]}: exclude_dense {c.exclude_dense} vs {cfg0.exclude_dense}: robust variant not "
                         "compared")
        diffs[i - 1] = {k: v for k, v in diffs[i - 1].items() if not any(k.startswith(d) for d in drop)}
    return Comparison(list(names), per_record, diffs, n_boot, seed, notes)


DIFFERENCE_STATS = {"Δ F1": "ps_eval.f1", "Δ specificity": "ps_eval.specificity", "Δ MCC": "ps_eval.mcc",
                    "Δ AUC cosine": "threshold_free.auc_cosine", "Δ AUC Jaccard@k": "threshold_free.auc_jaccard",
                    "Δ robust F1": "ps_eval_robust.f1"}


def difference_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per record after the first: its headline statistics minus the first's, with paired intervals
    (`*`: the interval excludes 0)."""
    rows = []
    for name, diff in zip(comparison.names[1:], comparison.differences, strict=True):
        row: dict[str, Any] = {"record": name, "minus": comparison.names[0]}
        for col, key in DIFFERENCE_STATS.items():
            iv = diff.get(key)
            row[col] = "-" if iv is None else with_ci(iv.value, iv.low, iv.high) + (" *" if iv.excludes_zero()
                                                                                    else "")
        rows.append(row)
    return rows


def difference_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The difference columns that hold something."""
    return ("record", "minus", *(c for c in DIFFERENCE_STATS if any(r.get(c) not in (None, "-") for r in rows)))


def record_row(rec: PSEvalRecord) -> dict[str, Any]:
    """One table row of a record: the headline (F1, specificity, MCC with intervals, MCC gain over the random
    control, share of ceiling), then the rest of the argmax PS-Eval numbers and any reconstruction figures."""
    argmax = argmax_rows([rec])[0]
    row = {**headline_row(rec), **{c: argmax[c] for c in DETAIL_COLUMNS}}
    m = rec.eval_result_metrics
    if m.reconstruction is not None and m.reconstruction.tokens:
        row.update(mse=m.reconstruction.mse_per_token, fvu=m.reconstruction.fvu, l0=m.reconstruction.l0,
                   dead=m.reconstruction.dead_fraction)
    if m.loss_recovered is not None:
        row["loss_rec"] = m.loss_recovered.loss_recovered_zero
    return row


DETAIL_COLUMNS = ("accuracy", "precision", "recall", "tp", "fp", "tn", "fn")


def table_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The table's columns: the headline first, the other argmax PS-Eval ones, and the reconstruction ones that
    some row has."""
    return HEADLINE_COLUMNS + DETAIL_COLUMNS + tuple(col for col in RECON_COLUMNS if any(col in r for r in rows))


def detail_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The full argmax table's columns, with the reconstruction ones that some row has."""
    return ARGMAX_COLUMNS + tuple(col for col in RECON_COLUMNS if any(col in r for r in rows))


@dataclass
class CellRow:
    """One evaluated cell with everything the report needs."""

    hook: str
    layer: int | None
    component: str
    sae: str
    architecture: str
    expansion: float  # d_sae / d_in
    dataset: str
    readout: str
    metrics: dict[str, float]
    recon: dict[str, float]
    loss_recovered: dict[str, Any]
    counts: dict[str, Any]
    same_sense: np.ndarray
    same_feature: np.ndarray
    targets: list[str]
    pos: str
    cos_enc: np.ndarray
    cos_dec: np.ndarray
    git_commit: str = "?"  # the commit the cell was computed at (a resumed sweep may span several)
    converged: bool | None = None  # whether the SAE's training converged; None when the record does not say
    record: PSEvalRecord | None = None  # the record the row flattens (its settings, intervals, concentration)
    model: str = ""  # the model the cell's activations came from
    dataset_hash: str = ""  # the content of the pair set (two files may share a spec string)
    d_sae: int | None = None  # the SAE's width (its cfg's d_sae); None when the record has no SAE config
    # [n_controls, n_pairs] whether each random control's top feature is shared by a pair's two contexts; None when
    # the record keeps no per-pair outcomes of its controls (what the claims' gain over controls needs)
    control_same_feature: np.ndarray | None = None

    @property
    def panel(self) -> tuple[str, str, str, str]:
        """(dataset, readout, model, dataset hash): cells in one panel are scored on the same pairs of one model."""
        return self.dataset, self.readout, self.model, self.dataset_hash

    @property
    def is_identity(self) -> bool:
        """Whether the row is the identity baseline (the model's own neurons)."""
        return is_identity_architecture(self.architecture)

    @property
    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, predictions) for bootstrap."""
        return self.same_sense, self.same_feature


def architecture_of(record: PSEvalRecord) -> tuple[str, float]:
    """(architecture, expansion ratio) of a record's SAE: the training architecture for pseval-trained SAEs
    (a BatchTopK SAE is saved as jumprelu), else the config's. The ratio is d_sae / d_in, not floored: a release's
    widths 768 and 1024 of a 384-wide model are x2 and x2.67, two widths, not one."""
    cfg = record.sae_cfg_dict or {}
    train = (cfg.get("metadata") or {}).get("train_config") or {}
    arch = str(train.get("architecture") or cfg.get("architecture") or "?")
    d_in, d_sae = cfg.get("d_in"), cfg.get("d_sae")
    expansion = float(train.get("expansion") or (d_sae / d_in if d_in and d_sae else 1))
    return arch, expansion


def row_from_record(r: PSEvalRecord) -> CellRow:
    """A CellRow from a stored record (its per-pair outcomes are the arrays the report resamples)."""
    cfg = r.eval_config
    parsed = parse_hook_name(cfg.hook_name)
    layer, comp = (parsed[0], parsed[1].removeprefix("hook_")) if parsed else (None, cfg.hook_name)
    arch, expansion = architecture_of(r)
    m = r.eval_result_metrics
    d = r.eval_result_details
    nan = float("nan")
    return CellRow(
        hook=cfg.hook_name, layer=layer, component=comp, sae=r.sae_name, architecture=arch, expansion=expansion,
        dataset=cfg.dataset, readout=cfg.readout,
        metrics={k: (nan if v is None else v) for k, v in m.ps_eval.model_dump().items()},
        recon=m.reconstruction.model_dump() if m.reconstruction else {},
        loss_recovered=m.loss_recovered.model_dump() if m.loss_recovered else {},
        counts=m.counts.model_dump(), same_sense=np.array([p.same_sense for p in d], dtype=bool),
        same_feature=np.array([p.feature_1 == p.feature_2 for p in d], dtype=bool), targets=[p.target for p in d],
        pos="".join(p.pos or "-" for p in d),
        cos_enc=np.array([nan if p.enc_cos is None else p.enc_cos for p in d], dtype=float),
        cos_dec=np.array([nan if p.dec_cos is None else p.dec_cos for p in d], dtype=float),
        git_commit=str(r.git_commit)[:12], converged=m.training.converged if m.training else None, record=r,
        model=cfg.model_name, dataset_hash=cfg.dataset_hash, d_sae=_width(r), control_same_feature=_controls(r))


def _controls(r: PSEvalRecord) -> np.ndarray | None:
    """The controls' per-pair outcomes [n_controls, n_pairs], when the record keeps them for every control."""
    ctl = r.eval_result_unstructured.controls
    n = len(r.eval_result_details)
    if not ctl or any(c.same_top_feature is None or len(c.same_top_feature) != n for c in ctl):
        return None
    return np.stack([bits(c.same_top_feature) for c in ctl if c.same_top_feature is not None])


def _width(r: PSEvalRecord) -> int | None:
    """The SAE's d_sae from the record's SAE config, when it holds a positive integer."""
    d = (r.sae_cfg_dict or {}).get("d_sae")
    return d if isinstance(d, int) and not isinstance(d, bool) and d > 0 else None


def rows_from_records(records: Iterable[PSEvalRecord]) -> list[CellRow]:
    """CellRows of every record."""
    return [row_from_record(r) for r in records]


def short_dataset(spec: str) -> str:
    """A readable label of a dataset spec."""
    kind, _, rest = spec.partition(":")
    if kind == "wic":
        return f"WiC {rest.rstrip('/').split('/')[-1]}"
    if kind == "wordnet":
        return "WordNet pairs"
    return spec if len(spec) < 30 else spec[:27] + "..."
