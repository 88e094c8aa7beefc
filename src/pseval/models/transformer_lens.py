"""A TransformerLens `HookedTransformer` as pseval's model: its own blocks and hook points, read by the one capture
path (PyTorch forward hooks on TransformerLens' HookPoint modules, as TransformerLens' own hooks are).

TransformerLens is never imported. The activations are TransformerLens', so their convention is recorded: a model
loaded with `from_pretrained` (writing weights centred, the default for LayerNorm models) gives `tl_centered`
activations, one loaded with `from_pretrained_no_processing` gives Hugging Face's (`hf`). The convention is read
from the weights themselves: TransformerLens keeps no flag for it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
import torch.nn as nn

from pseval.errors import ConfigError, HookError
from pseval.models.loading import LoadedModel
from pseval.saes.conventions import HF, TL_CENTERED

# The family name models/hooks.py maps to TransformerLens' module tree.
TL_MODEL_TYPE = "transformer_lens"
# |mean over d_model| below this fraction of a tensor's RMS counts as centred (float32 rounding of a centred
# matrix is ~1e-8 of it; random weights are ~1e-1).
_CENTRED_TOLERANCE = 1e-4


def is_hooked_transformer(obj: Any) -> bool:
    """A TransformerLens HookedTransformer (or a subclass such as HookedSAETransformer)."""
    return any(c.__module__.split(".")[0] == "transformer_lens" and c.__name__ == "HookedTransformer"
               for c in type(obj).__mro__)


def _writing_weights(ht: Any) -> dict[str, torch.Tensor]:
    """Every tensor that writes into the residual stream, by name (d_model last)."""
    out: dict[str, torch.Tensor] = {"W_E": ht.embed.W_E}
    pos = getattr(getattr(ht, "pos_embed", None), "W_pos", None)
    if isinstance(pos, torch.Tensor):
        out["W_pos"] = pos
    for i, block in enumerate(ht.blocks):
        for part, names in (("attn", ("W_O", "b_O")), ("mlp", ("W_out", "b_out"))):
            mod = getattr(block, part, None)
            for n in names:
                t = getattr(mod, n, None)
                if isinstance(t, torch.Tensor):
                    out[f"blocks.{i}.{part}.{n}"] = t
    return out


def tl_convention(ht: Any) -> str:
    """`tl_centered` when every (non-zero) writing weight has zero mean across d_model, `hf` when none has; a model
    with some centred and some not is refused."""
    centred: list[str] = []
    not_centred: list[str] = []
    with torch.no_grad():
        for name, t in _writing_weights(ht).items():
            t = t.detach().float()
            rms = float(t.pow(2).mean().sqrt())
            if rms == 0.0:
                continue  # an all-zero bias says nothing
            worst = float(t.mean(dim=-1).abs().max())
            (centred if worst <= _CENTRED_TOLERANCE * rms else not_centred).append(name)
    if centred and not_centred:
        raise ConfigError(f"cannot tell this HookedTransformer's activation convention: {', '.join(centred[:3])} "
                          f"are centred across d_model but {', '.join(not_centred[:3])} are not")
    return TL_CENTERED if centred else HF


class TransformerLensModel(nn.Module):
    """A HookedTransformer with the interface pseval's capture expects: `config`, `forward(input_ids,
    attention_mask)`, and its blocks at `model.blocks`."""

    def __init__(self, ht: Any) -> None:
        super().__init__()
        self.model = ht
        c = ht.cfg
        self.config = SimpleNamespace(model_type=TL_MODEL_TYPE, hidden_size=int(c.d_model),
                                      num_hidden_layers=int(c.n_layers), max_position_embeddings=int(c.n_ctx),
                                      is_decoder=True, _name_or_path=str(getattr(c, "model_name", "") or ""))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> Any:
        """TransformerLens' forward on token ids (pseval has already added BOS), no logits."""
        return self.model(input_ids, return_type=None, attention_mask=attention_mask)


def check_tl_hook(hook: str) -> None:
    """hook_z of a processed HookedTransformer lacks the value biases folded into b_O; pseval reads it from Hugging
    Face models only."""
    if hook.endswith("attn.hook_z"):
        raise HookError(f"hook {hook!r}: attn.hook_z is read from Hugging Face models only (TransformerLens' z is "
                        "[batch, pos, head, d_head] and, with fold_value_biases, lacks the value biases)")


def wrap_hooked_transformer(ht: Any, name: str | None = None) -> LoadedModel:
    """A HookedTransformer as a LoadedModel whose activation convention is read from its weights."""
    if not is_hooked_transformer(ht):
        raise ConfigError(f"expected a transformer_lens HookedTransformer, got {type(ht).__name__}")
    tok = getattr(ht, "tokenizer", None)
    if tok is None:
        raise ConfigError("the HookedTransformer has no tokenizer (HookedTransformer(cfg, tokenizer=...))")
    label = name or str(getattr(ht.cfg, "model_name", "") or "hooked_transformer")
    return LoadedModel(model=TransformerLensModel(ht), tokenizer=tok, name=label,
                       source=f"transformer_lens {type(ht).__name__}", activation_convention=tl_convention(ht))
