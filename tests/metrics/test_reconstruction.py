"""Closed-form checks of the standard metrics and their independence from batch size."""

from __future__ import annotations

import math

import pytest
import torch

from pseval.metrics.reconstruction import ReconstructionAccumulator, reconstruction_metrics
from pseval.saes import identity_sae
from pseval.saes.config import SAEConfig
from pseval.saes.standard import StandardSAE


class _MeanSAE(StandardSAE):
    """Predicts the dataset mean regardless of input, with no active latents."""

    def encode(self, x):  # noqa: D102
        return torch.zeros(x.shape[0], self.d_sae)

    def decode(self, z):  # noqa: D102
        return self.b_dec.expand(z.shape[0], -1)


def test_perfect_reconstruction():
    x = torch.randn(500, 16) * 3 + 1
    m = reconstruction_metrics(identity_sae(16), x)
    assert m.explained_variance == pytest.approx(1.0, abs=1e-12)
    assert m.fvu == pytest.approx(0.0, abs=1e-12)
    assert m.mse_per_token == 0.0
    assert m.cosine == pytest.approx(1.0) and m.l2_ratio == pytest.approx(1.0)
    assert m.relative_reconstruction_bias == pytest.approx(1.0)
    assert m.l0 == 16.0  # randn is never exactly zero
    assert m.dead_fraction == 0.0


def test_mean_prediction_has_zero_explained_variance():
    x = torch.randn(1000, 8, dtype=torch.float64).float() * 2 + 5
    sae = _MeanSAE(SAEConfig("standard", 8, 4))
    with torch.no_grad():
        sae.b_dec.copy_(x.double().mean(0).float())
    m = reconstruction_metrics(sae, x)
    assert m.explained_variance == pytest.approx(0.0, abs=1e-6)
    assert m.fvu == pytest.approx(1.0, abs=1e-6)
    assert m.l0 == 0.0 and m.dead_fraction == 1.0
    # mse_per_token = total variance per token (sum over d)
    assert m.mse_per_token == pytest.approx(float((x.double() - x.double().mean(0)).pow(2).sum(1).mean()), rel=1e-6)


def test_hand_computed_values():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    x_hat = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    z = torch.tensor([[1.0, 0.0, 0.0], [2.0, -1.0, 0.0]])
    acc = ReconstructionAccumulator(2, 3)
    acc.update(x, z, x_hat)
    m = acc.result()
    assert m.mse_per_token == 1.0  # (1 + 1) / 2
    total_var = 0.5 + 2.0  # about the mean (0.5, 1.0): (0.25+0.25) + (1+1)
    assert m.explained_variance == pytest.approx(1 - 2.0 / total_var)
    assert m.l0 == 1.5 and m.l1 == 2.0
    assert m.cosine == pytest.approx((1 / math.sqrt(2) + 1.0) / 2)
    assert m.l2_ratio == pytest.approx((math.sqrt(2) / 1 + 1 / 2) / 2)
    assert m.relative_reconstruction_bias == pytest.approx((2 + 1) / (1 + 2))
    assert m.dead_fraction == pytest.approx(1 / 3)
    assert m.dense_10pct_fraction == pytest.approx(2 / 3)


def test_batch_size_does_not_change_metrics():
    torch.manual_seed(0)
    sae = StandardSAE(SAEConfig("standard", 32, 128))
    x = torch.randn(2000, 32) * 4 + 1
    a = reconstruction_metrics(sae, x, batch_size=7).to_dict()
    b = reconstruction_metrics(sae, x, batch_size=512).to_dict()
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-9, rel=1e-9), k
