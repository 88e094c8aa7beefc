"""Load an SAE from a spec: `identity`, a local file or folder of any known format, `hf://REPO/PATH`, or
`saelens:RELEASE/SAE_ID` (through the optional sae_lens package)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pseval.errors import MissingResourceError
from pseval.saes.base import SAE
from pseval.saes.formats.detect import detect_format, load_any
from pseval.saes.formats.saelens import load_saelens
from pseval.saes.identity import identity_sae, is_identity_spec
from pseval.saes.tensor_io import DEFAULT_DTYPE, resolve_dtype

SPEC_HELP = "identity, a local SAE file or folder, hf://REPO/PATH, or saelens:RELEASE/SAE_ID"


def fetch_hub(spec: str) -> Path:
    """Download (or find in the cache) the files under PATH of a Hub repo; `hf://REPO/PATH`, REPO = owner/name."""
    rest = spec.removeprefix("hf://")
    parts = rest.split("/")
    if len(parts) < 2:
        raise MissingResourceError(f"{spec}: expected hf://OWNER/NAME[/PATH]")
    repo, sub = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - a dependency of transformers
        raise MissingResourceError("hf:// sources need huggingface_hub") from exc
    try:
        root = snapshot_download(repo, allow_patterns=[f"{sub}/*", sub] if sub else None,
                                 local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
    except Exception as exc:  # network, auth or missing repo: one clear message
        raise MissingResourceError(f"{spec}: cannot fetch from the Hugging Face Hub ({type(exc).__name__}: {exc}); "
                                   "download it where the network is and pass the local folder") from exc
    path = Path(root) / sub
    if not path.exists():
        raise MissingResourceError(f"{spec}: {sub!r} not found in {repo}")
    return path


def load_saelens_release(spec: str, dtype: str | torch.dtype = DEFAULT_DTYPE, device: str | torch.device = "cpu"
                         ) -> SAE:
    """`saelens:RELEASE/SAE_ID` through the optional sae_lens package: its files, read by pseval's own reader.

    The release directory's norm_scaling_factor (expected_average_only_in SAEs) is applied as SAELens applies it.
    """
    release, _, sae_id = spec.removeprefix("saelens:").partition("/")
    try:
        from sae_lens.loading.pretrained_saes_directory import (
            get_norm_scaling_factor,
            get_pretrained_saes_directory,
        )
    except ImportError as exc:
        raise MissingResourceError(f"{spec}: SAELens release names need the optional `sae_lens` package "
                                   "(pip install sae-lens); or pass hf://REPO/PATH or a local folder") from exc
    directory = get_pretrained_saes_directory()
    if release not in directory:
        raise MissingResourceError(f"{spec}: unknown SAELens release {release!r}")
    info = directory[release]
    path = info.saes_map.get(sae_id)
    if path is None:
        raise MissingResourceError(f"{spec}: release {release!r} has no SAE {sae_id!r}")
    local = fetch_hub(f"hf://{info.repo_id}/{path}")
    if detect_format(local) in ("saelens", "saelens_legacy"):
        return load_saelens(local, dtype, device, norm_scaling_factor=get_norm_scaling_factor(release, sae_id))
    return load_any(local, dtype=dtype, device=device)


def load_sae(spec: str, d_in: int | None = None, model_name: str | None = None, hook_name: str | None = None,
             dtype: str | torch.dtype = DEFAULT_DTYPE, device: str | torch.device = "cpu") -> SAE:
    """An SAE in eval mode from its spec (see SPEC_HELP), weights in `dtype` on `device`; `identity` needs d_in.

    dtype: float32 (default, exact), bfloat16 or float16 (half the memory; codes rounded accordingly).
    """
    dtype = resolve_dtype(dtype)
    if is_identity_spec(spec):
        if d_in is None:
            raise ValueError("the identity SAE needs the hook's width d_in")
        return identity_sae(d_in, model_name, hook_name).to(device=device, dtype=dtype).eval()
    if spec.startswith("hf://"):
        return load_any(fetch_hub(spec), hook_name, dtype, device).eval()
    if spec.startswith("saelens:"):
        return load_saelens_release(spec, dtype, device).eval()
    if not Path(spec).exists():
        raise MissingResourceError(f"{spec}: no such SAE file or folder (expected {SPEC_HELP})")
    return load_any(spec, hook_name, dtype, device).eval()


def sae_display_name(spec: str) -> str:
    """Short name of an SAE spec for tables."""
    if is_identity_spec(spec):
        return spec
    p = Path(spec.removeprefix("hf://").removeprefix("saelens:"))
    return p.stem if p.suffix in (".pt", ".npz") else (p.name or spec)


def peek_sae(spec: str, dtype: str | torch.dtype = DEFAULT_DTYPE) -> SAE:
    """The SAE of a spec on the meta device: its config, metadata and weight shapes, with no weight values read, so
    that many SAEs can be planned and checked before any is loaded. A reader that needs values to build its SAE is
    given them, and the SAE is moved to meta at once (the values are freed)."""
    try:
        return load_sae(spec, dtype=dtype, device="meta")
    except (NotImplementedError, RuntimeError):  # a reader that computes on its tensors: read, then drop the values
        return load_sae(spec, dtype=dtype).to("meta")


def weight_bytes(sae: SAE) -> int:
    """Bytes of an SAE's parameters and buffers (from shapes and dtypes alone: a peeked SAE has no values)."""
    return sum(t.numel() * t.element_size() for t in [*sae.parameters(), *sae.buffers()])
