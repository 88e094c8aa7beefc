"""dictionary_learning checkpoints: `ae.pt` (a torch state dict, nn.Linear layout) + `config.json`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from pseval.errors import MissingResourceError, SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.common import read_json_object
from pseval.saes.formats.saelens import build_sae

_SUBMODULE_RE = re.compile(r"(resid|attn|mlp)[a-z_]*?_?(?:layer_?)?(\d+)")
_COMPONENT = {"resid": "hook_resid_post", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}


def load_state_dict(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True: a checkpoint can never run code."""
    if not path.is_file():
        raise MissingResourceError(f"{path}: not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or unsafe files
        raise SAEFormatError(f"{path}: cannot load as a weights-only torch checkpoint: {exc}") from exc
    if not isinstance(sd, dict):
        raise SAEFormatError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def _need(sd: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in sd]
    if missing:
        raise SAEFormatError(f"{path}: missing key(s) {', '.join(missing)} (found {', '.join(sorted(sd))})")


def hook_from_submodule(name: str | None, layer: int | None) -> str | None:
    """`resid_post_layer_3` / `attn_out_layer3` / `mlp_out_layer_3` -> canonical hook names."""
    if not name:
        return f"blocks.{layer}.hook_resid_post" if layer is not None else None
    m = _SUBMODULE_RE.search(name)
    if not m:
        return name
    return f"blocks.{m.group(2)}.{_COMPONENT[m.group(1)]}"


def load_dictionary_learning(folder: str | Path) -> SAE:
    """Read a trainer folder (`ae.pt`, `config.json`) into the matching pseval architecture."""
    p = Path(folder)
    cfg_path = p / "config.json"
    conf = read_json_object(cfg_path, "a dictionary_learning folder holds ae.pt and config.json")
    tr = conf.get("trainer", conf)
    sd = load_state_dict(p / "ae.pt")
    cls = str(tr.get("dict_class", "AutoEncoder"))
    src = str(p / "ae.pt")
    t: dict[str, torch.Tensor] = {}
    k = None
    if cls in ("AutoEncoder",):
        _need(sd, ("bias", "encoder.weight", "encoder.bias", "decoder.weight"), p / "ae.pt")
        arch, apply_b_dec = "standard", True
        t = {"W_enc": sd["encoder.weight"].T, "b_enc": sd["encoder.bias"], "W_dec": sd["decoder.weight"].T,
             "b_dec": sd["bias"]}
    elif cls in ("AutoEncoderTopK", "TopKAutoEncoder", "TopKSAE"):
        _need(sd, ("encoder.weight", "encoder.bias", "decoder.weight", "b_dec"), p / "ae.pt")
        arch, apply_b_dec = "topk", True
        k = int(sd["k"]) if "k" in sd else int(tr["k"])
        t = {"W_enc": sd["encoder.weight"].T, "b_enc": sd["encoder.bias"], "W_dec": sd["decoder.weight"].T,
             "b_dec": sd["b_dec"]}
    elif cls in ("BatchTopKSAE", "BatchTopKAutoEncoder"):
        _need(sd, ("encoder.weight", "encoder.bias", "decoder.weight", "b_dec", "threshold"), p / "ae.pt")
        arch, apply_b_dec = "jumprelu", True  # inference rule: the learned global threshold
        m = sd["encoder.weight"].shape[0]
        t = {"W_enc": sd["encoder.weight"].T, "b_enc": sd["encoder.bias"], "W_dec": sd["decoder.weight"].T,
             "b_dec": sd["b_dec"], "threshold": sd["threshold"].reshape(-1).expand(m).clone()}
    elif cls in ("GatedAutoEncoder",):
        _need(sd, ("decoder_bias", "encoder.weight", "r_mag", "gate_bias", "mag_bias", "decoder.weight"), p / "ae.pt")
        arch, apply_b_dec = "gated", True
        t = {"W_enc": sd["encoder.weight"].T, "b_gate": sd["gate_bias"], "b_mag": sd["mag_bias"],
             "r_mag": sd["r_mag"], "W_dec": sd["decoder.weight"].T, "b_dec": sd["decoder_bias"]}
    elif cls in ("JumpReluAutoEncoder",):
        _need(sd, ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"), p / "ae.pt")
        arch, apply_b_dec = "jumprelu", False
        t = {k_: sd[k_] for k_ in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")}
    else:
        raise SAEFormatError(f"{cfg_path}: dict_class {cls!r} is not supported (known: AutoEncoder, "
                             "AutoEncoderTopK, BatchTopKSAE, GatedAutoEncoder, JumpReluAutoEncoder)")
    d_in, d_sae = t["W_enc"].shape
    if tr.get("activation_dim") not in (None, d_in) or tr.get("dict_size") not in (None, d_sae):
        raise SAEFormatError(f"{cfg_path}: activation_dim/dict_size {tr.get('activation_dim')}/{tr.get('dict_size')}"
                             f" disagree with ae.pt's encoder shape ({d_in}, {d_sae})")
    meta = SAEMetadata(model_name=tr.get("lm_name"), hook_name=hook_from_submodule(tr.get("submodule_name"),
                                                                                    tr.get("layer")),
                       extra={"source_format": "dictionary_learning", "activation_convention": "hf",
                              "dict_class": cls})
    cfg = SAEConfig(architecture=arch, d_in=int(d_in), d_sae=int(d_sae), apply_b_dec_to_input=apply_b_dec, k=k,
                    metadata=meta)
    return build_sae(cfg, {n: v.float().contiguous() for n, v in t.items()}, src)
