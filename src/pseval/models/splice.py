"""Replace the activation at a hook point during a forward pass (SAE reconstruction, zero or mean ablation)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

from pseval.models.hooks import resolve_hook

Replace = Callable[[torch.Tensor], torch.Tensor]


def _swap_first(out: Any, new: torch.Tensor) -> Any:
    if isinstance(out, torch.Tensor):
        return new
    if isinstance(out, tuple):
        return (new, *out[1:])
    if isinstance(out, list):
        return [new, *out[1:]]
    raise TypeError(f"cannot replace the activation inside a {type(out).__name__}")


@contextmanager
def spliced(model: nn.Module, hook_name: str, replace: Replace, mask: Callable[[], torch.Tensor | None]
            ) -> Iterator[None]:
    """Within the context, the hook's activation h becomes where(mask, replace(h), h); mask() is [B, T] or None."""
    h = resolve_hook(model, hook_name)

    def apply(t: torch.Tensor) -> torch.Tensor:
        new = replace(t).to(t.dtype)
        m = mask()
        return new if m is None else torch.where(m[..., None], new, t)

    if h.read_input:
        def pre(_mod: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            if args:
                return (apply(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": apply(kwargs["hidden_states"])}
        handle = h.module.register_forward_pre_hook(pre, with_kwargs=True)
    else:
        def post(_mod: nn.Module, _inp: Any, out: Any) -> Any:
            t = out if isinstance(out, torch.Tensor) else out[0]
            return _swap_first(out, apply(t))
        handle = h.module.register_forward_hook(post)
    try:
        yield
    finally:
        handle.remove()
