"""Activations of every non-special token at one or more hooks, from a text corpus, in one pass."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pseval.data.corpus import corpus_revision
from pseval.errors import ConfigError, DataFormatError
from pseval.files import remove_stale_temp_files, write_atomic, write_json_atomic
from pseval.models.capture import hooked, model_inputs
from pseval.models.content_key import model_content_key
from pseval.models.extract import pad_batch, pad_token_id
from pseval.models.loading import LoadedModel
from pseval.models.tokenize import text_batches


@dataclass(frozen=True)
class StreamConfig:
    """How texts become activation batches."""

    context_size: int = 128
    batch_texts: int = 64
    exclude_special_tokens: bool = True
    max_tokens: int = 1_000_000

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def check_context_size(context_size: int, max_positions: int, model: str) -> None:
    """Refuse a context longer than the model's position table (it would fail inside the model's forward)."""
    if context_size > max_positions:
        raise ConfigError(f"context_size {context_size} is longer than model {model!r} takes ({max_positions} "
                          f"positions); expected context_size <= {max_positions}")


@torch.inference_mode()
def stream_activations(lm: LoadedModel, texts: Iterable[str], hooks: Sequence[str],
                       cfg: StreamConfig | None = None, progress: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Yield {hook: [n_tokens, d] float32} per text batch until cfg.max_tokens tokens were produced."""
    cfg = cfg or StreamConfig()
    check_context_size(cfg.context_size, lm.max_positions, lm.name)
    produced = 0
    pad = pad_token_id(lm)
    captured: dict[str, torch.Tensor] = {}
    keep: dict[str, torch.Tensor] = {}

    def on_activation(name: str, h: torch.Tensor) -> None:
        captured[name] = h[keep["mask"]].float().cpu()

    bar = tqdm(total=cfg.max_tokens, desc="activations", unit="tok", disable=not progress, leave=False)
    with hooked(lm.model, hooks, on_activation) as run:
        for ids, special in text_batches(lm, texts, cfg.context_size, cfg.batch_texts):
            input_ids, attn = pad_batch(ids, pad, lm.device)
            mask = attn.bool()
            if cfg.exclude_special_tokens:
                sp, _ = pad_batch(special, 1, lm.device)
                mask &= ~sp.bool()
            n = int(mask.sum())
            if n == 0:
                continue
            if produced + n > cfg.max_tokens:  # trim the last batch to the budget, keeping earliest tokens
                flat = mask.flatten().nonzero().flatten()[: cfg.max_tokens - produced]
                mask = torch.zeros_like(mask).flatten().index_fill_(0, flat, True).view_as(mask)
                n = int(mask.sum())
            keep["mask"] = mask
            captured.clear()
            run(**model_inputs(input_ids, attn, lm.is_causal))
            produced += n
            bar.update(n)
            yield dict(captured)
            if produced >= cfg.max_tokens:
                break
    bar.close()


_FIRST_ROWS = 1 << 16  # rows of a first buffer when the token budget is larger


def collect_activations(lm: LoadedModel, texts: Iterable[str], hooks: Sequence[str], cfg: StreamConfig | None = None,
                        progress: bool = False) -> dict[str, torch.Tensor]:
    """All streamed activations concatenated in memory: {hook: [N, d]}.

    Each hook's rows are written into one buffer as they come (sized to the token budget, grown by doubling when the
    budget is unbounded), not kept as batches and concatenated at the end: that held every hook's activations twice.
    """
    cfg = cfg or StreamConfig()
    bufs: dict[str, torch.Tensor] = {}
    n = 0
    for batch in stream_activations(lm, texts, hooks, cfg, progress):
        rows = next(iter(batch.values())).shape[0] if batch else 0
        for h in hooks:
            buf = bufs.get(h)
            if buf is None or n + rows > buf.shape[0]:
                cap = min(cfg.max_tokens, max(2 * (n + rows), _FIRST_ROWS))
                grown = torch.empty((cap, batch[h].shape[1]), dtype=batch[h].dtype)
                if buf is not None:
                    grown[:n] = buf[:n]
                bufs[h] = buf = grown
            buf[n:n + rows] = batch[h]
        n += rows
    out = {}
    for h in hooks:  # a buffer larger than what the corpus gave is copied down (one at a time) to release the rest
        buf = bufs.pop(h, None)
        out[h] = torch.zeros((0, lm.d_model)) if buf is None else buf[:n].clone() if buf.shape[0] > n else buf
        del buf
    return out


def cache_key(model: str, hook: str, corpus: str, cfg: StreamConfig, model_content: str = "") -> str:
    """Folder name of an activation cache: everything that changes the activations, the model's content included
    (pseval.models.content_key: a model folder changed in place gets a new entry)."""
    blob = json.dumps({"model": model, "content": model_content, "hook": hook, "corpus": corpus,
                       **corpus_revision(corpus), **cfg.to_dict()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


CACHE_ARRAY = "acts.npy"
CACHE_META = "meta.json"  # written after the array: its presence marks a complete cache


def save_activation_cache(acts: torch.Tensor, folder: str | Path, meta: dict) -> Path:
    """Write activations as a float32 .npy (memory-mappable), then meta.json, each atomically under a unique temp
    name; the debris of a killed earlier write is removed first."""
    out = Path(folder)
    remove_stale_temp_files(out)
    arr = acts.numpy().astype(np.float32, copy=False)
    write_atomic(out / CACHE_ARRAY, lambda fh: np.save(fh, arr), binary=True)
    write_json_atomic({**meta, "shape": list(arr.shape)}, out / CACHE_META)
    return out


def load_activation_cache(folder: str | Path) -> tuple[torch.Tensor, dict]:
    """Memory-map cached activations (rows are read from disk as the trainer indexes them); a cache that is not
    what its meta.json says (corrupt, truncated, another shape or dtype) raises a DataFormatError naming it."""
    p = Path(folder)
    try:
        meta = json.loads((p / CACHE_META).read_text(encoding="utf-8"))
        arr = np.load(p / CACHE_ARRAY, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        reason = " ".join(str(exc).split())[:200]
        raise DataFormatError(f"unreadable activation cache ({type(exc).__name__}: {reason})", p) from exc
    if not isinstance(meta, dict) or meta.get("shape") != list(arr.shape) or arr.dtype != np.float32 \
            or arr.ndim != 2:
        shape = meta.get("shape") if isinstance(meta, dict) else None
        raise DataFormatError(f"activation cache holds {arr.dtype} {list(arr.shape)}, its meta.json says float32 "
                              f"{shape}", p)
    with warnings.catch_warnings():  # torch warns that the memory map is read-only; nothing writes to it
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr), meta


def cached_activations(lm: LoadedModel, model_name: str, corpus: str, texts: Iterable[str], hook: str,
                       cfg: StreamConfig, cache_root: str | Path | None, progress: bool = False) -> torch.Tensor:
    """Activations of one hook, read from `cache_root` when an identical request was cached, else computed (and
    cached when a root is given). A corrupt cache is recomputed and replaced, with a warning."""
    if cache_root is not None:
        folder = Path(cache_root) / cache_key(model_name, hook, corpus, cfg, model_content_key(lm))
        if (folder / CACHE_META).is_file():
            try:
                return load_activation_cache(folder)[0]
            except DataFormatError as exc:
                warnings.warn(f"{exc}; recomputing it", stacklevel=2)
    acts = collect_activations(lm, texts, [hook], cfg, progress)[hook]
    if cache_root is not None:
        save_activation_cache(acts, folder, {"model": model_name, "hook": hook, "corpus": corpus, **cfg.to_dict()})
    return acts
