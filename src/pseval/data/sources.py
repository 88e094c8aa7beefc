"""Pair-set specs as typed on the command line: `wic:PATH`, `wordnet[:opts]`, `hf:NAME[:split]`, `jsonl:PATH`."""

from __future__ import annotations

from pseval.data.pairs import WordInContextPair
from pseval.data.rows import load_hub, load_table
from pseval.data.wic import load_wic
from pseval.data.wordnet import find_wordnet
from pseval.data.wordnet_pairs import WordNetPairOptions, wordnet_pairs
from pseval.errors import ConfigError

SPEC_HELP = ("wic:PATH (a WiC split folder), wordnet[:pos=nv,max_per_lemma=N,coarse=1,balance=1,seed=S,dir=PATH], "
             "hf:NAME[:SPLIT] (Hub; needs network), jsonl:PATH, csv:PATH")


def parse_wordnet_options(opts: str) -> tuple[WordNetPairOptions, str | None]:
    """Parse `key=value,...` options of a wordnet spec."""
    kw: dict = {}
    location = None
    for item in filter(None, (s.strip() for s in opts.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"wordnet option {item!r} is not key=value")
        try:
            if key == "pos":
                kw["pos"] = tuple(value)
            elif key == "max_per_lemma":
                kw["max_pairs_per_lemma"] = int(value)
            elif key in ("coarse", "balance"):
                kw[key] = value.lower() in ("1", "true", "yes")
            elif key == "seed":
                kw["seed"] = int(value)
            elif key == "dir":
                location = value
            else:
                raise ConfigError(f"unknown wordnet option {key!r}; known: pos, max_per_lemma, coarse, balance, "
                                  "seed, dir")
        except ValueError as exc:
            raise ConfigError(f"wordnet option {key}={value!r} is not an integer") from exc
    bad = [p for p in kw.get("pos", ()) if p not in "nvar"]
    if bad:
        raise ConfigError(f"wordnet option pos has unknown tag(s) {bad}; use letters from n, v, a, r")
    return WordNetPairOptions(**kw), location


def load_pairs(spec: str) -> list[WordInContextPair]:
    """Load a pair set from its spec string (see SPEC_HELP)."""
    kind, sep, rest = spec.partition(":")
    if kind == "wic" and sep:
        return load_wic(rest)
    if kind == "wordnet":
        opts, location = parse_wordnet_options(rest)
        return wordnet_pairs(opts, find_wordnet(location))
    if kind == "hf" and sep:
        name, _, split = rest.partition(":")
        return load_hub(name, split or "test")
    if kind in ("jsonl", "csv", "tsv", "json") and sep:
        return load_table(rest)
    raise ConfigError(f"unknown data spec {spec!r}; expected one of: {SPEC_HELP}")
