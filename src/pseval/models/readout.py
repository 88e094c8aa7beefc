"""Where to read a word's activation: prompts, the tokenizer's offsets, multi-token and length policies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from pseval.data.pairs import WordInContextPair
from pseval.errors import ConfigError
from pseval.models.tokenize import bos_to_prepend

Position = Literal["template", "context"]
MultiToken = Literal["first", "last", "mean", "drop"]
# truncate: a window centred on the target; skip: drop the pair; head: the first max_len tokens, as TransformerLens'
# to_tokens (truncate=True, the default of run_with_cache on a string) keeps them: what the reference runs on.
TooLong = Literal["truncate", "skip", "head"]
# offsets: the target is the token(s) under its character span. reference: gouki510/PS-Eval's string matching
# (see plan_reference_readout); template position and multi_token="drop" only, over-long prompts cut to their head.
Match = Literal["offsets", "reference"]
PAPER_TEMPLATE = "{context} The {target_word} means"


@dataclass(frozen=True, slots=True)
class ReadoutConfig:
    """How a pair's two contexts become prompts and which token(s) are read."""

    position: Position = "template"
    multi_token: MultiToken = "drop"
    too_long: TooLong = "truncate"
    template: str = PAPER_TEMPLATE
    match: Match = "offsets"

    def __post_init__(self) -> None:
        checks = (("position", self.position, Position), ("multi_token", self.multi_token, MultiToken),
                  ("too_long", self.too_long, TooLong), ("match", self.match, Match))
        for field, value, kind in checks:
            allowed = get_args(kind)
            if value not in allowed:
                raise ConfigError(f"readout {field}={value!r}; expected one of {', '.join(allowed)}")
        if "{context}" not in self.template or "{target_word}" not in self.template:
            raise ConfigError(f"readout template {self.template!r} must contain {{context}} and {{target_word}}")
        if self.match == "reference" and (self.position, self.multi_token) != ("template", "drop"):
            raise ConfigError(f"readout match='reference' reads the template with multi_token='drop'; got "
                              f"position={self.position!r}, multi_token={self.multi_token!r}")


# Why a context cannot be read; every reason is counted under its own name in the result record.
DropReason = Literal["target_not_in_context", "target_not_tokenized", "multi_token", "token_mismatch", "too_long",
                     "reference_no_template_token", "reference_single_occurrence"]


@dataclass(frozen=True, slots=True)
class ReadoutPlan:
    """Token ids of one prompt and the positions to read; `drop` names why it cannot be read."""

    input_ids: tuple[int, ...]
    positions: tuple[int, ...]
    target_ids: tuple[int, ...]
    drop: DropReason | None = None
    truncated: bool = False


def prompt_and_span(context: str, span: tuple[int, int] | None, target: str,
                    cfg: ReadoutConfig) -> tuple[str, tuple[int, int] | None]:
    """The text fed to the model and the character span of the word to read in it."""
    if cfg.position == "context":
        return context, span
    before, _, _ = cfg.template.partition("{target_word}")
    prefix = before.format(context=context)
    text = cfg.template.format(context=context, target_word=target)
    return text, (len(prefix), len(prefix) + len(target))


