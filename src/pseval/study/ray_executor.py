"""Sweeps on Ray: one task per hook, on its own GPU when the cluster has GPUs, retried when its worker dies.

The driver (study/sweep.py `run_sweep`) claims the folder and plans the hooks; each task here builds its own
`SweepRunner` (it loads the model itself) and runs `run_unit([hook])`: the hook's lock, the training of its missing
SAEs, the scoring of its cells, each cell written once to the store. A retried task therefore finds what its killed
attempt finished (trained SAEs, written cells) and does only the rest; results are the serial run's, under the same
keys. Every line a task logs (one per finished cell) reaches the driver's log through a Ray queue as it happens.

Ray is optional (`pip install "pseval[ray]"`): only this module imports it, and only when a Ray sweep runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pseval.errors import ConfigError, MissingResourceError, PsevalError
from pseval.logs import get_logger
from pseval.run_keys import key_id
from pseval.study.store import ResultsStore
from pseval.study.sweep_config import SweepConfig
from pseval.study.units import CELL_LINE, SweepRunner

_log = get_logger("ray")  # messages; a notebook silences them on logging.getLogger("pseval")

RAY_EXTRA = "pseval[ray]"
# A task whose worker process dies (killed, out of memory, node lost) is re-run this many times. A Python exception
# in a task is not retried: it is deterministic (bad data, bad config) and would fail again.
MAX_RETRIES = 3
TASK_NAME = "pseval-sweep"
# AF_UNIX socket paths are limited to 107 bytes; Ray's session folder and socket names take about 64 of them.
_RAY_SOCKET_SUFFIX = 64
_AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


class RaySweepError(PsevalError, RuntimeError):
    """A hook's Ray task failed for good (its error, or its worker died more than MAX_RETRIES times)."""


@dataclass(frozen=True)
class HookDone:
    """What one hook's task did and where it ran."""

    hook: str
    evaluated: int
    device: str
    cuda_visible_devices: str | None
    node: str
    pid: int
    started: float
    finished: float


@dataclass
class RayOutcome:
    """Every hook's final attempt, and the cells written by all attempts (killed ones included)."""

    hooks: list[HookDone]
    evaluated: int


