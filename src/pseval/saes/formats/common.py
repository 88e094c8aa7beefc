"""Helpers every SAE reader shares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pseval.errors import MissingResourceError, SAEFormatError


def read_json_object(path: Path, layout_hint: str) -> dict[str, Any]:
    """Parse a JSON object; a missing file says what the folder should hold, bad JSON names the file."""
    if not path.is_file():
        raise MissingResourceError(f"{path}: not found ({layout_hint})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SAEFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SAEFormatError(f"{path}: expected a JSON object")
    return data
