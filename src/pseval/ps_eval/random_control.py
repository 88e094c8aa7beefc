"""Random controls: a seeded random-weight SAE of an SAE's architecture and shape, its sparsity matched to the SAE's.

How a control is drawn (the record's `controls` category and unstructured `controls` list say which):

* Seed: `control_seed(fingerprint, hook, index)`: the first 8 bytes of SHA-256 of
  "pseval-control|<SAE fingerprint>|<hook>|<index>" (big-endian, top bit cleared). It does not depend on the number
  of controls, so the first 3 of 5 controls are the 3 of `--controls 3`.
* Weights: a CPU `torch.Generator` seeded with it draws W_dec [d_sae, d_in] with i.i.d. N(0, 1) entries, each row
  then scaled to unit norm (so every latent's direction is uniform on the sphere); W_enc = W_dec^T; every other
  bias 0. The SAE's input processing is kept: its cfg (normalisation, apply_b_dec_to_input, head, convention), its
  b_dec and its input_scale, so the control reads the same vectors the SAE reads and only the dictionary is random.
* Sparsity: TopK keeps the SAE's k (no calibration). ReLU (standard, tanh_relu), JumpReLU, Gated and BatchTopK get
  one scalar c, chosen on the scored contexts so that the control's mean L0 there equals the SAE's own: with the
  control's bias-free pre-activations P (contexts x latents) and T = round(L0_SAE x contexts), c is the midpoint of
  the T-th and (T+1)-th largest entries of P, so exactly T entries exceed it (ties aside). standard/tanh_relu:
  b_enc = -c; gated: b_gate = b_mag = -c, r_mag = 0; jumprelu/batchtopk: threshold = c when c >= 0 (b_enc = 0),
  else b_enc = -c and threshold 0. This is the bisection on a scalar shift solved exactly by a selection.
* Identity (the model's own basis): a Haar-random rotation Q [d, d] (QR of an N(0, 1) matrix, columns' signs fixed
  by R's diagonal): codes x Q, dense like the identity's. It asks whether the neuron basis beats a random one.
* An object known only by `encode` (foreign, in memory): the architecture its config states when pseval knows it,
  else TopK with k = its measured mean L0 rounded (`assumed`); shapes d_in and d_sae from its config.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch

from pseval.metrics.encoding import aligned, chunk_rows, row_chunks
from pseval.saes.base import SAE, module_device
from pseval.saes.config import SAEConfig
from pseval.saes.identity import is_identity_architecture
from pseval.saes.registry import get_sae_class

# The record's one-line statement of the rule (the module doc is the full one).
CONTROL_METHOD = ("pseval.ps_eval.random_control: seed = SHA-256('pseval-control|<fingerprint>|<hook>|<index>')[:8]; "
                  "W_dec rows "
                  "i.i.d. N(0,1) normalised to unit norm, W_enc = W_dec^T, other biases 0; the SAE's input processing"
                  " (cfg, b_dec, input_scale) kept; TopK keeps k; ReLU/JumpReLU/Gated/BatchTopK: one scalar "
                  "bias/threshold set so exactly round(L0_SAE x contexts) pre-activations fire on the scored "
                  "contexts; identity: a Haar-random rotation; unknown architecture: TopK, k = round(L0)")
# Architectures whose sparsity one scalar bias/threshold sets; TopK sets it by k.
CALIBRATED = ("standard", "tanh_relu", "jumprelu", "gated", "batchtopk")
CONTROLLED = (*CALIBRATED, "topk", "identity")


def control_seed(fingerprint: str, hook: str, index: int) -> int:
    """The seed of control `index` of an SAE at a hook (see the module doc)."""
    digest = hashlib.sha256(f"pseval-control|{fingerprint}|{hook}|{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


class RotationSAE(SAE):
    """The identity's control: codes = x Q for a fixed orthogonal Q (W_enc = Q, W_dec = Q^T); no nonlinearity."""

    architecture = "random_rotation"  # not registered: it only exists as a control, never saved

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """No nonlinearity, as the identity."""
        return pre


@dataclass
class ControlPlan:
    """What a control of an SAE is: its architecture, k, and the mean L0 it is calibrated to."""

    kind: str  # random_weights or random_rotation
    architecture: str
    k: int | None
    target_l0: float
    assumed: bool  # the architecture was not known (an object with only encode): TopK assumed


def control_plan(sae: SAE, measured_l0: float) -> ControlPlan:
    """The control of `sae` whose mean L0 on the scored contexts was `measured_l0`."""
    arch = sae.architecture
    if is_identity_architecture(arch):
        return ControlPlan("random_rotation", "random_rotation", None, measured_l0, False)
    if arch == "topk":
        return ControlPlan("random_weights", "topk", int(sae.cfg.k or round(measured_l0)), measured_l0, False)
    if arch in CALIBRATED:
        return ControlPlan("random_weights", arch, sae.cfg.k, measured_l0, False)
    return ControlPlan("random_weights", "topk", max(1, round(measured_l0)), measured_l0, True)


