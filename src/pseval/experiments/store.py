"""The results store of a sweep: one JSON file per finished cell, written atomically, read back in bulk."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pseval.errors import DataFormatError
from pseval.metrics.ps_eval.schema import write_json_atomic


@dataclass(frozen=True)
class CellKey:
    """What makes a cell: model, hook, SAE, dataset, readout (and multi-token and balance policies)."""

    model: str
    hook: str
    sae: str
    dataset: str
    readout: str
    multi_token: str
    balance: str

    @property
    def id(self) -> str:
        """Readable, filesystem-safe and unique file stem."""
        digest = hashlib.sha1(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()[:10]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.hook}__{self.sae}__{self.readout}")
        return f"{stem}__{digest}"


class ResultsStore:
    """A folder of cells (`cells/*.json`) plus the sweep's resolved config (`sweep.json`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"

    def path(self, key: CellKey) -> Path:
        """Where a cell's file lives."""
        return self.cells_dir / f"{key.id}.json"

    def has(self, key: CellKey) -> bool:
        """Whether the cell is finished (its file exists and parses)."""
        p = self.path(key)
        if not p.is_file():
            return False
        try:
            json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False  # cannot happen with atomic writes, but a hand-edited file is redone, not trusted
        return True

    def put(self, key: CellKey, record: dict[str, Any]) -> Path:
        """Write one finished cell atomically."""
        return write_json_atomic({**record, "cell": key.__dict__, "cell_id": key.id}, self.path(key))

    def cells(self) -> Iterator[dict[str, Any]]:
        """Every finished cell, in file-name order; a corrupt file raises an error naming it."""
        if not self.cells_dir.is_dir():
            return
        for p in sorted(self.cells_dir.glob("*.json")):
            try:
                yield json.loads(p.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataFormatError(f"corrupt result file ({exc})", p) from exc

    def leftover_temp_files(self) -> list[Path]:
        """Temp files of writes that were interrupted (harmless; removed by `clean_temp`)."""
        return sorted(self.cells_dir.glob("*.tmp")) if self.cells_dir.is_dir() else []

    def clean_temp(self) -> None:
        """Remove temp files of interrupted writes."""
        for p in self.leftover_temp_files():
            p.unlink(missing_ok=True)
