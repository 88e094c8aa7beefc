"""The SAELens v6 directory layout: cfg.json + sae_weights.safetensors."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pseval.errors import MissingResourceError, SAEFormatError
from pseval.saes.base import SAE, check_shape
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.conventions import saelens_convention
from pseval.saes.formats.common import read_json_object
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
    cfg["metadata"].setdefault("source_format", "pseval")
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
    return read_json_object(folder / CFG_NAME, f"an SAELens SAE folder holds {CFG_NAME} and {WEIGHTS_NAME}")


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


def is_v6(cfg: dict[str, Any]) -> bool:
    """SAELens 6 nests provenance under `metadata`; earlier versions keep everything flat."""
    return isinstance(cfg.get("metadata"), dict)


def config_from_legacy(d: dict[str, Any]) -> SAEConfig:
    """SAEConfig from a pre-6.0 flat cfg (hook_point, activation_fn_str, activation_fn_kwargs.k, bool normalize)."""
    act = str(d.get("activation_fn_str") or d.get("activation_fn") or "relu").lower()
    kwargs = d.get("activation_fn_kwargs") or {}
    arch = "topk" if act == "topk" else str(d.get("architecture") or "standard")
    norm = d.get("normalize_activations", "none")
    if isinstance(norm, bool) or norm is None:
        norm = "expected_average_only_in" if norm else "none"
    hook = d.get("hook_name") or d.get("hook_point")
    head = d.get("hook_head_index", d.get("hook_point_head_index"))
    model = d.get("model_name")
    meta = SAEMetadata(model_name=model, hook_name=hook, hook_head_index=head,
                       prepend_bos=bool(d.get("prepend_bos", True)),
                       exclude_special_tokens=bool(d.get("exclude_special_tokens", False)),
                       context_size=d.get("context_size"), dataset_path=d.get("dataset_path"),
                       sae_lens_version=d.get("sae_lens_version"), neuronpedia_id=d.get("neuronpedia_id"),
                       extra={"source_format": "saelens_legacy"})
    for k in ("d_in", "d_sae"):
        if k not in d:
            raise SAEFormatError(f"cfg.json lacks required key {k!r}")
    return SAEConfig(architecture=arch, d_in=int(d["d_in"]), d_sae=int(d["d_sae"]),
                     dtype=str(d.get("dtype", "float32")),
                     apply_b_dec_to_input=bool(d.get("apply_b_dec_to_input", True)), normalize_activations=str(norm),
                     reshape_activations="hook_z" if hook and hook.endswith("hook_z") else "none",
                     k=int(kwargs["k"]) if arch == "topk" and "k" in kwargs else d.get("k"), metadata=meta)


def load_saelens(folder: str | Path) -> SAE:
    """Load an SAE in the SAELens layout, v6 or earlier; records the activation convention it was trained in."""
    p = Path(folder)
    raw = read_cfg(p)
    cfg = SAEConfig.from_dict(raw) if is_v6(raw) else config_from_legacy(raw)
    meta = cfg.metadata
    if "activation_convention" not in meta.extra and meta.extra.get("source_format") != "pseval":
        kwargs = raw.get("model_from_pretrained_kwargs") or (raw.get("metadata") or {}).get(
            "model_from_pretrained_kwargs")
        meta.extra["activation_convention"] = saelens_convention(meta.to_dict(), kwargs)
    sae = build_sae(cfg, read_safetensors(p / WEIGHTS_NAME), str(p / WEIGHTS_NAME))
    scale = raw.get("norm_scaling_factor") or (raw.get("metadata") or {}).get("norm_scaling_factor")
    if cfg.normalize_activations == "expected_average_only_in" and scale:
        sae.input_scale.fill_(float(scale))
    return sae


def load_saelens_v6(folder: str | Path) -> SAE:
    """Load an SAE saved in the SAELens v6 layout (pseval's own format)."""
    p = Path(folder)
    raw = read_cfg(p)
    if not is_v6(raw):
        raise SAEFormatError(f"{p / CFG_NAME}: a pre-6.0 SAELens config (no `metadata`); use load_saelens")
    return load_saelens(p)