def _base_cfg(sae: SAE, plan: ControlPlan) -> SAEConfig:
    cfg = dataclasses.replace(sae.cfg, architecture=plan.architecture, k=plan.k,
                              extra={k: v for k, v in sae.cfg.extra.items() if k != "rescale_acts_by_decoder_norm"})
    if plan.architecture == "random_rotation":
        cfg = dataclasses.replace(cfg, d_sae=cfg.d_in)
    return cfg


@torch.no_grad()
def random_control(sae: SAE, plan: ControlPlan, seed: int) -> SAE:
    """The uncalibrated control: random dictionary, the SAE's input processing (see the module doc)."""
    cfg = _base_cfg(sae, plan)
    gen = torch.Generator().manual_seed(seed)
    cls = RotationSAE if plan.architecture == "random_rotation" else get_sae_class(plan.architecture)
    with torch.device("meta"):
        ctl = cls(cfg)
    ctl.to_empty(device="cpu")
    ctl.materialise_state("cpu")
    for name, t in [*ctl.named_parameters(), *ctl.named_buffers()]:
        if t.is_floating_point() and name not in ("input_scale",):
            t.zero_()
    if plan.architecture == "random_rotation":
        q, r = torch.linalg.qr(torch.randn(cfg.d_in, cfg.d_in, generator=gen, dtype=torch.float64))
        q = (q * torch.sign(torch.diagonal(r))).float()  # Haar: fix each column's sign by R's diagonal
        ctl.W_enc.copy_(q)
        ctl.W_dec.copy_(q.T)
    else:
        w = torch.randn(cfg.d_sae, cfg.d_in, generator=gen)
        w /= w.norm(dim=1, keepdim=True).clamp_min(1e-8)
        ctl.W_dec.copy_(w)
        ctl.W_enc.copy_(w.T)
    b_dec = getattr(sae, "b_dec", None)
    if isinstance(b_dec, torch.Tensor) and b_dec.shape == ctl.b_dec.shape and sae.cfg.apply_b_dec_to_input:
        ctl.b_dec.copy_(b_dec.detach().float().cpu())
    scale = getattr(sae, "input_scale", None)
    if isinstance(scale, torch.Tensor):
        ctl.input_scale.copy_(scale.detach().float().cpu())
    return ctl.to(module_device(sae)).eval()


def _pre_acts(ctl: SAE) -> Callable[[torch.Tensor], torch.Tensor]:
    """The control's bias-free pre-activations (its calibrated biases are still 0 here; a gated control's are its
    gate path's)."""
    return ctl.pre_acts


@torch.no_grad()
def calibration_cut(ctl: SAE, inputs: torch.Tensor, target_l0: float, budget: int) -> float:
    """The scalar c such that round(target_l0 x rows) entries of the control's bias-free pre-activations on
    `inputs` (already in the SAE's input form) exceed it; chunk by chunk, keeping only the running top T."""
    rows = inputs.shape[0]
    t = int(round(target_l0 * rows))
    total = rows * ctl.d_sae
    t_keep = 1 if t <= 0 else min(t + 1, total)  # the T-th and (T+1)-th largest entries are all the cut needs
    top: torch.Tensor | None = None
    encode = _pre_acts(ctl)
    dev = module_device(ctl)
    for s in row_chunks(rows, chunk_rows(ctl.d_sae, budget)):
        flat = aligned(encode, inputs[s].to(dev)).float().flatten().cpu()
        cand = flat.topk(min(t_keep, flat.numel())).values
        top = cand if top is None else torch.cat([top, cand]).topk(min(t_keep, top.numel() + cand.numel())).values
    assert top is not None
    top = top.sort(descending=True).values.double()
    if t <= 0:
        return float(top[0]) + 1.0  # nothing may fire: above the largest entry
    if t >= total:
        return float(top[-1]) - 1.0  # everything fires
    return float((top[t - 1] + top[t]) / 2)


@torch.no_grad()
def apply_cut(ctl: SAE, c: float) -> None:
    """Set the control's bias/threshold so that an entry fires when its bias-free pre-activation exceeds c."""
    arch = ctl.architecture

    def tensor(name: str) -> torch.Tensor:  # the architecture's own parameter or buffer, by name
        return cast(torch.Tensor, getattr(ctl, name))

    if arch in ("standard", "tanh_relu"):
        tensor("b_enc").fill_(-c)
    elif arch == "gated":
        tensor("b_gate").fill_(-c)
        tensor("b_mag").fill_(-c)
    elif arch in ("jumprelu", "batchtopk"):
        tensor("b_enc").fill_(0.0 if c >= 0 else -c)
        tensor("threshold").fill_(max(c, 0.0))
        if arch == "batchtopk":
            tensor("threshold_initialised").fill_(True)
    else:
        raise ValueError(f"no calibration for architecture {arch!r}")


def build_control(sae: SAE, plan: ControlPlan, seed: int, inputs: torch.Tensor | None, budget: int
                  ) -> tuple[SAE, float | None]:
    """A calibrated control and its cut c (None for TopK and the rotation, which need none). `inputs` are the scored
    contexts' activations in the SAE's input form (only needed for the calibrated architectures)."""
    ctl = random_control(sae, plan, seed)
    if plan.architecture not in CALIBRATED:
        return ctl, None
    assert inputs is not None
    c = calibration_cut(ctl, inputs, plan.target_l0, budget)
    apply_cut(ctl, c)
    return ctl, c
