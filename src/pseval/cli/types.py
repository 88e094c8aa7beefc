"""Click parameter types that check a value where it enters, before any model loads: each error names the option,
the value and what is allowed (exit code 2)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import click

from pseval.errors import PsevalError

POSITIVE = click.IntRange(min=1)  # counts: pairs, steps, batch sizes, widths, k
SEED = click.IntRange(0, 2**32 - 1)  # numpy's range: every generator pseval seeds accepts it


class Checked(click.ParamType):
    """A string passed through one of pseval's own checks; its PsevalError becomes the option's usage error."""

    def __init__(self, name: str, check: Callable[[str], Any]) -> None:
        self.name = name
        self._check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The checked value, or a usage error naming the option."""
        try:
            return self._check(value)
        except PsevalError as exc:
            self.fail(" ".join(str(exc).split()), param, ctx)


_COUNT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class Count(click.ParamType):
    """A whole number >= `minimum`, also written as 1e6 or 200_000 (token budgets)."""

    name = "count"

    def __init__(self, minimum: int = 1) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The count as an int, or a usage error."""
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            text = str(value).strip().replace("_", "")
            x = float(text) if _COUNT_RE.fullmatch(text) else math.nan  # ASCII digits only; 1e400 is inf
            if not math.isfinite(x) or x != int(x):
                self.fail(f"{value!r} is not a whole number (e.g. 200000, 2e5 or 200_000)", param, ctx)
            n = int(x)
        if n < self.minimum:
            self.fail(f"{value!r} is below the minimum {self.minimum}", param, ctx)
        return n


class FiniteFloat(click.FloatRange):
    """A float in a range that is never NaN or infinite."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The float, or a usage error for NaN, inf and values out of range."""
        x = click.FLOAT.convert(value, param, ctx)  # parse first, the range after
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(x, param, ctx)


def _device(value: str) -> str:
    from pseval.devices import require_device

    return require_device(value)


def _model(value: str) -> str:
    from pseval.models.loading import check_model_source

    check_model_source(value)
    return value


def _data(value: str) -> str:
    from pseval.data.sources import normalise_spec

    normalise_spec(value)  # checks kind, options and files; the spec stays as given (it is canonicalised later)
    return value


def _corpus(value: str) -> str:
    from pseval.data.corpus import check_corpus

    return check_corpus(value)


def _hook(value: str) -> str:
    """One hook: a canonical name (blocks.<L>.<kind>) or a module path; globs are for sweep configs."""
    from pseval.errors import HookError
    from pseval.models.hooks import HOOK_KINDS, parse_hook_name

    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise HookError(f"{value!r}: expected a hook name such as blocks.3.hook_resid_post (no spaces)")
    if any(c in value for c in "*?["):
        raise HookError(f"{value!r}: name one hook here; patterns (blocks.*.hook_mlp_out) are for sweep configs")
    if value.startswith("blocks.") and parse_hook_name(value) is None:
        raise HookError(f"{value!r}: expected blocks.<L>.<{'|'.join(HOOK_KINDS)}|attn.hook_z> or a module path")
    return value


def _architecture(value: str) -> str:
    from pseval.errors import ConfigError
    from pseval.saes.registry import architectures

    known = sorted(set(architectures()) - {"identity"})
    if value not in known:
        raise ConfigError(f"{value!r} is not an architecture; allowed: {', '.join(known)}")
    return value


DEVICE = Checked("device", _device)
DEVICE_OPTION_HELP = "auto (CUDA when present, else the CPU, said in one line), cpu, cuda, cuda:N or mps"
MODEL = Checked("model", _model)
DATA_SPEC = Checked("data-spec", _data)
CORPUS = Checked("corpus", _corpus)
HOOK = Checked("hook", _hook)
ARCHITECTURE = Checked("architecture", _architecture)


class OutputPath(click.Path):
    """A path pseval will write (a folder, or a file when it ends in one of `file_suffixes`), checked to be creatable
    and writable before any work."""

    name = "path"

    def __init__(self, file_suffixes: tuple[str, ...] = ()) -> None:
        super().__init__(path_type=Path)
        self.file_suffixes = file_suffixes

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The Path, or a usage error saying why it cannot be written."""
        from pseval.files import check_writable

        p = cast(Path, super().convert(value, param, ctx))  # path_type=Path: click gives a Path
        is_dir = p.suffix not in self.file_suffixes
        try:
            check_writable(p, is_dir=is_dir)
            _probe(p if is_dir else p.parent)
        except PsevalError as exc:
            self.fail(str(exc), param, ctx)
        return p


def _probe(folder: Path) -> None:
    """Create and remove a temp file in the nearest existing folder: permission bits say nothing to root, or on a
    read-only or pseudo file system."""
    from pseval.files import OutputError, temp_path

    existing = folder
    while not existing.exists():
        existing = existing.parent
    probe = temp_path(existing / "write-probe")
    try:
        probe.open("xb").close()
    except OSError as exc:
        raise OutputError(f"{folder}: not writable ({exc.strerror or exc})") from exc
    probe.unlink(missing_ok=True)
