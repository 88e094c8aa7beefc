"""BatchTopK SAE: top k x batch activations across the batch; exported as JumpReLU with one learned threshold."""

from __future__ import annotations

import torch

from pseval.saes.base import SAE, TrainOutput, mse_loss
from pseval.saes.config import SAEConfig
from pseval.saes.registry import register_sae
from pseval.saes.topk import aux_k_loss

THRESHOLD_EMA = 0.99


@register_sae("batchtopk")
class BatchTopKSAE(SAE):
    """Training: keep the batch's k*B largest ReLU pre-activations. Inference: z = pre * 1[pre > threshold]."""

    extra_weights = ("threshold",)
    export_architecture = "jumprelu"
    uses_k = True
    aux_k_coeff: float = 1.0 / 32.0
    sparse_decode = True  # unselected latents carry no gradient: the sparse decode is exact
    # Buffers (register_buffer), declared so that type checkers see Tensors.
    threshold: torch.Tensor
    threshold_initialised: torch.Tensor

    def __init__(self, cfg: SAEConfig) -> None:
        if cfg.k is None:
            cfg.k = max(1, min(32, cfg.d_sae))
        super().__init__(cfg)
        self.register_buffer("threshold", torch.zeros(cfg.d_sae))
        self.register_buffer("threshold_initialised", torch.zeros((), dtype=torch.bool))

    @property
    def k(self) -> int:
        """Mean active latents per token during training."""
        assert self.cfg.k is not None
        return self.cfg.k

    def materialise_state(self, device: torch.device | str) -> None:
        """Base state, and the threshold counted as learned (it was loaded)."""
        super().materialise_state(device)
        self.register_buffer("threshold_initialised", torch.ones((), dtype=torch.bool, device=device))

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """Inference rule: JumpReLU (as the exported jumprelu computes it) with the learned global threshold."""
        return torch.relu(pre) * (pre > self.threshold).to(pre.dtype)

    def batch_topk(self, pre: torch.Tensor) -> torch.Tensor:
        """Keep the k * batch largest positive entries of the whole batch."""
        acts = torch.relu(pre)
        flat = acts.flatten()
        n = min(flat.numel(), self.k * pre.shape[0])
        vals, idx = flat.topk(n, sorted=False)
        return torch.zeros_like(flat).scatter_(0, idx, vals).view_as(pre)

    def train_forward(self, x: torch.Tensor, sparsity_coeff: float, dead_mask: torch.Tensor | None) -> TrainOutput:
        """MSE plus AuxK; updates the running threshold (mean smallest kept activation)."""
        pre = self.pre_acts(x)
        z = self.batch_topk(pre)
        recon = self.train_decode(z)
        mse = mse_loss(x, recon)
        with torch.no_grad():
            kept = z[z > 0]
            if kept.numel():
                smallest = kept.min()
                if not bool(self.threshold_initialised):
                    self.threshold.fill_(float(smallest))
                    self.threshold_initialised.fill_(True)
                else:
                    self.threshold.mul_(THRESHOLD_EMA).add_((1 - THRESHOLD_EMA) * smallest)
        aux = aux_k_loss(pre, x, recon, self.W_dec, dead_mask)
        return TrainOutput(mse + self.aux_k_coeff * aux, mse, mse.new_zeros(()), aux, z, recon)

    @torch.no_grad()
    def finish_training(self, sample: torch.Tensor, batch_size: int) -> None:
        """Set the threshold from the trained weights: the mean, over `sample`'s batches, of the smallest activation
        batch_topk keeps. The running mean of training starts from the first steps' much smaller codes; in a run of
        a few hundred steps it has not forgotten them (B9: eval L0 121 for a k of 32, held-out FVU 0.95)."""
        smallest = []
        for i in range(0, sample.shape[0] - batch_size + 1, batch_size):
            z = self.batch_topk(self.pre_acts(sample[i:i + batch_size]))
            kept = z[z > 0]
            if kept.numel():
                smallest.append(kept.min())
        if smallest:
            self.threshold.fill_(float(torch.stack(smallest).mean()))
            self.threshold_initialised.fill_(True)
