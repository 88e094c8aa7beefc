"""Pair-set specs as typed on the command line (`wic:PATH`, `wordnet[:opts]`, `coarsewsd:PATH[:opts]`, ...).

A spec is parsed and checked (kind, options, files) before anything heavy, and written in one canonical form so one
dataset has one identity: kinds in lower case, paths absolute and resolved (no trailing slash), options in a fixed
order with defaults left out (`pos` letters in n, v, a, r order; `seed` only where something is sampled;
`coarsewsd` always names its split).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pseval.data.coarsewsd import DEFAULT_MAX_PER_WORD, SPLITS, CoarseWSDOptions, coarsewsd_pairs, coarsewsd_words
from pseval.data.pairs import POS_TAGS, PairSet, WordInContextPair
from pseval.data.row_counts import RowCounts
from pseval.data.rows import TABLE_FORMATS, load_hub, load_table
from pseval.data.text import empty_notes
from pseval.data.wic import find_split_files, load_wic
from pseval.data.wordnet import find_wordnet
from pseval.data.wordnet_pairs import WordNetPairOptions, wordnet_pairs
from pseval.errors import ConfigError, MissingResourceError, PsevalError

DEFAULT_DATA = "wordnet:max_per_lemma=2,equal_classes=1"  # what `pseval eval` and `pseval.evaluate` score by default
SPEC_HELP = ("wic:PATH (a WiC split folder), "
             "wordnet[:pos=nvar,max_per_lemma=N,coarse=1,equal_classes=1,seed=S,dir=PATH], "
             f"coarsewsd:PATH[:split=train|test,max_per_word=N (default {DEFAULT_MAX_PER_WORD}),words=a+b,seed=S] "
             "(a CoarseWSD-20 root), hf:NAME[:SPLIT] (Hub; needs network), jsonl:PATH, json:PATH, csv:PATH, tsv:PATH")
KINDS = ("wic", "wordnet", "coarsewsd", "hf", *TABLE_FORMATS)
_WORDNET_KEYS = ("pos", "max_per_lemma", "coarse", "equal_classes", "seed", "dir")
_COARSEWSD_KEYS = ("split", "max_per_word", "words", "seed")
_HF_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")

# (notes, rows) -> pairs; a loader that reads rows itself counts them into `rows` (see pseval.data.row_counts).
Loader = Callable[[dict[str, int], RowCounts], list[WordInContextPair]]


class _Spec:
    """Error helpers bound to the spec being parsed, so every message quotes it."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"data spec {self.spec!r}: {message}")

    def options(self, kind: str, text: str, known: tuple[str, ...]) -> dict[str, str]:
        out: dict[str, str] = {}
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            key, sep, value = (s.strip() for s in item.partition("="))
            if not sep:
                raise self.error(f"{kind} option {item!r} is not key=value; known keys: {', '.join(known)}")
            if key not in known:
                raise self.error(f"unknown {kind} option {key!r}; known: {', '.join(known)}")
            if key in out:
                raise self.error(f"{kind} option {key!r} is given twice")
            if not value:
                raise self.error(f"{kind} option {key!r} has no value")
            out[key] = value
        return out

    def integer(self, kind: str, key: str, value: str, minimum: int | None = None) -> int:
        try:
            n = int(value)
        except ValueError:
            raise self.error(f"{kind} option {key}={value!r} is not an integer") from None
        if minimum is not None and n < minimum:
            raise self.error(f"{kind} option {key}={n} must be at least {minimum}")
        return n

    def boolean(self, kind: str, key: str, value: str) -> bool:
        v = value.lower()
        if v not in _TRUE + _FALSE:
            raise self.error(f"{kind} option {key}={value!r} is not a boolean (1/0, true/false, yes/no)")
        return v in _TRUE

    def path(self, kind: str, text: str, what: str) -> Path:
        if not text.strip():
            raise self.error(f"{kind} needs a {what}")
        if "\x00" in text:
            raise self.error(f"{kind} {what} {text!r} holds a NUL character")
        try:
            return Path(text.strip()).expanduser().resolve()
        except (OSError, RuntimeError) as exc:
            raise self.error(f"{kind} {what} {text!r} cannot be resolved ({exc})") from exc


