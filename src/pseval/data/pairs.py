"""The word-in-context pair record shared by every loader, and helpers over lists of pairs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from pseval.data.row_counts import RowCounts

POS_TAGS = ("n", "v", "a", "r")
_POS_ALIASES = {"n": "n", "noun": "n", "v": "v", "verb": "v", "a": "a", "adj": "a", "s": "a", "r": "r", "adv": "r",
                "": ""}


def normalise_pos(pos: str | None) -> str:
    """Map N/V/noun/verb/adj/adv and WordNet's letters to one of n, v, a, r ('' when unknown)."""
    key = (pos or "").strip().lower()
    if key not in _POS_ALIASES:
        raise ValueError(f"unknown part of speech {pos!r}; expected one of N, V, A, R (or noun, verb, adj, adv)")
    return _POS_ALIASES[key]


@dataclass(frozen=True, slots=True)
class WordInContextPair:
    """Two contexts sharing a target word, labelled same sense or different sense."""

    target: str
    pos: str
    context_1: str
    context_2: str
    span_1: tuple[int, int] | None
    span_2: tuple[int, int] | None
    same_sense: bool
    source_id: str

    def __post_init__(self) -> None:
        for ctx, span, name in ((self.context_1, self.span_1, "span_1"), (self.context_2, self.span_2, "span_2")):
            if span is not None and not (0 <= span[0] < span[1] <= len(ctx)):
                raise ValueError(f"{self.source_id}: {name}={span} is outside its context of length {len(ctx)}")

    def to_dict(self) -> dict:
        """Plain-JSON form of the record."""
        d = asdict(self)
        d["span_1"] = list(self.span_1) if self.span_1 else None
        d["span_2"] = list(self.span_2) if self.span_2 else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> WordInContextPair:
        """Inverse of to_dict."""
        return cls(target=d["target"], pos=d["pos"], context_1=d["context_1"], context_2=d["context_2"],
                   span_1=tuple(d["span_1"]) if d.get("span_1") else None,
                   span_2=tuple(d["span_2"]) if d.get("span_2") else None,
                   same_sense=bool(d["same_sense"]), source_id=d["source_id"])


@dataclass(frozen=True, slots=True)
class PairSet:
    """A loaded pair set: its canonical spec, the pairs, and what the text rules changed or dropped (counts)."""

    spec: str
    pairs: list[WordInContextPair]
    notes: dict[str, int]
    rows: RowCounts | None = None  # rows read from the files, kept, and dropped by reason

    def __len__(self) -> int:
        return len(self.pairs)


def dataset_hash(pairs: Iterable[WordInContextPair]) -> str:
    """A stable SHA-256 over the pairs' contents, recorded in results for reproducibility."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps(p.to_dict(), sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


def label_counts(pairs: Iterable[WordInContextPair]) -> dict[str, int]:
    """Counts of same-sense and different-sense pairs."""
    same = diff = 0
    for p in pairs:
        if p.same_sense:
            same += 1
        else:
            diff += 1
    return {"same": same, "different": diff}
