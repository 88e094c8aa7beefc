"""The sparse training decode (fast path) against the dense matmul (pure-torch reference): outputs and gradients."""

from __future__ import annotations

import pytest
import torch

import pseval.saes.base as base
from pseval.saes import SAEConfig, get_sae_class


def test_sparse_matmul_matches_dense_including_empty_rows():
    torch.manual_seed(0)
    z = torch.relu(torch.randn(9, 50) - 1.5)
    z[3] = 0.0  # a token with no active latent
    w = torch.randn(50, 7)
    zs, ws = z.clone().requires_grad_(True), w.clone().requires_grad_(True)
    zd, wd = z.clone().requires_grad_(True), w.clone().requires_grad_(True)
    g = torch.randn(9, 7)
    out_s, out_d = base.sparse_matmul(zs, ws), zd @ wd
    torch.testing.assert_close(out_s, out_d, atol=1e-6, rtol=1e-5)
    assert torch.equal(out_s[3], torch.zeros(7))
    (out_s * g).sum().backward()
    (out_d * g).sum().backward()
    torch.testing.assert_close(ws.grad, wd.grad, atol=1e-5, rtol=1e-5)
    nz = z != 0  # the sparse path gives z a gradient only where it is non-zero; there it equals the dense one
    torch.testing.assert_close(zs.grad[nz], zd.grad[nz], atol=1e-5, rtol=1e-5)
    assert torch.equal(zs.grad[~nz], torch.zeros(int((~nz).sum())))


def _sparse_sae(arch: str) -> base.SAE:
    """An SAE whose latents are a few percent dense, so training takes the sparse path."""
    sae = get_sae_class(arch)(SAEConfig(arch, 12, 200, k=4 if arch in ("topk", "batchtopk") else None))
    torch.manual_seed(1)
    with torch.no_grad():
        for name in sae.weight_names():
            t = sae.get_weight(name)
            t.copy_(torch.randn_like(t) * 0.3)
        for name in ("b_enc", "b_gate", "b_mag"):
            if name in sae.weight_names():
                sae.get_weight(name).sub_(2.0)
    return sae


@pytest.mark.parametrize("arch", ["standard", "gated", "batchtopk", "topk"])
def test_training_step_matches_dense_reference(arch, monkeypatch):
    calls = []
    real = base.sparse_matmul
    monkeypatch.setattr(base, "sparse_matmul", lambda z, w: calls.append("decode") or real(z, w))
    selected = base._SelectedPreActs.apply  # TopK's and ReLU's sparse encoder backward
    monkeypatch.setattr(base._SelectedPreActs, "apply", lambda *a: calls.append("encoder") or selected(*a))
    torch.manual_seed(0)
    x = torch.randn(64, 12)
    dead = torch.rand(200) < 0.3
    runs = {}
    for sparse in (True, False):
        sae = _sparse_sae(arch)
        sae.sparse_decode = sparse
        out = sae.train_forward(x, 0.5, dead)
        out.loss.backward()
        runs[sparse] = (out, {n: p.grad.clone() for n, p in sae.named_parameters() if p.grad is not None})
    (a, ga), (b, gb) = runs[True], runs[False]
    assert calls, "the sparse path was not taken"
    assert ("encoder" in calls) == (arch in ("topk", "standard")), calls  # their encoder backward is sparse too
    assert float((a.latents != 0).float().mean()) < base.SPARSE_DECODE_MAX_DENSITY
    torch.testing.assert_close(a.recon, b.recon, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.latents.detach(), b.latents.detach())
    assert ga.keys() == gb.keys() and "W_dec" in ga
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], atol=1e-5, rtol=1e-4, msg=name)


def test_jumprelu_stays_dense():
    # Its threshold's straight-through gradient reaches latents that are zero: a sparse decode would drop it.
    assert not get_sae_class("jumprelu").sparse_decode
