"""Flatten stored cells into rows for tables, plots and claims."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pseval.metrics.statistics import bits
from pseval.models.hooks import parse_hook_name


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


def rows_from_cells(cells: Iterable[dict[str, Any]]) -> list[CellRow]:
    """CellRows from stored records (cells without per-pair data are skipped)."""
    rows = []
    for c in cells:
        pairs = c.get("pairs")
        if not pairs:
            continue
        hook = c["cell"]["hook"]
        parsed = parse_hook_name(hook)
        layer, comp = (parsed[0], parsed[1].removeprefix("hook_")) if parsed else (None, hook)
        sweep = c.get("sweep", {})
        extra = c.get("eval_result_metrics", {})
        training = extra.get("training")
        converged = training.get("converged") if isinstance(training, dict) else None
        rows.append(CellRow(
            hook=hook, layer=layer, component=comp, sae=c["cell"]["sae"],
            architecture=sweep.get("architecture", c.get("sae_cfg_dict", {}).get("architecture", "?")),
            expansion=int(sweep.get("expansion") or 1), dataset=c["cell"]["dataset"], readout=c["cell"]["readout"],
            metrics={k: (float("nan") if v is None else v) for k, v in c["metrics"].items()},
            recon=extra.get("reconstruction") or {}, loss_recovered=extra.get("loss_recovered") or {},
            counts=c.get("counts", {}), same_sense=bits(pairs["same_sense"]), same_feature=bits(pairs["same_feature"]),
            targets=pairs.get("target", []), pos=pairs.get("pos", ""),
            cos_enc=np.asarray(pairs.get("cos_enc", []), dtype=float),
            cos_dec=np.asarray(pairs.get("cos_dec", []), dtype=float), git_commit=str(c.get("git_commit"))[:12],
            converged=None if converged is None else bool(converged)))
    return rows


def short_dataset(spec: str) -> str:
    """A readable label of a dataset spec."""
    kind, _, rest = spec.partition(":")
    if kind == "wic":
        return f"WiC {rest.rstrip('/').split('/')[-1]}"
    if kind == "wordnet":
        return "WordNet pairs"
    return spec if len(spec) < 30 else spec[:27] + "..."
