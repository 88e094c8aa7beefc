"""Span-to-token mapping and readout plans on the real MiniLM tokenizer and a GPT-2 style BPE."""

from __future__ import annotations

import pytest

from pseval.data.pairs import WordInContextPair
from pseval.errors import ConfigError
from pseval.models.readout import (
    ReadoutConfig,
    ReadoutPlan,
    _reference_pair_drop,
    marks_word_start,
    plan_pairs,
    plan_readouts,
    prompt_and_span,
    token_strings,
)


def _tokens(tok, plan):
    return [tok.convert_ids_to_tokens(plan.input_ids[p]) for p in plan.positions]


def test_template_prompt_span():
    text, span = prompt_and_span("Room and board .", (9, 14), "board", ReadoutConfig())
    assert text == "Room and board . The board means"
    assert text[span[0]:span[1]] == "board" and span[0] > 16


def test_context_readout_inflected_and_punctuated(minilm):
    tok = minilm.tokenizer
    ctx = "Sound carries well, doesn't it?"
    items = [(ctx, (6, 13)), ("He nailed boards.", (10, 16))]
    plans = plan_readouts(tok, items, ReadoutConfig(position="context", multi_token="last"), False, 512)
    assert _tokens(tok, plans[0]) == ["carries"]
    assert _tokens(tok, plans[1]) == ["boards"]  # the '.' right after the word is not read
    assert plans[0].input_ids[0] == tok.cls_token_id


def test_multi_token_policies(minilm):
    tok = minilm.tokenizer
    word = "unhappiness"
    pieces = tok.tokenize(word)
    assert len(pieces) > 1
    item = [(f"Great {word} here", (6, 6 + len(word)))]
    first = plan_readouts(tok, item, ReadoutConfig(position="context", multi_token="first"), False, 512)[0]
    last = plan_readouts(tok, item, ReadoutConfig(position="context", multi_token="last"), False, 512)[0]
    mean = plan_readouts(tok, item, ReadoutConfig(position="context", multi_token="mean"), False, 512)[0]
    drop = plan_readouts(tok, item, ReadoutConfig(position="context", multi_token="drop"), False, 512)[0]
    assert _tokens(tok, first) == [pieces[0]]
    assert _tokens(tok, last) == [pieces[-1]]
    assert _tokens(tok, mean) == pieces
    assert drop.drop == "multi_token" and drop.positions == ()


def test_bpe_template_reads_space_prefixed_token_and_prepends_bos(bpe_tokenizer):
    tok = bpe_tokenizer
    pair = WordInContextPair("bank", "n", "the bank of the river", "a bank loan", (4, 8), (2, 6), False, "t:1")
    (a, b), = plan_pairs(tok, [pair], ReadoutConfig(position="template", multi_token="last"), True, 128)
    assert a.input_ids[0] == tok.bos_token_id
    read = tok.decode([a.input_ids[p] for p in a.positions])
    assert read.strip() == "bank"[-len(read.strip()):]  # the last piece of " bank"
    # The template occurrence, not the context one, is read: it is after the context's tokens.
    ctx_len = len(tok("the bank of the river")["input_ids"])
    assert a.positions[0] > ctx_len


def test_token_mismatch_only_in_template_drop(minilm):
    pair = WordInContextPair("carry", "v", "I carry it", "Sound carries well", (2, 7), (6, 13), True, "t:1")
    (a, b), = plan_pairs(minilm.tokenizer, [pair], ReadoutConfig(position="context", multi_token="drop"), False, 512)
    assert a.drop is None and b.drop is None


def test_too_long_truncate_and_skip(minilm):
    tok = minilm.tokenizer
    words = " ".join(f"w{i}" for i in range(300))
    ctx = f"{words} bank {words}"
    start = ctx.index(" bank ") + 1
    item = [(ctx, (start, start + 4))]
    skip = plan_readouts(tok, item, ReadoutConfig(position="context", too_long="skip"), False, 64)[0]
    assert skip.drop == "too_long"
    trunc = plan_readouts(tok, item, ReadoutConfig(position="context", too_long="truncate"), False, 64)[0]
    assert trunc.truncated and len(trunc.input_ids) == 64
    assert tok.convert_ids_to_tokens(trunc.input_ids[trunc.positions[0]]) == "bank"
    assert trunc.input_ids[0] == tok.cls_token_id and trunc.input_ids[-1] == tok.sep_token_id
    # head: what a tokenizer's right truncation keeps (the first 63 tokens and [SEP]); "bank" lies past it.
    assert plan_readouts(tok, item, ReadoutConfig(position="context", too_long="head"), False, 64)[0].drop == \
        "too_long"
    early = [(f"bank {words}", (0, 4))]
    head = plan_readouts(tok, early, ReadoutConfig(position="context", too_long="head"), False, 64)[0]
    want = tok(early[0][0], truncation=True, max_length=64)["input_ids"]
    assert head.truncated and list(head.input_ids) == want and head.positions == (1,)


def test_target_missing_from_context_is_counted(minilm):
    plans = plan_readouts(minilm.tokenizer, [("no word here", None)], ReadoutConfig(position="context"), False, 512)
    assert plans[0].drop == "target_not_in_context"


