"""What the wheel ships beside the Python modules."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_templates_ship_in_the_wheel(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("pseval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"pseval/templates/{p.name}" for p in (ROOT / "src/pseval/templates").iterdir()}
    assert shipped and shipped <= names
    assert {"pseval/templates/base.html", "pseval/templates/pseval.css"} <= shipped
