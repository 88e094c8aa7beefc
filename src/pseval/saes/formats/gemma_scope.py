"""Gemma Scope `params.npz`: JumpReLU with per-latent thresholds; layer, width and site come from the path."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from pseval.errors import MissingResourceError, SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.build import build_sae
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.checks import stored_tensor
from pseval.saes.tensor_io import DEFAULT_DTYPE, npz_names, read_npz

WEIGHTS = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")
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


def load_gemma_scope(path: str | Path, dtype: str | torch.dtype = DEFAULT_DTYPE,
                     device: str | torch.device = "cpu") -> SAE:
    """Read params.npz (or its folder), each array streamed into `dtype` on `device`."""
    p = Path(path)
    if p.is_dir():
        p = p / "params.npz"
    if not p.is_file():
        raise MissingResourceError(f"{p}: not found")
    stored = npz_names(p)
    missing = [k for k in WEIGHTS if k not in stored]
    if missing:
        raise SAEFormatError(f"{p}: missing array(s) {', '.join(missing)}")
    unexpected = sorted(set(stored) - set(WEIGHTS))
    if unexpected:  # Gemma Scope files hold exactly these five; anything else is not computed with
        warnings.warn(f"{p}: array(s) {', '.join(unexpected)} are not Gemma Scope JumpReLU weights and are ignored",
                      stacklevel=2)
    arrays = read_npz(p, dtype, device, names=list(WEIGHTS))
    arrays = {n: stored_tensor(arrays, n, str(p), 2 if n.startswith("W_") else 1) for n in WEIGHTS}
    d_in, d_sae = arrays["W_enc"].shape
    hook, model = hook_from_path(p)
    meta = SAEMetadata(model_name=model, hook_name=hook,
                       extra={"source_format": "gemma_scope", "activation_convention": "hf"})
    cfg = SAEConfig(architecture="jumprelu", d_in=int(d_in), d_sae=int(d_sae), apply_b_dec_to_input=False,
                    reshape_activations="hook_z" if hook and hook.endswith("hook_z") else "none", metadata=meta)
    return build_sae(cfg, arrays, str(p))
