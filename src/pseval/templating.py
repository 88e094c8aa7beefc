"""Every HTML page and fragment pseval writes comes from one Jinja2 environment: the templates under
pseval/templates (package data), with autoescape on, so a value is escaped wherever it lands in a page."""

from __future__ import annotations

import base64
import math
from functools import lru_cache
from typing import Any

import jinja2

from pseval.neuronpedia import feature_url
from pseval.tables import fmt


def _num(x: float | None, digits: int = 3) -> str:
    """A short number; '-' for None and non-finite values."""
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _png_src(png: bytes) -> str:
    """A data: URL of PNG bytes (pages stay self-contained)."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one environment: package templates, autoescape on every template, undefined names an error."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("pseval", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, num=_num, png_src=_png_src)
    env.globals.update(feature_url=feature_url, zip=zip)
    return env


def render(template: str, **context: Any) -> str:
    """Render a package template with the given context."""
    return environment().get_template(template).render(**context)
