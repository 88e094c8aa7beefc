"""Exceptions with enough context (file, line, field) for a user to find the culprit."""

from __future__ import annotations

from pathlib import Path


class PsevalError(Exception):
    """Base class of every error pseval raises on purpose."""


class DataFormatError(PsevalError, ValueError):
    """A data file does not have the expected layout; names the file, line and field."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class MissingResourceError(PsevalError, FileNotFoundError):
    """A required data file or package is not installed; says how to install it."""


class HookError(PsevalError, KeyError):
    """Unknown or unsupported hook point; lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class SAEFormatError(PsevalError, ValueError):
    """An SAE file is missing keys, has wrong shapes or bad values."""


class ConfigError(PsevalError, ValueError):
    """A configuration value is invalid; names the field."""
