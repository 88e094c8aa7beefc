"""EleutherAI sparsify: `<run>/<hookpoint>/cfg.json` + `sae.safetensors` (often bf16), TopK of ReLU."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from pseval.errors import SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.build import build_sae
from pseval.saes.config import SAEConfig, SAEMetadata, check_bool, check_int, check_str, field_error
from pseval.saes.formats.checks import stored_tensor
from pseval.saes.formats.common import read_json_object
from pseval.saes.tensor_io import DEFAULT_DTYPE, read_safetensors, safetensors_index

WEIGHTS = "sae.safetensors"
_WEIGHTS = ("encoder.weight", "encoder.bias", "W_dec", "b_dec")
_HOOKPOINT_RE = re.compile(r"^(?:.*\.)?(?:layers|h|layer)\.(\d+)(?:\.(mlp|self_attn|attn|attention))?$")


def hook_from_hookpoint(hookpoint: str) -> str:
    """Module-path folder names (`layers.10`, `layers.10.mlp`, `h.3`) -> canonical hook names; others unchanged."""
    m = _HOOKPOINT_RE.match(hookpoint)
    if not m:
        return hookpoint
    layer, sub = m.group(1), m.group(2)
    if sub is None:
        return f"blocks.{layer}.hook_resid_post"  # the output of layers[i] (hidden_states[i + 1])
    return f"blocks.{layer}.hook_mlp_out" if sub == "mlp" else f"blocks.{layer}.hook_attn_out"


def load_sparsify(folder: str | Path, dtype: str | torch.dtype = DEFAULT_DTYPE,
                  device: str | torch.device = "cpu") -> SAE:
    """Read one hookpoint folder of a sparsify run, in `dtype` on `device` (encoder.weight a transposed view)."""
    p = Path(folder)
    cfg_path = p / "cfg.json"
    conf = read_json_object(cfg_path, f"a sparsify hookpoint folder holds cfg.json and {WEIGHTS}")
    try:  # the fields that change what the weights compute; groupmax and transcoders are other models
        check_str("activation", conf.get("activation", "topk"), ("topk",))
        if check_bool("transcode", conf.get("transcode", False)):
            raise field_error("transcode", True, "false (a transcoder is not an SAE)")
        check_int("k", conf.get("k"))
    except SAEFormatError as exc:
        raise SAEFormatError(f"{cfg_path}: {exc}") from exc
    index = safetensors_index(p / WEIGHTS)
    stored = list(index)
    missing = [k for k in _WEIGHTS if k not in stored]
    if missing:
        raise SAEFormatError(f"{p / WEIGHTS}: missing weight(s) {', '.join(missing)}")
    if "W_skip" in stored:
        warnings.warn(f"{p}: W_skip (a transcoder skip connection) is ignored; encodings are unaffected",
                      stacklevel=2)
    unexpected = sorted(set(stored) - set(_WEIGHTS) - {"W_skip"})
    if unexpected:
        warnings.warn(f"{p / WEIGHTS}: tensor(s) {', '.join(unexpected)} are not sparsify SAE weights and are ignored",
                      stacklevel=2)
    stored_dtype = str(index["encoder.weight"][0]).removeprefix("torch.")
    ranks = {"encoder.weight": 2, "W_dec": 2, "encoder.bias": 1, "b_dec": 1}
    for name, rank in ranks.items():  # from the header: nothing is read before the ranks are right
        if len(index[name][1]) != rank:
            raise SAEFormatError(f"{p / WEIGHTS}: field {name!r} has shape {index[name][1]}, expected {rank}-D")
    w = read_safetensors(p / WEIGHTS, dtype, device, names=list(_WEIGHTS))
    w = {n: stored_tensor(w, n, str(p / WEIGHTS), ranks[n]) for n in _WEIGHTS}
    d_sae, d_in = w["encoder.weight"].shape
    if conf.get("d_in") not in (None, d_in):
        raise SAEFormatError(f"{cfg_path}: d_in={conf['d_in']} but encoder.weight has {d_in} columns")
    meta = SAEMetadata(hook_name=hook_from_hookpoint(p.name),
                       extra={"source_format": "sparsify", "activation_convention": "hf", "hookpoint": p.name})
    cfg = SAEConfig(architecture="topk", d_in=int(d_in), d_sae=int(d_sae), apply_b_dec_to_input=True,
                    k=int(conf["k"]), dtype=stored_dtype, metadata=meta)
    t = {"W_enc": w["encoder.weight"].T, "b_enc": w["encoder.bias"], "W_dec": w["W_dec"], "b_dec": w["b_dec"]}
    return build_sae(cfg, t, str(p / WEIGHTS))
