"""Run a model forward with callbacks at hook points, stopping after the deepest block that is needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

from pseval.errors import HookError
from pseval.models.hooks import ResolvedHook, get_blocks, resolve_hook

OnActivation = Callable[[str, torch.Tensor], None]


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass once every requested activation is read."""


def _first_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return x[0]
    if hasattr(x, "last_hidden_state"):
        return x.last_hidden_state
    raise HookError(f"hook {name!r}: the module returns a {type(x).__name__}, with no activation tensor in it")


def per_token(name: str, t: torch.Tensor) -> torch.Tensor:
    """t when it holds one activation per token ([batch, seq, ...]); a HookError naming the hook otherwise (a pooled
    [batch, d] output has no token to read)."""
    if t.ndim < 3:
        raise HookError(f"hook {name!r}: the module gives a {t.ndim}-D output of shape {tuple(t.shape)}; a hook must "
                        "give one activation per token, [batch, tokens, width]")
    return t


def _stop_point(model: nn.Module, hooks: Sequence[ResolvedHook]) -> tuple[nn.Module, bool] | None:
    """The module after which nothing more is needed, and whether to stop before it runs (pre-hook)."""
    if any(h.layer is None for h in hooks):
        return None  # raw module paths: we cannot tell their depth
    deepest = max(h.layer for h in hooks if h.layer is not None)
    at_deepest = [h for h in hooks if h.layer == deepest]
    block = get_blocks(model)[deepest]
    only_pre = all(h.read_input and h.module is h.block for h in at_deepest)  # resid_pre only
    return block, only_pre


@contextmanager
def hooked(model: nn.Module, hook_names: Sequence[str], on_activation: OnActivation,
           stop_early: bool = True) -> Iterator[Callable[..., Any]]:
    """Context that yields `run(**inputs)`: a forward pass calling `on_activation(name, tensor)` at each hook."""
    resolved = [resolve_hook(model, n) for n in hook_names]
    handles = []

    seen: set[str] = set()

    def make_post(name: str) -> Callable[..., None]:
        def post(_mod: nn.Module, _inp: Any, out: Any) -> None:
            seen.add(name)
            on_activation(name, per_token(name, _first_tensor(out, name)))
        return post

    def make_pre(name: str) -> Callable[..., None]:
        def pre(_mod: nn.Module, args: tuple, kwargs: dict) -> None:
            seen.add(name)
            on_activation(name, per_token(name, args[0] if args else kwargs["hidden_states"]))
        return pre

    for h in resolved:
        if h.read_input:
            handles.append(h.module.register_forward_pre_hook(make_pre(h.name), with_kwargs=True))
        else:
            handles.append(h.module.register_forward_hook(make_post(h.name)))
    stop = _stop_point(model, resolved) if stop_early and resolved else None
    if stop is not None:
        block, before = stop

        def raise_stop(*_a: Any, **_k: Any) -> None:
            raise _StopForward

        # Registered after the capture hooks on the same module, so those fire first.
        if before:
            handles.append(block.register_forward_pre_hook(raise_stop, with_kwargs=True))
        else:
            handles.append(block.register_forward_hook(raise_stop))

    def run(**inputs: Any) -> Any:
        seen.clear()
        try:
            out = model(**inputs)
        except _StopForward:
            out = None
        silent = [h.name for h in resolved if h.name not in seen]
        if silent:  # a module the forward pass never calls gives no activations, not zero of them
            raise HookError(f"hook {silent[0]!r}: the module never ran in the forward pass of "
                            f"{type(model).__name__}, so it gives no activations; name a module the model calls")
        return out

    try:
        yield run
    finally:
        for handle in handles:
            handle.remove()


def model_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor, is_causal: bool) -> dict[str, Any]:
    """Keyword arguments for a plain forward pass (no KV cache for decoders)."""
    inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if is_causal:
        inputs["use_cache"] = False
    return inputs
