"""The units a sweep runs: every (hook, SAE) of its grids planned, hooks grouped into units or shards, and the runner
that trains what is missing at a unit's hooks and scores every cell of them through the one pipeline, writing each
cell to the store as soon as it is done. `pseval.study.sweep.run_sweep` runs the units serially, by shard or on Ray.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pseval.devices import require_device
from pseval.errors import ConfigError
from pseval.files import file_lock
from pseval.logs import get_logger
from pseval.models.hooks import expand_hook_pattern
from pseval.models.loading import LoadedModel, load_model
from pseval.models.model_dtype import model_torch_dtype
from pseval.ps_eval.pipeline import PreparedPairs, SAEEntry, evaluate, prepare_pairs
from pseval.ps_eval.record import PSEvalRecord
from pseval.ps_eval.resolver import identity_entry, trained_entry
from pseval.ps_eval.rows import short_dataset
from pseval.study.store import ResultsStore
from pseval.study.sweep_config import SweepConfig
from pseval.training import run as training_run
from pseval.training.run import TrainJob, TrainRequest, grid, read_trained, run_training
from pseval.training.trainer import TrainConfig

_log = get_logger("sweep")  # messages; a notebook silences them on logging.getLogger("pseval")


@dataclass(frozen=True)
class SAEPlan:
    """One SAE of the sweep: its hook, its label, how to train it (None for the identity baseline) and on how many
    tokens."""

    hook: str
    label: str
    train: TrainConfig | None
    tokens: int = 0  # training tokens (0 for the identity baseline)


def plan_saes(cfg: SweepConfig, lm: LoadedModel) -> list[SAEPlan]:
    """Every (hook, SAE) of the config's grids, duplicates removed, in a stable order. One SAE planned by two grids
    with different training budgets is refused (which budget it got would depend on the grids' order)."""
    plans: dict[tuple[str, str], SAEPlan] = {}
    where: dict[tuple[str, str], int] = {}
    for i, g in enumerate(cfg.grids):
        hooks = [h for pattern in g.hooks for h in expand_hook_pattern(lm.model, pattern)]
        tokens = cfg.grid_tokens(g)
        for hook in hooks:
            if g.identity:
                plans.setdefault((hook, "identity"), SAEPlan(hook, "identity", None))
            for arch in g.architectures:
                for e in g.expansions:
                    for tc in grid([arch], [e], g.k, g.sparsity_coeff.get(arch, [None]), lr=cfg.lr,
                                   batch_size=cfg.batch_size, seed=cfg.seed):
                        old = plans.setdefault((hook, tc.label), SAEPlan(hook, tc.label, tc, tokens))
                        where.setdefault((hook, tc.label), i)
                        if old.tokens != tokens:
                            first = where[(hook, tc.label)]
                            raise ConfigError(
                                f"{cfg.source or '<config>'}: [[grid]] #{i + 1} plans {tc.label} at {hook} with "
                                f"train_tokens = {tokens}, [[grid]] #{first + 1} with {old.tokens}; expected one "
                                "budget per SAE (leave the hook out of one grid, or give both the same train_tokens)")
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
    per_hook = (cfg.max_train_tokens + cfg.heldout_tokens) * d_model * 4
    size = max(1, training_run.ACTIVATION_MEMORY_BYTES // max(per_hook, 1))
    return [list(hooks[i:i + size]) for i in range(0, len(hooks), size)]


def _folder(root: Path, plan: SAEPlan) -> Path:
    return root / "saes" / plan.hook / plan.label


def _train_request(cfg: SweepConfig, root: Path, jobs: list[TrainJob], tokens: int) -> TrainRequest:
    return TrainRequest(model=cfg.model, corpus=cfg.corpus, tokens=tokens, heldout_tokens=cfg.heldout_tokens,
                        context_size=cfg.context_size, jobs=jobs, device=cfg.device,
                        checkpoint_root=root / "saes" / ".checkpoints",
                        loss_recovered_tokens=cfg.eval.loss_recovered_tokens)


def _entry(cfg: SweepConfig, root: Path, plan: SAEPlan, d_model: int) -> SAEEntry:
    if plan.train is None:
        return identity_entry(d_model, cfg.model, plan.hook)
    trained = read_trained(_folder(root, plan))
    if trained is None:
        raise RuntimeError(f"{_folder(root, plan)}: SAE missing after training")  # run_training guarantees it
    return trained_entry(trained.sae, plan.label, plan.hook, _folder(root, plan), trained.key,
                         training=trained.training, reconstruction=trained.reconstruction,
                         loss_recovered=trained.loss_recovered)


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

    def __init__(self, cfg: SweepConfig, root: Path, log: Callable[[str], Any] = _log.info, progress: bool = True,
                 lm: LoadedModel | None = None) -> None:
        # `auto` resolved (and said) once per process: the model and the SAEs trained here then share one device.
        cfg = dataclasses.replace(cfg, device=require_device(cfg.device))
        self.cfg, self.root, self.log, self.progress = cfg, root, log, progress
        self.store = ResultsStore(root)
        self.lm = lm or load_model(cfg.model, device=cfg.device, dtype=model_torch_dtype(cfg.eval.model_dtype))
        self.plans = plan_saes(cfg, self.lm)
        self._pairs: dict[str, PreparedPairs] = {}
        self.evaluated = 0

    def pairs(self, spec: str) -> PreparedPairs:
        """A dataset loaded and selected once per process."""
        if spec not in self._pairs:
            self._pairs[spec] = prepare_pairs(spec, self.cfg.eval.max_pairs, self.cfg.eval.seed)
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
            # One training request per budget: SAEs with the same budget share the activations of a forward pass.
            for tokens in sorted({p.tokens for p in plans if p.train is not None}):
                jobs = [TrainJob(p.hook, p.train, _folder(self.root, p)) for p in plans
                        if p.train is not None and p.tokens == tokens]
                run_training(_train_request(self.cfg, self.root, jobs, tokens), log=self.log,
                             progress=self.progress, lm=self.lm)
            entries = [_entry(self.cfg, self.root, p, self.lm.d_model) for p in plans]
            for spec in self.cfg.datasets:
                data = self.pairs(spec)
                for readout in self.cfg.readouts:
                    evaluate(self.lm, self.cfg.model, entries, data, self.cfg.ps_eval_settings(readout),
                             cache_dir=self.root / "pair_activations", skip=self.store.has, on_record=self._put,
                             progress=self.progress)
        return self.evaluated - before


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
