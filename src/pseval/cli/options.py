"""The command line's PS-Eval options, generated from the settings model: one option per `PSEvalSettings` field,
named after it (`top_k` -> `--top-k`), with its default, its description as help, and a click type from its
annotation and constraints, so a new setting is an option with no code here."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar, get_args, get_origin

import annotated_types
import click

from pseval.cli.types import CORPUS, Checked, Count, FiniteFloat
from pseval.metrics.encoding import parse_bytes
from pseval.ps_eval.settings import PSEvalSettings, SettingsFields

F = TypeVar("F", bound=Callable[..., Any])
# Command-line kinds a field may ask for (its json_schema_extra "cli"); otherwise the type follows the annotation.
_KINDS: dict[str, click.ParamType] = {"count": Count(0), "bytes": Checked("bytes", parse_bytes), "corpus": CORPUS}


def option_name(field: str) -> str:
    """The option of a settings field: `--top-k` for `top_k`."""
    return "--" + field.replace("_", "-")


def _bounds(metadata: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if isinstance(m, getattr(annotated_types, attr.capitalize())):
                out[attr] = getattr(m, attr)
    return out


def click_type(name: str) -> click.ParamType:
    """The click type of a settings field: a choice for a Literal, a range for a bounded number, its declared kind."""
    f = SettingsFields.model_fields[name]
    extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
    if isinstance(extra.get("cli"), str):
        return _KINDS[str(extra["cli"])]
    args = [a for a in get_args(f.annotation) if a is not type(None)]
    ann = args[0] if get_origin(f.annotation) is not Literal and len(args) == 1 else f.annotation
    if get_origin(ann) is Literal:
        return click.Choice([str(v) for v in get_args(ann)])
    b = _bounds(f.metadata)
    if ann is int:
        return click.IntRange(min=b.get("ge"), max=b.get("le"))
    if ann is float:
        low, high = b.get("gt", b.get("ge", -math.inf)), b.get("lt", b.get("le", math.inf))
        return FiniteFloat(min=low, max=high, min_open="gt" in b, max_open="lt" in b)
    return click.STRING


def settings_options(fields: Iterable[str] | None = None) -> Callable[[F], F]:
    """Click options for the settings fields (all by default), in the model's order."""
    names = list(SettingsFields.model_fields) if fields is None else list(fields)

    def decorate(command: F) -> F:
        for name in reversed(names):
            f = SettingsFields.model_fields[name]
            default = f.get_default()
            command = click.option(option_name(name), name, type=click_type(name), default=default,
                                   show_default=default is not None, help=f.description)(command)
        return command

    return decorate


def take_settings(params: dict[str, Any]) -> PSEvalSettings:
    """The settings from a command's parameters (removing them from `params`), checked by the settings model."""
    values = {name: params.pop(name) for name in list(params) if name in SettingsFields.model_fields}
    return PSEvalSettings(**values)
