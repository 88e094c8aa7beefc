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
# The option that decides when an SAE's metadata does not (named in every refusal).
OPTION = "--sae-convention hf|tl_centered (pseval eval) or convention= (pseval.evaluate)"
# Where a convention came from (metadata.activation_convention_source); DEFAULT_SOURCES rest on TransformerLens'
# defaults, which centre only LayerNorm models (pseval checks the model it scores: see check_default_convention).
SOURCE_RECORDED = "recorded in the SAE's metadata (activation_convention)"
SOURCE_PSEVAL = "pseval's own format (Hugging Face activations)"
SOURCE_KWARGS_OFF = "model_from_pretrained_kwargs.center_writing_weights=false"
SOURCE_KWARGS_DEFAULT = ("model_from_pretrained_kwargs without center_writing_weights=false: TransformerLens' "
                         "from_pretrained centres a LayerNorm model's writing weights by default")
SOURCE_RUNNER_DEFAULT = ("a SAELens training-runner config without model_from_pretrained_kwargs: its runner loaded "
                         "the model with TransformerLens' defaults, which centre a LayerNorm model's writing weights")
SOURCE_OPTION = "the explicit option"
DEFAULT_SOURCES = (SOURCE_KWARGS_DEFAULT, SOURCE_RUNNER_DEFAULT)
# Hooks whose activations TransformerLens' centring changes: the residual stream and what writes into it.
_STREAM_HOOKS = ("resid", "attn_out", "mlp_out")
# Keys only a SAELens (or mats_sae_training) training-runner config holds: it is the runner's own config.
_RUNNER_KEYS = ("l1_coefficient", "lr", "training_tokens", "train_batch_size_tokens", "total_training_tokens")


def convention_of(sae: SAE) -> str:
    """The SAE's activation convention (`hf` for an in-memory SAE that records none); ConfigError when its metadata
    left it undecided and no option decided it."""
    extra = sae.cfg.metadata.extra
    if "activation_convention" not in extra:
        return HF
    value = extra["activation_convention"]
    if value is None:
        raise ConfigError(undecided_message(sae))
    return str(value)


def undecided_message(sae: SAE, label: str | None = None) -> str:
    """The one-line refusal for an SAE whose convention nothing decides."""
    meta = sae.cfg.metadata
    name = label or f"{sae.architecture} SAE of {meta.model_name or 'an unnamed model'} at {meta.hook_name or '?'}"
    return (f"{name}: its config does not say whether it was trained on TransformerLens-processed (tl_centered) or "
            f"raw (hf) activations (no model_from_pretrained_kwargs); pass {OPTION}")


def saelens_convention(metadata: dict[str, Any], model_from_pretrained_kwargs: dict | None,
                       raw_cfg: dict[str, Any] | None = None) -> tuple[str | None, str]:
    """(convention or None when undecided, where it came from) of an SAE in SAELens' layout: recorded, pseval's
    own, or what TransformerLens' loading did by SAELens' `model_from_pretrained_kwargs` (or by its training runner's
    defaults). The model's name is never used."""
    if metadata.get("activation_convention") is not None:
        return str(metadata["activation_convention"]), SOURCE_RECORDED
    if metadata.get("source_format") == "pseval":
        return HF, SOURCE_PSEVAL
    kwargs = model_from_pretrained_kwargs
    hook = metadata.get("hook_name") or ""
    if hook and not any(k in hook for k in _STREAM_HOOKS):
        return HF, f"hook {hook!r} does not write the residual stream: TransformerLens' centring leaves it as is"
    if isinstance(kwargs, dict):
        if kwargs.get("center_writing_weights") is False:
            return HF, SOURCE_KWARGS_OFF
        return TL_CENTERED, SOURCE_KWARGS_DEFAULT
    if raw_cfg is not None and not isinstance(raw_cfg.get("metadata"), dict) \
            and sum(k in raw_cfg for k in _RUNNER_KEYS) >= 2:
        return TL_CENTERED, SOURCE_RUNNER_DEFAULT
    return None, "undecided: no model_from_pretrained_kwargs and not a training-runner config"


def set_convention(sae: SAE, option: str | None, label: str = "SAE") -> None:
    """Apply the explicit option to an SAE: it decides an undecided convention and overrides one that rests on
    TransformerLens' defaults; against one the SAE records explicitly it is an error. Without the option an
    undecided SAE is refused here, before any compute."""
    extra = sae.cfg.metadata.extra
    if option is None:
        if "activation_convention" in extra and extra["activation_convention"] is None:
            raise ConfigError(undecided_message(sae, label))
        return
    if option not in CONVENTIONS:
        raise ConfigError(f"activation convention {option!r}; expected one of {', '.join(CONVENTIONS)}")
    current, source = extra.get("activation_convention"), extra.get("activation_convention_source")
    if current is not None and current != option and source in (SOURCE_RECORDED, SOURCE_KWARGS_OFF, SOURCE_PSEVAL):
        raise ConfigError(f"{label}: the option says {option!r} but its config says {current!r} ({source})")
    extra["activation_convention"], extra["activation_convention_source"] = option, SOURCE_OPTION


def has_layer_norm(model: Any) -> bool:
    """Whether a model normalises with LayerNorm (torch's, or TransformerLens' LayerNorm / LayerNormPre)."""
    return any(isinstance(m, torch.nn.LayerNorm) or type(m).__name__ in ("LayerNorm", "LayerNormPre")
               for m in model.modules())


def check_default_convention(sae: SAE, model: Any, label: str) -> None:
    """A tl_centered convention taken from TransformerLens' defaults holds only for LayerNorm models (TransformerLens
    skips the centring under RMSNorm): refuse rather than centre a model that has none."""
    extra = sae.cfg.metadata.extra
    if extra.get("activation_convention") == TL_CENTERED and extra.get("activation_convention_source") in \
            DEFAULT_SOURCES and not has_layer_norm(model):
        raise ConfigError(f"{label}: its convention tl_centered rests on TransformerLens' defaults, which centre only "
                          f"LayerNorm models, and this model has no LayerNorm; pass {OPTION}")


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


def from_sae_output(recon: torch.Tensor, original: torch.Tensor, sae: SAE) -> torch.Tensor:
    """A reconstruction in the SAE's convention -> Hugging Face's, to splice back into the model."""
    if convention_of(sae) == TL_CENTERED:
        return recon + original.mean(dim=-1, keepdim=True)
    return recon
