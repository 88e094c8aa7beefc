"""`pseval sweep CONFIG`: train what is missing (one activation stream per hook), evaluate every cell, resume.

The work is planned as units of hooks. A unit locks its hooks, trains their missing SAEs through the one training
path, then scores every SAE at those hooks on every dataset and readout through the one evaluation pipeline, writing
each cell to the store as soon as it is done. A serial run groups as many hooks per unit as memory allows (they share
forward passes); a sharded or distributed run gives each unit one hook. Results are the same either way.

Where the units run: `serial` (this process, the default), `--shard I/N` (this process, a deterministic share of the
hooks: one SLURM array job each), or `ray` (one Ray task per hook, experiments/ray_executor.py; Ray is optional).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pseval.errors import ConfigError
from pseval.files import file_lock
from pseval.models.hooks import expand_hook_pattern
from pseval.models.loading import LoadedModel, load_model
from pseval.ps_eval import PSEvalConfig
from pseval.ps_eval.pipeline import CorpusMetrics, PreparedPairs, SAEEntry, evaluate, prepare_pairs
from pseval.ps_eval.record import PSEvalRecord
from pseval.run_keys import key_id
from pseval.saes.fingerprint import training_fingerprint
from pseval.saes.identity import identity_sae
from pseval.study.cell_rows import short_dataset
from pseval.study.store import ResultsStore
from pseval.study.sweep_config import EXECUTORS, SweepConfig
from pseval.training import run as training_run
from pseval.training.run import TrainJob, TrainRequest, grid, read_trained, run_training
from pseval.training.trainer import TrainConfig


@dataclass(frozen=True)
class SAEPlan:
    """One SAE of the sweep: its hook, its label, and how to train it (None for the identity baseline)."""

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
                    for tc in grid([arch], [e], g.k, g.sparsity_coeff.get(arch, [None]), lr=cfg.lr,
                                   batch_size=cfg.batch_size, seed=cfg.seed):
                        plans.setdefault((hook, tc.label), SAEPlan(hook, tc.label, tc))
    return list(plans.values())


def sweep_hooks(plans: Sequence[SAEPlan]) -> list[str]:
    """The sweep's hooks in plan order."""
    return list(dict.fromkeys(p.hook for p in plans))


def shard_hooks(hooks: Sequence[str], index: int, count: int) -> list[str]:
    """Shard `index` of `count` (0-based): a deterministic, disjoint share of the hooks; all shards cover all."""
    return [h for i, h in enumerate(hooks) if i % count == index]


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (0-based: I in 0..N-1, as SLURM_ARRAY_TASK_ID runs with `--array=0-(N-1)`) -> (I, N)."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: expected I/N with 0 <= I < N (0-based, e.g. 0/4 ... 3/4 for four "
                          f"shards; under SLURM: --array=0-3 and --shard $SLURM_ARRAY_TASK_ID/4)")
    return i, n


def cells_planned(cfg: SweepConfig, plans: Sequence[SAEPlan], hooks: Sequence[str]) -> int:
    """Cells of these hooks: SAEs x datasets x readouts."""
    return sum(p.hook in hooks for p in plans) * len(cfg.datasets) * len(cfg.readouts)