def _tokenise(tokenizer: Any, texts: Sequence[str], add_bos: bool) -> list[tuple[list[int], list[tuple[int, int]],
                                                                               list[int]]]:
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{type(tokenizer).__name__} is not a fast tokenizer; pseval needs character offsets")
    enc = tokenizer(list(texts), add_special_tokens=True, return_offsets_mapping=True,
                    return_special_tokens_mask=True, truncation=False)
    out = []
    for ids, offs, special in zip(enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"], strict=True):
        ids, offs, special = list(ids), [tuple(o) for o in offs], list(special)
        if (bos := bos_to_prepend(tokenizer, add_bos, ids)) is not None:
            ids, offs, special = [bos, *ids], [(0, 0), *offs], [1, *special]
        out.append((ids, offs, special))
    return out


def span_to_tokens(offsets: Sequence[tuple[int, int]], special: Sequence[int], span: tuple[int, int]) -> list[int]:
    """Indices of the non-special tokens whose character offsets overlap `span`."""
    s, e = span
    return [i for i, ((a, b), sp) in enumerate(zip(offsets, special, strict=True))
            if not sp and b > a and a < e and b > s]


def _truncate(ids: list[int], special: list[int], positions: list[int], max_len: int) -> tuple[list[int], list[int]]:
    """Keep leading/trailing special tokens and a window of content tokens centred on the target."""
    n_pre = 0
    while n_pre < len(ids) and special[n_pre]:
        n_pre += 1
    n_post = 0
    while n_post < len(ids) - n_pre and special[len(ids) - 1 - n_post]:
        n_post += 1
    budget = max_len - n_pre - n_post
    content = list(range(n_pre, len(ids) - n_post))
    lo_t, hi_t = positions[0], positions[-1]
    if hi_t - lo_t + 1 > budget:
        return [], []
    centre = (lo_t + hi_t) // 2
    start = max(n_pre, min(centre - budget // 2, len(ids) - n_post - budget))
    keep = list(range(n_pre)) + [i for i in content if start <= i < start + budget] + \
        list(range(len(ids) - n_post, len(ids)))
    remap = {old: new for new, old in enumerate(keep)}
    return [ids[i] for i in keep], [remap[p] for p in positions]


def token_strings(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each token decoded on its own, as TransformerLens' `to_str_tokens` gives them (" bank", "##s", "[CLS]")."""
    return tokenizer.batch_decode([[i] for i in ids], clean_up_tokenization_spaces=False)


def marks_word_start(tokenizer: Any) -> bool:
    """Whether a word-initial token's string carries its leading space (byte-level BPE) or not (WordPiece)."""
    ids = tokenizer(" a", add_special_tokens=False)["input_ids"]
    return any(s.startswith(" ") and s.strip() for s in token_strings(tokenizer, ids))


# Drop reasons of match="reference", in the order the reference meets them (plan_pairs reports the first).
REFERENCE_STAGE_1 = ("too_long", "target_not_tokenized", "multi_token", "reference_no_template_token")


def _head(ids: list[int], special: Sequence[int], max_len: int) -> list[int]:
    """Indices kept by a tokenizer's right truncation to max_len: the leading tokens, then any trailing special
    tokens (a [SEP] is added after truncation)."""
    n_post = 0
    while n_post < len(ids) - 1 and special[len(ids) - 1 - n_post]:
        n_post += 1
    return list(range(max_len - n_post)) + list(range(len(ids) - n_post, len(ids)))


def plan_reference_readout(ids: list[int], strs: Sequence[str], offsets: Sequence[tuple[int, int]],
                           special: Sequence[int], span: tuple[int, int], target: str,
                           space_marked: bool, max_len: int | None = None) -> ReadoutPlan:
    """The reference's token matching (gouki510/PS-Eval `calc_f_value`) on one template prompt.

    The template token T is `" " + target` where token strings carry a word-start space, else (WordPiece) the
    string of the template slot's single token. T must be one of the prompt's token strings. Walking the tokens
    after BOS/CLS, the first whose string contains the word (T without its space; case-sensitive) is found; the
    LAST position whose string equals that token's string is read, and the pair is dropped if it occurs only once
    (a pandas lookup raises there). `strs` are the token strings (token_strings). `target_ids` is the id at T's
    last position (compared across the two prompts).

    A prompt longer than `max_len` is cut to its first max_len tokens, as TransformerLens' to_tokens cuts what
    run_with_cache and to_str_tokens see; the matching then runs on what is left (the template slot is usually gone,
    so an occurrence of the word in the context is read, or the pair is dropped as the reference drops it).
    """
    slot = span_to_tokens(offsets, special, span)
    if not slot:
        return ReadoutPlan(tuple(ids), (), (), drop="target_not_tokenized")
    if space_marked:
        template_token, word = " " + target, target
    elif len(slot) == 1:
        template_token = word = strs[slot[0]]
    else:
        return ReadoutPlan(tuple(ids), (), (), drop="multi_token")
    truncated = max_len is not None and len(ids) > max_len
    if truncated:
        assert max_len is not None
        keep = _head(ids, special, max_len)
        ids, strs, special = [ids[i] for i in keep], [strs[i] for i in keep], [special[i] for i in keep]
    where = [i for i, s in enumerate(strs) if s == template_token]
    if not where:
        return ReadoutPlan(tuple(ids), (), (), drop="multi_token" if len(slot) > 1 else "reference_no_template_token")
    target_ids = (ids[where[-1]],)
    start = 1 if special and special[0] else 0
    first = next((i for i in range(start, len(strs)) if word in strs[i]), None)
    if first is None:  # unreachable while T holds the word; kept so the plan never reads a wrong token
        return ReadoutPlan(tuple(ids), (), target_ids, drop="reference_no_template_token")
    same = [i for i, s in enumerate(strs) if s == strs[first]]
    if len(same) == 1:
        return ReadoutPlan(tuple(ids), (), target_ids, drop="reference_single_occurrence")
    return ReadoutPlan(tuple(ids), (same[-1],), target_ids, truncated=truncated)


def plan_readouts(tokenizer: Any, items: Sequence[tuple[str, tuple[int, int] | None]], cfg: ReadoutConfig,
                  add_bos: bool, max_len: int) -> list[ReadoutPlan]:
    """Tokenise each (text, span) and choose the positions to read, or the reason it is dropped."""
    plans = []
    space_marked = cfg.match == "reference" and marks_word_start(tokenizer)
    for (ids, offs, special), (text, span) in zip(_tokenise(tokenizer, [t for t, _ in items], add_bos), items,
                                                  strict=True):
        if span is None:
            plans.append(ReadoutPlan(tuple(ids), (), (), drop="target_not_in_context"))
            continue
        if cfg.match == "reference":
            skip = len(ids) > max_len and cfg.too_long == "skip"
            plans.append(ReadoutPlan(tuple(ids), (), (), drop="too_long") if skip else
                         plan_reference_readout(ids, token_strings(tokenizer, ids), offs, special, span,
                                                text[span[0]:span[1]], space_marked,
                                                max_len if cfg.too_long == "head" else None))
            continue
        toks = span_to_tokens(offs, special, span)
        if not toks:
            plans.append(ReadoutPlan(tuple(ids), (), (), drop="target_not_tokenized"))
            continue
        target_ids = tuple(ids[i] for i in toks)
        if len(toks) > 1 and cfg.multi_token == "drop":
            plans.append(ReadoutPlan(tuple(ids), (), target_ids, drop="multi_token"))
            continue
        positions = {"first": toks[:1], "last": toks[-1:], "mean": toks, "drop": toks}[cfg.multi_token]
        truncated = False
        if len(ids) > max_len:
            if cfg.too_long == "skip":
                plans.append(ReadoutPlan(tuple(ids), (), target_ids, drop="too_long"))
                continue
            if cfg.too_long == "head":  # the first max_len tokens; a target past them cannot be read
                keep = _head(ids, special, max_len)
                remap = {old: new for new, old in enumerate(keep)}
                readable = all(p in remap for p in positions)
                ids, positions = ([ids[i] for i in keep], [remap[p] for p in positions]) if readable else ([], [])
            else:
                ids, positions = _truncate(ids, special, positions, max_len)
            if not ids:
                plans.append(ReadoutPlan((), (), target_ids, drop="too_long"))
                continue
            truncated = True
        plans.append(ReadoutPlan(tuple(ids), tuple(positions), target_ids, truncated=truncated))
    return plans


def plan_pairs(tokenizer: Any, pairs: Sequence[WordInContextPair], cfg: ReadoutConfig, add_bos: bool,
               max_len: int) -> list[tuple[ReadoutPlan, ReadoutPlan]]:
    """Plans for both contexts of every pair; a pair whose template target ids differ is dropped (token_mismatch).

    A dropped pair's reason is `a.drop or b.drop`; under match="reference" it is the first check the reference
    fails: template token of context 1, then of context 2, then the id comparison, then the walk of 1, then of 2.
    """
    items = []
    for p in pairs:
        items.append(prompt_and_span(p.context_1, p.span_1, p.target, cfg))
        items.append(prompt_and_span(p.context_2, p.span_2, p.target, cfg))
    flat = plan_readouts(tokenizer, items, cfg, add_bos, max_len)
    out = []
    for a, b in zip(flat[0::2], flat[1::2], strict=True):
        if cfg.match == "reference":
            out.append((_reference_pair_drop(a, b), b))
            continue
        # The reference reads one template token id in both prompts; in the context inflections may differ.
        if (a.drop is None and b.drop is None and cfg.position == "template" and cfg.multi_token == "drop"
                and a.target_ids != b.target_ids):
            a = ReadoutPlan(a.input_ids, (), a.target_ids, drop="token_mismatch")
        out.append((a, b))
    return out


def _reference_pair_drop(a: ReadoutPlan, b: ReadoutPlan) -> ReadoutPlan:
    """Plan `a` carrying the pair's drop reason in the order the reference's `calc_f_value` returns None."""
    stage_1 = [p.drop for p in (a, b) if p.drop in REFERENCE_STAGE_1]
    if stage_1:
        reason: DropReason | None = stage_1[0]
    elif a.target_ids != b.target_ids:
        reason = "token_mismatch"
    else:
        reason = a.drop or b.drop
    return a if reason == a.drop else replace(a, positions=(), drop=reason)
