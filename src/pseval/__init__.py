"""pseval: PS-Eval and standard metrics for sparse autoencoders on language-model activations."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("pseval")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from pseval.api import Evaluation, evaluate

# Loaded on first use, so `import pseval` stays light (no torch, no transformers).
_LAZY = {"evaluate": "pseval.api", "Evaluation": "pseval.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pseval' has no attribute {name!r}")


__all__ = ["Evaluation", "__version__", "evaluate"]


def __dir__() -> list[str]:
    """The public API too, though its lazy names are not loaded yet (tab completion, `dir(pseval)`)."""
    return sorted(set(globals()) | set(__all__))