def serial_units(cfg: SweepConfig, d_model: int, hooks: Sequence[str]) -> list[list[str]]:
    """Hooks grouped so that one unit's training activations fit the memory budget (they share forward passes)."""
    per_hook = (cfg.train_tokens + cfg.heldout_tokens) * d_model * 4
    size = max(1, training_run.ACTIVATION_MEMORY_BYTES // max(per_hook, 1))
    return [list(hooks[i:i + size]) for i in range(0, len(hooks), size)]


def _folder(root: Path, plan: SAEPlan) -> Path:
    return root / "saes" / plan.hook / plan.label


def _train_request(cfg: SweepConfig, root: Path, jobs: list[TrainJob]) -> TrainRequest:
    return TrainRequest(model=cfg.model, corpus=cfg.corpus, tokens=cfg.train_tokens, heldout_tokens=cfg.heldout_tokens,
                        context_size=cfg.context_size, jobs=jobs, device=cfg.device,
                        checkpoint_root=root / "saes" / ".checkpoints", loss_tokens=cfg.loss_recovered_tokens)


def _entry(cfg: SweepConfig, root: Path, plan: SAEPlan, d_model: int) -> SAEEntry:
    if plan.train is None:
        sae = identity_sae(d_model, cfg.model, plan.hook)
        return SAEEntry.of(sae, "identity", plan.hook, "identity", f"identity:{d_model}")
    trained = read_trained(_folder(root, plan))
    if trained is None:
        raise RuntimeError(f"{_folder(root, plan)}: SAE missing after training")  # run_training guarantees it
    return SAEEntry.of(trained.sae, plan.label, plan.hook, str(_folder(root, plan)),
                       training_fingerprint(key_id(trained.key)), training=trained.training,
                       reconstruction=trained.reconstruction, loss_recovered=trained.loss_recovered)


def ps_eval_config(cfg: SweepConfig, readout: str) -> PSEvalConfig:
    """The PS-Eval settings of one readout of the sweep."""
    return PSEvalConfig.from_options(readout=readout, multi_token=cfg.multi_token, balance=cfg.balance,
                                     seed=cfg.seed, protocol=cfg.protocol, top_k=cfg.top_k,
                                     exclude_dense=cfg.exclude_dense, dtype=cfg.dtype, n_boot=cfg.n_boot,
                                     bootstrap_seed=cfg.bootstrap_seed, memory_budget=cfg.memory_budget,
                                     controls=cfg.controls)


@contextlib.contextmanager
def _locked(root: Path, hooks: Sequence[str]) -> Iterator[None]:
    """Hold every hook's lock (in sorted order: two units never deadlock)."""
    with contextlib.ExitStack() as stack:
        for hook in sorted(hooks):
            stack.enter_context(file_lock(root / "locks" / f"{hook}.lock"))
        yield


# Every finished cell is logged as one line starting with this (the Ray driver counts them across workers).
CELL_LINE = "[cell]"


class SweepRunner:
    """Runs units of a sweep against its store; one per process (a Ray worker builds its own)."""

    def __init__(self, cfg: SweepConfig, root: Path, log: Callable[[str], Any] = print, progress: bool = True,
                 lm: LoadedModel | None = None) -> None:
        self.cfg, self.root, self.log, self.progress = cfg, root, log, progress
        self.store = ResultsStore(root)
        self.lm = lm or load_model(cfg.model, device=cfg.device)
        self.plans = plan_saes(cfg, self.lm)
        self._pairs: dict[str, PreparedPairs] = {}
        self.evaluated = 0

    def pairs(self, spec: str) -> PreparedPairs:
        """A dataset loaded and selected once per process."""
        if spec not in self._pairs:
            self._pairs[spec] = prepare_pairs(spec, self.cfg.max_pairs, self.cfg.seed)
        return self._pairs[spec]

    def _put(self, record: PSEvalRecord) -> None:
        if self.store.put(record):
            self.evaluated += 1
            m, c = record.eval_result_metrics.ps_eval, record.eval_config
            self.log(f"{CELL_LINE} {c.hook_name} {record.sae_name} {short_dataset(c.dataset)} {c.readout}: "
                     f"F1 {_f(m.f1)} specificity {_f(m.specificity)} ({m.tp + m.fp + m.tn + m.fn} pairs)")

    def run_unit(self, hooks: Sequence[str]) -> int:
        """Train what is missing at these hooks, then score every cell of them; returns cells evaluated here."""
        before = self.evaluated
        plans = [p for p in self.plans if p.hook in hooks]
        with _locked(self.root, hooks):
            jobs = [TrainJob(p.hook, p.train, _folder(self.root, p)) for p in plans if p.train is not None]
            if jobs:
                run_training(_train_request(self.cfg, self.root, jobs), log=self.log, progress=self.progress,
                             lm=self.lm)
            entries = [_entry(self.cfg, self.root, p, self.lm.d_model) for p in plans]
            corpus = CorpusMetrics(self.cfg.corpus)
            for spec in self.cfg.datasets:
                data = self.pairs(spec)
                for readout in self.cfg.readouts:
                    evaluate(self.lm, self.cfg.model, entries, data, ps_eval_config(self.cfg, readout), corpus,
                             cache_dir=self.root / "pair_activations", skip=self.store.has, on_record=self._put,
                             progress=self.progress)
        return self.evaluated - before


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def run_sweep(cfg: SweepConfig, out: str | Path, overwrite: bool = False, log: Callable[[str], Any] = print,
              shard: tuple[int, int] | None = None, progress: bool = True, executor: str | None = None,
              address: str | None = None) -> ResultsStore:
    """Claim the folder for this config, then run every unit (or one shard's) serially or on Ray; re-running
    resumes. `executor` and `address` override the config's `executor` and `ray_address`."""
    executor = executor or cfg.executor
    address = address or cfg.ray_address
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    if address and executor != "ray":
        raise ConfigError(f"a Ray address ({address!r}) needs the ray executor (--executor ray)")
    if executor == "ray":
        from pseval.study.ray_executor import import_ray, run_hooks_on_ray

        import_ray()  # a missing extra is named before anything is written
    root = Path(out)
    store = ResultsStore(root)
    store.claim(cfg.settings(), overwrite=overwrite)
    store.clean_temp()
    if executor == "ray":
        # The driver only plans (hook globs need the model's modules); each Ray task loads the model itself.
        plans = plan_saes(cfg, load_model(cfg.model))
        runner = None
    else:
        runner = SweepRunner(cfg, root, log, progress)
        plans = runner.plans
    hooks = sweep_hooks(plans)
    if shard is not None:
        hooks = shard_hooks(hooks, *shard)
    planned = cells_planned(cfg, plans, hooks)
    log(f"[sweep] {cfg.name}: {sum(p.hook in hooks for p in plans)} SAE(s) over {len(hooks)} hook(s), "
        f"{len(cfg.datasets)} dataset(s) x {len(cfg.readouts)} readout(s)"
        + (f"; shard {shard[0]}/{shard[1]} (0-based)" if shard else "")
        + ("; on Ray, one task per hook" if executor == "ray" else ""))
    if runner is None:
        evaluated = run_hooks_on_ray(cfg, root, hooks, address=address, log=log).evaluated
        store.clean_temp()  # the debris of workers killed mid-write (their retries wrote the cells)
    else:
        for unit in serial_units(cfg, runner.lm.d_model, hooks):
            runner.run_unit(unit)
        evaluated = runner.evaluated
    log(f"[sweep] {evaluated} cell(s) evaluated, {planned - evaluated} already in the store")
    return store
