"""What a result records about how it was made: versions, git commit, time."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from pseval import __version__


def git_commit() -> str | None:
    """Commit of the pseval source tree when it is a git checkout, else None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """Versions and time stamp recorded in every result file."""
    import transformers

    return {"pseval_version": __version__, "git_commit": git_commit(), "torch_version": torch.__version__,
            "transformers_version": transformers.__version__, "python": platform.python_version(),
            "datetime_epoch_millis": int(time.time() * 1000)}
