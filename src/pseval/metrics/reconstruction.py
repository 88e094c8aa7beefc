"""Standard SAE metrics with float64 streaming accumulators, so results do not depend on batch size."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch

from pseval.saes.base import SAE
from pseval.saes.conventions import to_sae_input


@dataclass(frozen=True)
class ReconstructionMetrics:
    """Field definitions as in the SAE literature; see each name."""

    tokens: int
    mse_per_token: float  # mean over tokens of sum over d of (x - x_hat)^2
    explained_variance: float  # 1 - SSE / sum ||x - mean(x)||^2 over the whole set
    fvu: float  # 1 - explained_variance
    l0: float  # mean number of non-zero latents per token
    l1: float  # mean sum of |latents| per token
    cosine: float  # mean cos(x, x_hat)
    l2_ratio: float  # mean ||x_hat|| / ||x||
    relative_reconstruction_bias: float  # E||x_hat||^2 / E<x, x_hat>
    dead_fraction: float  # latents that never fired in `tokens`
    dense_1pct_fraction: float  # latents firing on more than 1% of tokens
    dense_10pct_fraction: float  # latents firing on more than 10% of tokens

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict."""
        return asdict(self)


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
        x, z, x_hat = x.double().cpu(), z.double().cpu(), x_hat.double().cpu()
        self.n += x.shape[0]
        self.sse += float((x - x_hat).pow(2).sum())
        self.sum_x += x.sum(0)
        self.sum_sq_x += float(x.pow(2).sum())
        active = z != 0
        self.l0 += float(active.sum())
        self.l1 += float(z.abs().sum())
        xn, hn = x.norm(dim=1), x_hat.norm(dim=1)
        self.cos += float(((x * x_hat).sum(1) / (xn * hn).clamp_min(1e-30)).sum())
        self.l2_ratio += float((hn / xn.clamp_min(1e-30)).sum())
        self.sq_hat += float(hn.pow(2).sum())
        self.dot += float((x * x_hat).sum())
        self.fires += active.sum(0)

    def result(self) -> ReconstructionMetrics:
        """Metrics over everything fed so far."""
        n = self.n
        if n == 0:
            nan = math.nan
            return ReconstructionMetrics(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
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
def reconstruction_metrics(sae: SAE, batches: Iterable[torch.Tensor] | torch.Tensor,
                           batch_size: int = 4096) -> ReconstructionMetrics:
    """Metrics of an SAE over activations given as one tensor or an iterable of batches."""
    acc = ReconstructionAccumulator(sae.d_in, sae.d_sae)
    dev = sae.W_enc.device
    if isinstance(batches, torch.Tensor):
        data = batches
        batches = (data[i:i + batch_size] for i in range(0, data.shape[0], batch_size))
    for x in batches:
        x = to_sae_input(x.to(dev), sae)
        z, x_hat = sae.encode_decode(x)
        acc.update(x, z, x_hat)
    return acc.result()
