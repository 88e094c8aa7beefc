"""The one validation layer every SAE reader passes its stored values through, before anything is computed or
allocated from them: each value is a tensor of the expected rank and a floating dtype, counts are integers, nested
states are mappings, and sizes claimed by a file's header fit in the file. Errors name the file and the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from pseval.errors import SAEFormatError

_RANK = {1: "1-D (a vector)", 2: "2-D (a matrix)"}


def stored_tensor(values: Mapping[str, Any], key: str, source: str, ndim: int | tuple[int, ...],
                  floating: bool = True) -> torch.Tensor:
    """values[key] checked to be a tensor of rank `ndim` (one of them, for a tuple), floating point if asked."""
    if key not in values:
        raise SAEFormatError(f"{source}: field {key!r} is missing")
    t = values[key]
    if not isinstance(t, torch.Tensor):
        raise SAEFormatError(f"{source}: field {key!r} holds a {type(t).__name__}, expected a tensor")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if t.ndim not in ranks:
        want = " or ".join(_RANK.get(r, f"{r}-D") for r in ranks)
        raise SAEFormatError(f"{source}: field {key!r} has shape {tuple(t.shape)} ({t.ndim}-D), expected {want}")
    if floating and not t.is_floating_point():
        raise SAEFormatError(f"{source}: field {key!r} has dtype {str(t.dtype).removeprefix('torch.')}, expected "
                             "floating point")
    return t


def stored_int(value: Any, source: str, field: str, minimum: int = 1) -> int:
    """A stored count (`k`): an int, or a one-element integer tensor, at least `minimum`; never a string or float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if not isinstance(value, torch.Tensor) else f"a {value.dtype} tensor of {value.numel()}"
        raise SAEFormatError(f"{source}: field {field!r} is {shown[:80]}, expected an integer")
    if value < minimum:
        raise SAEFormatError(f"{source}: field {field!r} is {value}, expected an integer >= {minimum}")
    return value


def stored_mapping(value: Any, source: str, field: str) -> Mapping[str, Any]:
    """A nested state (`activation_state_dict`): a mapping, or None read as empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SAEFormatError(f"{source}: field {field!r} holds a {type(value).__name__}, expected a mapping")
    return value


def check_claimed_size(claimed: int, stored: int, source: str, field: str) -> None:
    """Refuse a header whose shape claims more bytes than the file stores for it (checked before allocating)."""
    if claimed != stored:
        raise SAEFormatError(f"{source}: field {field!r} claims {claimed:,} bytes of data but the file stores "
                             f"{stored:,} (truncated or corrupt header)")


def check_same_width(source: str, **widths: Any) -> None:
    """Fields that state one width must agree (e.g. cfg d_in and the encoder's columns)."""
    given = {k: v for k, v in widths.items() if v is not None}
    if len(set(given.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in given.items())
        raise SAEFormatError(f"{source}: widths disagree ({shown})")


def check_head_layout(hook_head_index: int | None, reshape_activations: str, hook: str | None, source: str) -> None:
    """Per-head settings (`hook_head_index`, `reshape_activations: hook_z`) only make sense on an attention hook_z:
    on any other hook pseval would have to ignore them, and scoring without them is another SAE's number."""
    if hook is None or hook.endswith("hook_z"):
        return
    if hook_head_index is not None:
        raise SAEFormatError(f"{source}: field 'hook_head_index' is {hook_head_index}, but the hook {hook!r} is not "
                             "an attention hook_z (per-head SAEs read blocks.<L>.attn.hook_z)")
    if reshape_activations == "hook_z":
        raise SAEFormatError(f"{source}: field 'reshape_activations' is 'hook_z', but the hook {hook!r} is not an "
                             "attention hook_z")
