"""`pseval sweep CONFIG`: train what is missing (one activation stream per hook), evaluate every cell, resume."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pseval.data.corpus import corpus_texts
from pseval.data.pairs import WordInContextPair, dataset_hash
from pseval.data.sources import load_pairs
from pseval.experiments.store import CellKey, ResultsStore
from pseval.experiments.sweep_config import SweepConfig
from pseval.metrics.loss_recovered import loss_recovered
from pseval.metrics.ps_eval import PSEvalConfig, score_sae
from pseval.metrics.ps_eval.cache import cached_pair_activations
from pseval.metrics.ps_eval.schema import result_record, write_json_atomic
from pseval.metrics.reconstruction import reconstruction_metrics
from pseval.models.hooks import expand_hook_pattern
from pseval.models.loading import LoadedModel, load_model
from pseval.models.readout import ReadoutConfig
from pseval.provenance import provenance
from pseval.saes.base import SAE
from pseval.saes.config import SAEMetadata
from pseval.saes.formats.saelens import CFG_NAME, load_saelens_v6, save_sae
from pseval.saes.identity import identity_sae
from pseval.training.activations import StreamConfig, collect_activations, stream_activations
from pseval.training.trainer import TrainConfig, train_saes, train_saes_stream

METRICS_FILE = "train_metrics.json"
ACTIVATION_MEMORY_BYTES = 6 * 2**30  # activations held at once (tokens x d x hooks float32) during training


@dataclass(frozen=True)
class SAEPlan:
    """One SAE of the sweep: where it lives, its hook, and how to train it (None for identity)."""

    hook: str
    label: str
    train: TrainConfig | None


def plan_saes(cfg: SweepConfig, lm: LoadedModel) -> list[SAEPlan]:
    """Every (hook, SAE) of the config's grids, duplicates removed, in a stable order."""
    plans: dict[tuple[str, str], SAEPlan] = {}
    for g in cfg.grids:
        hooks = [h for pattern in g.hooks for h in expand_hook_pattern(lm.model, pattern)]
        for hook in hooks:
            if g.identity:
                plans.setdefault((hook, "identity"), SAEPlan(hook, "identity", None))
            for arch in g.architectures:
                for e in g.expansions:
                    if arch in ("topk", "batchtopk"):
                        tcs = [TrainConfig(arch, e, k=k, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed)
                               for k in g.k]
                    else:
                        tcs = [TrainConfig(arch, e, k=None, sparsity_coeff=c, lr=cfg.lr, batch_size=cfg.batch_size,
                                           seed=cfg.seed) for c in g.sparsity_coeff.get(arch, [None])]  # type: ignore[list-item]
                    for tc in tcs:
                        plans.setdefault((hook, tc.label), SAEPlan(hook, tc.label, tc))
    return list(plans.values())


def _sae_dir(root: Path, plan: SAEPlan) -> Path:
    return root / "saes" / plan.hook / plan.label


def _trained(root: Path, plan: SAEPlan) -> bool:
    d = _sae_dir(root, plan)
    return (d / CFG_NAME).is_file() and (d / METRICS_FILE).is_file()


def _save_trained(cfg: SweepConfig, lm: LoadedModel, root: Path, hook: str, todo: list[SAEPlan],
                  trained: list[tuple[SAE, Any]], held: torch.Tensor) -> None:
    for plan, (sae, tlog) in zip(todo, trained, strict=True):
        d = _sae_dir(root, plan)
        save_sae(sae, d)
        info: dict[str, Any] = {"reconstruction": reconstruction_metrics(sae, held).to_dict(),
                                "train_log": {"steps": tlog.steps, "tokens": tlog.tokens,
                                              "dead_fraction": tlog.dead_fraction}}
        if cfg.loss_recovered_tokens > 0:
            info["loss_recovered"] = loss_recovered(lm, sae, hook, corpus_texts(cfg.corpus), cfg.loss_recovered_tokens,
                                                    seed=cfg.seed).to_dict()
        write_json_atomic(info, d / METRICS_FILE)  # written last: its presence marks the SAE as done


def _meta(cfg: SweepConfig, lm: LoadedModel, hook: str) -> SAEMetadata:
    return SAEMetadata(model_name=cfg.model, hook_name=hook, prepend_bos=lm.is_causal, exclude_special_tokens=True,
                       context_size=cfg.context_size, dataset_path=cfg.corpus)


