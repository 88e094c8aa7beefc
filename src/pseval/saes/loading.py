"""Load an SAE from a spec: `identity`, or a local folder in a known format."""

from __future__ import annotations

from pathlib import Path

from pseval.errors import MissingResourceError
from pseval.saes.base import SAE
from pseval.saes.formats.saelens import CFG_NAME, load_saelens_v6
from pseval.saes.identity import identity_sae


def load_sae(spec: str, d_in: int | None = None, model_name: str | None = None, hook_name: str | None = None) -> SAE:
    """`identity` (needs d_in) or a folder holding an SAE; returns it in eval mode."""
    if spec == "identity":
        if d_in is None:
            raise ValueError("the identity SAE needs the hook's width d_in")
        return identity_sae(d_in, model_name, hook_name).eval()
    p = Path(spec)
    if p.is_dir() and (p / CFG_NAME).is_file():
        return load_saelens_v6(p).eval()
    if not p.exists():
        raise MissingResourceError(f"{spec}: no such SAE folder (expected `identity` or a folder with {CFG_NAME})")
    raise MissingResourceError(f"{spec}: not a recognised SAE layout (expected a folder with {CFG_NAME} and "
                               "sae_weights.safetensors)")


def sae_display_name(spec: str) -> str:
    """Short name of an SAE spec for tables."""
    return spec if spec == "identity" else Path(spec).name or spec
