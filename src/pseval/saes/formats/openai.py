"""OpenAI's GPT-2 TopK autoencoders (`.pt` state dicts): layer-normalised inputs, pre_bias and latent_bias."""

from __future__ import annotations

from pathlib import Path

from pseval.errors import SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.dictionary_learning import load_state_dict
from pseval.saes.formats.saelens import build_sae


def load_openai(path: str | Path, hook_name: str | None = None, normalize: bool = True) -> SAE:
    """Read an OpenAI autoencoder; TopK ones (their v5 release) take layer-normalised inputs."""
    p = Path(path)
    sd = load_state_dict(p)
    missing = [k for k in ("pre_bias", "encoder.weight", "latent_bias", "decoder.weight") if k not in sd]
    if missing:
        raise SAEFormatError(f"{p}: missing key(s) {', '.join(missing)}")
    act = str(sd.get("activation", "ReLU"))
    state = sd.get("activation_state_dict") or {}
    if act == "TopK":
        if "k" not in state:
            raise SAEFormatError(f"{p}: TopK activation without activation_state_dict.k")
        arch, k = "topk", int(state["k"])
    elif act == "ReLU":
        arch, k = "standard", None
    else:
        raise SAEFormatError(f"{p}: activation {act!r} is not supported (TopK or ReLU)")
    d_sae, d_in = sd["encoder.weight"].shape
    meta = SAEMetadata(model_name="gpt2", hook_name=hook_name,
                       extra={"source_format": "openai", "activation_convention": "hf"})
    cfg = SAEConfig(architecture=arch, d_in=int(d_in), d_sae=int(d_sae), apply_b_dec_to_input=True, k=k,
                    normalize_activations="layer_norm" if normalize else "none", metadata=meta)
    t = {"W_enc": sd["encoder.weight"].T, "b_enc": sd["latent_bias"], "W_dec": sd["decoder.weight"].T,
         "b_dec": sd["pre_bias"]}
    return build_sae(cfg, {n: v.float().contiguous() for n, v in t.items()}, str(p))
