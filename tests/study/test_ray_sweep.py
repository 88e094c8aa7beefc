"""Sweeps beyond one process: one Ray task per hook (same store, same keys as a serial run; killed workers retried;
one GPU per task) and `--shard I/N` (N shards make the one run's store)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pseval.cli import main
from pseval.errors import ConfigError, DataFormatError, MissingResourceError
from pseval.files import temp_files
from pseval.study.ray_executor import RaySweepError, import_ray, task_device, task_resources
from pseval.study.sweep import run_sweep
from pseval.study.sweep_config import load_sweep_config
from pseval.study.units import parse_shard, shard_hooks
from tests.conftest import REPO, sweep_toml

pytestmark = pytest.mark.slow

N_CELLS = 12  # 4 hooks x (identity, topk, standard) x 1 dataset x 1 readout
STARTED = re.compile(r"^\[ray\] (?P<hook>\S+): started on \S+ pid (?P<pid>\d+), (?P<gpu>GPU \S+|no GPU), "
                     r"device (?P<device>\S+)$")


def _require_ray():
    try:
        return import_ray()
    except MissingResourceError:
        if os.environ.get("CI") == "true":
            pytest.fail("Ray is not installed (make install installs pseval[ray])")
        pytest.skip("Ray is not installed")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local cluster for this module: 2 CPUs and 2 declared GPUs; Ray's files and $HOME under the test's tmp."""
    ray = _require_ray()
    base = tmp_path_factory.mktemp("ray")  # short: Ray's socket paths must stay under 107 bytes
    # Workers import this module for the kill test's setup hook (inert until that test drops its marker file).
    env = {"HOME": str(base / "home"), "RAY_USAGE_STATS_ENABLED": "0", KILL_MARKER: str(base / "kill-once"),
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    (base / "home").mkdir()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, _temp_dir=str(base / "t"), log_to_driver=False,
             runtime_env={"worker_process_setup_hook": f"{__name__}.kill_mid_write_setup"})
    yield ray
    ray.shutdown()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def sweep_cfg(tmp_path_factory, tiny_gpt2_dir, wic_dev) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, name="tiny-ray"))
    return path


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory, sweep_cfg) -> Path:
    root = tmp_path_factory.mktemp("serial")
    run_sweep(load_sweep_config(sweep_cfg), root, log=lambda _: None, progress=False)
    return root


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory, ray_cluster, sweep_cfg) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("onray")
    lines: list[str] = []
    run_sweep(load_sweep_config(sweep_cfg), root, log=lines.append, progress=False, executor="ray")
    return root, lines


def _cells(root: Path) -> dict[str, dict]:
    out = {}
    for p in (root / "cells").glob("*.json"):
        rec = json.loads(p.read_text())
        assert rec["cell_id"] not in out, f"{rec['cell_id']} written twice"
        out[rec["cell_id"]] = {"file": p.name, "metrics": rec["eval_result_metrics"],
                               "details": rec["eval_result_details"], "sae": rec["sae_fingerprint"]}
    return out


def _all_temp_files(root: Path) -> list[Path]:
    return [p for d in [root, *root.rglob("*")] if d.is_dir() for p in temp_files(d)]


def _assert_same_store(got: Path, want: Path) -> None:
    a, b = _cells(got), _cells(want)
    assert len(b) == N_CELLS and set(a) == set(b)
    for cid in b:
        assert a[cid] == b[cid], cid  # same file name, metrics, per-pair details and trained-SAE fingerprint


# --- Ray ---------------------------------------------------------------------------------------------------------

def test_ray_sweep_gives_the_serial_results_with_one_gpu_per_task(ray_run, serial_run):
    root, lines = ray_run
    _assert_same_store(root, serial_run)
    assert sum(line.startswith("[cell] ") for line in lines) == N_CELLS  # each worker's cells reached the driver
    assert f"[sweep] {N_CELLS} cell(s) evaluated, 0 already in the store" in lines
    started = [m for m in map(STARTED.match, lines) if m]
    assert sorted(m["hook"] for m in started) == sorted({m["hook"] for m in started}) and len(started) == 4
    # Two GPUs declared on a CPU machine: every task holds exactly one, both are used, and the CPU-only torch
    # runs on the CPU instead of trying CUDA.
    assert {m["gpu"] for m in started} == {"GPU 0", "GPU 1"}
    assert {m["device"] for m in started} == {"cpu"}
    assert _all_temp_files(root) == []


KILL_MARKER = "PSEVAL_TEST_KILL_MARKER"


