"""Train several SAEs side by side from one activation tensor: Adam, warm-ups, decay, dead-latent tracking."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from pseval.errors import ConfigError, SAEFormatError
from pseval.files import write_atomic
from pseval.logs import bar_disabled
from pseval.metrics.reconstruction import fvu
from pseval.run_keys import require_same
from pseval.saes.base import SAE
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.registry import get_sae_class


@dataclass
class TrainConfig:
    """One SAE to train: architecture, size, sparsity and optimiser schedule."""

    architecture: str = "topk"
    expansion: int = 8
    k: int | None = 32
    sparsity_coeff: float | None = None  # None: the architecture's default
    lr: float = 1e-3
    batch_size: int = 1024
    lr_warmup_frac: float = 0.05
    lr_decay_frac: float = 0.2  # linear decay to zero over the last fraction of steps
    sparsity_warmup_frac: float = 0.05
    dead_window_tokens: int = 100_000
    # The encoder starts as this times the decoder's transpose (why 0.1: the note above init_sae).
    encoder_init_scale: float = 0.1
    # Gradients are clipped to this global norm before each step, as SAELens and dictionary_learning do (None: not
    # clipped). B9, 100k tokens: L1 SAE held-out FVU 0.269 at L0 211 -> 0.239 at L0 163; TopK 0.303 -> 0.284.
    grad_clip_norm: float | None = 1.0
    b_dec_init: str | None = None  # geometric_median, mean or zeros; None: the architecture's default_b_dec_init
    seed: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        cls = get_sae_class(self.architecture)
        if self.b_dec_init is None:  # resolved here, so the run key and the record name the method used
            self.b_dec_init = cls.default_b_dec_init
        if self.b_dec_init not in ("geometric_median", "mean", "zeros"):
            raise ConfigError(f"b_dec_init={self.b_dec_init!r}; expected geometric_median, mean or zeros")
        if self.expansion <= 0 or self.batch_size <= 0 or self.lr <= 0 or self.encoder_init_scale <= 0 \
                or (self.grad_clip_norm is not None and self.grad_clip_norm <= 0):
            raise ConfigError("expansion, batch_size, lr, encoder_init_scale and grad_clip_norm must be positive")

    @property
    def uses_k(self) -> bool:
        """Whether the architecture takes `k` (else a sparsity coefficient)."""
        return get_sae_class(self.architecture).uses_k

    @property
    def label(self) -> str:
        """Readable name: architecture, width and sparsity setting."""
        if self.name:
            return self.name
        coeff = "default" if self.sparsity_coeff is None else f"{self.sparsity_coeff:g}"
        sparsity = f"k{self.k}" if self.uses_k else f"c{coeff}"
        return f"{self.architecture}-x{self.expansion}-{sparsity}"


@dataclass
class TrainLog:
    """Per-SAE training summary."""

    steps: int = 0
    tokens: int = 0
    final_mse: float = math.nan
    final_l0: float = math.nan
    dead_fraction: float = math.nan
    history: list[dict[str, float]] = field(default_factory=list)
    # Held-out FVU probes (see convergence): {"step": optimiser steps done, "tokens": tokens trained on, "fvu": FVU
    # on the held-out sample, "dead": fraction of latents dead at that step}: the training curve.
    fvu_history: list[dict[str, float]] = field(default_factory=list)


# Held-out FVU during training: the trainer probes a fixed held-out sample (training/run.py passes the first
# FVU_PROBE_TOKENS held-out activations) FVU_PROBES times, and once at the start of the last fifth of the steps.
# An SAE whose held-out FVU still fell by more than CONVERGENCE_MAX_DROP (relative to its value at the start of
# the last fifth) over that last fifth is recorded as not converged. Probing reads the SAE under torch.no_grad()
# and draws no random numbers, so it changes neither the batches nor the trained weights.
FVU_PROBE_TOKENS = 2048
FVU_PROBES = 10
CONVERGENCE_MAX_DROP = 0.03  # docs/training.md (Convergence) has the measurements behind it


def probe_steps(total: int, probes: int = FVU_PROBES) -> set[int]:
    """Steps done (1-based) after which the held-out FVU is probed: `probes` evenly spaced, the start of the
    last fifth, and the end."""
    every = max(1, total // max(1, probes))
    return set(range(every, total + 1, every)) | ({total - total // 5, total} - {0})


@dataclass(frozen=True)
class Convergence:
    """The held-out FVU over the last fifth of training and whether it had levelled off."""

    converged: bool | None  # None: no held-out probe, or too few steps to have a last fifth
    fvu_first: float | None  # after the first probe
    fvu_last_fifth_start: float | None
    fvu_final: float | None
    last_fifth_drop: float | None  # (fvu_last_fifth_start - fvu_final) / fvu_last_fifth_start


def convergence(history: Sequence[Mapping[str, float]], total: int,
                max_drop: float = CONVERGENCE_MAX_DROP) -> Convergence:
    """Summarise a held-out FVU history (TrainLog.fvu_history) of a run of `total` steps."""
    by_step = {int(h["step"]): float(h["fvu"]) for h in history}
    first = by_step[min(by_step)] if by_step else None
    start, end = by_step.get(total - total // 5), by_step.get(total)
    if total // 5 < 1 or start is None or end is None or not (math.isfinite(start) and math.isfinite(end)) \
            or start <= 0:
        return Convergence(None, first, start, end, None)
    drop = (start - end) / start
    return Convergence(drop <= max_drop, first, start, end, drop)


def fvu_decay_exponent(history: Sequence[Mapping[str, float]], total: int) -> float | None:
    """a in held-out FVU ~ steps^-a, fitted (least squares on log-log axes) to the probes from half to four fifths of
    the `total` steps, where the learning rate is constant; None with fewer than two such probes.

    A curve of that shape falls by 1 - 0.8^a over any last fifth, whatever the budget, so it meets the convergence
    rule only once a <= max_decay_exponent(): what a longer run of the same shape cannot change."""
    pts = [(math.log(h["step"]), math.log(h["fvu"])) for h in history
           if total / 2 <= h["step"] <= total - total // 5 and h["fvu"] > 0]
    if len(pts) < 2:
        return None
    mx, my = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return None if sxx == 0 else -sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def max_decay_exponent(max_drop: float = CONVERGENCE_MAX_DROP) -> float:
    """The largest power-law exponent whose last fifth falls by at most `max_drop`: 1 - 0.8^a = max_drop."""
    return math.log(1 - max_drop) / math.log(0.8)


# Rows (drawn at random) that b_dec's initialisation sees: the median of 8k tokens is as good a start as of more.
INIT_SAMPLE = 8192


def geometric_median(x: torch.Tensor, iters: int = 50, eps: float = 1e-6) -> torch.Tensor:
    """Weiszfeld's algorithm: the point minimising the summed distances to the rows of x."""
    x = x.double()
    y = x.mean(0)
    for _ in range(iters):
        w = 1.0 / (x - y).norm(dim=1).clamp_min(eps)
        y_new = (w[:, None] * x).sum(0) / w.sum()
        if (y_new - y).norm() < eps * max(1.0, float(y.norm())):
            y = y_new
            break
        y = y_new
    return y.float()


