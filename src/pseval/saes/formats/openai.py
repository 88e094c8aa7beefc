"""OpenAI's GPT-2 autoencoders (`.pt` state dicts): pre_bias and latent_bias; TopK ones take layer-normed inputs.

As their `Autoencoder.from_state_dict` decides: inputs are layer-normalised exactly when the activation is TopK
(their v5 release); ReLU autoencoders (v1-v4) take raw activations. TopK's post-activation must be ReLU (the only one
pseval computes; an Identity post-activation gives signed codes and is refused).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from pseval.errors import SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.build import build_sae
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.checks import stored_int, stored_mapping, stored_tensor
from pseval.saes.tensor_io import DEFAULT_DTYPE, load_torch_state, place

WEIGHTS = ("pre_bias", "encoder.weight", "latent_bias", "decoder.weight")
# Entries their state_dict() saves besides the weights: activation name and state, training statistics.
_KNOWN_EXTRAS = ("activation", "activation_state_dict", "stats_last_nonzero", "latents_activation_frequency",
                 "latents_mean_square")


def load_openai(path: str | Path, hook_name: str | None = None, normalize: bool | None = None,
                dtype: str | torch.dtype = DEFAULT_DTYPE, device: str | torch.device = "cpu") -> SAE:
    """Read an OpenAI autoencoder; `normalize` None follows their rule (layer norm exactly for TopK)."""
    p = Path(path)
    sd = load_torch_state(p)
    missing = [k for k in WEIGHTS if k not in sd]
    if missing:
        raise SAEFormatError(f"{p}: missing key(s) {', '.join(missing)}")
    unexpected = sorted(set(sd) - set(WEIGHTS) - set(_KNOWN_EXTRAS))
    if unexpected:
        warnings.warn(f"{p}: entries {', '.join(unexpected)} are not OpenAI autoencoder weights and are ignored",
                      stacklevel=2)
    src = str(p)
    act = sd.get("activation", "ReLU")
    if not isinstance(act, str):
        raise SAEFormatError(f"{src}: field 'activation' is {act!r}, expected a name (TopK or ReLU)")
    state = stored_mapping(sd.get("activation_state_dict"), src, "activation_state_dict")
    if act == "TopK":
        if "k" not in state:
            raise SAEFormatError(f"{p}: TopK activation without activation_state_dict.k")
        post = state.get("postact_fn", "ReLU")
        if post != "ReLU":
            raise SAEFormatError(f"{p}: activation_state_dict.postact_fn={post!r}; pseval computes only 'ReLU'")
        arch, k = "topk", stored_int(state["k"], src, "activation_state_dict.k")
    elif act == "ReLU":
        arch, k = "standard", None
    else:
        raise SAEFormatError(f"{p}: activation {act!r} is not supported (TopK or ReLU)")
    if normalize is None:
        normalize = act == "TopK"
    w = {n: stored_tensor(sd, n, src, 2 if n.endswith(".weight") else 1) for n in WEIGHTS}
    d_sae, d_in = w["encoder.weight"].shape
    meta = SAEMetadata(model_name="gpt2", hook_name=hook_name,
                       extra={"source_format": "openai", "activation_convention": "hf"})
    cfg = SAEConfig(architecture=arch, d_in=int(d_in), d_sae=int(d_sae), apply_b_dec_to_input=True, k=k,
                    normalize_activations="layer_norm" if normalize else "none", metadata=meta)
    t = {"W_enc": w["encoder.weight"].T, "b_enc": w["latent_bias"], "W_dec": w["decoder.weight"].T,
         "b_dec": w["pre_bias"]}
    return build_sae(cfg, {n: place(v, dtype, device) for n, v in t.items()}, str(p))
