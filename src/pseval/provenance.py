"""What a result records about how it was made: versions, git commit, time."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch


def pseval_version() -> str:
    """The installed pseval's version (read from the package metadata, not from `pseval`: no arrow back up)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pseval")
    except PackageNotFoundError:  # a source tree without installation
        return "0.0.0+unknown"


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

    return {"pseval_version": pseval_version(), "git_commit": git_commit(), "torch_version": torch.__version__,
            "transformers_version": transformers.__version__, "python": platform.python_version(),
            "datetime_epoch_millis": int(time.time() * 1000)}
