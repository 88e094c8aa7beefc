"""Word-in-context pairs built from WordNet's usage examples (same synset = same sense)."""

from __future__ import annotations

import itertools
import random
import re
from collections import defaultdict
from dataclasses import dataclass

from pseval.data.balance import balance_pairs
from pseval.data.morphy import base_forms
from pseval.data.pairs import POS_TAGS, WordInContextPair
from pseval.data.text import clean_text, count_flags
from pseval.data.wordnet import WordNetSource, find_wordnet, iter_synsets, load_exceptions

_WORD_RE = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")


@dataclass(frozen=True, slots=True)
class WordNetPairOptions:
    """Which WordNet pairs to build."""

    pos: tuple[str, ...] = POS_TAGS
    max_pairs_per_lemma: int | None = None  # per label, seeded sample
    coarse: bool = False  # different-sense pairs only across lexicographer files
    equal_classes: bool = False  # seeded subsample to equal class sizes
    seed: int = 0


@dataclass(frozen=True, slots=True)
class _Occurrence:
    synset_id: str
    lex_filenum: int
    example_index: int
    text: str
    span: tuple[int, int]
    flags: frozenset[str]  # text rules that fired on the example (WordNet 3.0 is ASCII: none)


def find_lemma_span(lemma: str, pos: str, text: str,
                    exceptions: dict[str, dict[str, tuple[str, ...]]] | None = None) -> tuple[int, int] | None:
    """Character span of the first word in `text` whose base form (inflections included) is `lemma`."""
    for m in _WORD_RE.finditer(text):
        if lemma in base_forms(m.group(0), pos, exceptions):
            return m.span()
    return None


def _occurrences(source: WordNetSource, pos: str) -> dict[str, list[_Occurrence]]:
    exc = load_exceptions(source)
    by_lemma: dict[str, list[_Occurrence]] = defaultdict(list)
    for syn in iter_synsets(source, pos):
        for lemma in dict.fromkeys(syn.lemmas):
            if "_" in lemma:  # collocations have no single target token
                continue
            for k, raw in enumerate(syn.examples):
                ex, _, flags = clean_text(raw)
                span = find_lemma_span(lemma, pos, ex, exc)
                if span is not None:
                    by_lemma[lemma].append(_Occurrence(syn.id, syn.lex_filenum, k, ex, span, frozenset(flags)))
    return by_lemma


def _pair(lemma: str, pos: str, a: _Occurrence, b: _Occurrence, same: bool,
          flagged: dict[str, frozenset[str]]) -> WordInContextPair | None:
    if a.text == b.text:  # one example filed under two synsets says nothing about sense
        return None
    sid = f"wordnet:{lemma}.{pos}:{a.synset_id}#{a.example_index}/{b.synset_id}#{b.example_index}"
    if a.flags or b.flags:
        flagged[sid] = a.flags | b.flags
    return WordInContextPair(target=lemma, pos=pos, context_1=a.text, context_2=b.text, span_1=a.span,
                             span_2=b.span, same_sense=same, source_id=sid)


def wordnet_pairs(options: WordNetPairOptions | None = None, source: WordNetSource | None = None,
                  notes: dict[str, int] | None = None) -> list[WordInContextPair]:
    """All (or capped, balanced) same-sense and different-sense pairs from WordNet's usage examples."""
    opts = options or WordNetPairOptions()
    src = source or find_wordnet()
    rng = random.Random(opts.seed)
    out: list[WordInContextPair] = []
    flagged: dict[str, frozenset[str]] = {}
    for pos in opts.pos:
        for lemma, occs in sorted(_occurrences(src, pos).items()):
            by_syn: dict[str, list[_Occurrence]] = defaultdict(list)
            for o in occs:
                by_syn[o.synset_id].append(o)
            same = [p for group in by_syn.values() for a, b in itertools.combinations(group, 2)
                    if (p := _pair(lemma, pos, a, b, True, flagged)) is not None]
            diff: list[WordInContextPair] = []
            for s1, s2 in itertools.combinations(list(by_syn), 2):
                g1, g2 = by_syn[s1], by_syn[s2]
                if opts.coarse and g1[0].lex_filenum == g2[0].lex_filenum:
                    continue
                diff.extend(p for a, b in itertools.product(g1, g2)
                            if (p := _pair(lemma, pos, a, b, False, flagged)) is not None)
            for group in (same, diff):
                if opts.max_pairs_per_lemma is not None and len(group) > opts.max_pairs_per_lemma:
                    keep = sorted(rng.sample(range(len(group)), opts.max_pairs_per_lemma))
                    group[:] = [group[i] for i in keep]
            out.extend(same)
            out.extend(diff)
    if opts.equal_classes:  # the `exact` rule: a seeded subsample of each class to the smaller class's size
        out = [out[i] for i in balance_pairs([p.same_sense for p in out], [True] * len(out), "exact", opts.seed)]
    for p in out:
        count_flags(notes, flagged.get(p.source_id, ()))
    return out
