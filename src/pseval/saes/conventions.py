"""How an SAE expects its input: the activation convention of the library it was trained with, and head slices."""

from __future__ import annotations

import torch

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


def to_sae_input(acts: torch.Tensor, sae: SAE) -> torch.Tensor:
    """Raw Hugging Face activations -> what the SAE was trained on."""
    acts = head_slice(acts, sae)
    if convention_of(sae) == TL_CENTERED:
        acts = acts - acts.mean(dim=-1, keepdim=True)
    return acts


def from_sae_output(recon: torch.Tensor, original: torch.Tensor, sae: SAE) -> torch.Tensor:
    """A reconstruction in the SAE's convention -> Hugging Face's, to splice back into the model."""
    if convention_of(sae) == TL_CENTERED:
        return recon + original.mean(dim=-1, keepdim=True)
    return recon
