"""ReLU SAE with an L1 penalty weighted by decoder-row norms (SAELens `standard`)."""

from __future__ import annotations

import torch

from pseval.saes.base import SAE, TrainOutput, mse_loss
from pseval.saes.registry import register_sae


@register_sae("standard")
class StandardSAE(SAE):
    """z = ReLU(W_enc (x - b_dec) + b_enc)."""

    sparse_decode = True  # zero latents carry no gradient: the sparse decode is exact

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """ReLU."""
        return torch.relu(pre)

    def default_sparsity_coeff(self) -> float:
        """L1 coefficient in units of MSE summed over d."""
        return 2.0

    def train_forward(self, x: torch.Tensor, sparsity_coeff: float, dead_mask: torch.Tensor | None) -> TrainOutput:
        """MSE plus L1 of latents times decoder-row norms."""
        z = self.encode(x)
        recon = self.train_decode(z)
        mse = mse_loss(x, recon)
        l1 = (z * self.W_dec.norm(dim=1)).sum(-1).mean()
        zero = mse.new_zeros(())
        return TrainOutput(mse + sparsity_coeff * l1, mse, l1, zero, z, recon)


@register_sae("tanh_relu")
class TanhReLUSAE(StandardSAE):
    """Pre-6.0 SAELens' `activation_fn_str: tanh-relu` on a standard SAE: z = tanh(ReLU(W_enc (x - b_dec) + b_enc)).

    SAELens 6 no longer has this activation (it would compute a plain ReLU); pseval saves it under this name.
    """

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """tanh of the ReLU, as SAELens' get_activation_fn("tanh-relu")."""
        return torch.tanh(torch.relu(pre))
