"""Plain-text and Markdown tables of result rows."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from contextvars import ContextVar, Token
from typing import Any


def fmt(v: Any) -> str:
    """Numbers to 3 decimals (integers as they are), None/NaN as '-'."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)


# The console width tables fit (set by the command line from the terminal; None: one line per row, however wide).
_WIDTH: ContextVar[int | None] = ContextVar("pseval_table_width", default=None)
MIN_WIDTH = 40  # narrower terminals get this width: a table of one key and one value column still fits


def set_table_width(width: int | None) -> Token[int | None]:
    """Fit every text table made from now on (in this context) into `width` columns; None: no limit (`--wide`).
    Returns the token that reset_table_width takes."""
    return _WIDTH.set(None if width is None else max(MIN_WIDTH, width))


def reset_table_width(token: Token[int | None]) -> None:
    """Back to the width before set_table_width."""
    _WIDTH.reset(token)


def table_width() -> int | None:
    """The width text tables fit into now (None: no limit)."""
    return _WIDTH.get()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "~"


def _lines(cells: list[list[str]], columns: Sequence[str], widths: list[int], idx: list[int], fit: bool
           ) -> list[str]:
    def line(values: Sequence[str]) -> str:
        text = "  ".join(values[i].ljust(widths[i]) for i in idx)
        return text.rstrip() if fit else text  # unfitted: byte for byte what it always was

    return [line(list(columns)), line(["-" * w for w in widths]), *(line(row) for row in cells)]


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int | None = None) -> str:
    """Aligned plain-text table. Wider than `width` (default: table_width(), the console's): the columns are split
    into panels one under the other, each led by the key column(s), every line within `width`."""
    width = table_width() if width is None else width
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    if width is None or sum(widths) + 2 * (len(widths) - 1) <= width or len(columns) < 2:
        if width is not None and widths and widths[0] > width:  # one column, too wide: clipped
            cells = [[_clip(v, width) for v in row] for row in cells]
            columns, widths = [_clip(columns[0], width)], [width]
        return "\n".join(_lines(cells, columns, widths, list(range(len(columns))), width is not None))
    # The key: the first column, and the second too when the first repeats (an SAE at several hooks) and both fit
    # in half the width. A lone key column takes at most a third of the width; every other column at most what is
    # left beside the key.
    first = [row[0] for row in cells]
    two = len(columns) > 2 and len(set(first)) < len(first) and widths[0] + 2 + widths[1] <= width // 2
    keys = [0, 1] if two else [0]
    if not two:
        widths[0] = min(widths[0], width // 3)
    key_w = sum(widths[k] for k in keys) + 2 * (len(keys) - 1)
    room = width - key_w - 2
    widths = [w if i in keys else min(w, room) for i, w in enumerate(widths)]
    columns = [_clip(c, w) for c, w in zip(columns, widths, strict=True)]
    cells = [[_clip(v, w) for v, w in zip(row, widths, strict=True)] for row in cells]
    panels: list[list[int]] = []
    used = key_w
    for i in range(len(keys), len(columns)):
        if not panels or used + 2 + widths[i] > width:
            panels.append(list(keys))
            used = key_w
        panels[-1].append(i)
        used += 2 + widths[i]
    return "\n\n".join("\n".join(_lines(cells, columns, widths, idx, True)) for idx in panels)


def fit_text(text: str, width: int | None = None) -> str:
    """Prose lines longer than `width` (default: table_width()) wrapped; table lines already fit."""
    width = table_width() if width is None else width
    if width is None:
        return text
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
        else:
            out.extend(textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False) or [""])
    return "\n".join(out)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], notes: Sequence[str] = ()) -> str:
    """HTML table (what a notebook displays), with notes under it: the fragment_table.html template."""
    from pseval.templating import render  # templating imports fmt from here

    return render("fragment_table.html", rows=rows, columns=columns, notes=[n for n in notes if n])


def with_ci(value: Any, low: Any, high: Any) -> str:
    """`0.563 [0.515, 0.611]`; the bare value when the interval is unknown."""
    if value is None:
        return "-"
    if low is None or high is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"
