"""JumpReLU SAE: per-latent thresholds trained with straight-through estimators and an L0 penalty."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from pseval.saes.base import SAE, TrainOutput, mse_loss
from pseval.saes.config import SAEConfig
from pseval.saes.registry import register_sae

BANDWIDTH = 0.05  # width of the rectangle kernel of the pseudo-derivatives, in normalised units
INIT_THRESHOLD = 0.001


def _rect(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta); d/dtheta uses -(theta / eps) K((pre - theta) / eps)."""

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, theta: torch.Tensor, eps: float) -> torch.Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.eps = eps
        return pre * (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        pre, theta = ctx.saved_tensors
        eps = ctx.eps
        g_pre = grad * (pre > theta).to(pre.dtype)
        g_theta = (grad * -(theta / eps) * _rect((pre - theta) / eps)).sum(dim=tuple(range(grad.ndim - 1)))
        return g_pre, g_theta, None


class _Step(torch.autograd.Function):
    """H(pre - theta); d/dtheta uses -(1 / eps) K((pre - theta) / eps); no gradient to pre."""

    @staticmethod
    def forward(ctx: Any, pre: torch.Tensor, theta: torch.Tensor, eps: float) -> torch.Tensor:
        ctx.save_for_backward(pre, theta)
        ctx.eps = eps
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        pre, theta = ctx.saved_tensors
        eps = ctx.eps
        g_theta = (grad * -(1.0 / eps) * _rect((pre - theta) / eps)).sum(dim=tuple(range(grad.ndim - 1)))
        return None, g_theta, None


@register_sae("jumprelu")
class JumpReLUSAE(SAE):
    """z = ReLU(pre) * 1[pre > threshold], threshold per latent (SAELens, Gemma Scope, dictionary_learning)."""

    extra_weights = ("threshold",)

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        # Trained directly, not as a log: Adam moves a log-threshold too slowly from its tiny start in short runs.
        self.threshold = nn.Parameter(torch.full((cfg.d_sae,), INIT_THRESHOLD))

    @torch.no_grad()
    def post_step(self) -> None:
        """Unit-norm decoder rows and non-negative thresholds."""
        super().post_step()
        self.threshold.clamp_(min=0.0)

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """JumpReLU as its libraries define it: the ReLU keeps codes non-negative even below a negative threshold.

        Training clamps thresholds to >= 0, where this equals pre * 1[pre > threshold] (the training forward).
        """
        return torch.relu(pre) * (pre > self.threshold).to(pre.dtype)

    def default_sparsity_coeff(self) -> float:
        """L0 coefficient in units of MSE summed over d."""
        return 1.0

    def train_forward(self, x: torch.Tensor, sparsity_coeff: float, dead_mask: torch.Tensor | None) -> TrainOutput:
        """MSE plus L0 with pseudo-derivatives for the thresholds (Rajamanoharan et al. 2024)."""
        pre = self.pre_acts(x)
        theta = self.threshold
        z = _JumpReLU.apply(pre, theta, BANDWIDTH)
        recon = self.decode(z)
        mse = mse_loss(x, recon)
        l0 = _Step.apply(pre, theta, BANDWIDTH).sum(-1).mean()
        return TrainOutput(mse + sparsity_coeff * l0, mse, l0, mse.new_zeros(()), z, recon)
