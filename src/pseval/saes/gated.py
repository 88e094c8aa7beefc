"""Gated SAE: a gate path decides which latents fire, a magnitude path (shared, rescaled encoder) how much."""

from __future__ import annotations

import torch
import torch.nn as nn

from pseval.saes.base import SAE, TrainOutput, mse_loss
from pseval.saes.config import SAEConfig
from pseval.saes.registry import register_sae


@register_sae("gated")
class GatedSAE(SAE):
    """z = 1[x W_enc + b_gate > 0] * ReLU(x (W_enc * exp(r_mag)) + b_mag) (Rajamanoharan et al. 2024)."""

    sparse_decode = True  # zero latents carry no gradient: the sparse decode is exact

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__(cfg)
        del self.b_enc  # the gated architecture has b_gate and b_mag instead
        self.b_gate = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_mag = nn.Parameter(torch.zeros(cfg.d_sae))
        self.r_mag = nn.Parameter(torch.zeros(cfg.d_sae))

    def weight_names(self) -> tuple[str, ...]:
        """SAELens' gated weight names."""
        return ("W_enc", "b_gate", "b_mag", "r_mag", "W_dec", "b_dec")

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Base initialisation, then zero gate and magnitude parameters (once they exist)."""
        super().reset_parameters(generator)
        with torch.no_grad():
            for name in ("b_gate", "b_mag", "r_mag"):
                if hasattr(self, name):
                    getattr(self, name).zero_()

    def _paths(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xc = self.process_input(x)
        h = xc @ self.W_enc
        return h + self.b_gate, h * self.r_mag.exp() + self.b_mag

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Gate pre-activations."""
        return self._paths(x)[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Gate times ReLU magnitude."""
        gate, mag = self._paths(x)
        return (gate > 0).to(mag.dtype) * torch.relu(mag)

    def default_sparsity_coeff(self) -> float:
        """L1 coefficient on the gate path."""
        return 2.0

    def train_forward(self, x: torch.Tensor, sparsity_coeff: float, dead_mask: torch.Tensor | None) -> TrainOutput:
        """MSE + L1 on ReLU(gate) weighted by decoder norms + auxiliary reconstruction through the gate path."""
        gate, mag = self._paths(x)
        z = (gate > 0).to(mag.dtype) * torch.relu(mag)
        recon = self.train_decode(z)
        mse = mse_loss(x, recon)
        gate_acts = torch.relu(gate)
        l1 = (gate_acts * self.W_dec.norm(dim=1)).sum(-1).mean()
        aux_recon = self.train_matmul(gate_acts, self.W_dec.detach()) + self.b_dec.detach()
        aux = mse_loss(x, aux_recon)
        return TrainOutput(mse + sparsity_coeff * l1 + aux, mse, l1, aux, z, recon)
