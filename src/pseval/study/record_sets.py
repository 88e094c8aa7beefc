"""The records a report is made of, from whatever holds them.

`pseval report` accepts, alone or several together:

* a sweep folder (`sweep.json` + `cells/*.json`) or an eval `--out` folder (a store without sweep.json): every
  record of its `cells/`;
* a SAEBench-style results folder: every `*_eval_results.json` under it (subfolders included) that is a PS-Eval
  result; other evals' results beside them (SAEBench keeps them in sibling folders) are passed over;
* a record file: one record, or a JSON list of records (as `pseval eval --json` writes them).

A folder that holds no PS-Eval record, or a file that is not one, is an error naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pseval.errors import ConfigError, DataFormatError
from pseval.ps_eval.record import EVAL_TYPE_ID, PSEvalRecord, read_record
from pseval.study.store import SWEEP_FILE, ResultsStore

SAEBENCH_SUFFIX = "_eval_results.json"


@dataclass
class RecordSet:
    """Records gathered from one or more paths, each record once, and the sweep they belong to when there is one."""

    records: list[PSEvalRecord]
    sources: list[Path]
    # The sweep's settings and its sweep.json, when the set is exactly one sweep folder (the report's header).
    sweep_settings: dict[str, Any] | None = None
    sweep_info: dict[str, Any] = field(default_factory=dict)
    duplicates: int = 0  # records seen twice (the same cell under two of the paths), kept once


def _load_json(path: Path) -> Any:
    """A file's JSON; unreadable or invalid JSON is an error naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"not a readable PS-Eval record ({' '.join(str(exc).split())})", str(path)) from exc


def _records_of(data: Any, path: Path) -> list[PSEvalRecord]:
    """The records of one file's JSON (a record or a list of them); anything else is an error naming the file."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise DataFormatError("an empty list: no PS-Eval record", str(path))
    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(data, list) else str(path)
        if not isinstance(item, dict) or item.get("eval_type_id") != EVAL_TYPE_ID:
            what = item.get("eval_type_id") if isinstance(item, dict) else type(item).__name__
            raise DataFormatError(f"not a PS-Eval record (eval_type_id {what!r}, expected {EVAL_TYPE_ID!r})", where)
        out.append(read_record(item, where))
    return out


def _read_folder(path: Path) -> list[PSEvalRecord]:
    """A store's cells, else every PS-Eval `*_eval_results.json` below the folder."""
    if (path / "cells").is_dir() or (path / SWEEP_FILE).is_file():
        records = list(ResultsStore(path).records())
        if not records:
            raise ConfigError(f"{path}: a results store with no finished cell yet (cells/ is empty): run or "
                              "finish `pseval sweep` / `pseval eval --out` first")
        return records
    files = sorted(p for p in path.rglob(f"*{SAEBENCH_SUFFIX}") if p.is_file())
    records, others = [], 0
    for f in files:
        data = _load_json(f)
        # Other evals' results sit beside PS-Eval's in a SAEBench folder: passed over, not refused.
        if isinstance(data, dict) and data.get("eval_type_id") not in (None, EVAL_TYPE_ID):
            others += 1
            continue
        records += _records_of(data, f)
    if not records:
        seen = f" ({others} result file(s) of other evals)" if others else ""
        raise ConfigError(f"{path}: no PS-Eval records here{seen}: expected a sweep or eval --out folder (cells/), "
                          f"or SAEBench-style `<sae>{SAEBENCH_SUFFIX}` files of PS-Eval")
    return records


def load_record_set(paths: Sequence[str | Path]) -> RecordSet:
    """Every record under the paths (see the module docstring), each cell once, in the order found."""
    if not paths:
        raise ConfigError("no results given: name a sweep or eval folder, a SAEBench results folder or record files")
    found: list[PSEvalRecord] = []
    sources = [Path(p) for p in paths]
    for p in sources:
        if p.is_dir():
            found += _read_folder(p)
        elif p.is_file():
            found += _records_of(_load_json(p), p)
        else:
            raise ConfigError(f"{p}: no such file or folder")
    records, seen = [], set()
    for rec in found:
        # The same cell reached twice (a folder and a file in it): once in the report, or its claims would count it
        # twice.
        key = (rec.cell_id, rec.eval_config.dataset, rec.sae_name)
        if key not in seen:
            seen.add(key)
            records.append(rec)
    rs = RecordSet(records, sources, duplicates=len(found) - len(records))
    if len(sources) == 1 and (sources[0] / SWEEP_FILE).is_file():
        store = ResultsStore(sources[0])
        rs.sweep_settings = store.settings()
        rs.sweep_info = json.loads((sources[0] / SWEEP_FILE).read_text(encoding="utf-8"))
    return rs


def distinct(values: Iterable[Any]) -> list[str]:
    """The distinct values as sorted strings (None left out)."""
    return sorted({str(v) for v in values if v is not None})
