"""Where a target word sits in its context: locate it (first occurrence, repeats counted) and check given spans.

Rules (documented in docs/data.md, "Text rules"):

* located spans: an exact whole-word, case-insensitive match first; failing that, a word whose base form (WordNet's
  detachment rules, any part of speech) is the target. When the target occurs more than once, the first occurrence
  is read and the pair is counted as `target_repeated`;
* given spans: the text under the span, without surrounding punctuation and a possessive 's, must be the target
  (case-insensitive) or an inflection of it: a form whose base forms under any part of speech, WordNet's irregular
  forms included, contain the target. Any part of speech because WiC tags gerunds as nouns ("rising" for rise.n).
"""

from __future__ import annotations

import re
from functools import lru_cache

from pseval.data.morphy import base_forms
from pseval.data.pairs import POS_TAGS
from pseval.errors import MissingResourceError

_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_EDGE = " \t\"'`.,;:!?()[]{}<>«»“”‘’"


def find_word_spans(word: str, context: str, pos: str = "") -> list[tuple[int, int]]:
    """Every whole-word occurrence of `word` in `context`; when there is none, every inflected occurrence."""
    exact = [m.span() for m in re.finditer(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", context,
                                           flags=re.IGNORECASE)]
    if exact or not word:
        return exact
    poses = (pos,) if pos else POS_TAGS
    w = word.lower()
    return [t.span() for t in _WORD_RE.finditer(context) if any(w in base_forms(t.group(0), p) for p in poses)]


def locate_word(word: str, context: str, pos: str = "") -> tuple[int, int] | None:
    """Span of `word` in `context`: the first exact whole-word match, else the first inflected form of it."""
    spans = find_word_spans(word, context, pos)
    return spans[0] if spans else None


@lru_cache(maxsize=1)
def _irregular_forms() -> dict[str, dict[str, tuple[str, ...]]]:
    from pseval.data.wordnet import find_wordnet, load_exceptions

    return load_exceptions(find_wordnet())


def _core(text: str) -> str:
    core = text.strip(_EDGE).lower()
    for suffix in ("'s", "’s"):
        if core.endswith(suffix) and len(core) > len(suffix):
            core = core[: -len(suffix)]
    return core


def span_covers_target(target: str, covered: str) -> bool:
    """Whether the text `covered` by a given span is `target` or an inflection of it (see the module's rules)."""
    t, core = target.strip().lower().replace("_", " "), _core(covered)
    if not core:
        return False
    if core == t or any(t in base_forms(core, p) for p in POS_TAGS):
        return True
    try:
        irregular = _irregular_forms()
    except MissingResourceError as exc:
        raise MissingResourceError(f"checking that {covered!r} is an inflection of {target!r} needs WordNet's "
                                   f"irregular forms: {exc}") from exc
    return any(t in base_forms(core, p, irregular) for p in POS_TAGS)
