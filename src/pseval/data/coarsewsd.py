"""CoarseWSD-20 (Loureiro et al., 2021): sense-labelled sentences per word, turned into same/different-sense pairs.

Layout: one folder per word holding `classes_map.txt` (JSON: class number -> sense name), `{split}.data.txt` (the
word's token index, a tab, the uncased tokenised sentence) and `{split}.gold.txt` (the class number per line).
Tokens are split on any whitespace (the indices count that way: a few sentences hold double or non-breaking spaces)
and joined by single spaces, as in the WiC loader.

Pairs are built within a word: same class = same sense. For each word, n = min(max_per_word, same-sense candidates,
different-sense candidates) pairs of each label are drawn without replacement, seeded by (seed, word), so a word's
pairs do not depend on which other words are selected. A pair joins sentences i < j (data-file lines) and its id is
`coarsewsd:{split}:{word}:{i}-{j}`. Words come out in alphabetical order, each word's pairs sorted by (i, j).
"""

from __future__ import annotations

import json
import random
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from pseval.data.pairs import WordInContextPair
from pseval.data.row_counts import RowCounts
from pseval.data.spans import span_covers_target
from pseval.data.text import SPAN_NOT_TARGET, clean_text, count_flags, read_text, split_lines
from pseval.data.wic import token_char_spans
from pseval.errors import ConfigError, DataFormatError, MissingResourceError

SPLITS = ("train", "test")
DEFAULT_MAX_PER_WORD = 50


@dataclass(frozen=True, slots=True)
class CoarseWSDOptions:
    """Which CoarseWSD-20 pairs to build."""

    split: str = "test"
    max_per_word: int = DEFAULT_MAX_PER_WORD  # pairs per label per word
    words: tuple[str, ...] | None = None  # None: every word folder
    seed: int = 0


@dataclass(frozen=True, slots=True)
class SenseInstance:
    """One sense-labelled sentence: the word, its sense (class number and name), the context and the word's span."""

    word: str
    line: int
    sense: int
    sense_name: str
    context: str
    span: tuple[int, int]
    flags: frozenset[str]


def coarsewsd_words(root: str | Path) -> list[str]:
    """The word folders (those holding classes_map.txt) under a CoarseWSD-20 root, sorted."""
    r = Path(root)
    if not r.is_dir():
        raise MissingResourceError(f"{r}: CoarseWSD-20 folder not found (expected one folder per word, each with "
                                   "classes_map.txt and {train,test}.{data,gold}.txt)")
    words = sorted(d.name for d in r.iterdir() if (d / "classes_map.txt").is_file())
    if not words:
        raise MissingResourceError(f"{r}: no word folders with classes_map.txt; is this the CoarseWSD-20 root?")
    return words


def _classes(path: Path) -> dict[int, str]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"not valid JSON ({exc.msg})", path, exc.lineno) from exc
    if not isinstance(data, dict) or not data:
        raise DataFormatError(f"expected a JSON object mapping class numbers to sense names, found {data!r:.60}", path)
    out = {}
    for k, v in data.items():
        if not str(k).isdigit() or not isinstance(v, str):
            raise DataFormatError(f"entry {k!r}: {v!r} is not class number -> sense name", path, None, str(k))
        out[int(k)] = v
    return out


def load_coarsewsd_instances(root: str | Path, word: str, split: str = "test",
                             notes: dict[str, int] | None = None, rows: RowCounts | None = None
                             ) -> list[SenseInstance]:
    """The sense-labelled sentences of one word and split; the token index is authoritative, so a sentence whose
    indexed token does not look like the word is kept and counted as `span_not_target` (per sentence); `rows`
    counts the sentences read and kept."""
    folder = Path(root) / word
    classes = _classes(folder / "classes_map.txt")
    data_path, gold_path = folder / f"{split}.data.txt", folder / f"{split}.gold.txt"
    lines = split_lines(read_text(data_path, notes))
    gold = split_lines(read_text(gold_path, notes))
    if not lines:
        raise DataFormatError("no sentences: the file is empty", data_path)
    if len(gold) != len(lines):
        raise DataFormatError(f"{len(gold)} gold labels for {len(lines)} data lines in {data_path}", gold_path)
    out = []
    for i, (line, g) in enumerate(zip(lines, gold, strict=True)):
        lineno = i + 1
        idx, sep, sent = line.partition("\t")
        if not sep:
            raise DataFormatError("expected the token index, a tab, then the sentence", data_path, lineno)
        if not idx.strip().isdigit():
            raise DataFormatError(f"token index {idx!r} is not a non-negative integer", data_path, lineno, "index")
        toks = sent.split()
        ti = int(idx)
        if not toks:
            raise DataFormatError("empty sentence", data_path, lineno, "sentence")
        if ti >= len(toks):
            raise DataFormatError(f"token index {ti} out of range for a sentence of {len(toks)} tokens", data_path,
                                  lineno, "index")
        if not g.strip().isdigit() or int(g) not in classes:
            raise DataFormatError(f"class {g!r} is not one of {sorted(classes)} in classes_map.txt", gold_path,
                                  lineno)
        try:
            ctx, span, flags = clean_text(" ".join(toks), token_char_spans(toks)[ti])
        except ValueError as exc:
            raise DataFormatError(str(exc), data_path, lineno, "sentence") from exc
        assert span is not None
        if not span_covers_target(word, ctx[span[0]:span[1]]):  # a note, never a drop (see the WiC loader)
            count_flags(notes, [SPAN_NOT_TARGET])
        if rows is not None:
            rows.add(kept=True)
        out.append(SenseInstance(word, lineno, int(g), classes[int(g)], ctx, span, frozenset(flags)))
    return out