def test_bad_readout_config():
    with pytest.raises(ConfigError, match="multi_token"):
        ReadoutConfig(multi_token="middle")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="template"):
        ReadoutConfig(template="{context} means")


def _reference_plan(tok, context: str, word: str, add_bos: bool):
    pair = WordInContextPair(word, "n", context, context, None, None, True, "t:1")
    cfg = ReadoutConfig(match="reference", too_long="skip")
    (a, _b), = plan_pairs(tok, [pair], cfg, add_bos, 512)
    return a, token_strings(tok, a.input_ids)


def test_reference_match_wordpiece_uses_the_words_single_token(minilm):
    tok = minilm.tokenizer
    assert not marks_word_start(tok)
    plan, strs = _reference_plan(tok, "Room and board .", "board", False)
    assert plan.drop is None and strs[plan.positions[0]] == "board" and plan.positions[0] == len(strs) - 3
    # An inflection or compound ahead of the template ("boards", "##board") is found first and occurs once.
    for ctx in ("He nailed boards across the windows .", "Skateboard ."):
        assert _reference_plan(tok, ctx, "board", False)[0].drop == "reference_single_occurrence"
    assert _reference_plan(tok, "Great unhappiness here .", "unhappiness", False)[0].drop == "multi_token"


def test_reference_match_bpe_reads_the_last_copy_of_the_first_matching_token(bpe_tokenizer):
    tok = bpe_tokenizer
    assert marks_word_start(tok)
    plan, strs = _reference_plan(tok, "the plant and the plant again .", "plant", True)
    assert plan.input_ids[0] == tok.bos_token_id and plan.positions[0] == len(strs) - 2  # the template slot
    # " plants" holds the word and comes first: twice -> its last copy is read, in the context, not the template.
    plan, strs = _reference_plan(tok, "the plants and plants near the plant .", "plant", True)
    assert strs[plan.positions[0]] == " plants" and plan.positions[0] == strs.index(" near") - 1
    for ctx in ("the plants grow .", "Plant the seeds .", "plant it now ."):  # inflected, capitalised, initial
        assert _reference_plan(tok, ctx, "plant", True)[0].drop == "reference_single_occurrence"
    assert _reference_plan(tok, "the bank of the river .", "bank", True)[0].drop == "multi_token"


def test_reference_pair_reason_is_the_first_check_the_reference_fails():
    single = ReadoutPlan((1, 2), (), (7,), drop="reference_single_occurrence")
    multi = ReadoutPlan((1, 2), (), (), drop="multi_token")
    ok = ReadoutPlan((1, 2), (1,), (7,))
    assert _reference_pair_drop(single, multi).drop == "multi_token"  # the template checks come first
    assert _reference_pair_drop(ok, ReadoutPlan((1, 2), (1,), (8,))).drop == "token_mismatch"
    assert _reference_pair_drop(ok, single).drop == "reference_single_occurrence"
    assert _reference_pair_drop(ok, ok) is ok


def test_reference_match_config():
    with pytest.raises(ConfigError, match="match='reference'"):
        ReadoutConfig(match="reference", position="context")
    with pytest.raises(ConfigError, match="match"):
        ReadoutConfig(match="spans")  # type: ignore[arg-type]


def test_protocol_reference_sets_every_choice_and_refuses_conflicts():
    from pseval.ps_eval.settings import PSEvalSettings

    cfg = PSEvalSettings(protocol="reference", balance="paper")
    r = cfg.readout_config()
    assert (r.match, r.too_long, r.position, cfg.balance) == ("reference", "head", "template", "reference")
    assert PSEvalSettings().readout_config().match == "offsets" and PSEvalSettings().protocol == "pseval"
    for bad, field in ((dict(balance="exact"), "balance='exact'"), (dict(multi_token="last"), "multi_token='last'"),
                       (dict(template="{context} {target_word}"), "template")):
        with pytest.raises(ConfigError, match=field):
            PSEvalSettings(protocol="reference", **bad)
    with pytest.raises(ConfigError, match="pseval, reference"):
        PSEvalSettings(protocol="paper")  # type: ignore[arg-type]


def test_reference_match_reads_the_head_of_over_long_prompts(minilm):
    # TransformerLens' to_tokens keeps the first n_ctx tokens: the reference matches on that head (the template
    # slot is cut off, so the last "board" inside the head is read). `skip` still drops, for who asks for it.
    pair = WordInContextPair("board", "n", "the board " * 40, "a board", None, None, True, "t:1")
    (a, b), = plan_pairs(minilm.tokenizer, [pair], ReadoutConfig(match="reference", too_long="skip"), False, 32)
    assert a.drop == "too_long" and b.drop is None and len(a.input_ids) > 32
    (a, b), = plan_pairs(minilm.tokenizer, [pair], ReadoutConfig(match="reference", too_long="head"), False, 32)
    assert a.drop is None and a.truncated and len(a.input_ids) == 32
    assert a.input_ids[-1] == minilm.tokenizer.sep_token_id  # [SEP] is kept, as the tokenizer's truncation keeps it
    strs = minilm.tokenizer.convert_ids_to_tokens(list(a.input_ids))
    assert strs[a.positions[0]] == "board" and "board" not in strs[a.positions[0] + 1:]
