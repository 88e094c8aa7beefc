"""On-disk cache of readout activations per (model, hook, pairs, readout): scoring another SAE skips the model."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from pseval.data.pairs import WordInContextPair, dataset_hash
from pseval.files import write_atomic, write_json_atomic
from pseval.models.content_key import model_content_key
from pseval.models.loading import LoadedModel
from pseval.models.model_dtype import keyed_model_dtype
from pseval.ps_eval.scoring import PairActivations, collect_pair_activations
from pseval.ps_eval.settings import PSEvalSettings


def cache_key(model_name: str, hook: str, data_hash: str, cfg: PSEvalSettings, model_content: str = "") -> str:
    """Everything that changes the collected activations: the settings marked so, the model, hook and pairs, and
    `model_content`, the digest of the model's weights and tokenizer (pseval.models.content_key), so a model changed in
    place never meets its old entries."""
    settings = keyed_model_dtype(cfg.model_dump(include=set(PSEvalSettings.affecting("activations"))))
    blob = json.dumps({"model": model_name, "content": model_content, "hook": hook, "data": data_hash, **settings},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:20]


def save_pair_activations(pa: PairActivations, path: Path) -> None:
    """Tensors as safetensors, counts as JSON; each written atomically under a unique temp name, JSON last."""
    tensors = {"acts_1": pa.acts_1.contiguous(), "acts_2": pa.acts_2.contiguous(),
               "same_sense": pa.same_sense.to(torch.uint8), "pair_index": torch.tensor(pa.pair_index, dtype=torch.long)}
    if pa.unscored_1 is not None and pa.unscored_2 is not None and pa.unscored_same is not None:
        tensors |= {"unscored_1": pa.unscored_1.contiguous(), "unscored_2": pa.unscored_2.contiguous(),
                    "unscored_same": pa.unscored_same.to(torch.uint8),
                    "unscored_index": torch.tensor(pa.unscored_index, dtype=torch.long)}
    blob = save(tensors)
    write_atomic(path / "acts.safetensors", lambda fh: fh.write(blob), binary=True)
    write_json_atomic({"hook": pa.hook, "counts": pa.counts}, path / "meta.json")


def load_pair_activations(path: Path) -> PairActivations | None:
    """A cached entry, or None when absent; a corrupt entry is reported with a warning and recomputed."""
    if not (path / "meta.json").is_file() or not (path / "acts.safetensors").is_file():
        return None
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        t = load_file(str(path / "acts.safetensors"))
        pa = PairActivations(hook=meta["hook"], acts_1=t["acts_1"], acts_2=t["acts_2"],
                             same_sense=t["same_sense"].bool(), pair_index=t["pair_index"].tolist(),
                             counts=meta["counts"])
        if "unscored_1" in t:  # protocol reference: the valid pairs balancing left out (for its cosine sets)
            pa.unscored_1, pa.unscored_2 = t["unscored_1"], t["unscored_2"]
            pa.unscored_same, pa.unscored_index = t["unscored_same"].bool(), t["unscored_index"].tolist()
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        warnings.warn(f"{path}: corrupt activation cache entry ({type(exc).__name__}: {exc}); recomputing it",
                      stacklevel=2)
        return None
    return pa


def cached_pair_activations(lm: LoadedModel, model_name: str, pairs: Sequence[WordInContextPair],
                            hooks: Sequence[str], cfg: PSEvalSettings, cache_dir: str | Path | None,
                            progress: bool = False) -> dict[str, PairActivations]:
    """collect_pair_activations, reading and writing `cache_dir` (one forward pass for all uncached hooks)."""
    # Entries store Hugging Face activations only; another convention (a processed HookedTransformer) is not cached.
    if cache_dir is None or lm.activation_convention != "hf":
        return collect_pair_activations(lm, pairs, hooks, cfg, progress)
    root = Path(cache_dir)
    h = dataset_hash(pairs)
    content = model_content_key(lm)
    out: dict[str, PairActivations] = {}
    for hook in hooks:
        hit = load_pair_activations(root / cache_key(model_name, hook, h, cfg, content))
        if hit is not None:
            out[hook] = hit
    missing = [hook for hook in hooks if hook not in out]
    if missing:
        fresh = collect_pair_activations(lm, pairs, missing, cfg, progress)
        for hook, pa in fresh.items():
            save_pair_activations(pa, root / cache_key(model_name, hook, h, cfg, content))
            out[hook] = pa
    return out
