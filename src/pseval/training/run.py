"""`pseval train`: stream activations once, train every requested SAE from them, save and summarise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pseval.data.corpus import corpus_texts
from pseval.experiments.table import text_table
from pseval.metrics.reconstruction import reconstruction_metrics
from pseval.models.loading import LoadedModel, load_model
from pseval.saes.base import SAE
from pseval.saes.config import SAEMetadata
from pseval.saes.formats.saelens import save_sae
from pseval.training.activations import StreamConfig, cached_activations
from pseval.training.trainer import TrainConfig, TrainLog, train_saes


@dataclass
class TrainRequest:
    """One activation stream (model, hook, corpus, tokens) and the SAEs to train from it."""

    model: str = "minilm"
    hook: str = "blocks.3.hook_resid_post"
    corpus: str = "wordnet"
    tokens: int = 1_000_000
    heldout_tokens: int = 20_000
    context_size: int = 128
    configs: list[TrainConfig] = field(default_factory=list)
    out: Path = Path("runs/sae")
    device: str = "cpu"
    include_special_tokens: bool = False
    cache: Path | None = None  # activation cache folder: a repeated request reads the memory-mapped activations


def run_training(req: TrainRequest, log: Callable[[str], Any] = print, progress: bool = True,
                 lm: LoadedModel | None = None) -> list[tuple[Path, SAE, TrainLog, dict[str, Any]]]:
    """Train and save every SAE of the request; returns (folder, SAE, log, held-out metrics) per SAE."""
    lm = lm or load_model(req.model, device=req.device)
    stream = StreamConfig(context_size=req.context_size, max_tokens=req.tokens + req.heldout_tokens,
                          exclude_special_tokens=not req.include_special_tokens)
    acts = cached_activations(lm, req.model, req.corpus, corpus_texts(req.corpus), req.hook, stream, req.cache,
                              progress)
    n_held = min(req.heldout_tokens, acts.shape[0] // 10)
    train, held = acts[: acts.shape[0] - n_held], acts[acts.shape[0] - n_held:]
    log(f"{acts.shape[0]} activations at {req.hook} from {req.corpus}; training {len(req.configs)} SAE(s)")
    meta = SAEMetadata(model_name=req.model, hook_name=req.hook, prepend_bos=lm.is_causal,
                       exclude_special_tokens=not req.include_special_tokens, context_size=req.context_size,
                       dataset_path=req.corpus)
    trained = train_saes(train, req.configs, meta, device=req.device, progress=progress,
                         checkpoint_dir=req.out / ".checkpoint")
    out = []
    for tc, (sae, tlog) in zip(req.configs, trained, strict=True):
        folder = req.out if len(req.configs) == 1 else req.out / tc.label
        save_sae(sae, folder)
        metrics = reconstruction_metrics(sae, held).to_dict()
        out.append((folder, sae, tlog, metrics))
    rows = [{"sae": str(f), "d_sae": s.d_sae, **{k: m[k] for k in ("mse_per_token", "fvu", "l0", "dead_fraction")}}
            for f, s, _, m in out]
    log(text_table(rows, ("sae", "d_sae", "mse_per_token", "fvu", "l0", "dead_fraction")))
    ckpt = req.out / ".checkpoint" / "trainer_state.pt"
    if ckpt.exists():
        ckpt.unlink()
    return out


def grid(archs: Sequence[str], expansions: Sequence[int], ks: Sequence[int], coeffs: Sequence[float | None],
         **common: Any) -> list[TrainConfig]:
    """TrainConfigs for architectures x widths x sparsity settings (k for TopK kinds, coefficients otherwise)."""
    out = []
    for arch in archs:
        for e in expansions:
            if arch in ("topk", "batchtopk"):
                out += [TrainConfig(arch, e, k=k, **common) for k in ks]
            else:
                out += [TrainConfig(arch, e, k=None, sparsity_coeff=c, **common) for c in coeffs]
    return out
