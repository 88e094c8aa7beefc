"""Flatten stored cells into rows for tables, plots and claims."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pseval.models.hooks import parse_hook_name
from pseval.ps_eval.record import PSEvalRecord


@dataclass
class CellRow:
    """One evaluated cell with everything the report needs."""

    hook: str
    layer: int | None
    component: str
    sae: str
    architecture: str
    expansion: int
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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def panel(self) -> tuple[str, str]:
        """(dataset, readout): cells in one panel are scored on the same pairs."""
        return self.dataset, self.readout

    @property
    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, predictions) for bootstrap."""
        return self.same_sense, self.same_feature


def architecture_of(record: PSEvalRecord) -> tuple[str, int]:
    """(architecture, expansion ratio) of a record's SAE: the training architecture for pseval-trained SAEs
    (a BatchTopK SAE is saved as jumprelu), else the config's."""
    cfg = record.sae_cfg_dict or {}
    train = (cfg.get("metadata") or {}).get("train_config") or {}
    arch = str(train.get("architecture") or cfg.get("architecture") or "?")
    d_in, d_sae = cfg.get("d_in"), cfg.get("d_sae")
    expansion = int(train.get("expansion") or (d_sae // d_in if d_in and d_sae else 1))
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
        git_commit=str(r.git_commit)[:12], converged=m.training.converged if m.training else None,
        # The record's own intervals (and the resamples behind them) and concentration, for the report's cell table;
        # the settings an inspection page of this cell needs.
        extra={"bootstrap": (cfg.bootstrap_resamples, cfg.bootstrap_seed),
               "intervals": m.ps_eval_intervals.model_dump(),
               "concentration": m.concentration.model_dump(), "model": cfg.model_name, "source": r.sae_source,
               "gain": m.gain_over_control, "share": m.ceiling.share_cosine,
               "protocol": cfg.protocol, "multi_token": cfg.multi_token, "template": cfg.template,
               "too_long": cfg.too_long, "balance": cfg.balance})


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
