"""What an SAE object's `encode` must return, checked on every call: one code vector of width d_sae per input row,
finite. An object from elsewhere is not trusted to keep its shape or values: a wrong shape would otherwise surface as
an IndexError deep in scoring, and NaN codes would be scored as if they were codes."""

from __future__ import annotations

import torch

from pseval.errors import SAEFormatError


def check_codes(z: torch.Tensor, rows: tuple[int, ...], d_sae: int, source: str) -> torch.Tensor:
    """z itself when it is a finite real tensor of shape [*rows, d_sae]; SAEFormatError naming the object otherwise."""
    want = (*rows, d_sae)
    if z.ndim != len(want):
        raise SAEFormatError(f"{source}: encode returned codes of shape {tuple(z.shape)} ({z.ndim}-D) for inputs of "
                             f"{list(rows)} row(s); expected {list(want)}")
    if tuple(z.shape[:-1]) != rows:
        raise SAEFormatError(f"{source}: encode returned {list(z.shape[:-1])} row(s) of codes for {list(rows)} input "
                             "row(s)")
    if z.shape[-1] != d_sae:
        raise SAEFormatError(f"{source}: encode returned codes of width {z.shape[-1]}, but the SAE states "
                             f"d_sae={d_sae} (the width must be the same on every call)")
    if z.is_complex():
        raise SAEFormatError(f"{source}: encode returned {z.dtype} codes; expected real numbers")
    if z.is_floating_point():
        bad = int((~torch.isfinite(z)).sum())
        if bad:
            raise SAEFormatError(f"{source}: encode returned {bad} NaN/inf code value(s) for {list(rows)} input "
                                 "row(s)")
    return z
