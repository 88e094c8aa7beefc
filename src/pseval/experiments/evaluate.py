"""`pseval eval`: many SAEs at many hooks on one pair set, one forward pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pseval.data.corpus import corpus_texts
from pseval.data.pairs import dataset_hash
from pseval.data.sources import load_pairs
from pseval.experiments.table import text_table
from pseval.metrics.loss_recovered import loss_recovered
from pseval.metrics.ps_eval import PSEvalConfig, score_sae
from pseval.metrics.ps_eval.cache import cached_pair_activations
from pseval.metrics.ps_eval.schema import result_record, write_json_atomic
from pseval.metrics.reconstruction import reconstruction_metrics
from pseval.models.readout import ReadoutConfig
from pseval.saes.base import SAE
from pseval.saes.loading import load_sae, sae_display_name
from pseval.training.activations import StreamConfig, collect_activations

DEFAULT_HOOK = "blocks.3.hook_resid_post"
COLUMNS = ("sae", "hook", "pairs", "accuracy", "precision", "recall", "specificity", "f1", "tp", "fp", "tn", "fn")
RECON_COLUMNS = ("mse", "fvu", "l0", "dead", "loss_rec")


@dataclass
class EvalRequest:
    """Everything `pseval eval` was asked to do."""

    model: str = "minilm"
    hooks: list[str] = field(default_factory=list)
    saes: list[str] = field(default_factory=lambda: ["identity"])
    data: str = "wordnet:max_per_lemma=2,balance=1"
    readout: str = "template"
    multi_token: str = "drop"
    balance: str = "paper"
    too_long: str = "truncate"
    max_pairs: int | None = None
    seed: int = 0
    device: str = "cpu"
    out: Path | None = None
    corpus: str = "wordnet-definitions"
    recon_tokens: int = 0  # tokens of `corpus` for MSE / FVU / L0 / dead fraction next to PS-Eval
    loss_tokens: int = 0  # tokens of `corpus` for loss recovered and KL
    cache: Path | None = None  # readout-activation cache: scoring more SAEs later skips the model


def plan_cells(sae_specs: list[str], hooks: list[str], loaded: dict[str, SAE]) -> list[tuple[str, str]]:
    """(SAE spec, hook) cells: identity at every hook; a file SAE at the given hooks, else at its recorded hook."""
    cells = []
    for spec in sae_specs:
        if spec == "identity":
            cells += [(spec, h) for h in (hooks or [DEFAULT_HOOK])]
            continue
        recorded = loaded[spec].cfg.metadata.hook_name
        targets = hooks or ([recorded] if recorded else [DEFAULT_HOOK])
        cells += [(spec, h) for h in targets]
    return cells


def run_eval(req: EvalRequest, log: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Run the evaluation, print a table, write JSON; returns the result records."""
    from pseval.models.loading import load_model

    pairs = load_pairs(req.data)
    if req.max_pairs is not None and len(pairs) > req.max_pairs:
        g = torch.Generator().manual_seed(req.seed)
        keep = sorted(torch.randperm(len(pairs), generator=g)[: req.max_pairs].tolist())
        pairs = [pairs[i] for i in keep]
    lm = load_model(req.model, device=req.device)
    loaded = {s: load_sae(s).to(req.device) for s in req.saes if s != "identity"}
    cells = plan_cells(req.saes, req.hooks, loaded)
    hooks = list(dict.fromkeys(h for _, h in cells))
    cfg = PSEvalConfig(readout=ReadoutConfig(position=req.readout, multi_token=req.multi_token,  # type: ignore[arg-type]
                                             too_long=req.too_long),  # type: ignore[arg-type]
                       balance=req.balance, seed=req.seed)  # type: ignore[arg-type]
    log(f"{len(pairs)} pairs from {req.data}; {len(cells)} cell(s) over {len(hooks)} hook(s)")
    acts = cached_pair_activations(lm, req.model, pairs, hooks, cfg, req.cache, progress=True)
    corpus_acts = {}
    if req.recon_tokens > 0:
        corpus_acts = collect_activations(lm, corpus_texts(req.corpus), hooks,
                                          StreamConfig(max_tokens=req.recon_tokens), progress=True)
    h = dataset_hash(pairs)
    records, rows = [], []
    for spec, hook in cells:
        sae = load_sae("identity", d_in=lm.d_model, model_name=req.model, hook_name=hook).to(req.device) \
            if spec == "identity" else loaded[spec]
        res = score_sae(acts[hook], sae, cfg, req.model)
        name = sae_display_name(spec)
        extra: dict[str, Any] = {}
        row: dict[str, Any] = {"sae": name, "hook": hook, "pairs": res.counts["pairs_scored"], **res.metrics}
        if corpus_acts:
            rec = reconstruction_metrics(sae, corpus_acts[hook])
            extra["reconstruction"] = {**rec.to_dict(), "corpus": req.corpus}
            row.update(mse=rec.mse_per_token, fvu=rec.fvu, l0=rec.l0, dead=rec.dead_fraction)
        if req.loss_tokens > 0:
            lr = loss_recovered(lm, sae, hook, corpus_texts(req.corpus), req.loss_tokens, seed=req.seed)
            extra["loss_recovered"] = lr.to_dict()
            row["loss_rec"] = lr.loss_recovered_zero
            if not lr.available:
                log(f"loss recovered unavailable for {name} at {hook}: {lr.reason}")
            elif lr.reason:
                log(f"loss recovered for {name} at {hook} is on the {lr.objective} objective: {lr.reason}")
        records.append(result_record(res, sae, name, req.model, hook, req.data, h, cfg, extra_metrics=extra))
        rows.append(row)
    counts = records[0]["counts"] if records else {}
    log(f"pairs read {counts.get('pairs_read')}, valid {counts.get('pairs_valid')}, "
        f"scored {counts.get('pairs_scored')}, dropped {counts.get('dropped')}")
    extra_cols = tuple(c for c in RECON_COLUMNS if any(c in r for r in rows))
    log(text_table(rows, COLUMNS + extra_cols))
    if req.out is not None:
        if req.out.suffix == ".json":
            write_json_atomic(records[0] if len(records) == 1 else records, req.out)
        else:
            for rec, (spec, hook) in zip(records, cells, strict=True):
                write_json_atomic(rec, req.out / f"{sae_display_name(spec)}__{hook}.json")
        log(f"wrote {req.out}")
    return records
