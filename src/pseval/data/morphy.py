"""WordNet's morphological rules: which base forms an inflected word may have (for matching lemmas in examples)."""

from __future__ import annotations

# WordNet's detachment rules (suffix, replacement) per POS, as documented in morphy(7WN).
DETACHMENT_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


def base_forms(word: str, pos: str, exceptions: dict[str, dict[str, tuple[str, ...]]] | None = None) -> set[str]:
    """Every candidate base form of `word` for `pos`: itself, irregular forms, and rule-based detachments."""
    w = word.lower()
    forms = {w}
    if exceptions is not None:
        forms.update(exceptions.get(pos, {}).get(w, ()))
    for suffix, repl in DETACHMENT_RULES.get(pos, ()):
        if w.endswith(suffix) and len(w) > len(suffix):
            forms.add(w[: len(w) - len(suffix)] + repl)
    return forms
