"""`pseval sweep CONFIG`: train what is missing (one activation stream per hook), evaluate every cell, resume.

The work is planned as units of hooks. A unit locks its hooks, trains their missing SAEs through the one training
path, then scores every SAE at those hooks on every dataset and readout through the one evaluation pipeline, writing
each cell to the store as soon as it is done. A serial run groups as many hooks per unit as memory allows (they share
forward passes); a sharded or distributed run gives each unit one hook. Results are the same either way.

Where the units run: `serial` (this process, the default), `--shard I/N` (this process, a deterministic share of the
hooks: one SLURM array job each), or `ray` (one Ray task per hook, study/ray_executor.py; Ray is optional).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pseval.errors import ConfigError
from pseval.logs import get_logger
from pseval.models.loading import load_model
from pseval.study.store import ResultsStore
from pseval.study.sweep_config import EXECUTORS, SweepConfig
from pseval.study.units import SweepRunner, cells_planned, plan_saes, serial_units, shard_hooks, sweep_hooks

_log = get_logger("sweep")  # messages; a notebook silences them on logging.getLogger("pseval")


def run_sweep(cfg: SweepConfig, out: str | Path, overwrite: bool = False, log: Callable[[str], Any] = _log.info,
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
        from pseval.study.ray_executor import check_ray_address, import_ray, run_hooks_on_ray

        import_ray()  # a missing extra is named before anything is written
        check_ray_address(address or os.environ.get("RAY_ADDRESS"))  # so is an address nothing answers at
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