def kill_mid_write_setup() -> None:
    """Ray worker setup: the worker that takes the marker file (once) is SIGKILLed half-way through writing its
    task's second cell, after its first cell is in the store: a worker dying mid-task, mid-write."""
    import pseval.study.store as store_mod

    real = store_mod.write_atomic
    armed = False

    def write_atomic(path, write, binary=False, exclusive=False):  # type: ignore[no-untyped-def]
        nonlocal armed
        if not armed:
            try:
                Path(os.environ[KILL_MARKER]).unlink()
                armed = True
            except FileNotFoundError:
                pass
            return real(path, write, binary, exclusive)

        def half_then_die(fh) -> None:  # type: ignore[no-untyped-def]
            buf = io.StringIO()
            write(buf)
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        return real(path, half_then_die, binary, exclusive)

    store_mod.write_atomic = write_atomic


def test_a_killed_worker_is_retried_and_every_cell_is_written_once(ray_cluster, sweep_cfg, serial_run, tmp_path):
    Path(os.environ[KILL_MARKER]).touch()
    root = tmp_path / "run"
    lines: list[str] = []
    run_sweep(load_sweep_config(sweep_cfg), root, log=lines.append, progress=False, executor="ray")
    assert not Path(os.environ[KILL_MARKER]).exists()
    started = [m for m in map(STARTED.match, lines) if m]
    retried = {m["hook"] for m in started if sum(n["hook"] == m["hook"] for n in started) == 2}
    assert len(retried) == 1 and len(started) == 5, lines  # the killed task ran again, in another worker
    hook = retried.pop()
    assert len({m["pid"] for m in started if m["hook"] == hook}) == 2
    # The killed attempt's first cell stayed; the retry wrote the other two: each of the hook's cells once.
    assert sum(line.startswith(f"[cell] {hook} ") for line in lines) == 3
    assert f"[sweep] {N_CELLS} cell(s) evaluated, 0 already in the store" in lines
    assert not any("failed" in line for line in lines)
    _assert_same_store(root, serial_run)  # every cell once (checked in _cells), identical to the serial run
    assert _all_temp_files(root) == []  # the half-written temp file of the killed write is gone


def test_an_error_in_a_task_is_not_retried_and_reaches_the_caller(ray_cluster, sweep_cfg, tmp_path):
    text = sweep_cfg.read_text()
    hooks_line = next(line for line in text.splitlines() if line.startswith("hooks = "))
    text = text.replace(hooks_line, 'hooks = ["blocks.0.hook_attn_out"]')
    corpus = tmp_path / "vanishing-corpus.txt"
    corpus.write_text("a corpus that is there when the config is read\n")
    text = text.replace('corpus = "wordnet-definitions"', f'corpus = "file:{corpus}"')
    cfg = tmp_path / "bad-corpus.toml"
    cfg.write_text(text)
    loaded = load_sweep_config(cfg)  # checked at the edge: the file exists
    corpus.unlink()  # ... and is gone by the time the task reads it
    lines: list[str] = []
    with pytest.raises(DataFormatError, match="vanishing-corpus.txt: text file not found") as info:
        run_sweep(loaded, tmp_path / "run", log=lines.append, progress=False, executor="ray")
    assert not isinstance(info.value, RaySweepError)  # the task's own error, as a serial run would raise it
    assert sum(bool(STARTED.match(line)) for line in lines) == 1  # deterministic: not retried
    assert any(line.startswith("[ray] blocks.0.hook_attn_out: failed") for line in lines), lines


