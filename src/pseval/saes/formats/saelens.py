"""The SAELens v6 directory layout: cfg.json + sae_weights.safetensors."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pseval.errors import MissingResourceError, SAEFormatError
from pseval.saes.base import SAE, check_shape
from pseval.saes.config import SAEConfig
from pseval.saes.registry import get_sae_class

CFG_NAME = "cfg.json"
WEIGHTS_NAME = "sae_weights.safetensors"


def expected_shapes(sae: SAE) -> dict[str, tuple[int, ...]]:
    """Shape of every saved tensor of an SAE, from its parameters."""
    return {n: tuple(sae.get_weight(n).shape) for n in sae.weight_names()}


def save_sae(sae: SAE, folder: str | Path) -> Path:
    """Write cfg.json and sae_weights.safetensors (atomically: temp files renamed into place)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {n: sae.get_weight(n).detach().to("cpu").contiguous() for n in sae.weight_names()}
    cfg = sae.cfg.to_dict()
    cfg["architecture"] = sae.export_architecture or sae.architecture
    with tempfile.NamedTemporaryFile(dir=out, suffix=".tmp", delete=False) as tmp:
        tmp_weights = Path(tmp.name)
    save_file(tensors, str(tmp_weights))
    os.replace(tmp_weights, out / WEIGHTS_NAME)
    with tempfile.NamedTemporaryFile("w", dir=out, suffix=".tmp", delete=False) as tmp:
        json.dump(cfg, tmp, indent=2)
    os.replace(tmp.name, out / CFG_NAME)
    return out


def read_cfg(folder: Path) -> dict:
    """Parse cfg.json with a clear error on bad JSON."""
    path = folder / CFG_NAME
    if not path.is_file():
        raise MissingResourceError(f"{path}: not found (an SAELens SAE folder holds {CFG_NAME} and {WEIGHTS_NAME})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SAEFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(cfg, dict):
        raise SAEFormatError(f"{path}: expected a JSON object")
    return cfg


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file with a clear error when it is missing or truncated."""
    if not path.is_file():
        raise MissingResourceError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SAEFormatError(f"{path}: cannot read safetensors (truncated or corrupt?): {exc}") from exc


def build_sae(cfg: SAEConfig, tensors: dict[str, torch.Tensor], source: str) -> SAE:
    """Instantiate the registered class for cfg.architecture and load checked tensors into it."""
    sae = get_sae_class(cfg.architecture)(cfg)
    shapes = expected_shapes(sae)
    missing = [n for n in shapes if n not in tensors]
    if missing:
        raise SAEFormatError(f"{source}: missing weight(s) {', '.join(missing)} for architecture "
                             f"{cfg.architecture!r} (found {', '.join(sorted(tensors)) or 'none'})")
    for name, shape in shapes.items():
        check_shape(name, tensors[name], shape, source)
        sae.set_weight(name, tensors[name])
    sae.check_weights(source)
    return sae


def load_saelens_v6(folder: str | Path) -> SAE:
    """Load an SAE saved in the SAELens v6 layout."""
    p = Path(folder)
    cfg = SAEConfig.from_dict(read_cfg(p))
    return build_sae(cfg, read_safetensors(p / WEIGHTS_NAME), str(p / WEIGHTS_NAME))
