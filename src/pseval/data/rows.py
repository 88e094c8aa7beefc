"""Pairs from table rows in the Hub layouts: super_glue/wic and the PS-Eval dataset (XL-WiC schema)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pseval.data.pairs import WordInContextPair, normalise_pos
from pseval.data.spans import find_word_spans, locate_word, span_covers_target
from pseval.data.text import REPEATED, clean_text, count_flags, read_text, split_lines
from pseval.errors import DataFormatError

__all__ = ["TABLE_FORMATS", "load_hub", "load_table", "locate_word", "pair_from_row", "pairs_from_rows"]

TABLE_FORMATS = ("jsonl", "json", "csv", "tsv")
_COLUMNS = ("PS-Eval columns (target_word, context_1, context_2, label) or super_glue columns (word, sentence1, "
            "sentence2, label)")


def _label(value: Any, source: str, line: int) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip()
    if s in ("1", "T", "True", "true"):
        return True
    if s in ("0", "F", "False", "false"):
        return False
    raise DataFormatError(f"label {value!r} is not 0/1 or T/F", source, line, "label")


def _offset(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{name}={value!r} is not an integer")


def _span(row: Mapping[str, Any], n: int) -> tuple[int, int] | None:
    loc = row.get(f"target_word_location_{n}")
    if isinstance(loc, str) and loc.strip().startswith("{"):
        loc = json.loads(loc)
    if isinstance(loc, Mapping) and ("char_start" in loc or "char_end" in loc):
        return _offset(loc.get("char_start"), "char_start"), _offset(loc.get("char_end"), "char_end")
    if row.get(f"start{n}") not in (None, "") or row.get(f"end{n}") not in (None, ""):
        return _offset(row.get(f"start{n}"), f"start{n}"), _offset(row.get(f"end{n}"), f"end{n}")
    return None


def _pair(row: Any, source: str, index: int, line: int) -> tuple[WordInContextPair, set[str]]:
    if not isinstance(row, Mapping):
        raise DataFormatError(f"row is a {type(row).__name__} ({str(row)[:60]!r}), expected an object with "
                              f"{_COLUMNS}", source, line)
    if "context_1" in row:
        keys = ("target_word", "context_1", "context_2", "label")
    elif "sentence1" in row:
        keys = ("word", "sentence1", "sentence2", "label")
    else:
        raise DataFormatError(f"row has neither {_COLUMNS}; found {sorted(str(k) for k in row)}", source, line)
    for k in keys:
        if row.get(k) is None or (isinstance(row.get(k), str) and not row[k].strip()):
            raise DataFormatError("missing value", source, line, k)
        if k != "label" and not isinstance(row[k], str):
            raise DataFormatError(f"value {row[k]!r} is a {type(row[k]).__name__}, expected text", source, line, k)
    word, c1, c2, label = (row[k] for k in keys)
    try:
        pos = normalise_pos(str(row.get("pos") or ""))
    except ValueError as exc:
        raise DataFormatError(str(exc), source, line, "pos") from exc
    word, _, flags = clean_text(word.strip())
    spans: list[tuple[int, int] | None] = []
    contexts = []
    for n, ctx in ((1, c1), (2, c2)):
        field = f"location_{n}"
        try:
            sp = _span(row, n)
        except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise DataFormatError(f"bad character offsets ({exc})", source, line, field) from exc
        if sp is not None and not (0 <= sp[0] < sp[1] <= len(ctx)):
            raise DataFormatError(f"character span {sp} outside a context of length {len(ctx)}", source, line, field)
        try:
            ctx, sp, f = clean_text(ctx, sp)
        except ValueError as exc:
            raise DataFormatError(str(exc), source, line, field) from exc
        flags |= f
        if sp is not None:
            if not span_covers_target(word, ctx[sp[0]:sp[1]]):
                raise DataFormatError(f"character span {sp} covers {ctx[sp[0]:sp[1]]!r}, which is not the target "
                                      f"{word!r} or an inflection of it", source, line, field)
        else:
            found = find_word_spans(word, ctx, pos)
            if len(found) > 1:
                flags.add(REPEATED)  # rule: the first occurrence is read
            sp = found[0] if found else None
        spans.append(sp)
        contexts.append(ctx)
    rid = row.get("id", row.get("idx", index))
    pair = WordInContextPair(target=word, pos=pos, context_1=contexts[0], context_2=contexts[1], span_1=spans[0],
                             span_2=spans[1], same_sense=_label(label, source, line), source_id=f"{source}:{rid}")
    return pair, flags


def pair_from_row(row: Mapping[str, Any], source: str, index: int, line: int | None = None) -> WordInContextPair:
    """Convert one row of either Hub layout; errors name the source, line (default: the row number) and field."""
    return _pair(row, source, index, index if line is None else line)[0]


def pairs_from_rows(rows: Iterable[Any], source: str, notes: dict[str, int] | None = None,
                    lines: list[int] | None = None) -> list[WordInContextPair]:
    """Convert rows in order (row numbers count from 1; `lines` gives file lines for errors); counts into `notes`."""
    out = []
    for i, r in enumerate(rows):
        pair, flags = _pair(r, source, i + 1, lines[i] if lines is not None else i + 1)
        count_flags(notes, flags)
        out.append(pair)
    return out


def table_format(path: str | Path) -> str:
    """The table format a file's suffix implies (csv when it says nothing)."""
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".tsv": "tsv"}.get(suffix, "csv")


