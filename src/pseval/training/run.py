"""The one train-at-hook path: activations for each hook from one stream, every requested SAE trained from them,
saved with its run key, resumable, never mixed with work made under other settings."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from pseval.data.corpus import corpus_revision, corpus_texts
from pseval.devices import require_device
from pseval.errors import ConfigError
from pseval.files import OutputError, file_lock, write_json_atomic
from pseval.logs import get_logger
from pseval.metrics.loss_recovered import LossBaseline, LossRecovered, loss_baseline, score_loss
from pseval.metrics.reconstruction import ReconstructionMetrics, reconstruction_metrics
from pseval.models.loading import LoadedModel, load_model
from pseval.run_keys import key_id, require_same
from pseval.saes.base import SAE
from pseval.saes.config import SAEMetadata
from pseval.saes.formats.common import read_json_object
from pseval.saes.formats.saelens import CFG_NAME, load_saelens_v6, save_sae
from pseval.saes.registry import get_sae_class
from pseval.tables import text_table
from pseval.training.activations import StreamConfig, cached_activations, collect_activations, stream_activations
from pseval.training.memory_check import check_training_fits
from pseval.training.trainer import (
    CHECKPOINT_STATE,
    FVU_PROBE_TOKENS,
    TrainConfig,
    TrainingDiverged,
    TrainingMetrics,
    TrainLog,
    convergence,
    remove_checkpoint,
    train_saes,
    train_saes_stream,
)

_log = get_logger("training")  # messages; a notebook silences them on logging.getLogger("pseval")

# Bump when a trainer change alters what the same settings produce: old SAEs and checkpoints then no longer match.
TRAINER_VERSION = 3  # 3: encoder starts at 0.1 x the decoder's transpose, b_dec by architecture, gradient clipping
LOCK_FILE = ".train.lock"  # held while an SAE folder's files are written (see _save)
METRICS_FILE = "train_metrics.json"  # written last beside cfg.json: its presence marks a finished SAE
ACTIVATION_MEMORY_BYTES = 6 * 2**30  # activations held at once (tokens x d x hooks, float32); above: streamed
OVERWRITE_HINT = "Re-run with the same settings to resume, or pass --overwrite to start afresh."


@dataclass(frozen=True)
class TrainJob:
    """One SAE to train: where its activations come from (hook), how (config), and where it is saved."""

    hook: str
    config: TrainConfig
    folder: Path


@dataclass
class TrainRequest:
    """One activation stream per hook (model, corpus, token budget) and the SAEs to train from it."""

    model: str = "minilm"
    corpus: str = "wordnet"
    tokens: int = 1_000_000
    heldout_tokens: int = 20_000
    context_size: int = 128
    jobs: list[TrainJob] = field(default_factory=list)
    device: str = "auto"  # CUDA when present (pseval.devices.auto_device), resolved once per run
    include_special_tokens: bool = False
    cache: Path | None = None  # activation cache folder: a repeated request reads the memory-mapped activations
    checkpoint_root: Path = Path("runs/.checkpoints")  # one checkpoint folder per hook below it
    overwrite: bool = False  # discard finished SAEs and checkpoints made with other settings instead of refusing
    loss_recovered_tokens: int = 0  # tokens of `corpus` for loss recovered of each trained SAE (0: not measured)
    checkpoint_every: int = 200  # optimiser steps between checkpoints

    def __post_init__(self) -> None:
        for name in ("tokens", "heldout_tokens", "context_size", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"training {name}={v!r}: expected a positive integer")

    def streamed(self, d_model: int) -> bool:
        """Whether one hook's activations are too large to hold, so they are streamed through a shuffle buffer."""
        return (self.tokens + self.heldout_tokens) * d_model * 4 > ACTIVATION_MEMORY_BYTES

    def key(self, job: TrainJob, d_model: int) -> dict[str, Any]:
        """Everything that changes the trained SAE: the stream, the hook, the config and the trainer's version."""
        cfg = {k: v for k, v in asdict(job.config).items() if k != "name"}
        return {"trainer_version": TRAINER_VERSION, "model": self.model, "hook": job.hook, "corpus": self.corpus,
                "tokens": self.tokens, "heldout_tokens": self.heldout_tokens, "context_size": self.context_size,
                "exclude_special_tokens": not self.include_special_tokens, "streamed": self.streamed(d_model),
                **corpus_revision(self.corpus), **cfg}

    def checkpoint_dir(self, hook: str) -> Path:
        """Where the SAEs of one hook checkpoint while they train."""
        return self.checkpoint_root / hook


