"""A sweep killed with SIGKILL mid-way and restarted completes with every cell exactly once, no corrupt file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pseval.study.store import ResultsStore
from tests.conftest import sweep_toml

pytestmark = pytest.mark.slow


def test_sigkill_then_resume(tmp_path, tiny_gpt2_dir, wic_dev):
    cfg = tmp_path / "kill.toml"
    # Two datasets x two readouts: evaluation spans several panels, so the kill lands between cells.
    cfg.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, name="kill",
                              datasets=f'["wic:{wic_dev}", "wordnet:pos=v,max_per_lemma=2,equal_classes=1"]',
                              readouts='["template", "context"]'))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pseval.cli", "sweep", str(cfg), "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    cells_dir = out / "cells"
    deadline = time.time() + 300
    killed_with = -1
    while time.time() < deadline:
        n = len(list(cells_dir.glob("*.json"))) if cells_dir.is_dir() else 0
        if n >= 3:
            proc.send_signal(signal.SIGKILL)
            killed_with = n
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed_with >= 3 and proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    partial = len(list(cells_dir.glob("*.json")))
    assert partial < 4 * 3 * 4  # it really stopped part-way

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{partial} already in the store" in done.stderr  # a message: stderr, through the pseval logger
    files = sorted(cells_dir.glob("*.json"))
    assert len(files) == 4 * 3 * 4  # hooks x SAEs x (datasets x readouts)
    ids = [json.loads(f.read_text())["cell_id"] for f in files]
    assert len(ids) == len(set(ids))
    assert not list(cells_dir.glob("*.tmp")) and not list(cells_dir.glob(".*"))
    assert len(list(ResultsStore(out).records())) == len(files)
