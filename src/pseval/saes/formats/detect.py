"""Tell an SAE's file format from what is on disk, and load it with the matching reader."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from pseval.errors import MissingResourceError
from pseval.saes.base import SAE
from pseval.saes.formats.dictionary_learning import load_dictionary_learning
from pseval.saes.formats.gemma_scope import load_gemma_scope
from pseval.saes.formats.openai import load_openai
from pseval.saes.formats.saelens import CFG_NAME, WEIGHTS_NAME, load_saelens
from pseval.saes.formats.sparsify import WEIGHTS as SPARSIFY_WEIGHTS
from pseval.saes.formats.sparsify import load_sparsify
from pseval.saes.tensor_io import DEFAULT_DTYPE, resolve_dtype

FORMATS = ("saelens", "saelens_legacy", "dictionary_learning", "sparsify", "gemma_scope", "openai")


def detect_format(path: str | Path) -> str:
    """One of FORMATS, from the files present."""
    p = Path(path)
    if p.is_file():
        if p.suffix == ".npz":
            return "gemma_scope"
        if p.suffix in (".pt", ".pth"):
            return "dictionary_learning" if (p.parent / "config.json").is_file() and p.name == "ae.pt" else "openai"
        raise MissingResourceError(f"{p}: unknown SAE file type (expected a folder, .npz or .pt)")
    if not p.is_dir():
        raise MissingResourceError(f"{p}: no such SAE file or folder")
    if (p / WEIGHTS_NAME).is_file() or ((p / CFG_NAME).is_file() and not (p / SPARSIFY_WEIGHTS).is_file()):
        try:
            cfg = json.loads((p / CFG_NAME).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return "saelens"  # the reader gives the precise error
        return "saelens" if isinstance(cfg, dict) and isinstance(cfg.get("metadata"), dict) else "saelens_legacy"
    if (p / SPARSIFY_WEIGHTS).is_file():
        return "sparsify"
    if (p / "ae.pt").is_file():
        return "dictionary_learning"
    if (p / "params.npz").is_file():
        return "gemma_scope"
    raise MissingResourceError(f"{p}: not a recognised SAE folder (SAELens: {CFG_NAME} + {WEIGHTS_NAME}; "
                               f"dictionary_learning: ae.pt + config.json; sparsify: cfg.json + {SPARSIFY_WEIGHTS}; "
                               "Gemma Scope: params.npz)")


def load_any(path: str | Path, hook_name: str | None = None, dtype: str | torch.dtype = DEFAULT_DTYPE,
             device: str | torch.device = "cpu") -> SAE:
    """Load an SAE of any supported format, its weights in `dtype` (float32, bfloat16, float16) on `device`.

    float32 (the default) computes as the SAE's library does; the half types halve memory and round the weights.
    """
    dtype = resolve_dtype(dtype)
    fmt = detect_format(path)
    p = Path(path)
    if fmt in ("saelens", "saelens_legacy"):
        return load_saelens(p, dtype, device)
    if fmt == "dictionary_learning":
        return load_dictionary_learning(p.parent if p.is_file() else p, dtype, device)
    if fmt == "sparsify":
        return load_sparsify(p, dtype, device)
    if fmt == "gemma_scope":
        return load_gemma_scope(p, dtype, device)
    return load_openai(p, hook_name, dtype=dtype, device=device)
