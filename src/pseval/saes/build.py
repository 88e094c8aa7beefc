"""Build an SAE around loaded tensors without allocating, initialising and copying into its parameters."""

from __future__ import annotations

import torch

from pseval.errors import SAEFormatError
from pseval.saes.base import SAE, check_shape
from pseval.saes.config import SAEConfig
from pseval.saes.registry import get_sae_class


def expected_shapes(sae: SAE) -> dict[str, tuple[int, ...]]:
    """Shape of every saved tensor of an SAE, from its parameters."""
    return {n: tuple(sae.get_weight(n).shape) for n in sae.weight_names()}


def build_sae(cfg: SAEConfig, tensors: dict[str, torch.Tensor], source: str) -> SAE:
    """The registered class for cfg.architecture, its weights *being* the checked tensors (no copies).

    The module is constructed on the meta device (its random initialisation costs nothing), then each weight is
    replaced by the loaded tensor: a transposed view stays a view, a memory-mapped tensor stays mapped. Weights
    take the dtype and device of W_enc as loaded.
    """
    with torch.device("meta"):
        sae = get_sae_class(cfg.architecture)(cfg)
    shapes = expected_shapes(sae)
    missing = [n for n in shapes if n not in tensors]
    if missing:
        raise SAEFormatError(f"{source}: missing weight(s) {', '.join(missing)} for architecture "
                             f"{cfg.architecture!r} (found {', '.join(sorted(tensors)) or 'none'})")
    first = tensors[next(iter(shapes))]
    dtype, device = first.dtype, first.device
    for name, shape in shapes.items():
        t = tensors[name]
        check_shape(name, t, shape, source)
        if not t.is_floating_point():
            raise SAEFormatError(f"{source}: weight {name!r} has dtype {str(t.dtype).removeprefix('torch.')}; "
                                 "expected floating point")
        sae.assign_weight(name, t.to(device=device, dtype=dtype))  # no-op unless a small tensor differs
    sae.materialise_state(device)
    left = [n for n, t in [*sae.named_parameters(), *sae.named_buffers()] if t.is_meta]
    if device.type == "meta":  # a peek at the config and shapes (pseval.saes.peek): no values to check
        return sae
    if left:  # an architecture with state that materialise_state does not create
        raise RuntimeError(f"{type(sae).__name__}.materialise_state leaves {', '.join(left)} unset")
    sae.check_weights(source)
    return sae