class _PairIndex:
    """Decodes the k-th same-class or cross-class pair of a word without listing the (quadratic) candidates."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        # Within class c, pairs (a, b), a < b, in lexicographic order; starts[c][a] indexes the first pair (a, a + 1).
        self.starts = [[a * n - a * (a + 1) // 2 for a in range(n)] for n in sizes]
        self.same_offsets = _offsets([n * (n - 1) // 2 for n in sizes])
        self.class_pairs = [(c, d) for c in range(len(sizes)) for d in range(c + 1, len(sizes))]
        self.diff_offsets = _offsets([sizes[c] * sizes[d] for c, d in self.class_pairs])

    @property
    def n_same(self) -> int:
        return self.same_offsets[-1]

    @property
    def n_diff(self) -> int:
        return self.diff_offsets[-1]

    def same(self, k: int) -> tuple[int, int, int]:
        """(class, a, b) with a < b."""
        c = bisect_right(self.same_offsets, k) - 1
        k -= self.same_offsets[c]
        a = bisect_right(self.starts[c], k) - 1
        return c, a, a + 1 + k - self.starts[c][a]

    def diff(self, k: int) -> tuple[int, int, int, int]:
        """(class c, class d > c, a in c, b in d)."""
        j = bisect_right(self.diff_offsets, k) - 1
        c, d = self.class_pairs[j]
        a, b = divmod(k - self.diff_offsets[j], self.sizes[d])
        return c, d, a, b


def _offsets(totals: list[int]) -> list[int]:
    out = [0]
    for t in totals:
        out.append(out[-1] + t)
    return out


def word_pairs(instances: list[SenseInstance], split: str, max_per_word: int, seed: int) -> tuple[
        list[WordInContextPair], list[frozenset[str]]]:
    """Balanced, capped, seeded pairs of one word's instances, with each pair's text-rule flags."""
    if not instances:
        return [], []
    word = instances[0].word
    by_class: dict[int, list[SenseInstance]] = {}
    for inst in instances:
        by_class.setdefault(inst.sense, []).append(inst)
    groups = [by_class[c] for c in sorted(by_class)]
    index = _PairIndex([len(g) for g in groups])
    n = min(max_per_word, index.n_same, index.n_diff)
    rng = random.Random(f"{seed}:{word}")
    chosen: list[tuple[SenseInstance, SenseInstance, bool]] = []
    for k in rng.sample(range(index.n_same), n):
        c, a, b = index.same(k)
        chosen.append((groups[c][a], groups[c][b], True))
    for k in rng.sample(range(index.n_diff), n):
        c, d, a, b = index.diff(k)
        chosen.append((groups[c][a], groups[d][b], False))
    ordered = [(x, y, same) if x.line < y.line else (y, x, same) for x, y, same in chosen]
    ordered.sort(key=lambda t: (t[0].line, t[1].line))
    pairs = [WordInContextPair(target=word, pos="n", context_1=x.context, context_2=y.context, span_1=x.span,
                               span_2=y.span, same_sense=same, source_id=f"coarsewsd:{split}:{word}:{x.line}-{y.line}")
             for x, y, same in ordered]
    return pairs, [x.flags | y.flags for x, y, _ in ordered]


def coarsewsd_pairs(root: str | Path, options: CoarseWSDOptions | None = None,
                    notes: dict[str, int] | None = None, rows: RowCounts | None = None) -> list[WordInContextPair]:
    """Same/different-sense pairs within each selected word of a CoarseWSD-20 root (see the module's rules);
    `rows` counts the selected words' sentences read and kept."""
    opts = options or CoarseWSDOptions()
    if opts.split not in SPLITS:
        raise ConfigError(f"coarsewsd split {opts.split!r} is not one of {', '.join(SPLITS)}")
    if opts.max_per_word < 1:
        raise ConfigError(f"coarsewsd max_per_word={opts.max_per_word} must be a positive integer")
    available = coarsewsd_words(root)
    words = available if opts.words is None else list(opts.words)
    unknown = [w for w in words if w not in available]
    if unknown:
        raise ConfigError(f"coarsewsd word(s) {', '.join(unknown)} not in {root}; known: {', '.join(available)}")
    out: list[WordInContextPair] = []
    for word in sorted(set(words)):
        pairs, flags = word_pairs(load_coarsewsd_instances(root, word, opts.split, notes, rows), opts.split,
                                  opts.max_per_word, opts.seed)
        for f in flags:
            count_flags(notes, f)
        out.extend(pairs)
    return out