def test_a_second_run_from_the_cli_does_no_work_and_writes_nothing_outside(ray_run, sweep_cfg, tmp_path):
    """The config's `executor = "ray"`, pseval's own local cluster (CPU-only: one CPU per task)."""
    root, _ = ray_run
    before = {p.name: p.stat().st_mtime_ns for p in (root / "cells").glob("*.json")}
    cfg = tmp_path / "ray.toml"
    cfg.write_text('executor = "ray"\n' + sweep_cfg.read_text())
    home = tmp_path / "home"
    home.mkdir()
    tmp = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))  # short, for Ray's socket paths
    try:
        # A user's shell: none of the RAY_* variables the test's own cluster set in this process.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
        proc = subprocess.run([sys.executable, "-m", "pseval.cli", "sweep", str(cfg), "--out", str(root)],
                              capture_output=True, text=True, env=env, timeout=600)
        leftovers = sorted(str(p) for p in tmp.rglob("*"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stderr.splitlines()  # messages go to stderr (the pseval logger)
    local = [m for m in map(re.compile(r"^\[ray\] local cluster: \d+ CPU\(s\), (\d+) GPU\(s\)$").match, out) if m]
    assert len(local) == 1, out  # its own cluster, not the test's
    assert f"[sweep] 0 cell(s) evaluated, {N_CELLS} already in the store" in out
    assert not any(line.startswith(("[cell]", "[train]")) for line in out)
    if local[0][1] == "0":
        assert {m["gpu"] for m in map(STARTED.match, out) if m} == {"no GPU"}  # a CPU cluster: one CPU per task
    assert {p.name: p.stat().st_mtime_ns for p in (root / "cells").glob("*.json")} == before
    assert list(home.iterdir()) == [] and leftovers == []  # no $HOME/.ray token, the temp folder removed


def test_task_device_never_picks_cuda_without_a_gpu_torch_can_use():
    assert task_device("cpu", holds_gpu=True, cuda_available=True) == "cuda"
    assert task_device("cuda:3", holds_gpu=True, cuda_available=True) == "cuda"  # its own GPU, not device 3
    assert task_device("cuda", holds_gpu=True, cuda_available=False) == "cpu"
    assert task_device("cuda", holds_gpu=False, cuda_available=True) == "cpu"
    assert task_device("cpu", holds_gpu=False, cuda_available=False) == "cpu"
    assert task_device("auto", holds_gpu=True, cuda_available=True) == "cuda"
    assert task_device("auto", holds_gpu=False, cuda_available=True) == "cpu"  # no GPU of its own: not another's
    assert task_resources({"CPU": 8.0, "GPU": 4.0}) == {"num_gpus": 1}
    assert task_resources({"CPU": 8.0}) == {"num_cpus": 1}


def test_without_ray_the_executor_names_the_extra(monkeypatch, sweep_cfg, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MissingResourceError, match=r"pip install \"pseval\[ray\]\""):
        run_sweep(load_sweep_config(sweep_cfg), tmp_path / "run", executor="ray")
    assert not (tmp_path / "run").exists()  # named before the folder was claimed


def test_executor_settings_are_checked_and_do_not_change_the_folder_key(sweep_cfg, tmp_path):
    text = sweep_cfg.read_text()
    base = load_sweep_config(sweep_cfg)
    (tmp_path / "r.toml").write_text('executor = "ray"\nray_address = "auto"\n' + text)
    on_ray = load_sweep_config(tmp_path / "r.toml")
    assert (on_ray.executor, on_ray.ray_address) == ("ray", "auto")
    assert on_ray.settings() == base.settings()  # where it runs is not what it computes: one folder serves both
    (tmp_path / "bad.toml").write_text('executor = "dask"\n' + text)
    with pytest.raises(ConfigError, match=r"executor = \"dask\": expected 'serial' or 'ray'"):
        load_sweep_config(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="needs the ray executor"):
        run_sweep(base, tmp_path / "run", address="auto")
    assert not (tmp_path / "run").exists()  # refused before claiming the folder


# --- shards ------------------------------------------------------------------------------------------------------

def test_shards_run_one_after_another_make_the_one_runs_store(sweep_cfg, serial_run, tmp_path):
    root = tmp_path / "run"
    hooks = ["blocks.0.hook_attn_out", "blocks.1.hook_attn_out", "blocks.0.hook_resid_post",
             "blocks.1.hook_resid_post"]
    for i in range(3):  # 4 hooks over 3 shards: uneven on purpose
        res = CliRunner().invoke(main, ["sweep", str(sweep_cfg), "--out", str(root), "--shard", f"{i}/3"])
        assert res.exit_code == 0, res.output
        assert f"shard {i}/3 (0-based)" in res.output
        mine = shard_hooks(hooks, i, 3)
        assert {json.loads(p.read_text())["eval_config"]["hook_name"] for p in (root / "cells").glob("*.json")} \
            == {h for j in range(i + 1) for h in shard_hooks(hooks, j, 3)}
        assert res.output.count("[cell] ") == 3 * len(mine)
    _assert_same_store(root, serial_run)


def test_shard_syntax_is_0_based_and_checked():
    assert parse_shard("0/4") == (0, 4) and parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"):
        with pytest.raises(ConfigError, match="0 <= I < N"):
            parse_shard(bad)
    hooks = [f"h{i}" for i in range(7)]
    shards = [shard_hooks(hooks, i, 3) for i in range(3)]
    assert sorted(h for s in shards for h in s) == hooks and shard_hooks(hooks, 1, 3) == ["h1", "h4"]
