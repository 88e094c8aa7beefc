"""Gemma Scope `params.npz`: JumpReLU with per-latent thresholds; layer, width and site come from the path."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from pseval.errors import MissingResourceError, SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.saelens import build_sae

_SITE = {"res": "hook_resid_post", "mlp": "hook_mlp_out", "att": "attn.hook_z"}


def hook_from_path(path: Path) -> tuple[str | None, str | None]:
    """(hook, model) from a path like gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82/params.npz."""
    text = str(path)
    layer = re.search(r"layer_(\d+)", text)
    site = re.search(r"gemma-scope-([0-9a-z]+)-(pt|it)-(res|mlp|att)", text)
    model = f"gemma-2-{site.group(1)}{'-it' if site.group(2) == 'it' else ''}" if site else None
    if layer and site:
        return f"blocks.{layer.group(1)}.{_SITE[site.group(3)]}", model
    return None, model


def load_gemma_scope(path: str | Path) -> SAE:
    """Read params.npz (or its folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / "params.npz"
    if not p.is_file():
        raise MissingResourceError(f"{p}: not found")
    try:
        with np.load(p, allow_pickle=False) as z:  # never unpickle: npz arrays only
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise SAEFormatError(f"{p}: cannot read npz (truncated or corrupt?): {exc}") from exc
    missing = [k for k in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold") if k not in arrays]
    if missing:
        raise SAEFormatError(f"{p}: missing array(s) {', '.join(missing)}")
    d_in, d_sae = arrays["W_enc"].shape
    hook, model = hook_from_path(p)
    meta = SAEMetadata(model_name=model, hook_name=hook,
                       extra={"source_format": "gemma_scope", "activation_convention": "hf"})
    cfg = SAEConfig(architecture="jumprelu", d_in=int(d_in), d_sae=int(d_sae), apply_b_dec_to_input=False,
                    reshape_activations="hook_z" if hook and hook.endswith("hook_z") else "none", metadata=meta)
    return build_sae(cfg, {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()
                           if k in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")}, str(p))
