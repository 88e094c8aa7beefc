"""Standard SAE metrics with float64 streaming accumulators, so results do not depend on batch size."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from pydantic import BaseModel, ConfigDict, Field

from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, aligned, chunk_rows, row_chunks
from pseval.saes.base import SAE, module_device
from pseval.saes.conventions import to_sae_input


class ReconstructionMetrics(BaseModel):
    """Field definitions as in the SAE literature (reference-facts), each named for what it computes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: int = Field(title="Tokens", description="activations measured (special tokens excluded)")
    mse_per_token: float | None = Field(title="MSE per token", description="mean over tokens of the sum over d of "
                                        "(x - x_hat)^2")
    explained_variance: float | None = Field(title="Explained variance", description="1 - SSE / sum ||x - mean(x)||^2"
                                             " over the whole set (mean over all tokens, per dimension)")
    fvu: float | None = Field(title="FVU", description="fraction of variance unexplained: 1 - explained_variance")
    l0: float | None = Field(title="L0", description="mean number of non-zero latents per token")
    l1: float | None = Field(title="L1", description="mean sum of |latents| per token")
    cosine: float | None = Field(title="Cosine", description="mean cos(x, x_hat)")
    l2_ratio: float | None = Field(title="L2 ratio", description="mean ||x_hat|| / ||x||")
    relative_reconstruction_bias: float | None = Field(title="Relative reconstruction bias",
                                                       description="E||x_hat||^2 / E<x, x_hat>")
    dead_fraction: float | None = Field(title="Dead fraction", description="latents that never fired in `tokens`")
    dense_1pct_fraction: float | None = Field(title="Dense (>1%) fraction", description="latents firing on more "
                                              "than 1% of tokens")
    dense_10pct_fraction: float | None = Field(title="Dense (>10%) fraction", description="latents firing on more "
                                               "than 10% of tokens")

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain dict."""
        return self.model_dump()


class ReconstructionAccumulator:
    """Feed (x, z, x_hat) batches; read exact metrics at the end."""

    def __init__(self, d_in: int, d_sae: int) -> None:
        self.n = 0
        self.sse = 0.0
        self.sum_x = torch.zeros(d_in, dtype=torch.float64)
        self.sum_sq_x = 0.0
        self.l0 = 0.0
        self.l1 = 0.0
        self.cos = 0.0
        self.l2_ratio = 0.0
        self.sq_hat = 0.0
        self.dot = 0.0
        self.fires = torch.zeros(d_sae, dtype=torch.int64)

    @torch.no_grad()
    def update(self, x: torch.Tensor, z: torch.Tensor, x_hat: torch.Tensor) -> None:
        """Add one batch of inputs, latents and reconstructions."""
        # [rows, d] tensors in float64; the [rows, d_sae] latents stay where and as they are (float64 sums only).
        x, x_hat = x.double().cpu(), x_hat.double().cpu()
        self.n += x.shape[0]
        self.sse += float((x - x_hat).pow(2).sum())
        self.sum_x += x.sum(0)
        self.sum_sq_x += float(x.pow(2).sum())
        active = z != 0
        self.l0 += float(active.sum())
        self.l1 += float(z.abs().sum(dtype=torch.float64))
        xn, hn = x.norm(dim=1), x_hat.norm(dim=1)
        self.cos += float(((x * x_hat).sum(1) / (xn * hn).clamp_min(1e-30)).sum())
        self.l2_ratio += float((hn / xn.clamp_min(1e-30)).sum())
        self.sq_hat += float(hn.pow(2).sum())
        self.dot += float((x * x_hat).sum())
        self.fires += active.sum(0).cpu()

    def result(self) -> ReconstructionMetrics:
        """Metrics over everything fed so far."""
        n = self.n
        if n == 0:
            nan = math.nan
            return ReconstructionMetrics(tokens=0, mse_per_token=nan, explained_variance=nan, fvu=nan, l0=nan, l1=nan,
                                         cosine=nan, l2_ratio=nan, relative_reconstruction_bias=nan,
                                         dead_fraction=nan, dense_1pct_fraction=nan, dense_10pct_fraction=nan)
        total_var = self.sum_sq_x - float(self.sum_x.pow(2).sum()) / n
        ev = 1.0 - self.sse / total_var if total_var > 0 else math.nan
        density = self.fires.double() / n
        return ReconstructionMetrics(
            tokens=n, mse_per_token=self.sse / n, explained_variance=ev, fvu=1.0 - ev, l0=self.l0 / n, l1=self.l1 / n,
            cosine=self.cos / n, l2_ratio=self.l2_ratio / n,
            relative_reconstruction_bias=self.sq_hat / self.dot if self.dot else math.nan,
            dead_fraction=float((self.fires == 0).double().mean()),
            dense_1pct_fraction=float((density > 0.01).double().mean()),
            dense_10pct_fraction=float((density > 0.10).double().mean()))


@torch.no_grad()
def reconstruction_metrics(sae: SAE, batches: Iterable[torch.Tensor] | torch.Tensor, batch_size: int = 4096,
                           budget: int = DEFAULT_MEMORY_BUDGET) -> ReconstructionMetrics:
    """Metrics of an SAE over activations given as one tensor or an iterable of batches; every batch is encoded in
    chunks of at most `batch_size` rows and `budget` bytes of [rows, d_sae] work."""
    acc = ReconstructionAccumulator(sae.d_in, sae.d_sae)
    dev = module_device(sae)
    rows = chunk_rows(sae.d_sae, budget, cap=batch_size)
    if isinstance(batches, torch.Tensor):
        batches = (batches,)
    for batch in batches:
        for s in row_chunks(batch.shape[0], rows):
            x = to_sae_input(batch[s].to(dev), sae)
            z, x_hat = aligned(sae.encode_decode, x)
            acc.update(x, z, x_hat)
            del z, x_hat
    return acc.result()


@torch.no_grad()
def fvu(sae: SAE, x: torch.Tensor) -> float:
    """FVU of an SAE on one tensor of activations (ReconstructionMetrics.fvu, float64), without the latent
    statistics: cheap enough to probe a held-out sample during training."""
    x = to_sae_input(x.to(sae.W_enc.device), sae)
    _, x_hat = sae.encode_decode(x)
    return fvu_of(x, x_hat)


def fvu_of(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Summed squared error over the summed variance about the mean token, in float64: `fvu`'s formula, also for
    reconstructions made by other libraries' SAEs (benchmarks/b9_trainers.py)."""
    x64, h64 = x.double(), x_hat.double()
    total_var = float((x64 - x64.mean(0)).pow(2).sum())
    return float((x64 - h64).pow(2).sum()) / total_var if total_var > 0 else math.nan
