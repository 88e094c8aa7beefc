"""Run keys: every setting that changes a result, hashed, compared field by field before any work resumes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pseval.errors import ConfigError


def canonical_json(fields: Mapping[str, Any]) -> str:
    """Sorted, compact JSON: the same settings always give the same text."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)


def key_id(fields: Mapping[str, Any], length: int = 16) -> str:
    """Short SHA-256 of a key's canonical JSON."""
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:length]


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{name}."))
        else:
            out[name] = v
    return out


def key_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old value, new value) for every field that differs; nested tables as dotted names."""
    a, b = _flatten(old), _flatten(new)
    missing = object()
    out = []
    for name in sorted(set(a) | set(b)):
        va, vb = a.get(name, missing), b.get(name, missing)
        if canonical_json({"v": va}) != canonical_json({"v": vb}):
            out.append((name, None if va is missing else va, None if vb is missing else vb))
    return out


class SettingsMismatchError(ConfigError):
    """Work on disk was made with other settings; resuming would mix them."""

    def __init__(self, what: str, diff: list[tuple[str, Any, Any]], hint: str) -> None:
        self.diff = diff
        lines = "; ".join(f"{name}: {json.dumps(old, default=str)} there, {json.dumps(new, default=str)} now"
                          for name, old, new in diff)
        super().__init__(f"{what} was made with different settings ({lines}). {hint}")


def require_same(what: str, old: Mapping[str, Any], new: Mapping[str, Any], hint: str) -> None:
    """Raise SettingsMismatchError naming each differing field, old and new value."""
    diff = key_diff(old, new)
    if diff:
        raise SettingsMismatchError(what, diff, hint)
