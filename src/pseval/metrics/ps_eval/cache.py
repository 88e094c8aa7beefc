"""On-disk cache of readout activations per (model, hook, pairs, readout): scoring another SAE skips the model."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pseval.data.pairs import WordInContextPair, dataset_hash
from pseval.metrics.ps_eval.config import PSEvalConfig
from pseval.metrics.ps_eval.runner import PairActivations, collect_pair_activations
from pseval.models.loading import LoadedModel


def cache_key(model_name: str, hook: str, data_hash: str, cfg: PSEvalConfig) -> str:
    """Everything that changes the collected activations."""
    blob = json.dumps({"model": model_name, "hook": hook, "data": data_hash, "readout": cfg.to_dict()["readout"],
                       "balance": cfg.balance, "seed": cfg.seed}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def save_pair_activations(pa: PairActivations, path: Path) -> None:
    """Tensors as safetensors, counts as JSON; written to temp names and renamed, JSON last."""
    path.mkdir(parents=True, exist_ok=True)
    tensors = {"acts_1": pa.acts_1.contiguous(), "acts_2": pa.acts_2.contiguous(),
               "same_sense": pa.same_sense.to(torch.uint8), "pair_index": torch.tensor(pa.pair_index, dtype=torch.long)}
    save_file(tensors, str(path / "acts.tmp"))
    os.replace(path / "acts.tmp", path / "acts.safetensors")
    (path / "meta.tmp").write_text(json.dumps({"hook": pa.hook, "counts": pa.counts}))
    os.replace(path / "meta.tmp", path / "meta.json")


def load_pair_activations(path: Path) -> PairActivations | None:
    """A cached entry, or None when absent or incomplete."""
    if not (path / "meta.json").is_file() or not (path / "acts.safetensors").is_file():
        return None
    meta = json.loads((path / "meta.json").read_text())
    t = load_file(str(path / "acts.safetensors"))
    return PairActivations(hook=meta["hook"], acts_1=t["acts_1"], acts_2=t["acts_2"],
                           same_sense=t["same_sense"].bool(), pair_index=t["pair_index"].tolist(),
                           counts=meta["counts"])


def cached_pair_activations(lm: LoadedModel, model_name: str, pairs: Sequence[WordInContextPair],
                            hooks: Sequence[str], cfg: PSEvalConfig, cache_dir: str | Path | None,
                            progress: bool = False) -> dict[str, PairActivations]:
    """collect_pair_activations, reading and writing `cache_dir` (one forward pass for all uncached hooks)."""
    if cache_dir is None:
        return collect_pair_activations(lm, pairs, hooks, cfg, progress)
    root = Path(cache_dir)
    h = dataset_hash(pairs)
    out: dict[str, PairActivations] = {}
    for hook in hooks:
        hit = load_pair_activations(root / cache_key(model_name, hook, h, cfg))
        if hit is not None:
            out[hook] = hit
    missing = [hook for hook in hooks if hook not in out]
    if missing:
        fresh = collect_pair_activations(lm, pairs, missing, cfg, progress)
        for hook, pa in fresh.items():
            save_pair_activations(pa, root / cache_key(model_name, hook, h, cfg))
            out[hook] = pa
    return out