@dataclass
class TrainedSAE:
    """A finished SAE: its job, the SAE, its run key and what was measured on held-out activations."""

    job: TrainJob
    sae: SAE
    key: dict[str, Any]
    reconstruction: ReconstructionMetrics
    training: TrainingMetrics
    loss_recovered: LossRecovered | None = None

    @property
    def key_id(self) -> str:
        """Short hash of the run key (the SAE's fingerprint in result keys)."""
        return key_id(self.key)


def read_trained(folder: Path) -> TrainedSAE | None:
    """A finished SAE folder (cfg.json + weights + metrics file), or None when it is not finished."""
    if not (folder / METRICS_FILE).is_file() or not (folder / CFG_NAME).is_file():
        return None
    info = read_json_object(folder / METRICS_FILE, "a trained SAE folder holds cfg.json, weights and "
                                                   f"{METRICS_FILE}")
    sae = load_saelens_v6(folder)
    job = TrainJob(info["key"]["hook"], TrainConfig(**info["train_config"]), folder)
    loss = info.get("loss_recovered")
    return TrainedSAE(job, sae, info["key"], ReconstructionMetrics(**info["reconstruction"]),
                      TrainingMetrics(**info["training"]), LossRecovered(**loss) if loss else None)


def finished_key(folder: Path) -> dict[str, Any] | None:
    """The run key of a finished SAE folder without loading its weights, or None."""
    if not (folder / METRICS_FILE).is_file():
        return None
    return read_json_object(folder / METRICS_FILE, "")["key"]


RUN_FILE = "run.json"  # beside a hook's checkpoint: the folders its SAEs will be saved to, and their run keys