def _train_missing(cfg: SweepConfig, lm: LoadedModel, root: Path, plans: list[SAEPlan],
                   log: Callable[[str], Any]) -> None:
    missing = [p for p in plans if p.train is not None and not _trained(root, p)]
    hooks = list(dict.fromkeys(p.hook for p in missing))
    stream = StreamConfig(context_size=cfg.context_size, max_tokens=cfg.train_tokens + cfg.heldout_tokens)
    per_hook = (cfg.train_tokens + cfg.heldout_tokens) * lm.d_model * 4
    if per_hook > ACTIVATION_MEMORY_BYTES:  # too large to hold: stream each hook through a shuffle buffer
        for hook in hooks:
            todo = [p for p in missing if p.hook == hook]
            log(f"[sweep] {hook}: streaming {cfg.train_tokens:,} tokens to train {', '.join(p.label for p in todo)}")
            batches = (b[hook] for b in stream_activations(lm, corpus_texts(cfg.corpus), [hook], stream))
            held_parts, n = [], 0
            while n < cfg.heldout_tokens:
                part = next(batches)
                held_parts.append(part)
                n += part.shape[0]
            head = torch.cat(held_parts)
            rest = itertools.chain([head[cfg.heldout_tokens:]], batches)  # overflow goes back to training
            trained = train_saes_stream(rest, cfg.train_tokens, [p.train for p in todo if p.train],
                                        _meta(cfg, lm, hook), device=cfg.device, progress=True)
            _save_trained(cfg, lm, root, hook, todo, trained, head[: cfg.heldout_tokens])
        return
    per_pass = max(1, ACTIVATION_MEMORY_BYTES // per_hook)  # hooks sharing one forward pass
    for start in range(0, len(hooks), per_pass):
        chunk = hooks[start:start + per_pass]
        log(f"[sweep] activations for {len(chunk)} hook(s) from {cfg.corpus}")
        acts = collect_activations(lm, corpus_texts(cfg.corpus), chunk, stream, progress=True)
        for hook in chunk:
            a = acts.pop(hook)
            train, held = a[: -cfg.heldout_tokens], a[-cfg.heldout_tokens:]
            todo = [p for p in missing if p.hook == hook]
            log(f"[sweep] {hook}: training {', '.join(p.label for p in todo)}")
            trained = train_saes(train, [p.train for p in todo if p.train], _meta(cfg, lm, hook), device=cfg.device,
                                 progress=True, checkpoint_dir=root / "saes" / hook / ".checkpoint")
            _save_trained(cfg, lm, root, hook, todo, trained, held)
            ckpt = root / "saes" / hook / ".checkpoint" / "trainer_state.pt"
            ckpt.unlink(missing_ok=True)
            del a, train, held


def _load(root: Path, plan: SAEPlan, d_model: int, model_name: str) -> tuple[SAE, dict[str, Any]]:
    if plan.train is None:
        return identity_sae(d_model, model_name, plan.hook), {}
    d = _sae_dir(root, plan)
    return load_saelens_v6(d), json.loads((d / METRICS_FILE).read_text())


def _subsample(pairs: list[WordInContextPair], n: int | None, seed: int) -> list[WordInContextPair]:
    if n is None or len(pairs) <= n:
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), n))
    return [pairs[i] for i in keep]


def run_sweep(cfg: SweepConfig, out: str | Path, force: bool = False,
              log: Callable[[str], Any] = print) -> ResultsStore:
    """Train missing SAEs, evaluate missing cells, and append each finished cell to the store."""
    root = Path(out)
    store = ResultsStore(root)
    store.clean_temp()
    torch.manual_seed(cfg.seed)
    write_json_atomic({"config": cfg.to_dict(), **provenance()}, root / "sweep.json")
    lm = load_model(cfg.model, device=cfg.device)
    plans = plan_saes(cfg, lm)
    log(f"[sweep] {cfg.name}: {len(plans)} SAE(s) over {len({p.hook for p in plans})} hook(s), "
        f"{len(cfg.datasets)} dataset(s) x {len(cfg.readouts)} readout(s)")
    _train_missing(cfg, lm, root, plans, log)
    done = skipped = 0
    for spec in cfg.datasets:
        pairs: list[WordInContextPair] | None = None
        for readout in cfg.readouts:
            keys = {(p.hook, p.label): CellKey(cfg.model, p.hook, p.label, spec, readout, cfg.multi_token,
                                               cfg.balance) for p in plans}
            todo = [p for p in plans if force or not store.has(keys[p.hook, p.label])]
            skipped += len(plans) - len(todo)
            if not todo:
                continue
            if pairs is None:
                pairs = _subsample(load_pairs(spec), cfg.max_pairs, cfg.seed)
            ps_cfg = PSEvalConfig(readout=ReadoutConfig(position=readout, multi_token=cfg.multi_token),  # type: ignore[arg-type]
                                  balance=cfg.balance, seed=cfg.seed)  # type: ignore[arg-type]
            hooks = list(dict.fromkeys(p.hook for p in todo))
            log(f"[sweep] {spec} ({len(pairs)} pairs), {readout} readout: {len(todo)} cell(s) at {len(hooks)} hook(s)")
            acts = cached_pair_activations(lm, cfg.model, pairs, hooks, ps_cfg, root / "pair_activations",
                                           progress=True)
            h = dataset_hash(pairs)
            for plan in todo:
                sae, info = _load(root, plan, lm.d_model, cfg.model)
                pa = acts[plan.hook]
                res = score_sae(pa, sae, ps_cfg, cfg.model)
                record = result_record(res, sae, plan.label, cfg.model, plan.hook, spec, h, ps_cfg, extra_metrics=info)
                record["pairs"] = {
                    "same_sense": "".join("1" if y else "0" for y in pa.same_sense.tolist()),
                    "same_feature": "".join("1" if a == b else "0" for a, b in
                                            zip(res.features_1.tolist(), res.features_2.tolist(), strict=True)),
                    "target": [pairs[i].target for i in pa.pair_index],
                    "pos": "".join(pairs[i].pos or "-" for i in pa.pair_index),
                    "cos_enc": [round(v, 4) for v in res.pair_cos_enc.tolist()],
                    "cos_dec": [round(v, 4) for v in res.pair_cos_dec.tolist()],
                }
                record["sweep"] = {"name": cfg.name, "architecture": plan.train.architecture if plan.train else
                                   "identity", "expansion": plan.train.expansion if plan.train else 1,
                                   "k": plan.train.k if plan.train else None,
                                   "sparsity_coeff": plan.train.sparsity_coeff if plan.train else None}
                store.put(keys[plan.hook, plan.label], record)
                done += 1
    log(f"[sweep] {done} cell(s) evaluated, {skipped} already in the store")
    return store