def _wic(s: _Spec, rest: str) -> tuple[str, Loader]:
    p = s.path("wic", rest, "PATH (a split folder or a <split>.data.txt file)")
    data, _, _ = find_split_files(p)
    target = p if p.is_dir() else data
    if not p.is_dir():  # a folder and the data file it picks name one dataset: keep the folder
        try:
            if find_split_files(data.parent)[0] == data:
                target = data.parent
        except PsevalError:
            pass
    return f"wic:{target}", lambda notes, rows: load_wic(target, notes=notes, rows=_unit(rows, "lines"))


def _wordnet(s: _Spec, rest: str) -> tuple[str, Loader]:
    o = s.options("wordnet", rest, _WORDNET_KEYS)
    letters = o.get("pos", "".join(POS_TAGS)).lower()
    bad = sorted({c for c in letters if c not in POS_TAGS})
    if bad:
        raise s.error(f"wordnet option pos has unknown tag(s) {bad}; use letters from n, v, a, r")
    pos = tuple(p for p in POS_TAGS if p in letters)
    cap = s.integer("wordnet", "max_per_lemma", o["max_per_lemma"], 1) if "max_per_lemma" in o else None
    coarse = s.boolean("wordnet", "coarse", o["coarse"]) if "coarse" in o else False
    equal_classes = s.boolean("wordnet", "equal_classes", o["equal_classes"]) if "equal_classes" in o else False
    seed = s.integer("wordnet", "seed", o["seed"]) if "seed" in o else 0
    location = None
    if "dir" in o:
        location = s.path("wordnet", o["dir"], "dir")
        if not location.exists():
            raise MissingResourceError(f"data spec {s.spec!r}: wordnet dir {location} not found")
    parts = []
    if pos != POS_TAGS:
        parts.append(f"pos={''.join(pos)}")
    if cap is not None:
        parts.append(f"max_per_lemma={cap}")
    if coarse:
        parts.append("coarse=1")
    if equal_classes:
        parts.append("equal_classes=1")
    if seed and (cap is not None or equal_classes):  # the seed only matters where something is sampled
        parts.append(f"seed={seed}")
    if location is not None:
        parts.append(f"dir={location}")
    opts = WordNetPairOptions(pos=pos, max_pairs_per_lemma=cap, coarse=coarse, equal_classes=equal_classes, seed=seed)
    canonical = "wordnet:" + ",".join(parts) if parts else "wordnet"
    return canonical, lambda notes, rows: wordnet_pairs(opts, find_wordnet(location), notes)


def _coarsewsd(s: _Spec, rest: str) -> tuple[str, Loader]:
    path, opt_text = rest, ""
    head, sep, tail = rest.rpartition(":")
    if sep and ("=" in tail or not tail.strip()):
        path, opt_text = head, tail
    root = s.path("coarsewsd", path, "PATH (the CoarseWSD-20 root)")
    o = s.options("coarsewsd", opt_text, _COARSEWSD_KEYS)
    split = o.get("split", "test").lower()
    if split not in SPLITS:
        raise s.error(f"coarsewsd option split={o['split']!r} is not one of {', '.join(SPLITS)}")
    cap = s.integer("coarsewsd", "max_per_word", o["max_per_word"], 1) if "max_per_word" in o else \
        DEFAULT_MAX_PER_WORD
    seed = s.integer("coarsewsd", "seed", o["seed"]) if "seed" in o else 0
    available = coarsewsd_words(root)
    words: tuple[str, ...] | None = None
    if "words" in o:
        chosen = sorted({w.strip().lower() for w in o["words"].split("+") if w.strip()})
        unknown = [w for w in chosen if w not in available]
        if not chosen or unknown:
            raise s.error(f"coarsewsd option words={o['words']!r}: unknown word(s) {unknown or chosen}; "
                          f"known: {'+'.join(available)}")
        words = None if chosen == available else tuple(chosen)
    parts = [f"split={split}"]
    if cap != DEFAULT_MAX_PER_WORD:
        parts.append(f"max_per_word={cap}")
    if words is not None:
        parts.append(f"words={'+'.join(words)}")
    if seed:
        parts.append(f"seed={seed}")
    opts = CoarseWSDOptions(split=split, max_per_word=cap, words=words, seed=seed)
    return f"coarsewsd:{root}:{','.join(parts)}", lambda notes, rows: coarsewsd_pairs(root, opts, notes,
                                                                                    _unit(rows, "sentences"))


