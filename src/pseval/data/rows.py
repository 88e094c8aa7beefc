"""Pairs from table rows in the Hub layouts: super_glue/wic and the PS-Eval dataset (XL-WiC schema)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pseval.data.morphy import base_forms
from pseval.data.pairs import POS_TAGS, WordInContextPair, normalise_pos
from pseval.errors import DataFormatError

_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")


def locate_word(word: str, context: str, pos: str = "") -> tuple[int, int] | None:
    """Span of `word` in `context`: an exact whole-word match first, then an inflected form of it."""
    m = re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", context, flags=re.IGNORECASE)
    if m:
        return m.span()
    poses = (pos,) if pos else POS_TAGS
    for tok in _WORD_RE.finditer(context):
        if any(word.lower() in base_forms(tok.group(0), p) for p in poses):
            return tok.span()
    return None


def _label(value: Any, where: tuple[str, int]) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip()
    if s in ("1", "T", "True", "true"):
        return True
    if s in ("0", "F", "False", "false"):
        return False
    raise DataFormatError(f"label {value!r} is not 0/1 or T/F", where[0], where[1], "label")


def _span(row: Mapping[str, Any], n: int) -> tuple[int, int] | None:
    loc = row.get(f"target_word_location_{n}")
    if isinstance(loc, str) and loc.strip().startswith("{"):
        loc = json.loads(loc)
    if isinstance(loc, Mapping) and "char_start" in loc:
        return int(loc["char_start"]), int(loc["char_end"])
    if row.get(f"start{n}") not in (None, "") and row.get(f"end{n}") not in (None, ""):
        return int(row[f"start{n}"]), int(row[f"end{n}"])
    return None


def pair_from_row(row: Mapping[str, Any], source: str, index: int) -> WordInContextPair:
    """Convert one row of either Hub layout; the error names the source, row and missing field."""
    where = (source, index)
    if "context_1" in row:
        keys = ("target_word", "context_1", "context_2", "label")
    elif "sentence1" in row:
        keys = ("word", "sentence1", "sentence2", "label")
    else:
        raise DataFormatError(f"row has neither PS-Eval columns (target_word, context_1, context_2, label) nor "
                              f"super_glue columns (word, sentence1, sentence2, label); found {sorted(row)}",
                              source, index)
    for k in keys:
        if row.get(k) in (None, ""):
            raise DataFormatError("missing value", source, index, k)
    word, c1, c2, label = (row[k] for k in keys)
    try:
        pos = normalise_pos(str(row.get("pos") or ""))
    except ValueError as exc:
        raise DataFormatError(str(exc), source, index, "pos") from exc
    word, c1, c2 = str(word).strip(), str(c1), str(c2)
    spans = []
    for n, ctx in ((1, c1), (2, c2)):
        try:
            sp = _span(row, n)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise DataFormatError(f"bad character offsets ({exc})", source, index, f"location_{n}") from exc
        if sp is not None and not (0 <= sp[0] < sp[1] <= len(ctx)):
            raise DataFormatError(f"character span {sp} outside a context of length {len(ctx)}", source, index,
                                  f"location_{n}")
        spans.append(sp if sp is not None else locate_word(word, ctx, pos))
    rid = row.get("id", row.get("idx", index))
    return WordInContextPair(target=word, pos=pos, context_1=c1, context_2=c2, span_1=spans[0], span_2=spans[1],
                             same_sense=_label(label, where), source_id=f"{source}:{rid}")


def pairs_from_rows(rows: Iterable[Mapping[str, Any]], source: str) -> list[WordInContextPair]:
    """Convert rows in order; row numbers in errors count from 1."""
    return [pair_from_row(r, source, i + 1) for i, r in enumerate(rows)]


def load_table(path: str | Path) -> list[WordInContextPair]:
    """Pairs from a local .jsonl, .json or .csv/.tsv file in either Hub layout."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("file not found", p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not valid UTF-8 (byte {exc.start})", p) from exc
    if p.suffix in (".jsonl", ".ndjson"):
        rows = []
        for i, line in enumerate(text.splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataFormatError(f"not valid JSON ({exc.msg})", p, i + 1) from exc
        return pairs_from_rows(rows, str(p))
    if p.suffix == ".json":
        data = json.loads(text)
        return pairs_from_rows(data if isinstance(data, list) else data.get("data", []), str(p))
    delim = "\t" if p.suffix == ".tsv" else ","
    return pairs_from_rows(list(csv.DictReader(text.splitlines(), delimiter=delim)), str(p))


def load_hub(name: str, split: str = "test") -> list[WordInContextPair]:
    """Pairs from a Hugging Face dataset (`super_glue`/`wic` config or the PS-Eval dataset); needs `datasets`."""
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as exc:
        raise DataFormatError("loading from the Hub needs the `datasets` package: pip install 'pseval[hub]'",
                              name) from exc
    if name in ("super_glue/wic", "super_glue"):
        ds = datasets.load_dataset("super_glue", "wic", split=split)
    else:
        ds = datasets.load_dataset(name, split=split)
    return pairs_from_rows(ds, f"hf:{name}:{split}")