def all_finite(t: torch.Tensor) -> bool:
    """Whether t holds no NaN or inf: one min/max pass (both reach the min or the max), 10x faster than
    isfinite(t).all() on a training set, which writes a bool tensor of t's size first."""
    if t.numel() == 0:
        return True
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


def input_scale_for(acts: torch.Tensor, n: int = 50_000) -> float:
    """Factor making the mean squared norm of inputs equal d_in (SAELens' expected_average_only_in)."""
    sq_norms = torch.linalg.vector_norm(acts[:n], dim=1, dtype=torch.float64).pow(2)  # no float64 copy of acts
    return float(math.sqrt(acts.shape[1] / sq_norms.mean().clamp_min(1e-12)))


# TrainConfig.encoder_init_scale's default: the encoder starts as 0.1 times the decoder's transpose (Anthropic's
# 2024 initialisation, which SAELens' decoder_init_norm and dictionary_learning's AutoEncoder also use). With
# unit-norm encoder rows, inputs scaled to norm sqrt(d_in) give pre-activations of unit size: half the latents fire
# at the start and the L1 SAE never recovers (B9, 100k tokens: held-out FVU 0.614 at L0 445 against 0.298 at L0 373;
# TopK 0.338 against 0.303; gated x8 0.407 at L0 704 against 0.081 at L0 515).


