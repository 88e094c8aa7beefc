"""Canonical TransformerLens-style hook names resolved to module inputs and outputs per model family."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

import torch.nn as nn

from pseval.errors import HookError

HOOK_KINDS = ("hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out")
_HOOK_RE = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|hook_attn_out|hook_mlp_out|attn\.hook_z)$")


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """Where a model family keeps its blocks and the modules whose outputs are attn_out and mlp_out."""

    layer_paths: tuple[str, ...]
    attn_out: str
    mlp_out: str
    z_proj: str  # the attention output projection: its input is hook_z, every head's output concatenated


_LLAMA = FamilySpec(("model.layers", "layers", "model.language_model.layers", "language_model.layers"),
                    "self_attn", "mlp", "self_attn.o_proj")
# Gemma 2/3 normalise each sublayer's output before adding it to the residual stream: that sum term is the output.
_GEMMA_SANDWICH = FamilySpec(_LLAMA.layer_paths, "post_attention_layernorm", "post_feedforward_layernorm",
                             "self_attn.o_proj")
_BERT = FamilySpec(("bert.encoder.layer", "encoder.layer", "roberta.encoder.layer", "electra.encoder.layer"),
                   "attention.output.dense", "output.dense", "attention.output.dense")

FAMILIES: dict[str, FamilySpec] = {
    "gpt2": FamilySpec(("transformer.h", "h"), "attn", "mlp", "attn.c_proj"),
    "gpt_neox": FamilySpec(("gpt_neox.layers", "layers"), "attention", "mlp", "attention.dense"),
    "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "qwen3": _LLAMA, "gemma": _LLAMA, "olmo": _LLAMA,
    "phi3": _LLAMA,
    "gemma2": _GEMMA_SANDWICH, "gemma3": _GEMMA_SANDWICH, "gemma3_text": _GEMMA_SANDWICH,
    "bert": _BERT, "roberta": _BERT, "xlm-roberta": _BERT, "electra": _BERT,
    # A HookedTransformer wrapped by pseval.models.transformer_lens: its own blocks and hook points.
    "transformer_lens": FamilySpec(("model.blocks",), "hook_attn_out", "hook_mlp_out", "attn.hook_z"),
}


@dataclass(frozen=True, slots=True)
class ResolvedHook:
    """A hook name bound to a module: read its input (`resid_pre`) or its output."""

    name: str
    module: nn.Module
    read_input: bool
    layer: int | None
    block: nn.Module | None


def _get(root: nn.Module, path: str) -> nn.Module | None:
    mod: nn.Module | None = root
    for part in path.split("."):
        if mod is None:
            return None
        mod = getattr(mod, part, None) if not part.isdigit() else (mod[int(part)] if isinstance(mod, nn.ModuleList)
                                                                     and int(part) < len(mod) else None)
    return mod if isinstance(mod, nn.Module) else None


def family_spec(model: nn.Module) -> FamilySpec:
    """The FamilySpec of a Hugging Face model, from its config's model_type."""
    mtype = str(getattr(model.config, "model_type", ""))
    if mtype not in FAMILIES:
        raise HookError(f"model type {mtype!r} has no hook map; supported: {', '.join(sorted(FAMILIES))}. "
                        "Module paths (e.g. `transformer.h.3.mlp`) work for any model.")
    return FAMILIES[mtype]


def get_blocks(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of transformer blocks."""
    spec = family_spec(model)
    for path in spec.layer_paths:
        mod = _get(model, path)
        if isinstance(mod, nn.ModuleList):
            return mod
    raise HookError(f"no block list found at {', '.join(spec.layer_paths)} in {type(model).__name__}")


def valid_hook_names(model: nn.Module) -> list[str]:
    """Every canonical hook name of a model."""
    n = len(get_blocks(model))
    return [f"blocks.{layer}.{kind}" for layer in range(n) for kind in HOOK_KINDS]


def expand_hook_pattern(model: nn.Module, pattern: str) -> list[str]:
    """Expand a glob like `blocks.*.hook_attn_out` to matching canonical names (in layer order)."""
    if not any(c in pattern for c in "*?["):
        return [pattern]
    names = [n for n in valid_hook_names(model) if fnmatch.fnmatchcase(n, pattern)]
    if not names:
        raise HookError(f"hook pattern {pattern!r} matches no hook point of this model")
    return names


def parse_hook_name(name: str) -> tuple[int, str] | None:
    """(layer, kind) of a canonical hook name, or None for other names."""
    m = _HOOK_RE.match(name)
    return (int(m.group(1)), m.group(2)) if m else None


def resolve_hook(model: nn.Module, name: str) -> ResolvedHook:
    """Bind a canonical hook name (or a raw module path) to its module."""
    parsed = parse_hook_name(name)
    if parsed is None:
        mod = _get(model, name)
        if isinstance(mod, (nn.ModuleList, nn.ModuleDict)):  # a container has no forward: it never runs
            first = next(iter(mod._modules), None)
            raise HookError(f"hook {name!r} is a {type(mod).__name__}, a container that never runs; name one of its "
                            f"modules{f' (e.g. {name}.{first})' if first is not None else ''}")
        if mod is not None:
            return ResolvedHook(name, mod, read_input=False, layer=None, block=None)
        examples = ", ".join(valid_hook_names(model)[:4])
        raise HookError(f"unknown hook {name!r}: expected blocks.<L>.<{'|'.join(HOOK_KINDS)}|attn.hook_z> "
                        f"(e.g. {examples}, ...) or a module path of the model")
    layer, kind = parsed
    blocks = get_blocks(model)
    if layer >= len(blocks):
        raise HookError(f"unknown hook {name!r}: the model has {len(blocks)} blocks (layers 0-{len(blocks) - 1})")
    spec = family_spec(model)
    block = blocks[layer]
    if kind == "hook_resid_pre":
        return ResolvedHook(name, block, read_input=True, layer=layer, block=block)
    if kind == "hook_resid_post":
        return ResolvedHook(name, block, read_input=False, layer=layer, block=block)
    if kind == "attn.hook_z":
        proj = _get(block, spec.z_proj)
        if proj is None:
            raise HookError(f"hook {name!r}: module {spec.z_proj!r} not found in block {layer}")
        return ResolvedHook(name, proj, read_input=True, layer=layer, block=block)
    path = spec.attn_out if kind == "hook_attn_out" else spec.mlp_out
    mod = _get(block, path)
    if mod is None:
        raise HookError(f"hook {name!r}: module {path!r} not found in block {layer} of {type(model).__name__}")
    return ResolvedHook(name, mod, read_input=False, layer=layer, block=block)
