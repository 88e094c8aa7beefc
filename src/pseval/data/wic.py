"""Loader for the official WiC layout: `<split>.data.txt` + `<split>.gold.txt` in one folder."""

from __future__ import annotations

from pathlib import Path

from pseval.data.pairs import WordInContextPair, normalise_pos
from pseval.data.row_counts import RowCounts
from pseval.data.spans import span_covers_target
from pseval.data.text import SPAN_NOT_TARGET, clean_text, count_flags, read_text, split_lines
from pseval.errors import DataFormatError, MissingResourceError


def token_char_spans(tokens: list[str]) -> list[tuple[int, int]]:
    """Character spans of whitespace tokens in `" ".join(tokens)`."""
    spans, pos = [], 0
    for tok in tokens:
        spans.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return spans


def _read_lines(path: Path, notes: dict[str, int] | None = None) -> list[str]:
    return split_lines(read_text(path, notes))


def find_split_files(folder: str | Path) -> tuple[Path, Path, str]:
    """Return (data file, gold file, split name) for a WiC split folder or a `*.data.txt` path."""
    p = Path(folder)
    if p.is_file() and p.name.endswith(".data.txt"):
        split = p.name[: -len(".data.txt")]
        return p, p.with_name(f"{split}.gold.txt"), split
    if not p.is_dir():
        raise MissingResourceError(f"{p}: WiC split folder not found (expected a folder holding <split>.data.txt "
                                   "and <split>.gold.txt)")
    candidates = sorted(p.glob("*.data.txt"))
    preferred = p / f"{p.name}.data.txt"
    if preferred.exists():
        data = preferred
    elif len(candidates) == 1:
        data = candidates[0]
    elif not candidates:
        raise MissingResourceError(f"{p}: no <split>.data.txt file in this folder")
    else:
        raise DataFormatError(f"several *.data.txt files ({', '.join(c.name for c in candidates)}); name one", p)
    split = data.name[: -len(".data.txt")]
    return data, data.with_name(f"{split}.gold.txt"), split


def load_wic(folder: str | Path, require_gold: bool = True, notes: dict[str, int] | None = None,
             rows: RowCounts | None = None) -> list[WordInContextPair]:
    """Read a WiC split; contexts are the token lists joined by single spaces, spans come from the token indices.

    Targets and contexts go through the text rules (pseval.data.text). The dataset's index is authoritative: every
    line becomes a pair. A line whose indexed token does not look like the target or an inflection of it (train line
    1557 points at the particle of "called round"; a contraction such as "'ve" for *have*) is kept and counted as
    `span_not_target` in `notes`; `rows` counts the lines read and kept.
    """
    data_path, gold_path, split = find_split_files(folder)
    lines = _read_lines(data_path, notes)
    if not lines:
        raise DataFormatError("no pairs: the file is empty", data_path)
    gold: list[str] | None = None
    if gold_path.exists():
        gold = _read_lines(gold_path, notes)
        if len(gold) != len(lines):
            raise DataFormatError(f"{len(gold)} gold labels for {len(lines)} data lines in {data_path}", gold_path)
    elif require_gold:
        raise MissingResourceError(f"{gold_path}: gold file not found (WiC test labels are not public; "
                                   "use the Hub layout or pass require_gold=False)")
    pairs = []
    for i, line in enumerate(lines):
        lineno = i + 1
        if not line.strip():
            raise DataFormatError("empty line", data_path, lineno)
        cols = line.split("\t")
        if len(cols) != 5:
            raise DataFormatError(f"expected 5 tab-separated columns (word, PoS, i1-i2, sentence 1, sentence 2), "
                                  f"found {len(cols)}", data_path, lineno)
        word, pos, idx, s1, s2 = cols
        word, _, flags = clean_text(word.strip())
        if not word:
            raise DataFormatError("missing value", data_path, lineno, "word")
        try:
            pos_n = normalise_pos(pos)
        except ValueError as exc:
            raise DataFormatError(str(exc), data_path, lineno, "PoS") from exc
        try:
            i1, i2 = (int(x) for x in idx.split("-"))
        except ValueError as exc:
            raise DataFormatError(f"index column {idx!r} is not of the form i1-i2", data_path, lineno,
                                  "index") from exc
        spans: list[tuple[int, int]] = []
        contexts = []
        covered = True
        for sent, ti, name in ((s1, i1, "sentence_1"), (s2, i2, "sentence_2")):
            toks = sent.split()
            if not toks:
                raise DataFormatError("empty sentence", data_path, lineno, name)
            if not 0 <= ti < len(toks):
                raise DataFormatError(f"token index {ti} out of range for a sentence of {len(toks)} tokens",
                                      data_path, lineno, name)
            try:
                ctx, span, f = clean_text(" ".join(toks), token_char_spans(toks)[ti])
            except ValueError as exc:
                raise DataFormatError(str(exc), data_path, lineno, name) from exc
            assert span is not None
            flags |= f
            covered = covered and span_covers_target(word, ctx[span[0]:span[1]])
            contexts.append(ctx)
            spans.append(span)
        label = True
        if gold is not None:
            g = gold[i].strip()
            if g not in ("T", "F"):
                raise DataFormatError(f"label {g!r} is not T or F", gold_path, lineno)
            label = g == "T"
        if not covered:  # a note, never a drop: the context readout reads the indexed token, the template the word
            flags.add(SPAN_NOT_TARGET)
        count_flags(notes, flags)
        if rows is not None:
            rows.add(kept=True)
        pairs.append(WordInContextPair(target=word, pos=pos_n, context_1=contexts[0], context_2=contexts[1],
                                       span_1=spans[0], span_2=spans[1], same_sense=label,
                                       source_id=f"wic:{split}:{lineno}"))
    return pairs
