"""Run a model forward from a recorded block output: the blocks before a hook return what they returned in a clean
pass instead of computing it, so a run that changes the model only at the hook computes only what follows it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

from pseval.models.hooks import get_blocks, resolve_hook


def replay_block(model: nn.Module, hook_name: str) -> int | None:
    """The last block whose output a run spliced at `hook_name` can replay: the hook's own block for resid_post
    (its output is what the splice replaces), the one before it otherwise; None when nothing can be skipped (layer
    0, or a raw module path whose depth is unknown)."""
    h = resolve_hook(model, hook_name)
    if h.layer is None:
        return None
    last = h.layer if (h.module is h.block and not h.read_input) else h.layer - 1
    return last if last >= 0 else None


@contextmanager
def recording(model: nn.Module, block: int) -> Iterator[list[Any]]:
    """Within the context, each forward pass appends the output of block `block` (as the block returned it)."""
    outputs: list[Any] = []
    handle = get_blocks(model)[block].register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        yield outputs
    finally:
        handle.remove()


@contextmanager
def replaying(model: nn.Module, block: int, output: Any) -> Iterator[None]:
    """Within the context, blocks 0..`block` do not compute: each returns `output`, block `block`'s recorded output
    (the blocks before it return it too; the next block reads only the last one's). Hooks on block `block` still
    see it. The caller keeps the inputs the same as when `output` was recorded."""
    blocks = list(get_blocks(model))[: block + 1]

    def skip(*_args: Any, **_kwargs: Any) -> Any:
        return output

    own = [b.__dict__.get("forward") for b in blocks]  # e.g. accelerate's device hooks wrap forward this way
    for b in blocks:
        b.forward = skip  # an instance attribute shadows the class's forward; hooks run around it as usual
    try:
        yield
    finally:
        for b, fwd in zip(blocks, own, strict=True):
            if fwd is None:
                del b.forward
            else:
                b.forward = fwd


def output_tensors(output: Any) -> list[torch.Tensor]:
    """The tensors a block returned (a tensor, or those in its tuple or list)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)):
        return [t for t in output if isinstance(t, torch.Tensor)]
    return []