def _hf(s: _Spec, rest: str) -> tuple[str, Loader]:
    name, _, split = (p.strip() for p in rest.partition(":"))
    if not _HF_NAME.fullmatch(name):
        raise s.error(f"hf dataset name {name!r} is not OWNER/NAME or NAME")
    if name == "super_glue":
        name = "super_glue/wic"
    split = split or "test"
    if not re.fullmatch(r"[\w.\[\]:%+-]+", split):
        raise s.error(f"hf split {split!r} is not a split name (e.g. test, train, validation[:50%])")
    return f"hf:{name}:{split}", lambda notes, rows: load_hub(name, split, notes)


def _table(s: _Spec, kind: str, rest: str) -> tuple[str, Loader]:
    p = s.path(kind, rest, "PATH")
    if not p.exists():
        raise MissingResourceError(f"data spec {s.spec!r}: {p}: file not found")
    if not p.is_file():
        raise s.error(f"{p} is not a file")
    return f"{kind}:{p}", lambda notes, rows: load_table(p, kind, notes)


def _parse(spec: str) -> tuple[str, Loader]:
    s = _Spec(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"empty data spec {spec!r}; expected one of: {SPEC_HELP}")
    kind, sep, rest = spec.strip().partition(":")
    kind = kind.strip().lower()
    try:
        if kind == "wordnet":
            return _wordnet(s, rest)
        if kind not in KINDS:
            raise ConfigError(f"unknown data spec {spec!r} (kind {kind!r}); expected one of: {SPEC_HELP}")
        if not sep:
            raise s.error(f"{kind} needs {'a NAME' if kind == 'hf' else 'a PATH'} after the colon")
        if kind == "wic":
            return _wic(s, rest)
        if kind == "coarsewsd":
            return _coarsewsd(s, rest)
        if kind == "hf":
            return _hf(s, rest)
        return _table(s, kind, rest)
    except PsevalError:
        raise
    except (OSError, ValueError) as exc:  # e.g. a path too long for the file system
        raise s.error(f"cannot use it ({exc})") from exc


def normalise_spec(spec: str) -> str:
    """The canonical form of a data spec, after checking its kind, options and files (nothing is loaded)."""
    return _parse(spec)[0]


def _unit(rows: RowCounts, unit: str) -> RowCounts:
    rows.unit = unit
    return rows


def load_pair_set(spec: str) -> PairSet:
    """Load a pair set with its canonical spec, the text-rule counts (see pseval.data.text) and the rows read."""
    canonical, load = _parse(spec)
    notes = empty_notes()
    rows = RowCounts()
    pairs = load(notes, rows)
    if rows.read == 0:  # tables refuse a bad row (one row, one pair); wordnet builds its pairs: nothing to drop
        rows.read = rows.kept = len(pairs)
        rows.unit = "rows" if not canonical.startswith("wordnet") else "pairs built"
    if not pairs:
        raise ConfigError(f"data spec {canonical!r} yields no pairs")
    return PairSet(spec=canonical, pairs=pairs, notes=notes, rows=rows)


def load_pairs(spec: str) -> list[WordInContextPair]:
    """Load a pair set from its spec string (see SPEC_HELP)."""
    return load_pair_set(spec).pairs