def _unfinished(req: TrainRequest) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Checkpoints under the request's checkpoint root with what they are for ({folder: run key}); a run killed
    before its first checkpoint left nothing to resume and does not count."""
    if not req.checkpoint_root.is_dir():
        return
    for run_file in sorted(req.checkpoint_root.glob(f"*/{RUN_FILE}")):
        if (run_file.parent / CHECKPOINT_STATE).is_file():
            run = read_json_object(run_file, "")
            yield run_file.parent, dict(zip(run["folders"], run["keys"], strict=True))


def _check_existing(req: TrainRequest, d_model: int) -> list[TrainJob]:
    """Jobs still to train. A finished SAE, or an unfinished run for the same folders, made with other settings is
    refused (or, with overwrite, discarded) before any activation is computed."""
    todo = []
    for job in req.jobs:
        old = finished_key(job.folder)
        if old is None:
            todo.append(job)
        elif old != req.key(job, d_model):
            if not req.overwrite:
                require_same(f"the SAE in {job.folder}", old, req.key(job, d_model), OVERWRITE_HINT)
            (job.folder / METRICS_FILE).unlink()
            todo.append(job)
    wanted = {str(j.folder): req.key(j, d_model) for j in todo}
    for ckpt, old_run in _unfinished(req):
        if not set(old_run) & set(wanted):
            continue
        new_run = {folder: wanted.get(folder) for folder in old_run}
        if json.loads(json.dumps(new_run, default=str)) == old_run:
            continue
        if req.overwrite:
            remove_checkpoint(ckpt)
            continue
        require_same(f"the unfinished run in {ckpt}", old_run, new_run, OVERWRITE_HINT)
    return todo


def _metadata(req: TrainRequest, lm: LoadedModel, hook: str) -> SAEMetadata:
    return SAEMetadata(model_name=req.model, hook_name=hook, prepend_bos=lm.is_causal,
                       exclude_special_tokens=not req.include_special_tokens, context_size=req.context_size,
                       dataset_path=req.corpus)


def held_out_count(available: int, tokens: int, heldout: int) -> int:
    """The one held-out rule: the first `heldout` activations of the stream are held out and the rest train; a
    corpus shorter than tokens + heldout gives at most a tenth of itself to the held-out set."""
    return heldout if available >= tokens + heldout else min(heldout, available // 10)


def _in_memory_activations(req: TrainRequest, lm: LoadedModel, hooks: list[str], stream: StreamConfig,
                           progress: bool) -> Iterator[tuple[str, torch.Tensor]]:
    """Each hook's activations, with as many hooks per forward pass as the memory budget allows."""
    per_hook = (req.tokens + req.heldout_tokens) * lm.d_model * 4
    per_pass = max(1, ACTIVATION_MEMORY_BYTES // max(per_hook, 1))
    for start in range(0, len(hooks), per_pass):
        group = hooks[start:start + per_pass]
        if req.cache is not None or len(group) == 1:
            for hook in group:
                yield hook, cached_activations(lm, req.model, req.corpus, corpus_texts(req.corpus), hook, stream,
                                               req.cache, progress)
            continue
        acts = collect_activations(lm, corpus_texts(req.corpus), group, stream, progress=progress)
        for hook in group:
            yield hook, acts.pop(hook)


def _train_streamed(req: TrainRequest, lm: LoadedModel, hook: str, jobs: list[TrainJob], stream: StreamConfig,
                    keys: list[dict[str, Any]], progress: bool) -> tuple[list[tuple[SAE, TrainLog]], torch.Tensor]:
    batches = (b[hook] for b in stream_activations(lm, corpus_texts(req.corpus), [hook], stream))
    held_parts, n = [], 0
    while n < req.heldout_tokens:
        part = next(batches, None)
        if part is None:
            break
        held_parts.append(part)
        n += part.shape[0]
    head = torch.cat(held_parts) if held_parts else torch.zeros((0, lm.d_model))
    rest = itertools.chain([head[req.heldout_tokens:]], batches)  # overflow of the held-out part goes to training
    trained = train_saes_stream(rest, req.tokens, [j.config for j in jobs], _metadata(req, lm, hook),
                                device=req.device, progress=progress, checkpoint_dir=req.checkpoint_dir(hook),
                                checkpoint_every=req.checkpoint_every, keys=keys,
                                heldout=head[:min(req.heldout_tokens, FVU_PROBE_TOKENS)])
    return trained, head[: req.heldout_tokens]


def run_training(req: TrainRequest, log: Callable[[str], Any] = _log.info, progress: bool = True,
                 lm: LoadedModel | None = None) -> list[TrainedSAE]:
    """Train and save every SAE of the request that is not finished yet; returns every job's finished SAE.

    Finished SAEs whose run key matches are reused; other settings are refused with the differing fields named.
    """
    # `auto` resolved (and said) once: the model, the trainer and the fit check then name one device.
    req = dataclasses.replace(req, device=require_device(req.device))
    lm = lm or load_model(req.model, device=req.device)
    for job in req.jobs:  # before any activation is collected
        tc = job.config
        check_training_fits(tc.label, lm.d_model, tc.expansion * lm.d_model, req.device)
        if tc.uses_k and tc.k is not None and tc.k > tc.expansion * lm.d_model:
            raise ConfigError(f"k={tc.k} for {tc.label}: larger than its dictionary ({tc.expansion} x d_model "
                              f"{lm.d_model} = {tc.expansion * lm.d_model} latents)")
    todo = _check_existing(req, lm.d_model)
    hooks = list(dict.fromkeys(j.hook for j in todo))
    stream = StreamConfig(context_size=req.context_size, max_tokens=req.tokens + req.heldout_tokens,
                          exclude_special_tokens=not req.include_special_tokens)
    streamed = req.streamed(lm.d_model)
    sources: Iterator[tuple[str, torch.Tensor | None]] = (
        ((h, None) for h in hooks) if streamed else _in_memory_activations(req, lm, hooks, stream, progress))
    for hook, acts in sources:
        jobs = [j for j in todo if j.hook == hook]
        keys = [req.key(j, lm.d_model) for j in jobs]
        with file_lock(req.checkpoint_dir(hook) / ".lock"):
            write_json_atomic({"folders": [str(j.folder) for j in jobs], "keys": keys},
                              req.checkpoint_dir(hook) / RUN_FILE)
            log(f"[train] {hook}: {', '.join(j.config.label for j in jobs)} on {req.tokens:,} tokens of "
                f"{req.corpus}" + (" (streamed)" if streamed else ""))
            try:
                if acts is None:
                    trained, held = _train_streamed(req, lm, hook, jobs, stream, keys, progress)
                else:
                    n_held = held_out_count(acts.shape[0], req.tokens, req.heldout_tokens)
                    train, held = acts[n_held:], acts[:n_held]
                    if train.shape[0] < req.tokens:
                        log(f"[train] {hook}: the corpus gave {train.shape[0]:,} training tokens of the "
                            f"{req.tokens:,} asked for")
                    # The FVU probe is a slice of the held-out activations: never trained on, and it changes
                    # neither the batches nor the weights.
                    trained = train_saes(train, [j.config for j in jobs], _metadata(req, lm, hook),
                                         device=req.device, progress=progress,
                                         checkpoint_dir=req.checkpoint_dir(hook),
                                         checkpoint_every=req.checkpoint_every, keys=keys,
                                         heldout=held[:FVU_PROBE_TOKENS])
            except TrainingDiverged:  # its checkpoint holds the diverged state: a rerun with a lower lr starts afresh
                remove_checkpoint(req.checkpoint_dir(hook))
                (req.checkpoint_dir(hook) / RUN_FILE).unlink(missing_ok=True)
                raise
            baselines: dict[int, LossBaseline] = {}  # loss recovered's, per seed, shared by the hook's SAEs
            for job, key, (sae, tlog) in zip(jobs, keys, trained, strict=True):
                _save(req, lm, job, key, sae, tlog, held, baselines)
            remove_checkpoint(req.checkpoint_dir(hook))
            (req.checkpoint_dir(hook) / RUN_FILE).unlink(missing_ok=True)
        del acts
    out = [read_trained(j.folder) for j in req.jobs]
    done = [t for t in out if t is not None]
    if todo:
        rows = [{"sae": str(t.job.folder), "d_sae": t.sae.d_sae, "mse_per_token": t.reconstruction.mse_per_token,
                 "fvu": t.reconstruction.fvu, "l0": t.reconstruction.l0,
                 "dead_fraction": t.reconstruction.dead_fraction} for t in done]
        log(text_table(rows, ("sae", "d_sae", "mse_per_token", "fvu", "l0", "dead_fraction")))
    return done


def _save(req: TrainRequest, lm: LoadedModel, job: TrainJob, key: dict[str, Any], sae: SAE, tlog: TrainLog,
          held: torch.Tensor, baselines: dict[int, LossBaseline]) -> None:
    """Save the SAE with its run key, then the metrics file that marks it finished; `baselines` holds the hook's
    loss-recovered baselines by seed, made here on first use."""
    sae.cfg.metadata.extra["training_key"] = key
    recon = reconstruction_metrics(sae, held)
    loss = None
    if req.loss_recovered_tokens > 0:
        seed = job.config.seed
        if seed not in baselines:
            baselines[seed] = loss_baseline(lm, job.hook, corpus_texts(req.corpus), req.loss_recovered_tokens,
                                              seed=seed)
        loss = score_loss(baselines[seed], sae)
    conv = convergence(tlog.fvu_history, tlog.steps)
    training = TrainingMetrics(steps=tlog.steps, tokens=tlog.tokens, dead_fraction=tlog.dead_fraction,
                               converged=conv.converged, fvu_probe_tokens=min(held.shape[0], FVU_PROBE_TOKENS),
                               fvu_first=conv.fvu_first, fvu_last_fifth_start=conv.fvu_last_fifth_start,
                               fvu_final=conv.fvu_final, fvu_last_fifth_drop=conv.last_fifth_drop)
    metrics = {"key": key, "key_id": key_id(key), "train_config": asdict(job.config),
               "reconstruction": recon.model_dump(), "training": training.model_dump(),
               "fvu_history": tlog.fvu_history, "loss_recovered": loss.model_dump() if loss else None}
    # Compare-and-swap under the folder's lock: another run may have finished an SAE here while this one trained
    # (both found the folder empty). Same settings: either SAE is the one asked for; other settings: refused, so
    # two runs never both claim one folder.
    with file_lock(job.folder / LOCK_FILE):
        now = finished_key(job.folder)
        if now is not None and now != json.loads(json.dumps(key, default=str)):
            raise OutputError(f"{job.folder}: another pseval train finished an SAE with other settings here while "
                              "this run trained; this run's SAE is not saved (use another --out folder)")
        save_sae(sae, job.folder)
        write_json_atomic(metrics, job.folder / METRICS_FILE)


def grid(archs: Sequence[str], expansions: Sequence[int], ks: Sequence[int], coeffs: Sequence[float | None],
         **common: Any) -> list[TrainConfig]:
    """TrainConfigs for architectures x widths x sparsity settings (k for TopK kinds, coefficients otherwise)."""
    out = []
    for arch in archs:
        for e in expansions:
            if get_sae_class(arch).uses_k:
                out += [TrainConfig(arch, e, k=k, **common) for k in ks]
            else:
                out += [TrainConfig(arch, e, k=None, sparsity_coeff=c, **common) for c in coeffs]
    return out