def init_sae(tc: TrainConfig, d_in: int, metadata: SAEMetadata) -> SAE:
    """A freshly initialised SAE for a TrainConfig."""
    cls = get_sae_class(tc.architecture)
    cfg = SAEConfig(architecture=tc.architecture, d_in=d_in, d_sae=d_in * tc.expansion,
                    k=tc.k if tc.uses_k else None,
                    metadata=SAEMetadata(**{**asdict(metadata), "extra": dict(metadata.extra)}))
    sae = cls(cfg)
    sae.reset_parameters(torch.Generator().manual_seed(tc.seed))
    with torch.no_grad():
        sae.W_enc.mul_(tc.encoder_init_scale)
    return sae


def _lr_factor(step: int, total: int, tc: TrainConfig) -> float:
    warm = max(1, int(tc.lr_warmup_frac * total))
    if step < warm:
        return (step + 1) / warm
    decay_start = int((1 - tc.lr_decay_frac) * total)
    if step >= decay_start and tc.lr_decay_frac > 0:
        return max(0.0, (total - step) / max(1, total - decay_start))
    return 1.0


class TrainingDiverged(ConfigError):
    """A run's loss or weights stopped being finite."""


def diverged(tc: TrainConfig, step: int, loss: float) -> TrainingDiverged:
    """The error of a run whose loss or weights stopped being finite: the learning rate is the usual cause."""
    return TrainingDiverged(f"training of {tc.label} diverged at step {step} (loss {loss}) with learning rate "
                       f"lr={tc.lr:g}; lower --lr (default 1e-3). Nothing was saved for it")


class _Run:
    """State of one SAE under training."""

    def __init__(self, tc: TrainConfig, sae: SAE, total_steps: int, probes: int = FVU_PROBES) -> None:
        self.tc, self.sae, self.total = tc, sae, total_steps
        self.opt = torch.optim.Adam(sae.parameters(), lr=tc.lr, betas=(0.9, 0.999))
        self.coeff = tc.sparsity_coeff if tc.sparsity_coeff is not None else sae.default_sparsity_coeff()
        self.since_fired = torch.zeros(sae.d_sae, dtype=torch.long)
        self.log = TrainLog()
        self.autocast = False
        self.probes = probe_steps(total_steps, probes)

    def state(self, step: int) -> dict[str, Any]:
        """Everything needed to resume (tensors and plain values only: loadable with weights_only=True)."""
        return {"step": step, "sae": self.sae.state_dict(), "opt": self.opt.state_dict(),
                "since_fired": self.since_fired, "log": asdict(self.log)}

    def load_state(self, state: dict[str, Any]) -> int:
        """Restore from `state`; returns the next step to run."""
        self.sae.load_state_dict(state["sae"])
        self.opt.load_state_dict(state["opt"])
        self.since_fired = state["since_fired"]
        self.log = TrainLog(**state["log"])
        return int(state["step"]) + 1

    def step(self, x: torch.Tensor, step: int) -> None:
        tc, sae = self.tc, self.sae
        for g in self.opt.param_groups:
            g["lr"] = tc.lr * _lr_factor(step, self.total, tc)
        warm = max(1, int(tc.sparsity_warmup_frac * self.total))
        coeff = self.coeff * min(1.0, (step + 1) / warm)
        dead = (self.since_fired >= tc.dead_window_tokens).to(x.device)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = sae.train_forward(x, coeff, dead)
        if not bool(torch.isfinite(out.loss.detach())):  # diverged: every later step and the saved SAE would be NaN
            raise diverged(tc, step, float(out.loss.detach()))
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if tc.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(sae.parameters(), tc.grad_clip_norm)
        sae.remove_parallel_decoder_grad()
        self.opt.step()
        sae.post_step()
        with torch.no_grad():
            fired = (out.latents.amax(0) > 0).cpu()  # latents are >= 0 in every architecture
            self.since_fired += x.shape[0]
            self.since_fired[fired] = 0
            self.log.steps += 1
            self.log.tokens += x.shape[0]
            if step % 50 == 0 or step == self.total - 1:
                l0 = float((out.latents > 0).float().sum(-1).mean())
                self.log.history.append({"step": step, "mse": float(out.mse), "l0": l0, "aux": float(out.aux)})
                self.log.final_mse, self.log.final_l0 = float(out.mse), l0
        self.log.dead_fraction = float((self.since_fired >= tc.dead_window_tokens).float().mean())

    def probe(self, heldout: torch.Tensor | None, step: int) -> None:
        """Record the held-out FVU (inputs already normalised) when `step` completes a probe step."""
        if heldout is not None and heldout.shape[0] and step + 1 in self.probes:
            self.log.fvu_history.append({"step": step + 1, "tokens": self.log.tokens, "fvu": fvu(self.sae, heldout),
                                         "dead": self.log.dead_fraction})


