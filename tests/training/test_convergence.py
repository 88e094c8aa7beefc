"""Held-out FVU during training: probing changes nothing the trainer produces, and under-trained SAEs are flagged."""

from __future__ import annotations

import json

import pytest
import torch

from pseval.saes import SAEMetadata
from pseval.training.trainer import (
    CONVERGENCE_MAX_DROP,
    TrainConfig,
    TrainingMetrics,
    convergence,
    fvu_decay_exponent,
    max_decay_exponent,
    probe_steps,
    train_saes,
    train_saes_stream,
)
from tests.training.test_trainer import synthetic


def noisy(n: int, seed: int = 0) -> torch.Tensor:
    """Sparse synthetic activations plus isotropic noise, so the FVU levels off well above zero."""
    x, _ = synthetic(n=n, seed=seed)
    return x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1))


CONFIGS = [TrainConfig("topk", expansion=2, k=3, batch_size=256, seed=1),
           TrainConfig("batchtopk", expansion=2, k=3, batch_size=256, seed=1),  # updates a threshold as it trains
           TrainConfig("jumprelu", expansion=2, batch_size=256, seed=1),
           TrainConfig("standard", expansion=2, sparsity_coeff=1.0, batch_size=128, seed=1)]


def test_probing_leaves_training_bit_identical():
    data = noisy(7000)
    x, held = data[1000:], data[:1000]
    torch.manual_seed(123)
    plain = train_saes(x, CONFIGS, SAEMetadata())
    rng_plain = torch.random.get_rng_state()
    torch.manual_seed(123)
    probed = train_saes(x, CONFIGS, SAEMetadata(), heldout=held)
    assert torch.equal(torch.random.get_rng_state(), rng_plain)  # the probe draws no random numbers
    for (a, la), (b, lb) in zip(plain, probed, strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        assert la.history == lb.history and la.steps == lb.steps
        assert la.fvu_history == [] and [h["step"] for h in lb.fvu_history] == sorted(probe_steps(lb.steps))
    stream = [x[i:i + 1000] for i in range(0, 6000, 1000)]
    (s_plain, _), = train_saes_stream(iter(stream), 6000, CONFIGS[:1], SAEMetadata(), buffer_tokens=2000)
    (s_probed, log), = train_saes_stream(iter(stream), 6000, CONFIGS[:1], SAEMetadata(), buffer_tokens=2000,
                                         heldout=held)
    assert torch.equal(s_plain.W_dec, s_probed.W_dec) and torch.equal(s_plain.b_enc, s_probed.b_enc)
    assert log.fvu_history[-1]["step"] == log.steps


def test_under_trained_sae_is_flagged_and_a_trained_one_is_not():
    data = noisy(62_000)
    held, train = data[:2000], data[2000:]  # one distribution; the held-out rows are never trained on
    # 31 steps at a constant learning rate: the held-out FVU is still falling when training stops.
    short = TrainConfig("topk", expansion=2, k=3, lr=3e-3, lr_decay_frac=0.0, batch_size=256, seed=0)
    ((_, log),) = train_saes(train[:8000], [short], SAEMetadata(), heldout=held)
    c = convergence(log.fvu_history, log.steps)
    assert c.converged is False and c.last_fifth_drop > CONVERGENCE_MAX_DROP
    # Long enough to recover the planted dictionary: the FVU has levelled off at the noise floor. The planted
    # features are of unit size, so an encoder started at unit scale gets there in these 234 steps (from the default
    # 0.1 it takes several times longer).
    long = TrainConfig("topk", expansion=2, k=3, lr=3e-3, batch_size=256, dead_window_tokens=20_000, seed=0,
                       encoder_init_scale=1.0)
    ((_, log),) = train_saes(train, [long], SAEMetadata(), heldout=held)
    c = convergence(log.fvu_history, log.steps)
    assert c.converged is True and c.fvu_final < c.fvu_first / 1.5
    assert c.fvu_final == pytest.approx(log.fvu_history[-1]["fvu"])


def test_convergence_rule():
    hist = [{"step": s, "fvu": f} for s, f in ((10, 0.9), (80, 0.30), (100, 0.25))]
    c = convergence(hist, 100)
    assert c.converged is False and c.last_fifth_drop == pytest.approx(0.05 / 0.30)
    hist[-1]["fvu"] = 0.30 * (1 - CONVERGENCE_MAX_DROP) + 1e-9  # just under the allowed drop
    assert convergence(hist, 100).converged is True
    assert convergence([], 100).converged is None  # no held-out probe
    assert convergence([{"step": 3, "fvu": 0.5}], 3).converged is None  # no last fifth to judge
    assert probe_steps(100) == {10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
    assert f"more than {CONVERGENCE_MAX_DROP:.0%}" in TrainingMetrics.model_fields["converged"].description
    assert {80, 83} <= probe_steps(83) and 83 - 83 // 5 in probe_steps(83)


def test_decay_exponent_of_a_power_law():
    # FVU = 2 * step^-0.3 exactly: the fit returns 0.3, from the probes between half and four fifths only.
    total = 1000
    hist = [{"step": s, "fvu": 2.0 * s ** -0.3} for s in range(100, 1001, 100)]
    assert fvu_decay_exponent(hist, total) == pytest.approx(0.3, abs=1e-12)
    # Probes outside the constant-lr window (a last-fifth drop, an early spike) do not move it.
    bent = [dict(h, fvu=h["fvu"] * (0.5 if h["step"] > 800 or h["step"] < 500 else 1.0)) for h in hist]
    assert fvu_decay_exponent(bent, total) == pytest.approx(0.3, abs=1e-12)
    assert fvu_decay_exponent(hist[:5], total) is None  # only one probe (step 500) in the window
    # Such a curve's last fifth falls by 1 - 0.8^a: the rule's 3% holds exactly at max_decay_exponent().
    a = max_decay_exponent()
    c = convergence([{"step": 800, "fvu": 800 ** -a}, {"step": 1000, "fvu": 1000 ** -a}], total)
    assert c.last_fifth_drop == pytest.approx(CONVERGENCE_MAX_DROP) and a == pytest.approx(0.1365, abs=1e-4)


def test_run_training_records_convergence(tmp_path):
    from pseval.training.run import METRICS_FILE, TrainJob, TrainRequest, read_trained, run_training

    cfg = TrainConfig("topk", expansion=2, k=8, batch_size=256, seed=0)
    req = TrainRequest(model="minilm", corpus="wordnet-definitions", tokens=3000, heldout_tokens=500,
                       jobs=[TrainJob("blocks.1.hook_resid_post", cfg, tmp_path / "sae")],
                       checkpoint_root=tmp_path / ".ckpt")
    (trained,) = run_training(req, log=lambda _: None, progress=False)
    info = json.loads((tmp_path / "sae" / METRICS_FILE).read_text())
    steps = 3000 // 256
    assert [h["step"] for h in info["fvu_history"]] == sorted(probe_steps(steps))
    t = trained.training
    assert t.fvu_probe_tokens == 500 and t.converged is not None
    assert t.fvu_final == info["fvu_history"][-1]["fvu"] and read_trained(tmp_path / "sae").training == t


def test_probes_record_the_training_curve():
    data = noisy(9000)
    held, train = data[:1000], data[1000:]
    tc = TrainConfig("topk", expansion=2, k=3, batch_size=200, seed=0, dead_window_tokens=1000)
    ((_, log),) = train_saes(train, [tc], SAEMetadata(), heldout=held, fvu_probes=40)
    steps = [h["step"] for h in log.fvu_history]
    assert steps == sorted(probe_steps(log.steps, 40)) and len(steps) == 40  # 40 steps: a probe after each
    # Each probe says how many tokens had been trained on and how many latents were dead then.
    assert [h["tokens"] for h in log.fvu_history] == [s * 200 for s in steps]
    assert all(0.0 <= h["dead"] <= 1.0 for h in log.fvu_history)
    assert log.fvu_history[-1]["dead"] == log.dead_fraction
    assert log.fvu_history[-1]["fvu"] < log.fvu_history[0]["fvu"]
