"""Random controls: seeded, of the SAE's architecture and shape, their mean L0 matched to the SAE's own."""

from __future__ import annotations

import pytest
import torch

from pseval.ps_eval import PSEvalSettings, score_sae
from pseval.ps_eval.controls import mean_l0, score_controls
from pseval.ps_eval.random_control import RotationSAE, control_plan, control_seed, random_control
from pseval.ps_eval.scoring import PairActivations
from pseval.saes import SAEConfig, identity_sae
from pseval.saes.objects import adapt_sae
from pseval.saes.registry import get_sae_class

D_IN, D_SAE = 48, 192


def _pairs(n: int = 150, seed: int = 0) -> PairActivations:
    gen = torch.Generator().manual_seed(seed)
    # Uncentred activations (a shared offset), as a residual stream has: the calibration must cope with it.
    offset = torch.randn(D_IN, generator=gen)
    a1, a2 = (torch.randn(n, D_IN, generator=gen) + offset for _ in range(2))
    return PairActivations("h", a1, a2, torch.arange(n) % 2 == 0, list(range(n)), {})


def _trained_like(arch: str, seed: int = 1) -> torch.nn.Module:
    """An SAE of `arch` with non-trivial biases/thresholds, so its own L0 is nothing a control gets by default."""
    cfg = SAEConfig(arch, D_IN, D_SAE, k=12 if arch in ("topk", "batchtopk") else None,
                    apply_b_dec_to_input=True)
    sae = get_sae_class(arch)(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.b_dec.copy_(0.3 * torch.randn(D_IN, generator=gen))
        for name, shift in (("b_enc", -0.4), ("b_gate", -0.8), ("threshold", 0.9)):
            if hasattr(sae, name):
                getattr(sae, name).copy_(shift + 0.2 * torch.randn(D_SAE, generator=gen))
    return sae


@pytest.mark.parametrize("arch", ["standard", "tanh_relu", "jumprelu", "gated", "batchtopk", "topk"])
def test_control_l0_matches_the_sae_within_2_percent(arch):
    pa = _pairs()
    sae = _trained_like(arch)
    cfg = PSEvalSettings(bootstrap_resamples=50, controls=3)
    res = score_sae(pa, sae, cfg)
    ctl = score_controls(pa, sae, res, cfg, "fp")
    assert ctl is not None and ctl.plan.architecture == arch and len(ctl.controls) == 3
    assert 0 < ctl.sae_l0 < D_SAE / 2  # a sparse SAE: matching it is not trivial
    for c in ctl.controls:
        assert c.l0 == pytest.approx(ctl.sae_l0, rel=0.02)
        assert (c.cut is None) == (arch == "topk")


def test_identity_control_is_a_seeded_haar_rotation():
    pa = _pairs()
    sae = identity_sae(D_IN)
    plan = control_plan(sae, float(D_IN))
    a, b = random_control(sae, plan, control_seed("id", "h", 0)), random_control(sae, plan, control_seed("id", "h", 1))
    assert isinstance(a, RotationSAE) and a.d_sae == D_IN
    eye = torch.eye(D_IN)
    assert torch.allclose(a.W_enc.T @ a.W_enc, eye, atol=1e-5)  # orthogonal
    assert not torch.allclose(a.W_enc, b.W_enc)  # each seed its own rotation
    x = pa.acts_1[:5]
    # A rotation keeps norms and cosines: codes are the activations in another orthonormal basis.
    assert torch.allclose(a.encode(x).norm(dim=1), x.norm(dim=1), rtol=1e-5)
    res = score_sae(pa, sae, PSEvalSettings(bootstrap_resamples=20))
    ctl = score_controls(pa, sae, res, PSEvalSettings(bootstrap_resamples=20, controls=2), "identity:48")
    assert ctl is not None and ctl.plan.kind == "random_rotation"
    assert [c.l0 for c in ctl.controls] == [float(D_IN)] * 2


def test_seeds_come_from_fingerprint_hook_and_index_only():
    s = [control_seed("fp", "h", i) for i in range(5)]
    assert len(set(s)) == 5 and s[:3] == [control_seed("fp", "h", i) for i in range(3)]
    assert control_seed("fp2", "h", 0) != s[0] and control_seed("fp", "h2", 0) != s[0]
    sae = _trained_like("topk")
    plan = control_plan(sae, 12.0)
    w0, w0b = (random_control(sae, plan, s[0]).W_enc for _ in range(2))
    assert torch.equal(w0, w0b)  # the same seed draws the same dictionary
    # Unit-norm random decoder rows, encoder their transpose; the SAE's b_dec kept (it centres the input).
    c = random_control(sae, plan, s[0])
    assert torch.allclose(c.W_dec.norm(dim=1), torch.ones(D_SAE), atol=1e-5)
    assert torch.equal(c.W_enc, c.W_dec.T) and torch.equal(c.b_dec, sae.b_dec)


class _EncodeOnly(torch.nn.Module):
    """A module known only by encode: a ReLU dictionary with no architecture pseval can read."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.w = torch.nn.Parameter(torch.randn(D_IN, D_SAE, generator=gen), requires_grad=False)
        self.d_in, self.d_sae = D_IN, D_SAE

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.w - 6.0)


def test_an_encode_only_module_gets_a_topk_control_at_its_measured_l0():
    pa = _pairs()
    sae = adapt_sae(_EncodeOnly(), hook="h").sae
    cfg = PSEvalSettings(bootstrap_resamples=20, controls=2)
    res = score_sae(pa, sae, cfg)
    ctl = score_controls(pa, sae, res, cfg, "obj")
    assert ctl is not None and ctl.plan.assumed and ctl.plan.architecture == "topk"
    assert ctl.plan.k == round(mean_l0(res)) and ctl.plan.k > 0
    for c in ctl.controls:
        assert c.l0 == pytest.approx(ctl.sae_l0, rel=0.02, abs=0.5)  # k is the rounded L0