def train_saes(acts: torch.Tensor, configs: Sequence[TrainConfig], metadata: SAEMetadata,
               device: str | torch.device = "cpu", progress: bool = False,
               checkpoint_dir: str | Path | None = None, checkpoint_every: int = 200,
               autocast_bf16: bool | None = None,
               keys: Sequence[Mapping[str, Any]] | None = None,
               heldout: torch.Tensor | None = None, fvu_probes: int = FVU_PROBES) -> list[tuple[SAE, TrainLog]]:
    """Train one SAE per config on the same shuffled activations (one pass), folding input scaling in at the end.

    With `checkpoint_dir`, state is saved every `checkpoint_every` steps and a later call resumes from it, but only
    when `keys` (one run key per config: every setting that changes the result) match the checkpoint's.
    bf16 autocast is on by default on CUDA. With `heldout` (raw activations never trained on), its FVU is
    recorded at `probe_steps` (`fvu_probes` evenly spaced) in each TrainLog's fvu_history; the trained weights are
    the same with or without it.
    """
    if acts.ndim != 2 or acts.shape[0] == 0:
        raise ConfigError(f"need a non-empty [tokens, d] activation tensor, got shape {tuple(acts.shape)}")
    if not all_finite(acts):
        raise ConfigError("activations contain NaN/inf values")
    scale = input_scale_for(acts)
    gen = torch.Generator().manual_seed(configs[0].seed if configs else 0)
    order = torch.randperm(acts.shape[0], generator=gen)  # same seed, same order: a resumed run sees the same data
    sample = acts[order[:INIT_SAMPLE]] * scale
    runs = _setup_runs(sample, configs, metadata, device, lambda tc: max(1, acts.shape[0] // tc.batch_size),
                       fvu_probes)
    use_autocast = torch.device(device).type == "cuda" if autocast_bf16 is None else autocast_bf16
    keys = _run_keys(configs, keys)
    for r in runs:
        r.autocast = use_autocast
    start = _resume(checkpoint_dir, keys, runs, device)
    max_steps = max(r.total for r in runs)
    probe = _probe_sample(heldout, scale, device)
    bar = tqdm(range(start, max_steps), desc="train", disable=bar_disabled(progress), leave=False)
    for step in bar:
        for r in runs:
            if step >= r.total:
                continue
            bs = r.tc.batch_size
            idx = order[step * bs:(step + 1) * bs]
            r.step(acts[idx].to(device) * scale, step)  # train in normalised units
            r.probe(probe, step)
        if progress and runs:
            bar.set_postfix(mse=f"{runs[0].log.final_mse:.3g}", l0=f"{runs[0].log.final_l0:.1f}")
        if checkpoint_dir is not None and (step + 1) % checkpoint_every == 0 and step + 1 < max_steps:
            save_checkpoint(Path(checkpoint_dir), keys, runs, step)
    return _finish(runs, scale, sample.to(device))


def _probe_sample(heldout: torch.Tensor | None, scale: float, device: str | torch.device) -> torch.Tensor | None:
    """The held-out probe in the units the SAE trains in (at most FVU_PROBE_TOKENS rows)."""
    if heldout is None or heldout.shape[0] == 0:
        return None
    return heldout[:FVU_PROBE_TOKENS].to(device) * scale


def _setup_runs(sample: torch.Tensor, configs: Sequence[TrainConfig], metadata: SAEMetadata,
                device: str | torch.device, steps: Callable[[TrainConfig], int],
                probes: int = FVU_PROBES) -> list[_Run]:
    """Fresh SAEs with b_dec initialised from a (normalised) sample of the data."""
    inits: dict[str, torch.Tensor] = {}  # one geometric median for all SAEs of a stream, not one each
    runs = []
    for tc in configs:
        torch.manual_seed(tc.seed)
        sae = init_sae(tc, sample.shape[1], metadata).to(device)
        method = tc.b_dec_init or sae.default_b_dec_init  # TrainConfig resolves None; a caller may set it back
        if method not in inits and method != "zeros":
            x = sample.to(device)
            inits[method] = geometric_median(x) if method == "geometric_median" else x.mean(0)
        if method in inits:
            with torch.no_grad():
                sae.b_dec.copy_(inits[method])
        runs.append(_Run(tc, sae, steps(tc), probes))
    return runs


def _finish(runs: list[_Run], scale: float, sample: torch.Tensor) -> list[tuple[SAE, TrainLog]]:
    """Set what is set from the trained weights (on `sample`, normalised training rows), fold the input scale into
    the weights and record provenance."""
    results = []
    for r in runs:
        r.sae.finish_training(sample, r.tc.batch_size)
        try:
            r.sae.check_weights(r.tc.label)
        except SAEFormatError:  # the last optimiser step overflowed: no SAE with NaN weights is ever returned
            raise diverged(r.tc, r.log.steps, math.nan) from None
        r.sae.input_scale.fill_(scale)
        r.sae.fold_input_scale()
        r.sae.eval()
        meta = r.sae.cfg.metadata.extra
        meta.update({"train_config": asdict(r.tc), "train_tokens": r.log.tokens, "train_steps": r.log.steps,
                     "dead_fraction_at_end": r.log.dead_fraction, "input_scale_folded": scale})
        results.append((r.sae, r.log))
    return results


def shuffle_buffer(stream: Iterable[torch.Tensor], size: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Rows of a stream of [n, d] batches in random order: fill `size` rows, emit a random half, refill."""
    gen = torch.Generator().manual_seed(seed)
    buf: torch.Tensor | None = None
    for batch in stream:
        buf = batch if buf is None else torch.cat([buf, batch])
        if buf.shape[0] >= size:
            perm = torch.randperm(buf.shape[0], generator=gen)
            half = buf.shape[0] // 2
            yield buf[perm[:half]]
            buf = buf[perm[half:]]
    if buf is not None and buf.shape[0]:
        yield buf[torch.randperm(buf.shape[0], generator=gen)]


def train_saes_stream(stream: Iterable[torch.Tensor], total_tokens: int, configs: Sequence[TrainConfig],
                      metadata: SAEMetadata, device: str | torch.device = "cpu", progress: bool = False,
                      buffer_tokens: int = 262_144, autocast_bf16: bool | None = None,
                      checkpoint_dir: str | Path | None = None, checkpoint_every: int = 200,
                      keys: Sequence[Mapping[str, Any]] | None = None,
                      heldout: torch.Tensor | None = None) -> list[tuple[SAE, TrainLog]]:
    """Train SAEs from a stream of activation batches too large to hold in memory (one pass, shuffle buffer).

    All configs share one batch size here; the first buffer sets the input scale and b_dec. Checkpoints work as in
    `train_saes`: a resumed run replays the (deterministic) stream up to its step without training on it.
    `heldout` is probed as in `train_saes`.
    """
    sizes = {tc.batch_size for tc in configs}
    if len(sizes) != 1:
        raise ConfigError(f"streamed training needs one batch size for all SAEs, got {sorted(sizes)}")
    bs = sizes.pop()
    rows = shuffle_buffer(stream, buffer_tokens, configs[0].seed if configs else 0)
    pending: list[torch.Tensor] = []
    first = next(rows, None)
    if first is None:
        raise ConfigError("the activation stream is empty")
    if not all_finite(first):
        raise ConfigError("activations contain NaN/inf values")
    scale = input_scale_for(first)
    sample = first[:INIT_SAMPLE] * scale
    runs = _setup_runs(sample, configs, metadata, device, lambda tc: max(1, total_tokens // bs))
    use_autocast = torch.device(device).type == "cuda" if autocast_bf16 is None else autocast_bf16
    for r in runs:
        r.autocast = use_autocast
    keys = _run_keys(configs, keys)
    start = _resume(checkpoint_dir, keys, runs, device)
    probe = _probe_sample(heldout, scale, device)
    pending.append(first)
    step = 0
    max_steps = runs[0].total
    bar = tqdm(total=max_steps, initial=start, desc="train (stream)", disable=bar_disabled(progress), leave=False)

    def batches() -> Iterator[torch.Tensor]:
        chunks = iter(pending)
        carry = torch.zeros((0, first.shape[1]))
        for chunk in itertools.chain(chunks, rows):
            carry = torch.cat([carry, chunk])
            while carry.shape[0] >= bs:
                yield carry[:bs]
                carry = carry[bs:]

    for x in batches():
        if step >= max_steps:
            break
        if step >= start:  # earlier batches were trained on before the checkpoint
            xs = x.to(device) * scale
            for r in runs:
                r.step(xs, step)
                r.probe(probe, step)
            bar.update(1)
            if checkpoint_dir is not None and (step + 1) % checkpoint_every == 0 and step + 1 < max_steps:
                save_checkpoint(Path(checkpoint_dir), keys, runs, step)
        step += 1
    bar.close()
    return _finish(runs, scale, sample.to(device))


CHECKPOINT_STATE = "trainer_state.pt"


def _run_keys(configs: Sequence[TrainConfig], keys: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    if keys is None:  # callers without run keys (tests, benchmarks): the configs themselves
        return [asdict(tc) for tc in configs]
    if len(keys) != len(configs):
        raise ConfigError(f"{len(keys)} run keys for {len(configs)} SAE configs")
    return [dict(k) for k in keys]


def remove_checkpoint(checkpoint_dir: str | Path) -> None:
    """Delete a finished or abandoned checkpoint."""
    (Path(checkpoint_dir) / CHECKPOINT_STATE).unlink(missing_ok=True)


def save_checkpoint(checkpoint_dir: Path, keys: Sequence[Mapping[str, Any]], runs: Sequence[_Run], step: int) -> None:
    """Every run's state after `step` with the run keys it was made under, written atomically."""
    state = {"keys": json.dumps(list(keys), sort_keys=True, default=str), "runs": [r.state(step) for r in runs]}
    write_atomic(checkpoint_dir / CHECKPOINT_STATE, lambda fh: torch.save(state, fh), binary=True)


def _resume(checkpoint_dir: str | Path | None, keys: list[dict[str, Any]], runs: Sequence[_Run],
            device: str | torch.device) -> int:
    """Restore the runs from a matching checkpoint; returns the first step still to run (0 without one)."""
    if checkpoint_dir is None or not (Path(checkpoint_dir) / CHECKPOINT_STATE).is_file():
        return 0
    ckpt = Path(checkpoint_dir) / CHECKPOINT_STATE
    state = torch.load(ckpt, map_location=device, weights_only=True)
    old = json.loads(state["keys"])
    if old != json.loads(json.dumps(keys, sort_keys=True, default=str)):
        require_same(f"the checkpoint {ckpt}", {str(i): k for i, k in enumerate(old)},
                     {str(i): k for i, k in enumerate(keys)}, "Pass --overwrite to discard it and start afresh.")
    return min(r.load_state(s) for r, s in zip(runs, state["runs"], strict=True))


class TrainingMetrics(BaseModel):
    """How a pseval-trained SAE was trained (absent for SAEs from files pseval did not train): a flat metric category
    of the record."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(title="Steps", description="optimiser steps")
    tokens: int = Field(title="Training tokens", description="activations the SAE was trained on")
    dead_fraction: float | None = Field(title="Dead fraction at the end", description="latents that did not fire "
                                        "in the last dead-window tokens of training")
    converged: bool | None = Field(None, title="Converged", description="false when the held-out FVU still fell by "
                                   "more than 3% (relative) over the last fifth of the steps (pseval.training.trainer"
                                   ".CONVERGENCE_MAX_DROP); null when not measured (no held-out probe, fewer than 5 "
                                   "steps, or an SAE trained before pseval recorded it)")
    fvu_probe_tokens: int | None = Field(None, title="FVU probe tokens", description="held-out activations (the "
                                         "first of the held-out set) whose FVU was probed during training")
    fvu_first: float | None = Field(None, title="Held-out FVU, first probe", description="FVU on the probe after "
                                    "the first tenth of the steps")
    fvu_last_fifth_start: float | None = Field(None, title="Held-out FVU at four fifths",
                                               description="FVU on the probe when the last fifth of the steps began")
    fvu_final: float | None = Field(None, title="Held-out FVU, final", description="FVU on the probe after the last "
                                    "step")
    fvu_last_fifth_drop: float | None = Field(None, title="FVU drop over the last fifth",
                                              description="(fvu_last_fifth_start - fvu_final) / "
                                                          "fvu_last_fifth_start")
