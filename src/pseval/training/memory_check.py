"""Whether an SAE to train fits in the device's memory, from its shape alone: an absurd width is refused in one line
before anything is allocated, instead of an allocator failure deep in torch."""

from __future__ import annotations

import os

import torch

from pseval.errors import ConfigError

# Bytes per weight while training in float32: the weight, its gradient and Adam's two moments.
TRAINING_BYTES_PER_WEIGHT = 4 * 4


def device_memory(device: str | torch.device) -> int | None:
    """Total memory of the device in bytes (physical RAM for the CPU), or None when it cannot be told."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(dev.index or 0).total_memory)
    if dev.type == "cpu" and hasattr(os, "sysconf"):
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError):
            return None
    return None


def check_training_fits(label: str, d_in: int, d_sae: int, device: str | torch.device) -> None:
    """ConfigError naming the SAE when its encoder and decoder, with gradients and optimiser state, exceed the
    device's whole memory (so it could never train there)."""
    need = 2 * d_in * d_sae * TRAINING_BYTES_PER_WEIGHT
    have = device_memory(device)
    if have is not None and need > have:
        raise ConfigError(f"{label}: d_sae={d_sae:,} latents x d_in={d_in} needs about {need / 2**30:,.1f} GiB to "
                          f"train (weights, gradients, optimiser state), more than the {have / 2**30:,.1f} GiB of "
                          f"{device}; use a smaller --expansion")
