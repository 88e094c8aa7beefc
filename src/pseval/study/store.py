"""The results store of a sweep or of `pseval eval --out DIR`: a folder owned by one config, one record file per
finished cell (`cells/`), written once. A sweep's folder is marked by `sweep.json`, an eval's by `eval.json`; both
hold the settings the folder belongs to, and cells are keyed alike (pseval.ps_eval.pipeline.cell_id)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pseval.errors import ConfigError, DataFormatError
from pseval.files import remove_stale_temp_files, write_atomic, write_json_atomic
from pseval.provenance import provenance
from pseval.ps_eval.record import PSEvalRecord, read_record
from pseval.run_keys import key_id, require_same

SWEEP_FILE = "sweep.json"
EVAL_FILE = "eval.json"
# Folders the store owns: `--overwrite` removes these and nothing else the folder may hold.
OWNED = ("cells", "saes", "pair_activations", "report", "locks")


def cell_file_stem(record: PSEvalRecord) -> str:
    """Readable file stem of a cell: hook, SAE, readout, then its id (which alone makes it unique)."""
    cfg = record.eval_config
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{cfg.hook_name}__{record.sae_name}__{cfg.readout}")
    return f"{stem}__{record.cell_id}"


class ResultsStore:
    """A folder holding its marker (`sweep.json`, or `eval.json` for an eval: the one config it belongs to) and
    `cells/*.json` (one record per cell). `kind` and `overwrite_option` only word the messages."""

    def __init__(self, root: str | Path, marker: str = SWEEP_FILE, kind: str = "sweep",
                 overwrite_option: str = "--overwrite") -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"
        self.marker = marker
        self.kind = kind
        self.overwrite_option = overwrite_option
        self._done: set[str] | None = None

    @classmethod
    def for_eval(cls, root: str | Path) -> ResultsStore:
        """The store of `pseval eval --out DIR`: marked by eval.json, `--force` discards it."""
        return cls(root, EVAL_FILE, "eval", "--force")

    def _ids_on_disk(self) -> set[str]:
        if not self.cells_dir.is_dir():
            return set()
        return {p.stem.rsplit("__", 1)[-1] for p in self.cells_dir.glob("*.json")}

    def has(self, cell_id: str) -> bool:
        """Whether the cell is finished (written by this or any other process)."""
        if self._done is None or cell_id not in self._done:
            self._done = self._ids_on_disk()
        return cell_id in self._done

    def put(self, record: PSEvalRecord) -> bool:
        """Write a finished cell once: False (and nothing written) when it is already there."""
        text = record.to_json()
        wrote = write_atomic(self.cells_dir / f"{cell_file_stem(record)}.json", lambda fh: fh.write(text),
                             exclusive=True)
        if self._done is not None:
            self._done.add(record.cell_id)
        return wrote

    def records(self) -> Iterator[PSEvalRecord]:
        """Every finished cell, in file-name order; a corrupt or old-layout file raises an error naming it."""
        if not self.cells_dir.is_dir():
            return
        for p in sorted(self.cells_dir.glob("*.json")):
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataFormatError(f"corrupt result file ({exc})", p) from exc
            yield read_record(data, str(p))

    def clean_temp(self) -> None:
        """Remove the debris of killed writes anywhere in the store; live writers' temp files are left alone."""
        if self.root.is_dir():
            for folder in [self.root, *(p for p in self.root.rglob("*") if p.is_dir())]:
                remove_stale_temp_files(folder)

    def settings(self) -> dict[str, Any] | None:
        """The settings of the config this folder belongs to, or None for a new folder."""
        p = self.root / self.marker
        if not p.is_file():
            return None
        data = self._marker(p)
        if "settings" not in data:
            raise DataFormatError(f"written by an older pseval (no `settings`); run the {self.kind} in a new --out "
                                  f"folder, or pass {self.overwrite_option} to discard this folder's results", p)
        return data["settings"]

    def _marker(self, p: Path) -> dict[str, Any]:
        """The marker file parsed; a truncated or foreign one is a DataFormatError naming it."""
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"not a readable {self.kind} file ({' '.join(str(exc).split())}): truncated or not "
                                  "pseval's; pseval will neither use nor delete this folder's contents, remove it "
                                  "yourself or use another --out folder", p) from exc
        if not isinstance(data, dict) or not ("settings" in data or "pseval_version" in data):
            raise DataFormatError(f"not a {self.kind} file written by pseval; pseval will neither use nor delete this "
                                  "folder's contents: use another --out folder", p)
        return data

    def _check_owned(self) -> None:
        """A folder without its marker is not a sweep's (an eval's): holding folders of the names a store writes, it
        is someone else's, and neither writing into them nor deleting them is pseval's to do."""
        if (self.root / self.marker).is_file():
            return
        foreign = [n for n in OWNED if (self.root / n).exists()]
        if foreign:
            raise ConfigError(f"{self.root}: not a {self.kind} folder (no {self.marker}), yet it holds "
                              f"{', '.join(f'{n}/' for n in foreign)}; pseval writes and deletes only its own "
                              f"{self.kind} folders: use another --out folder")

    def claim(self, settings: dict[str, Any], overwrite: bool = False) -> None:
        """Make this folder the config's, or check that it already is: a different config is refused with the
        differing fields (or, with `overwrite`, the folder's results are discarded first). A folder that is not a
        sweep's (no sweep.json, but folders of a sweep's names) is refused either way."""
        self._check_owned()
        if overwrite:
            self.clear()
        record = {"settings": settings, "settings_key": key_id(settings), **provenance()}
        if write_json_atomic(record, self.root / self.marker, exclusive=True):
            return  # first claim (exclusive: of two processes starting at once, one wins)
        old = self.settings()
        assert old is not None
        require_same(f"the {self.kind} folder {self.root}", old, json.loads(json.dumps(settings, default=str)),
                     f"This {self.kind} folder belongs to one config: run this config with another --out folder, or "
                     f"pass {self.overwrite_option} to discard this folder's results and start afresh.")

    def clear(self) -> None:
        """Remove everything the store owns (cells, SAEs, caches, report, sweep.json), nothing else: only in a
        folder whose sweep.json says pseval made it."""
        marker = self.root / self.marker
        if not marker.is_file():
            self._check_owned()
            return
        self._marker(marker)  # ownership proven before anything is deleted
        for name in OWNED:
            shutil.rmtree(self.root / name, ignore_errors=True)
        marker.unlink(missing_ok=True)
        self._done = None
