"""The one pair subsampler: the same pairs, seed and `max_pairs` select the same pairs everywhere."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from pseval.data.pairs import WordInContextPair
from pseval.errors import ConfigError


@dataclass(frozen=True)
class PairSelection:
    """The pairs chosen for scoring and how: enough to name them in a record."""

    pairs: list[WordInContextPair]
    max_pairs: int | None
    seed: int
    available: int

    @property
    def ids_hash(self) -> str:
        """SHA-256 over the selected pairs' ids in order: which pairs were scored."""
        return pair_ids_hash(self.pairs)


def pair_ids_hash(pairs: Sequence[WordInContextPair]) -> str:
    """SHA-256 over the pairs' source ids, one per line."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(p.source_id.encode())
        h.update(b"\n")
    return h.hexdigest()


def select_pairs(pairs: Sequence[WordInContextPair], max_pairs: int | None, seed: int) -> PairSelection:
    """A seeded random subset of `max_pairs` pairs kept in file order (all pairs when max_pairs is None or larger)."""
    if max_pairs is not None and (isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs <= 0):
        raise ConfigError(f"max_pairs={max_pairs!r}: expected a positive integer (or none for all pairs)")
    if max_pairs is None or len(pairs) <= max_pairs:
        chosen = list(pairs)
    else:
        keep = sorted(random.Random(seed).sample(range(len(pairs)), max_pairs))
        chosen = [pairs[i] for i in keep]
    return PairSelection(chosen, max_pairs, seed, len(pairs))
