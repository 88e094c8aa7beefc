"""A missing optional extra gets pseval's own one-line error naming what to install, not a ModuleNotFoundError."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["matplotlib"] = None  # as if the `plots` extra were not installed
from click.testing import CliRunner
from pseval.cli import main
res = CliRunner().invoke(main, ["report", sys.argv[1]])
print(res.exit_code)
print(res.output)
"""


def test_report_without_matplotlib_names_the_extra(tmp_path):
    (tmp_path / "run").mkdir()
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "run")], capture_output=True, text=True,
                         timeout=300)
    code, *lines = out.stdout.splitlines()
    text = "\n".join(lines)
    assert code == "2", out.stdout + out.stderr
    assert "pip install 'pseval[plots]'" in text and "Traceback" not in text and "ModuleNotFoundError" not in text
