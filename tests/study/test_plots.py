"""Figures: drawn with matplotlib's object API (importing pseval leaves the backend alone), PS-Eval vs L0 / width."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from pseval.ps_eval.rows import CellRow
from pseval.study import plots

# Import every pseval module, then report pyplot's presence and the backend (pyplot checked first: asking for the
# backend must not be what imports it).
IMPORT_ALL = """
import importlib, pkgutil, sys
import matplotlib
import pseval
skipped = []
for m in pkgutil.walk_packages(pseval.__path__, "pseval."):
    if m.name.endswith("__main__"):  # running the CLI is not importing it
        continue
    try:
        importlib.import_module(m.name)
    except ImportError:  # an optional extra (ray, ...) not installed here
        skipped.append(m.name)
import pseval.study.plots, pseval.study.report, pseval.study.inspect  # these three must import
print("pyplot" if "matplotlib.pyplot" in sys.modules else "no-pyplot")
print(matplotlib.get_backend())
"""


@pytest.mark.slow
def test_importing_pseval_never_switches_the_matplotlib_backend(tmp_path):
    env = {**os.environ, "MPLBACKEND": "svg", "MPLCONFIGDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["no-pyplot", "svg"], proc.stdout


def _row(hook: str, l0: float | None, d_sae: int | None, f1: float, spec: float, arch: str = "standard") -> CellRow:
    empty = np.zeros(0)
    return CellRow(hook=hook, layer=None, component=hook, sae=f"{hook}-{d_sae}", architecture=arch, expansion=1,
                   dataset="wic:x", readout="template", metrics={"f1": f1, "specificity": spec},
                   recon={} if l0 is None else {"l0": l0}, loss_recovered={}, counts={},
                   same_sense=empty.astype(bool), same_feature=empty.astype(bool), targets=[], pos="",
                   cos_enc=empty, cos_dec=empty, d_sae=d_sae)


def test_versus_size_draws_one_series_per_hook_and_skips_what_is_missing(monkeypatch):
    rows = [_row(h, 10.0 * w, 256 * w, 0.1 * w, 0.5) for h in ("a", "b") for w in (1, 2, 4)]
    drawn: list[list[str]] = []
    real = plots._png

    def spy(fig):  # the legend of each axis names the series: one per hook
        drawn.append([t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()])
        return real(fig)

    monkeypatch.setattr(plots, "_png", spy)
    for axis in ("l0", "width"):
        png = plots.versus_size(rows, axis, "t")
        assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn == [["a", "b", "a", "b"]] * 2
    # Without the value (no reconstruction L0, no d_sae) or with one SAE only: no figure, no error.
    assert plots.versus_size([_row("a", None, None, 0.3, 0.5)] * 3, "l0", "t") is None
    assert plots.versus_size([_row("a", None, None, 0.3, 0.5)] * 3, "width", "t") is None
    assert plots.versus_size([_row("a", 5.0, 512, 0.3, 0.5)], "width", "t") is None
    identity = [_row("a", 5.0 * i, 512 * i, 0.3, 0.5, arch="identity") for i in (1, 2)]
    assert plots.versus_size(identity, "l0", "t") is None  # the baseline is no point on a sparsity axis
