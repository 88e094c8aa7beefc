"""Applying an SAE in bounded memory: row chunks sized by a byte budget (d_sae included), in a chosen dtype.

Every metric that encodes (PS-Eval, reconstruction, loss recovered) walks its rows in chunks of `chunk_rows(...)`
rows, so no [rows, d_sae] matrix larger than the budget ever exists (a chunk holds at least ROW_ALIGN encoded rows).
The budget changes how the work is cut, never its result: BLAS kernels compute a row differently when it falls in
the ragged tail of a matrix (fewer rows than the kernel's block), so every matrix handed to the SAE is padded with
zero rows to a multiple of ROW_ALIGN (`aligned`) and chunks are multiples of it; then each row's code and
reconstruction are bit-identical whatever chunk it falls in (tested for every architecture).
"""

from __future__ import annotations

import copy
import ctypes
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal, get_args

import torch
import torch.nn as nn

from pseval.errors import ConfigError
from pseval.saes.base import SAE, module_device
from pseval.saes.conventions import from_sae_output, to_sae_input

DEFAULT_MEMORY_BUDGET = 512 * 2**20  # bytes of transient [rows, d_sae] work per chunk
# Peak transient bytes per latent per encoded row: pre-activations, the activation's temporaries, the code, and the
# masks and products the statistics take of it (measured for fp32 TopK/JumpReLU/Gated codes; see tests/metrics).
BYTES_PER_LATENT = 24
# Rows per SAE call are a multiple of this (see the module doc): 16 covers the row blocks of MKL/oneDNN's kernels.
ROW_ALIGN = 16

ScoringDtype = Literal["float32", "bfloat16", "float16"]
SCORING_DTYPES: tuple[str, ...] = get_args(ScoringDtype)

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30}


def parse_bytes(text: str | int) -> int:
    """A byte count from `536870912`, `512MiB`, `512M`, `2GiB` (binary units); a ConfigError otherwise."""
    if isinstance(text, int):
        value = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
        if not m or m.group(2).lower() not in _UNITS:
            raise ConfigError(f"memory budget {text!r}: expected a byte count such as 536870912, 512MiB or 2GiB")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise ConfigError(f"memory budget {text!r}: must be positive")
    return value


def scoring_dtype(name: str) -> torch.dtype:
    """The torch dtype of a scoring dtype name; a ConfigError names the allowed values."""
    if name not in SCORING_DTYPES:
        raise ConfigError(f"dtype={name!r}; expected one of {', '.join(SCORING_DTYPES)}")
    return getattr(torch, name)


def chunk_rows(d_sae: int, budget: int = DEFAULT_MEMORY_BUDGET, per_row: int = 1, cap: int | None = None) -> int:
    """Rows per chunk: as many as fit `budget` bytes at BYTES_PER_LATENT per latent and `per_row` codes per row (2
    for a pair), at most `cap`, rounded down so a chunk encodes a multiple of ROW_ALIGN rows (at least ROW_ALIGN)."""
    step = max(1, ROW_ALIGN // per_row)
    rows = budget // (BYTES_PER_LATENT * max(1, d_sae) * per_row)
    if cap:
        rows = min(rows, cap)
    return max(step, rows // step * step)


def aligned(fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
    """fn(x) (a tensor or a tuple of them, one row per row of x) as computed on x padded with zero rows to a multiple
    of ROW_ALIGN (see the module doc)."""
    n = x.shape[0]
    pad = -n % ROW_ALIGN
    if pad:
        x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
    out = fn(x)
    return tuple(t[:n] for t in out) if isinstance(out, tuple) else out[:n]


def row_chunks(n: int, rows: int) -> Iterator[slice]:
    """Consecutive slices of `rows` rows covering range(n); between chunks, freed memory goes back to the system."""
    for start in range(0, n, rows):
        yield slice(start, min(n, start + rows))
        if start + rows < n:
            release_freed_memory()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc). Chunk-sized tensors under glibc's mmap threshold (up to
    32 MiB) are allocated on the heap, and freeing them leaves the pages mapped: without this, many chunks of a
    mid-sized SAE grew RSS by ~1 GiB over a 64 MiB budget (measured: 936 MiB for 384 x 131072, 33 MiB with it)."""
    if _TRIM is not None:
        _TRIM(0)


def cast_sae(sae: SAE, dtype: torch.dtype) -> SAE:
    """The SAE with floating weights in `dtype`: itself when they already are, else a copy that shares nothing with
    it and never holds a second full-precision copy of the weights (the caller's SAE is left as it was)."""
    w_enc = getattr(sae, "W_enc", None)
    if w_enc is None or w_enc.dtype == dtype:  # an object without W_enc computes in its own dtype
        return sae
    memo: dict[int, object] = {}
    for t in itertools.chain(sae.parameters(), sae.buffers()):
        new = t.detach().to(dtype) if t.is_floating_point() else t.detach().clone()
        memo[id(t)] = nn.Parameter(new, requires_grad=False) if isinstance(t, nn.Parameter) else new
    return copy.deepcopy(sae, memo)


@torch.inference_mode()
def reconstruct(sae: SAE, h: torch.Tensor, budget: int = DEFAULT_MEMORY_BUDGET) -> torch.Tensor:
    """The SAE's reconstruction of model activations h [..., d] in the model's convention and dtype, chunk by chunk."""
    flat = h.reshape(-1, h.shape[-1])
    dev = module_device(sae)
    rows = chunk_rows(sae.d_sae, budget)
    parts = [from_sae_output(aligned(sae, to_sae_input(flat[s].to(dev), sae)), flat[s].to(dev), sae).to(h.dtype)
             for s in row_chunks(flat.shape[0], rows)]
    out = torch.cat(parts) if parts else flat.new_zeros((0, flat.shape[-1]))
    return out.reshape(*h.shape[:-1], out.shape[-1]).to(h.device)
