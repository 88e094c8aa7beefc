"""Every registered architecture's encode against its formula, written out here in numpy from the papers' and
libraries' definitions (not by calling pseval), on random weights with thresholds and biases that bite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pseval.saes import SAEConfig, architectures, get_sae_class

D_IN, D_SAE, K = 6, 10, 3
RNG = np.random.default_rng(0)
X = RNG.normal(size=(7, D_IN))
W_ENC = RNG.normal(size=(D_IN, D_SAE))
B_ENC = RNG.normal(size=D_SAE) * 0.5
B_DEC = RNG.normal(size=D_IN) * 0.5
THRESHOLD = np.abs(RNG.normal(size=D_SAE))
B_GATE, B_MAG, R_MAG = (RNG.normal(size=D_SAE) * 0.5 for _ in range(3))


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0)


def pre() -> np.ndarray:
    return (X - B_DEC) @ W_ENC + B_ENC  # apply_b_dec_to_input: b_dec subtracted before encoding


def topk(a: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(a)
    idx = np.argsort(-a, axis=1)[:, :k]
    np.put_along_axis(out, idx, relu(np.take_along_axis(a, idx, axis=1)), axis=1)
    return out


EXPECTED = {
    "standard": lambda: relu(pre()),
    "tanh_relu": lambda: np.tanh(relu(pre())),
    "topk": lambda: topk(pre(), K),
    # JumpReLU (Rajamanoharan et al. 2024; SAELens, Gemma Scope): z = ReLU(pre) * 1[pre > theta].
    "jumprelu": lambda: relu(pre()) * (pre() > THRESHOLD),
    # BatchTopK at inference: the JumpReLU rule with its learned threshold (saved as jumprelu).
    "batchtopk": lambda: relu(pre()) * (pre() > THRESHOLD),
    # Gated (Rajamanoharan et al. 2024): 1[(x - b_dec) W + b_gate > 0] * ReLU((x - b_dec) (W * exp(r_mag)) + b_mag).
    "gated": lambda: ((((X - B_DEC) @ W_ENC + B_GATE) > 0)
                      * relu((X - B_DEC) @ (W_ENC * np.exp(R_MAG)) + B_MAG)),
    "identity": lambda: X,
}


def build(arch: str) -> torch.nn.Module:
    cls = get_sae_class(arch)
    sae = cls(SAEConfig(arch, D_IN, D_IN if arch == "identity" else D_SAE, k=K if cls.uses_k else None,
                        apply_b_dec_to_input=arch != "identity"))
    if arch == "identity":
        return sae.eval()
    t = {"W_enc": W_ENC, "b_enc": B_ENC, "W_dec": W_ENC.T.copy(), "b_dec": B_DEC, "threshold": THRESHOLD,
         "b_gate": B_GATE, "b_mag": B_MAG, "r_mag": R_MAG}
    for name in sae.weight_names():
        sae.set_weight(name, torch.tensor(t[name], dtype=torch.float32))
    return sae.eval()


def test_every_registered_architecture_is_covered():
    assert set(architectures()) == set(EXPECTED)


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_encode_matches_the_formula(arch):
    z = build(arch).encode(torch.tensor(X, dtype=torch.float32)).detach().double().numpy()
    want = EXPECTED[arch]()
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-5)
    if arch not in ("identity", "standard", "tanh_relu"):
        assert (want == 0).any() and (want > 0).any()  # the case really exercises the sparsity rule
