"""The package's face: `dir(pseval)` lists the public API before its lazy names are loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_dir_shows_the_public_api_without_loading_it():
    # A fresh interpreter: in this one another test may already have imported pseval.api.
    code = ("import sys, pseval; names = dir(pseval)\n"
            "print(' '.join(names)); print('pseval.api' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names, loaded = proc.stdout.splitlines()
    assert {"evaluate", "Evaluation", "__version__"} <= set(names.split())
    assert loaded == "False"  # dir() names them; it does not import torch to do it


def test_every_name_dir_shows_resolves():
    import pseval

    for name in pseval.__all__:
        assert getattr(pseval, name) is not None, name
    assert callable(pseval.evaluate) and pseval.evaluate.__module__ == "pseval.api"
    with pytest.raises(AttributeError, match="no_such"):
        pseval.no_such  # noqa: B018