def _json_rows(text: str, p: Path) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"not valid JSON ({exc.msg}, column {exc.colno})", p, exc.lineno) from exc
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        return data["data"]
    if isinstance(data, list):
        return data
    what = f"an object with keys {sorted(data)[:8]}" if isinstance(data, Mapping) else \
        f"a {type(data).__name__} ({str(data)[:40]!r})"
    raise DataFormatError(f"the file holds {what}; expected a list of row objects or {{\"data\": [rows]}}", p)


def load_table(path: str | Path, fmt: str | None = None,
               notes: dict[str, int] | None = None) -> list[WordInContextPair]:
    """Pairs from a local .jsonl, .json or .csv/.tsv file in either Hub layout (`fmt` overrides the suffix)."""
    p = Path(path)
    fmt = fmt or table_format(p)
    if fmt not in TABLE_FORMATS:
        raise DataFormatError(f"unknown table format {fmt!r}; known: {', '.join(TABLE_FORMATS)}", p)
    if not p.is_file():
        raise DataFormatError("file not found" if not p.exists() else "not a file", p)
    text = read_text(p, notes)
    lines: list[int] = []
    if fmt == "jsonl":
        rows = []
        for i, line in enumerate(split_lines(text)):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataFormatError(f"not valid JSON ({exc.msg})", p, i + 1) from exc
                lines.append(i + 1)
    elif fmt == "json":
        rows = _json_rows(text, p)
        lines = list(range(1, len(rows) + 1))  # no file lines inside one JSON document: row numbers
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
        rows = []
        try:
            for row in reader:
                if None in row:
                    n_header = len(reader.fieldnames or [])
                    raise DataFormatError(f"{len(row[None])} more field(s) than the header's {n_header}", p,
                                          reader.line_num)
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise DataFormatError(f"not valid {fmt.upper()} ({exc})", p, reader.line_num) from exc
    if not rows:
        raise DataFormatError("no pairs: the file holds no rows", p)
    return pairs_from_rows(rows, str(p), notes, lines)


def load_hub(name: str, split: str = "test", notes: dict[str, int] | None = None) -> list[WordInContextPair]:
    """Pairs from a Hugging Face dataset (`super_glue`/`wic` config or the PS-Eval dataset); needs `datasets`."""
    try:
        import datasets
    except ImportError as exc:
        raise DataFormatError("loading from the Hub needs the `datasets` package: pip install 'pseval[hub]'",
                              name) from exc
    if name in ("super_glue/wic", "super_glue"):
        ds = datasets.load_dataset("super_glue", "wic", split=split)
    else:
        ds = datasets.load_dataset(name, split=split)
    return pairs_from_rows(ds, f"hf:{name}:{split}", notes)
