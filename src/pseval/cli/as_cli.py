"""The command line's own option checks, applied to values given from Python (`pseval.evaluate`): one set of rules
and one set of messages, whichever way a value comes in."""

from __future__ import annotations

from typing import Any

import click
import torch

from pseval.errors import ConfigError


def _as_text(name: str, value: Any, param: click.Parameter) -> str:
    """The value as the command line would have given it; a Python type the option cannot mean is refused."""
    t = param.type
    if isinstance(value, torch.device):
        value = str(value)
    if isinstance(t, click.types.IntParamType) or getattr(t, "name", "") in ("count", "bytes"):
        allowed: tuple[type, ...] = (int, str)  # counts and sizes: a whole number, or its text (2e5, 512MiB)
    elif isinstance(t, click.types.FloatParamType):
        allowed = (int, float, str)
    else:
        allowed = (str,)  # names: hooks, devices, specs, choices
    if isinstance(value, bool) or not isinstance(value, allowed):
        kinds = " or ".join(a.__name__ for a in allowed)
        raise ConfigError(f"{name}={value!r}: expected {kinds}, got {type(value).__name__}")
    return repr(value) if isinstance(value, float) else str(value)


def check_as_cli(command: str, values: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """{python name: (command-line parameter name, value)} -> {python name: checked value}; None passes unchecked
    (the default). A refused value raises ConfigError naming the Python parameter with the command line's reason."""
    from pseval.cli.app import main

    cmd = main.commands[command]
    params = {p.name: p for p in cmd.params}
    out: dict[str, Any] = {}
    for name, (cli_name, value) in values.items():
        if value is None:
            out[name] = None
            continue
        param = params[cli_name]
        try:
            out[name] = param.type.convert(_as_text(name, value, param), param, None)
        except click.BadParameter as exc:
            raise ConfigError(f"{name}={value!r}: {exc.message}") from None
    return out
