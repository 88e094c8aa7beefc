"""EleutherAI sparsify: `<run>/<hookpoint>/cfg.json` + `sae.safetensors` (often bf16), TopK of ReLU."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from pseval.errors import SAEFormatError
from pseval.saes.base import SAE
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.common import read_json_object
from pseval.saes.formats.saelens import build_sae, read_safetensors

WEIGHTS = "sae.safetensors"
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


def load_sparsify(folder: str | Path) -> SAE:
    """Read one hookpoint folder of a sparsify run."""
    p = Path(folder)
    cfg_path = p / "cfg.json"
    conf = read_json_object(cfg_path, f"a sparsify hookpoint folder holds cfg.json and {WEIGHTS}")
    w = read_safetensors(p / WEIGHTS)
    missing = [k for k in ("encoder.weight", "encoder.bias", "W_dec", "b_dec") if k not in w]
    if missing:
        raise SAEFormatError(f"{p / WEIGHTS}: missing weight(s) {', '.join(missing)}")
    if "W_skip" in w:
        warnings.warn(f"{p}: W_skip (a transcoder skip connection) is ignored; encodings are unaffected",
                      stacklevel=2)
    d_sae, d_in = w["encoder.weight"].shape
    if conf.get("d_in") not in (None, d_in):
        raise SAEFormatError(f"{cfg_path}: d_in={conf['d_in']} but encoder.weight has {d_in} columns")
    if "k" not in conf:
        raise SAEFormatError(f"{cfg_path}: missing key 'k'")
    meta = SAEMetadata(hook_name=hook_from_hookpoint(p.name),
                       extra={"source_format": "sparsify", "activation_convention": "hf", "hookpoint": p.name})
    cfg = SAEConfig(architecture="topk", d_in=int(d_in), d_sae=int(d_sae), apply_b_dec_to_input=True,
                    k=int(conf["k"]), dtype=str(w["encoder.weight"].dtype).removeprefix("torch."), metadata=meta)
    t = {"W_enc": w["encoder.weight"].T, "b_enc": w["encoder.bias"], "W_dec": w["W_dec"], "b_dec": w["b_dec"]}
    return build_sae(cfg, {k: v.float().contiguous() for k, v in t.items()}, str(p / WEIGHTS))
