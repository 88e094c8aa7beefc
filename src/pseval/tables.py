"""Plain-text and Markdown tables of result rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def text_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Aligned plain-text table."""
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


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
