"""How an SAE expects its input: the activation convention of the library it was trained with, and head slices."""

from __future__ import annotations

from typing import Any

import torch

from pseval.errors import ConfigError
from pseval.saes.base import SAE

HF = "hf"
# TransformerLens with center_writing_weights (its default for LayerNorm models): every write into the residual
# stream has zero mean across d_model, so its activations are Hugging Face's minus their mean across d_model.
TL_CENTERED = "tl_centered"
CONVENTIONS = (HF, TL_CENTERED)
# Model families whose TransformerLens port centres writing weights (LayerNorm, not RMSNorm).
_LAYERNORM_MODELS = ("gpt2", "pythia", "gpt-neo", "gpt-j", "opt", "bloom", "solu", "gelu-")


def convention_of(sae: SAE) -> str:
    """The SAE's recorded activation convention (`hf` when it records none)."""
    return str(sae.cfg.metadata.extra.get("activation_convention", HF))


def guess_tl_convention(model_name: str | None, hook_name: str | None, from_pretrained_kwargs: dict | None) -> str:
    """Convention of an SAE trained through TransformerLens, from its model name, hook and loading kwargs."""
    kwargs = from_pretrained_kwargs or {}
    if kwargs.get("center_writing_weights") is False:
        return HF
    name = (model_name or "").lower()
    hook = hook_name or ""
    writes_stream = any(k in hook for k in ("resid", "attn_out", "mlp_out"))
    return TL_CENTERED if writes_stream and any(m in name for m in _LAYERNORM_MODELS) else HF


def head_slice(acts: torch.Tensor, sae: SAE) -> torch.Tensor:
    """For per-head hook_z SAEs (hook_head_index set), the slice of the concatenated heads that is theirs."""
    h = sae.cfg.metadata.hook_head_index
    if h is None or acts.shape[-1] == sae.d_in or acts.shape[-1] % sae.d_in:
        return acts
    return acts[..., h * sae.d_in:(h + 1) * sae.d_in]


def to_sae_input(acts: torch.Tensor, sae: SAE, source: str = HF) -> torch.Tensor:
    """Activations in the model's convention (`source`: Hugging Face's unless the model is a processed
    HookedTransformer) -> what the SAE was trained on."""
    acts = head_slice(acts, sae)
    want = convention_of(sae)
    if want == source:
        return acts
    if want == TL_CENTERED:  # from hf: remove the mean the centred weights never wrote
        return acts - acts.mean(dim=-1, keepdim=True)
    # The mean across d_model is gone from centred activations: nothing can restore it.
    raise ConfigError(f"the SAE expects {want!r} activations but the model gives {source!r} ones (a HookedTransformer "
                      "with processed weights); load it with HookedTransformer.from_pretrained_no_processing or pass "
                      "the Hugging Face model")


def saelens_convention(metadata: dict[str, Any], model_from_pretrained_kwargs: dict | None) -> str:
    """The activation convention of an SAE in SAELens' layout: recorded, pseval's own (`hf`), or implied by how
    TransformerLens loaded its model."""
    if "activation_convention" in metadata and metadata["activation_convention"] is not None:
        return str(metadata["activation_convention"])
    if metadata.get("source_format") == "pseval":
        return HF
    return guess_tl_convention(metadata.get("model_name"), metadata.get("hook_name"), model_from_pretrained_kwargs)


def from_sae_output(recon: torch.Tensor, original: torch.Tensor, sae: SAE) -> torch.Tensor:
    """A reconstruction in the SAE's convention -> Hugging Face's, to splice back into the model."""
    if convention_of(sae) == TL_CENTERED:
        return recon + original.mean(dim=-1, keepdim=True)
    return recon
