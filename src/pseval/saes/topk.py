"""TopK SAE: keep the k largest pre-activations (ReLU'd), with the AuxK loss that revives dead latents."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pseval.saes.base import SAE, TrainOutput, mse_loss, selected_pre_acts
from pseval.saes.config import SAEConfig
from pseval.saes.registry import register_sae


def topk_activation(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Dense tensor with all but the k largest entries (per row) zeroed, then ReLU."""
    vals, idx = pre.topk(k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, idx, torch.relu(vals))


def sparse_topk_decode(vals: torch.Tensor, idx: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """sum_j vals[:, j] * W_dec[idx[:, j]]: the TopK decode without the dense [batch, d_sae] matmul."""
    flat_idx = idx.reshape(-1, idx.shape[-1])
    flat_vals = vals.reshape(-1, vals.shape[-1]).to(W_dec.dtype)
    out = F.embedding_bag(flat_idx, W_dec, per_sample_weights=flat_vals, mode="sum")
    return out.reshape(*vals.shape[:-1], W_dec.shape[1])


def aux_k_count(x: torch.Tensor, dead_mask: torch.Tensor) -> int:
    """Latents per token in the AuxK reconstruction: the dead ones, at most half of d_in (Gao et al. 2024)."""
    return min(int(dead_mask.sum()), max(1, x.shape[-1] // 2))


def aux_k_loss(pre: torch.Tensor, x: torch.Tensor, recon: torch.Tensor, W_dec: torch.Tensor,
               dead_mask: torch.Tensor | None) -> torch.Tensor:
    """Error of reconstructing the residual x - recon from the top dead latents (0 when none are dead)."""
    if dead_mask is None or not bool(dead_mask.any()):
        return recon.new_zeros(())
    k_aux = aux_k_count(x, dead_mask)
    z_aux = topk_activation(pre.masked_fill(~dead_mask, float("-inf")), k_aux).nan_to_num(0.0)
    residual = (x.to(recon.dtype) - recon).detach()
    return mse_loss(residual, z_aux @ W_dec)  # same units as the MSE term


@register_sae("topk")
class TopKSAE(SAE):
    """z = TopK_k(ReLU(W_enc (x - b_dec) + b_enc)).

    With SAELens 6's `rescale_acts_by_decoder_norm: true` (in cfg.extra), pre-activations are multiplied by the
    decoder-row norms before the top-k and latents divided by them before decoding, as SAELens' TopKSAE does.
    """

    aux_k_coeff: float = 1.0 / 32.0

    def __init__(self, cfg: SAEConfig) -> None:
        if cfg.k is None:
            cfg.k = max(1, min(32, cfg.d_sae))
        super().__init__(cfg)
        self.rescale_by_decoder_norm = cfg.extra.get("rescale_acts_by_decoder_norm") is True

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations (times the decoder-row norms under rescale_acts_by_decoder_norm)."""
        pre = super().pre_acts(x)
        return pre * self.W_dec.norm(dim=-1) if self.rescale_by_decoder_norm else pre

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the input's units (latents divided by the decoder-row norms under the rescale)."""
        return super().decode(z / self.W_dec.norm(dim=-1) if self.rescale_by_decoder_norm else z)

    @property
    def k(self) -> int:
        """Active latents per token."""
        assert self.cfg.k is not None
        return self.cfg.k

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """TopK then ReLU."""
        return topk_activation(pre, self.k)

    # The sparse path (sparse decodes, encoder backward through the chosen latents only) is the fast one; the dense
    # one is its pure-torch reference (tests check they agree).
    sparse_decode: bool = True
    uses_k = True

    def train_forward(self, x: torch.Tensor, sparsity_coeff: float, dead_mask: torch.Tensor | None) -> TrainOutput:
        """MSE plus AuxK: the residual reconstructed from the top dead latents (Gao et al. 2024)."""
        if self.rescale_by_decoder_norm:
            raise NotImplementedError("pseval does not train TopK SAEs with rescale_acts_by_decoder_norm")
        if self.sparse_decode and x.ndim == 2:
            return self._sparse_train_forward(x, dead_mask)
        pre = self.pre_acts(x)
        z = topk_activation(pre, self.k)
        recon = self.decode(z)
        mse = mse_loss(x, recon)
        aux = aux_k_loss(pre, x, recon, self.W_dec, dead_mask)
        zero = mse.new_zeros(())
        return TrainOutput(mse + self.aux_k_coeff * aux, mse, zero, aux, z, recon)

    def _sparse_train_forward(self, x: torch.Tensor, dead_mask: torch.Tensor | None) -> TrainOutput:
        """train_forward's fast path, the same loss and gradients: the encoder's matmul runs without a graph, the
        k (and AuxK) chosen pre-activations are re-read with one (selected_pre_acts), and both decodes are sparse."""
        x_in = self.process_input(x)
        with torch.no_grad():
            pre = x_in @ self.W_enc + self.b_enc
            idx = pre.topk(self.k, dim=-1, sorted=False).indices
            n_aux = 0
            if dead_mask is not None and bool(dead_mask.any()):
                n_aux = aux_k_count(x, dead_mask)
                aux_idx = pre.masked_fill(~dead_mask, float("-inf")).topk(n_aux, dim=-1, sorted=False).indices
                idx = torch.cat([idx, aux_idx], dim=-1)
        rows = torch.arange(idx.shape[0], device=idx.device).repeat_interleave(idx.shape[1])
        vals = torch.relu(selected_pre_acts(x_in, self.W_enc, self.b_enc, rows, idx.reshape(-1), pre)).view_as(idx)
        top_vals, top_idx = vals[:, :self.k], idx[:, :self.k]
        recon = (sparse_topk_decode(top_vals, top_idx, self.W_dec) + self.b_dec) / self.input_scale
        mse = mse_loss(x, recon)
        if n_aux:
            residual = (x.to(recon.dtype) - recon).detach()
            aux = mse_loss(residual, sparse_topk_decode(vals[:, self.k:], idx[:, self.k:], self.W_dec))
        else:
            aux = mse.new_zeros(())
        z = torch.zeros_like(pre).scatter_(-1, top_idx, top_vals.detach())  # for statistics only: no gradient path
        return TrainOutput(mse + self.aux_k_coeff * aux, mse, mse.new_zeros(()), aux, z, recon)
