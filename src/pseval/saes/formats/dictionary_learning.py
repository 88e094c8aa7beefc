"""dictionary_learning checkpoints: `ae.pt` (a torch state dict, nn.Linear layout) + `config.json`."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from pseval.errors import SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.build import build_sae
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.checks import stored_int, stored_tensor
from pseval.saes.formats.common import read_json_object
from pseval.saes.tensor_io import DEFAULT_DTYPE, load_torch_state, place

_SUBMODULE_RE = re.compile(r"(resid|attn|mlp)[a-z_]*?_?(?:layer_?)?(\d+)")
_COMPONENT = {"resid": "hook_resid_post", "attn": "hook_attn_out", "mlp": "hook_mlp_out"}


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


_LINEAR = {"W_enc": "encoder.weight", "W_dec": "decoder.weight"}  # nn.Linear layout: used transposed
_TOPK = ("topk", True, {**_LINEAR, "b_enc": "encoder.bias", "b_dec": "b_dec"}, ("k", "threshold"))
_BATCHTOPK = ("jumprelu", True, {**_LINEAR, "b_enc": "encoder.bias", "b_dec": "b_dec", "threshold": "threshold"},
              ("k",))
# dict_class -> (pseval architecture, apply_b_dec_to_input, {pseval weight: state-dict key}, other entries it saves).
# TopK's `threshold` buffer is its optional inference threshold, off by default (encode(use_threshold=False)).
# BatchTopK's inference rule is its learned global threshold: a JumpReLU with that threshold for every latent.
CLASSES: dict[str, tuple[str, bool, dict[str, str], tuple[str, ...]]] = {
    "AutoEncoder": ("standard", True, {**_LINEAR, "b_enc": "encoder.bias", "b_dec": "bias"}, ()),
    "AutoEncoderTopK": _TOPK, "TopKAutoEncoder": _TOPK, "TopKSAE": _TOPK,
    "BatchTopKSAE": _BATCHTOPK, "BatchTopKAutoEncoder": _BATCHTOPK,
    "GatedAutoEncoder": ("gated", True, {**_LINEAR, "b_gate": "gate_bias", "b_mag": "mag_bias", "r_mag": "r_mag",
                                         "b_dec": "decoder_bias"}, ()),
    "JumpReluAutoEncoder": ("jumprelu", False, {n: n for n in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")}, ()),
}


def load_dictionary_learning(folder: str | Path, dtype: str | torch.dtype = DEFAULT_DTYPE,
                             device: str | torch.device = "cpu") -> SAE:
    """Read a trainer folder (`ae.pt`, `config.json`) into the matching pseval architecture, in `dtype` on `device`.

    nn.Linear weights are used as transposed views of the (memory-mapped) checkpoint, never copied. State-dict
    entries the class does not save are ignored with a warning naming them.
    """
    p = Path(folder)
    cfg_path = p / "config.json"
    conf = read_json_object(cfg_path, "a dictionary_learning folder holds ae.pt and config.json")
    tr = conf.get("trainer", conf)
    if not isinstance(tr, dict):
        raise SAEFormatError(f"{cfg_path}: field 'trainer' holds a {type(tr).__name__}, expected an object")
    for name in ("submodule_name", "lm_name"):
        if tr.get(name) is not None and not isinstance(tr[name], str):
            raise SAEFormatError(f"{cfg_path}: field 'trainer.{name}' is {tr[name]!r}, expected a string")
    if tr.get("layer") is not None:
        stored_int(tr["layer"], str(cfg_path), "trainer.layer", minimum=0)
    cls = str(tr.get("dict_class", "AutoEncoder"))
    if cls not in CLASSES:
        raise SAEFormatError(f"{cfg_path}: dict_class {cls!r} is not supported (known: {', '.join(CLASSES)})")
    arch, apply_b_dec, names, extras = CLASSES[cls]
    sd = load_torch_state(p / "ae.pt")
    src = str(p / "ae.pt")
    _need(sd, tuple(names.values()), p / "ae.pt")
    unexpected = sorted(set(sd) - set(names.values()) - set(extras))
    if unexpected:
        warnings.warn(f"{src}: entries {', '.join(unexpected)} are not saved by {cls} and are ignored", stacklevel=2)
    # Ranks and dtypes first: nothing below may index or transpose a value that is not the tensor it claims to be.
    batchtopk = cls in ("BatchTopKSAE", "BatchTopKAutoEncoder")
    t = {w: stored_tensor(sd, key, src, 2 if w in ("W_enc", "W_dec") else (0, 1) if batchtopk and w == "threshold"
                          else 1) for w, key in names.items()}
    t = {w: v.T if _LINEAR.get(w) == names[w] else v for w, v in t.items()}
    k = None
    if arch == "topk":
        if "k" not in sd and "k" not in tr:
            raise SAEFormatError(f"{src}: a TopK SAE without k (neither ae.pt's 'k' nor trainer.k in {cfg_path})")
        k = stored_int(sd["k"], src, "k") if "k" in sd else stored_int(tr["k"], str(cfg_path), "trainer.k")
    if batchtopk:
        if t["threshold"].numel() != 1:  # one learned global threshold; a vector is some other model's
            raise SAEFormatError(f"{src}: field 'threshold' has {t['threshold'].numel()} values; {cls} stores one "
                                 "global threshold")
        t["threshold"] = t["threshold"].reshape(-1).expand(t["W_enc"].shape[1]).contiguous()
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
    return build_sae(cfg, {n: place(v, dtype, device) for n, v in t.items()}, src)
