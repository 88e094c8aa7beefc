"""ReLU SAE with an L1 penalty weighted by decoder-row norms (SAELens `standard`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pseval.saes.base import SAE, SPARSE_DECODE_MAX_DENSITY, TrainOutput, mse_loss, row_offsets, selected_pre_acts
from pseval.saes.registry import register_sae


@register_sae("standard")
class StandardSAE(SAE):
    """z = ReLU(W_enc (x - b_dec) + b_enc)."""

    sparse_decode = True  # zero latents carry no gradient: the sparse decode is exact
    default_b_dec_init = "zeros"  # see SAE.default_b_dec_init

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """ReLU."""
        return torch.relu(pre)

    def default_sparsity_coeff(self) -> float:
        """L1 coefficient in units of MSE summed over d."""
        return 2.0

    def train_forward(self, x: torch.Tensor, sparsity_coeff: float, dead_mask: torch.Tensor | None) -> TrainOutput:
        """MSE plus L1 of latents times decoder-row norms."""
        if self.sparse_decode and x.ndim == 2 and type(self).activation is StandardSAE.activation:
            x_in = self.process_input(x)
            with torch.no_grad():  # the first rows' density decides the path (as train_matmul decides)
                head = x_in[:128] @ self.W_enc + self.b_enc
                sparse = int((head > 0).count_nonzero()) < SPARSE_DECODE_MAX_DENSITY * head.numel()
            if sparse:
                return self._sparse_train_forward(x, x_in, sparsity_coeff)
        z = self.encode(x)
        recon = self.train_decode(z)
        mse = mse_loss(x, recon)
        l1 = (z * self.W_dec.norm(dim=1)).sum(-1).mean()
        zero = mse.new_zeros(())
        return TrainOutput(mse + sparsity_coeff * l1, mse, l1, zero, z, recon)

    def _sparse_train_forward(self, x: torch.Tensor, x_in: torch.Tensor, sparsity_coeff: float) -> TrainOutput:
        """train_forward's fast path, the same loss and gradients: the encoder's matmul runs without a graph, the
        positive pre-activations (ReLU's identity there) are re-read with one (selected_pre_acts) and decoded
        sparsely, so the backward costs what the active latents cost."""
        with torch.no_grad():
            pre = x_in @ self.W_enc + self.b_enc
            rows, cols = (pre > 0).nonzero(as_tuple=True)  # row-major: each token's latents are contiguous
        vals = selected_pre_acts(x_in, self.W_enc, self.b_enc, rows, cols, pre)
        decoded = F.embedding_bag(cols, self.W_dec, row_offsets(rows, x.shape[0]), per_sample_weights=vals,
                                  mode="sum")
        recon = (decoded + self.b_dec) / self.input_scale
        mse = mse_loss(x, recon)
        l1 = (vals * self.W_dec.norm(dim=1)[cols]).sum() / x.shape[0]
        z = torch.zeros_like(pre).index_put_((rows, cols), vals.detach())  # for statistics only: no gradient path
        return TrainOutput(mse + sparsity_coeff * l1, mse, l1, mse.new_zeros(()), z, recon)


@register_sae("tanh_relu")
class TanhReLUSAE(StandardSAE):
    """Pre-6.0 SAELens' `activation_fn_str: tanh-relu` on a standard SAE: z = tanh(ReLU(W_enc (x - b_dec) + b_enc)).

    SAELens 6 no longer has this activation (it would compute a plain ReLU); pseval saves it under this name.
    """

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """tanh of the ReLU, as SAELens' get_activation_fn("tanh-relu")."""
        return torch.tanh(torch.relu(pre))
