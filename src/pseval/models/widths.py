"""Hook widths, measured by one forward pass of a single token: cheap enough to check every SAE against its hook
before the real forward passes start."""

from __future__ import annotations

from collections.abc import Sequence

from pseval.models.extract import extract_positions
from pseval.models.loading import LoadedModel


def hook_widths(lm: LoadedModel, hooks: Sequence[str]) -> dict[str, int]:
    """The width of each hook's activations, from one forward of a single token."""
    tok = lm.tokenizer
    first = tok.bos_token_id if tok.bos_token_id is not None else (tok.cls_token_id or 0)
    acts = extract_positions(lm, [[first]], [[0]], list(dict.fromkeys(hooks)))
    return {h: int(a.shape[-1]) for h, a in acts.items()}