def import_ray() -> Any:
    """The `ray` module, or a MissingResourceError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise MissingResourceError(f"the ray executor needs Ray: pip install \"{RAY_EXTRA}\" (Ray 2.60), or run "
                                   f"the sweep without --executor ray (serially, or with --shard I/N)") from exc
    return ray


def task_device(requested: str, holds_gpu: bool, cuda_available: bool) -> str:
    """The device of a task: its own GPU when Ray gave it one and torch has CUDA; else the config's device, with a
    CUDA device (or `auto`) replaced by the CPU (`cuda:3` could be another task's GPU; a CPU-only torch has none)."""
    if holds_gpu and cuda_available:
        return "cuda"  # index 0 of the task's CUDA_VISIBLE_DEVICES: the one GPU Ray assigned it
    # auto: a task uses only the GPU Ray gave it, so without one it is the CPU
    return "cpu" if requested.startswith("cuda") or requested == "auto" else requested


def _run_hook(cfg: SweepConfig, root: str, hook: str, cwd: str, lines: Any) -> HookDone:
    """The task: run one hook's unit in this worker, sending each log line to the driver's queue."""
    ray = import_ray()
    started = time.time()
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative model, corpus or data paths mean what they mean to the driver (shared filesystem)
    gpus = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
    device = task_device(cfg.device, bool(gpus), torch.cuda.is_available())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    node = socket.gethostname()

    def send(line: str) -> None:
        lines.put(line)

    gpu_note = f"GPU {visible}" if gpus else "no GPU"
    send(f"[ray] {hook}: started on {node} pid {os.getpid()}, {gpu_note}, device {device}")
    evaluated = _runner(dataclasses.replace(cfg, device=device), Path(root), send).run_unit([hook])
    return HookDone(hook, evaluated, device, visible, node, os.getpid(), started, time.time())


# A worker that runs several hooks of one sweep (Ray reuses CPU workers) keeps its runner: the model stays loaded
# and the datasets selected. One entry only, so a long-lived worker holds at most one model.
_RUNNER: dict[str, SweepRunner] = {}


def _runner(cfg: SweepConfig, root: Path, log: Callable[[str], Any]) -> SweepRunner:
    key = key_id({"cfg": cfg.to_dict(), "root": str(root)})
    if key not in _RUNNER:
        _RUNNER.clear()
        _RUNNER[key] = SweepRunner(cfg, root, log=log, progress=False)
    runner = _RUNNER[key]
    runner.log = log  # this task's queue
    runner.store = ResultsStore(root)  # what is on disk now (the folder may have been cleared since)
    return runner


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _local_temp_dir() -> Path:
    """A fresh folder for a local cluster's sessions, logs and sockets (short enough for Ray's socket paths)."""
    base = Path(tempfile.gettempdir())
    if len(str(base)) + len("/pseval-ray-xxxxxxxx") + _RAY_SOCKET_SUFFIX > 107:
        base = Path("/tmp")
    return Path(tempfile.mkdtemp(prefix="pseval-ray-", dir=base))


CONNECT_TIMEOUT_S = 10.0  # a cluster address that does not answer within this is refused, not waited on


def check_ray_address(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse a cluster address that nothing answers at (Ray itself retries for minutes): one TCP connect to its
    host and port, with a timeout. `auto`, or an address without a port, is left to Ray."""
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    host = host.strip("[]")  # [::1]:6379
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except TimeoutError:
        raise ConfigError(f"--address {address}: no answer from a Ray cluster within {timeout:g} s (connect timed "
                          "out); check the address and that the cluster is running") from None
    except OSError as exc:
        raise ConfigError(f"--address {address}: cannot reach a Ray cluster there ({exc.strerror or exc}); check "
                          "the address and that the cluster is running") from None


@contextlib.contextmanager
def ray_session(address: str | None, log: Callable[[str], Any]) -> Iterator[Any]:
    """Ray, connected: the caller's session if one is open; else the cluster at `address` (or $RAY_ADDRESS); else a
    local cluster (all CPUs and GPUs of this machine) that writes only under a fresh temp folder and is shut down
    afterwards."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray  # the caller's cluster (a notebook, a test): left running
        return
    address = address or os.environ.get("RAY_ADDRESS") or None  # Ray's own variable names a cluster too
    # No usage report; and a local cluster's auth token lives in the environment of this session's processes, not
    # in $HOME/.ray, unless the user set Ray's auth variables.
    env = {"RAY_USAGE_STATS_ENABLED": "0"}
    if address is None and not any(v in os.environ for v in _AUTH_VARS):
        env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    with _environ(env):
        if address is not None:
            check_ray_address(address)
            log(f"[ray] connecting to {address}")
            ray.init(address=address, log_to_driver=True)
            try:
                yield ray
            finally:
                ray.shutdown()
            return
        temp = _local_temp_dir()
        ok = False
        try:
            ray.init(include_dashboard=False, _temp_dir=str(temp), log_to_driver=True)
            res = ray.cluster_resources()
            log(f"[ray] local cluster: {res.get('CPU', 0):g} CPU(s), {res.get('GPU', 0):g} GPU(s)")
            yield ray
            ok = True
        finally:
            ray.shutdown()
            if ok:
                shutil.rmtree(temp, ignore_errors=True)
            else:
                log(f"[ray] the local cluster's logs are kept in {temp}")


def task_resources(cluster: dict[str, float]) -> dict[str, float]:
    """One GPU per task when the cluster has GPUs (tasks never share one), else one CPU."""
    return {"num_gpus": 1} if cluster.get("GPU", 0) >= 1 else {"num_cpus": 1}


def run_hooks_on_ray(cfg: SweepConfig, root: str | Path, hooks: Sequence[str], address: str | None = None,
                     log: Callable[[str], Any] = _log.info, max_retries: int = MAX_RETRIES) -> RayOutcome:
    """Run one Ray task per hook and wait for all, forwarding their lines to `log` as they come; the first hook that
    failed for good is raised once every other hook has finished (their cells are kept: re-running resumes)."""
    if not hooks:
        return RayOutcome([], 0)
    root = Path(root).resolve()  # workers may start elsewhere
    with ray_session(address, log) as ray:
        from ray.util.queue import Queue

        lines = Queue(actor_options={"num_cpus": 0})  # never waits for a CPU the tasks hold
        resources = task_resources(ray.cluster_resources())
        task = ray.remote(max_retries=max_retries, retry_exceptions=False, **resources)(_run_hook)
        pending = {task.options(name=f"{TASK_NAME}:{hook}").remote(cfg, str(root), hook, os.getcwd(), lines): hook
                   for hook in hooks}
        done: list[HookDone] = []
        failed: dict[str, BaseException] = {}
        evaluated = 0

        def forward() -> None:
            nonlocal evaluated
            n = lines.qsize()
            for line in lines.get_nowait_batch(n) if n else []:
                evaluated += line.startswith(CELL_LINE)
                log(line)

        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.25)
            forward()
            for ref in ready:
                hook = pending.pop(ref)
                try:
                    r = ray.get(ref)
                except Exception as exc:  # the task's own error, or its worker died max_retries + 1 times
                    failed[hook] = exc
                    log(f"[ray] {hook}: failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}")
                    continue
                done.append(r)
                log(f"[ray] {hook}: done, {r.evaluated} cell(s) evaluated in {r.finished - r.started:.1f}s "
                    f"({len(done)}/{len(hooks)} hooks)")
        forward()
        if failed:
            hook, err = next(iter(failed.items()))
            cause = getattr(err, "cause", None)  # a RayTaskError carries the task's own exception
            if isinstance(cause, PsevalError):
                raise cause
            raise RaySweepError(f"{len(failed)} of {len(hooks)} hook(s) failed on Ray ({', '.join(failed)}); the "
                                f"others' cells are in {root}, re-running resumes. {hook}: {err}") from err
        return RayOutcome(done, evaluated)
