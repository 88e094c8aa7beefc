"""A port of the reference PS-Eval loop (gouki510/PS-Eval `wic_eval.py`: `calc_f_value` and the balancing in `main`),
run on a tiny GPT-2 with an in-process byte-level BPE; pseval's protocol `reference` must give exactly its counts.

The port keeps the reference's mechanics: TransformerLens-style string tokens, one full forward per prompt, a pandas
frame per prompt with one column per token (named by its string), `df[name].iloc[:, -1].argmax()` inside a bare
try/except, label-0 rows first and then only `range(len(label_1_rows))[:cnt_0]`. Only the TransformerLens model and
the SAE object are replaced by thin shims over the same Hugging Face model and pseval SAE.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from pseval.data.pairs import WordInContextPair
from pseval.models.loading import LoadedModel
from pseval.models.readout import ReadoutConfig, plan_pairs, prompt_and_span, span_to_tokens
from pseval.ps_eval import PSEvalSettings, collect_pair_activations, score_sae
from pseval.ps_eval.pipeline import SAEEntry, evaluate, prepare_pairs
from pseval.saes import SAEConfig, identity_sae
from pseval.saes.topk import TopKSAE
from tests.conftest import tiny_model

LAYER = 1
HOOK = f"blocks.{LAYER}.hook_resid_post"
TEMPLATE = "{context} The {target_word} means"

# (case, target, context_1, context_2), in file order with the labels below. Each case is what the reference's token
# matching does with it on the tiny BPE (asserted in test_the_set_exercises_every_case):
#   kept: the context holds " word" itself (once, twice, or split off an inflection: " plant" + "ed");
#   moved: the first token holding the word is a longer one that occurs twice, so its last occurrence is read;
#   single: the first token holding the word occurs once (inflected " plants", compound " freshwater", sentence-initial
#           "water", or none before the template because the word is capitalised "Plant" / split "pl" "ant").
#   multi: " word" is no token at all (" b" "ank"), so the pair fails the template-token check.
ROWS = [
    ("capitalised", "plant", "Plant the seeds now .", "the plant grows in the field ."),
    ("kept", "plant", "the plant grows in the field .", "a plant needs water ."),
    ("repeated", "water", "the water and the water again .", "pour the water out ."),
    ("inflected", "snake", "the snakes hiss .", "a snake bit him ."),
    ("initial", "water", "water is wet .", "the water is cold ."),
    ("moved", "plant", "the plants and plants near the plant .", "a plant needs light ."),
    ("kept", "snake", "a snake bit him .", "the snake slept in the sun ."),
    ("kept", "player", "the player won the game .", "a player lost ."),
    ("multi", "bank", "the bank of the river .", "a bank loan ."),
    ("subword", "plant", "He planted a tree .", "the plant grows ."),
    ("kept", "record", "a record of the meeting .", "the record was broken ."),
    ("inside", "water", "the fish live in freshwater lakes .", "the water is deep ."),
    ("kept", "field", "the field was green .", "a field of study ."),
    ("moved", "water", "the freshwater and freshwater lakes and the water .", "the water is deep ."),
    ("kept", "light", "the light was bright .", "a light meal ."),
    ("sentence-initial", "plant", "plant it now .", "the plant grows ."),
    ("kept", "shell", "the shell of the egg .", "a shell of a house ."),
    ("inflected", "animal", "the animals ran away .", "an animal ran ."),
    ("kept", "light", "turn on the light .", "the light of day ."),
    ("kept", "field", "a field of corn .", "the field of physics ."),
    ("repeated", "snake", "the snake saw the snake .", "a snake in the grass ."),
    ("kept", "player", "a player of the piano .", "the player scored ."),
    ("kept", "shell", "a shell on the beach .", "the shell exploded ."),
    ("kept", "record", "the record of the team .", "a record was set ."),
]
# Same sense first where the early label-1 rows are the ones the reference's token matching drops, so the reference's
# rule (only the first cnt_0 label-1 rows are looked at, valid or not) scores fewer same-sense pairs than the
# valid-prefix rule.
LABELS = [1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1]
WHY_SINGLE = {"capitalised", "inflected", "initial", "inside", "sentence-initial"}


class _HookedGPT2:
    """The slice of TransformerLens' HookedTransformer the reference calls, over a Hugging Face GPT-2."""

    def __init__(self, model, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer

    def to_tokens(self, prompt: str, prepend_bos: bool = True) -> torch.Tensor:
        # TransformerLens prepends BOS by prefixing the BOS string to the text before tokenising.
        # It then tokenises with truncation=True, max_length=n_ctx (to_tokens' truncate=True, the default under
        # run_with_cache and to_str_tokens): an over-long prompt keeps its first n_ctx tokens.
        text = self.tokenizer.bos_token + prompt if prepend_bos else prompt
        n_ctx = self.model.config.n_positions
        return torch.tensor([self.tokenizer(text, add_special_tokens=False, truncation=True,
                                            max_length=n_ctx)["input_ids"]])

    def to_str_tokens(self, prompt: str, prepend_bos: bool = True) -> list[str]:
        return [self.tokenizer.decode([t], clean_up_tokenization_spaces=False)
                for t in self.to_tokens(prompt, prepend_bos)[0].tolist()]

    @torch.no_grad()
    def run_with_cache(self, prompt: str, prepend_bos: bool = True):
        cache = {}
        handle = self.model.transformer.h[LAYER].register_forward_hook(
            lambda _m, _i, out: cache.__setitem__(HOOK, out[0] if isinstance(out, tuple) else out))
        try:
            ids = self.to_tokens(prompt, prepend_bos)
            logits = self.model(ids, attention_mask=torch.ones_like(ids)).logits
        finally:
            handle.remove()
        return logits, cache


class _RefSAE:
    """The reference's SAE object: `cfg.hook_name` and `encode`."""

    def __init__(self, sae) -> None:
        self.sae, self.cfg = sae, SimpleNamespace(hook_name=HOOK)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.sae.encode(x)


def calc_f_value(exp, model, saes, template, trace: dict):
    """The reference's `calc_f_value`; `trace` records why it returned None and which columns it read."""
    target_word = exp["target_word"]
    example_prompt1 = template.format(context=exp["context_1"], target_word=target_word)
    example_prompt2 = template.format(context=exp["context_2"], target_word=target_word)
    c1_maxlist, c2_maxlist = [], []
    tokens1 = model.to_tokens(example_prompt1)[0]
    to_str_tokens1 = model.to_str_tokens(example_prompt1, prepend_bos=True)
    if " " + target_word in to_str_tokens1:
        id_target_word1 = [i for i, x in enumerate(to_str_tokens1) if x == " " + target_word][-1]
    else:
        trace["why"] = "no_template_token"
        return None
    target_word_token1 = tokens1[id_target_word1]
    token2 = model.to_tokens(example_prompt2)[0]
    to_str_tokens2 = model.to_str_tokens(example_prompt2, prepend_bos=True)
    if " " + target_word in to_str_tokens2:
        id_target_word2 = [i for i, x in enumerate(to_str_tokens2) if x == " " + target_word][-1]
    else:
        trace["why"] = "no_template_token"
        return None
    target_word_token2 = token2[id_target_word2]
    if target_word_token1 != target_word_token2:
        trace["why"] = "token_mismatch"
        return None
    trace["read"] = []
    for prompt, maxlist in ((example_prompt1, c1_maxlist), (example_prompt2, c2_maxlist)):
        for sae in saes:
            _logits, cache = model.run_with_cache(prompt, prepend_bos=True)
            sae_act = sae.encode(cache[sae.cfg.hook_name])
            df = pd.DataFrame(sae_act.detach().cpu().numpy()[0][0])
            for i in range(1, sae_act.shape[1]):
                df = pd.concat([df, pd.DataFrame(sae_act.detach().cpu().numpy()[0][i])], axis=1)
            df.columns = [f"{model.to_str_tokens(prompt, prepend_bos=True)[i]}" for i in range(sae_act.shape[1])]
            df.index = [f"{i}" for i in range(sae_act.shape[-1])]
            for i in range(1, sae_act.shape[1]):
                name = model.to_str_tokens(prompt, prepend_bos=True)[i]
                if target_word in name:
                    try:
                        maxlist.append(df[f"{name}"].iloc[:, -1].argmax())
                        trace["read"].append([j for j, c in enumerate(df.columns) if c == name][-1])
                        break
                    except Exception:  # the reference's bare `except`: a token string that occurs once
                        trace["why"] = "single_occurrence"
                        return None
    if len(c1_maxlist) != len(c2_maxlist) and len(c1_maxlist) != len(saes):
        trace["why"] = "length"
        return None
    trace["max"] = (c1_maxlist, c2_maxlist)
    same_num = np.zeros(len(c1_maxlist))
    for i in range(len(c1_maxlist)):
        if c1_maxlist[i] == c2_maxlist[i]:
            same_num[i] = 1
    return same_num


def reference_main(rows: list[dict], model, saes) -> dict:
    """The F-value part of the reference's `main`: label-0 rows, then the first cnt_0 label-1 rows."""
    exp1_df = pd.DataFrame(rows)
    exp1_df = exp1_df[exp1_df["label"] == 0]
    fp_list, tn_list, cnt_0 = [], [], 0
    for i in range(len(exp1_df)):
        FP = calc_f_value(exp1_df.iloc[i], model, saes, TEMPLATE, {})
        if FP is not None:
            fp_list.append(FP)
            tn_list.append(1 - FP)
            cnt_0 += 1
    exp1_df = pd.DataFrame(rows)
    exp1_df = exp1_df[exp1_df["label"] == 1]
    fn_list, tp_list, cnt_1 = [], [], 0
    for i in range(len(exp1_df))[:cnt_0]:
        TP = calc_f_value(exp1_df.iloc[i], model, saes, TEMPLATE, {})
        if TP is not None:
            tp_list.append(TP)
            fn_list.append(1 - TP)
            cnt_1 += 1
    return {"tp": int(np.sum(tp_list)), "fp": int(np.sum(fp_list)), "tn": int(np.sum(tn_list)),
            "fn": int(np.sum(fn_list)), "cnt_0": cnt_0, "cnt_1": cnt_1,
            "same_0": [int(x[0]) for x in fp_list], "same_1": [int(x[0]) for x in tp_list]}


def reference_cosines(rows: list[dict], model, sae) -> dict[str, float]:
    """The W_enc / W_dec loop of the reference's `main` (`calc_diag` per row): for each label, every row whose token
    matching succeeds (calc_diag's checks are calc_f_value's), before any balancing; per-label means."""
    out = {}
    for label, name in ((0, "different"), (1, "same")):
        enc, dec = [], []
        for row in rows:
            if row["label"] != label:
                continue
            trace: dict = {}
            if calc_f_value(pd.Series(row), model, [_RefSAE(sae)], TEMPLATE, trace) is None:
                continue
            (i1,), (i2,) = trace["max"]
            cos = torch.nn.functional.cosine_similarity
            w_enc, w_dec = sae.W_enc.detach(), sae.W_dec.detach()
            enc.append(float(cos(w_enc[:, i1], w_enc[:, i2], dim=0)))
            dec.append(float(cos(w_dec[i1, :], w_dec[i2, :], dim=0)))
        out[f"enc_cos_{name}"], out[f"dec_cos_{name}"] = float(np.mean(enc)), float(np.mean(dec))
    return out


def _rows() -> list[dict]:
    return [{"target_word": w, "context_1": c1, "context_2": c2, "label": y}
            for (_case, w, c1, c2), y in zip(ROWS, LABELS, strict=True)]


def _pairs() -> list[WordInContextPair]:
    return [WordInContextPair(w, "n", c1, c2, None, None, bool(y), f"t:{i}:{case}")
            for i, ((case, w, c1, c2), y) in enumerate(zip(ROWS, LABELS, strict=True))]


@pytest.fixture(scope="module")
def lm(bpe_tokenizer) -> LoadedModel:
    return LoadedModel(tiny_model("gpt2", vocab_size=len(bpe_tokenizer)), bpe_tokenizer, "tiny-gpt2", "memory")


@pytest.fixture(scope="module")
def survey(lm) -> list[dict]:
    """The port's verdict on every row (the reference itself never looks at label-1 rows past cnt_0)."""
    model, out = _HookedGPT2(lm.model, lm.tokenizer), []
    for row in _rows():
        trace: dict = {}
        trace["same"] = calc_f_value(pd.Series(row), model, [_RefSAE(identity_sae(64))], TEMPLATE, trace)
        out.append(trace)
    return out


def _template_slot(lm, pair: WordInContextPair, context: str) -> int:
    text, span = prompt_and_span(context, None, pair.target, ReadoutConfig())
    enc = lm.tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    return 1 + span_to_tokens(enc["offset_mapping"], enc["special_tokens_mask"], span)[0]  # +1: BOS


def test_the_set_exercises_every_case(lm, survey):
    """Guard against a vacuous pass: every case does on this tokenizer what it is in the set for."""
    pairs = _pairs()
    for (case, *_), pair, t in zip(ROWS, pairs, survey, strict=True):
        if case in WHY_SINGLE:
            assert t.get("why") == "single_occurrence", (case, pair)
        elif case == "multi":
            assert t.get("why") == "no_template_token", (case, pair)
        else:
            assert "why" not in t, (case, pair, t)
            slots = [_template_slot(lm, pair, pair.context_1), _template_slot(lm, pair, pair.context_2)]
            assert (t["read"] != slots) == (case == "moved"), (case, pair, t["read"], slots)
    valid = ["why" not in t for t in survey]
    label_1 = [i for i, y in enumerate(LABELS) if y]
    cnt_0 = sum(v for v, y in zip(valid, LABELS, strict=True) if not y)
    assert any(not valid[i] for i in label_1[:cnt_0]), "no invalid label-1 row inside the first cnt_0"
    assert any(valid[i] for i in label_1[cnt_0:]), "no valid label-1 row past the first cnt_0"
    # pseval's own protocol keeps the pairs the reference drops, so the two protocols really differ here.
    plain = plan_pairs(lm.tokenizer, pairs, ReadoutConfig(), True, lm.max_positions)
    assert sum(a.drop is None and b.drop is None for a, b in plain) > sum(valid)


@pytest.mark.parametrize("sae_kind", ["identity", "topk"])
def test_protocol_reference_equals_the_port_exactly(lm, survey, sae_kind):
    torch.manual_seed(1)
    sae = identity_sae(64) if sae_kind == "identity" else TopKSAE(SAEConfig("topk", 64, 32, k=4)).eval()
    port = reference_main(_rows(), _HookedGPT2(lm.model, lm.tokenizer), [_RefSAE(sae)])

    cfg = PSEvalSettings(protocol="reference")
    pa = collect_pair_activations(lm, _pairs(), [HOOK], cfg)[HOOK]
    res = score_sae(pa, sae, cfg)
    c, counts = res.confusion, res.counts
    assert (c.tp, c.fp, c.tn, c.fn) == (port["tp"], port["fp"], port["tn"], port["fn"])
    assert (counts["scored_different"], counts["scored_same"]) == (port["cnt_0"], port["cnt_1"])
    # Pair by pair too: the port's per-row lists run over each label's rows in file order, as pa's rows do.
    same_feature = (res.features_1 == res.features_2).tolist()
    for label, key in ((False, "same_0"), (True, "same_1")):
        assert [int(f) for f, y in zip(same_feature, pa.same_sense.tolist(), strict=True) if y == label] == port[key]
    # Both outcomes occur, so equal confusions are not a degenerate all-same or all-different agreement.
    assert 0 < c.tp + c.fp < c.total

    why = Counter(t.get("why", "valid") for t in survey)
    dropped = counts["dropped"]
    assert counts["pairs_valid"] == why["valid"]
    assert dropped.get("multi_token", 0) + dropped.get("reference_no_template_token", 0) == why["no_template_token"]
    assert dropped["multi_token"] == 1  # " bank" is " b" + "ank" in the template slot
    assert dropped["reference_single_occurrence"] == why["single_occurrence"]
    assert set(dropped) == {"multi_token", "reference_single_occurrence"}


class _ReferenceMatchValidPrefix(PSEvalSettings):
    """The reference's token matching with the valid-prefix balance (no protocol gives this pair of choices)."""

    def readout_config(self) -> ReadoutConfig:
        return ReadoutConfig(match="reference", too_long="skip")
def test_reference_cosines_are_over_every_valid_row_before_balancing(lm):
    # wic_eval.py lines 434-454: the W_enc/W_dec cosines come from the first loop over every valid row of each label;
    # only the confusion uses the balanced set. A valid label-1 row lies past cnt_0 here (see the case test), so the
    # two sets differ and so do the same-sense means.
    torch.manual_seed(1)
    sae = TopKSAE(SAEConfig("topk", 64, 32, k=4)).eval()
    port = reference_cosines(_rows(), _HookedGPT2(lm.model, lm.tokenizer), sae)
    cfg = PSEvalSettings(protocol="reference")
    pa = collect_pair_activations(lm, _pairs(), [HOOK], cfg)[HOOK]
    res = score_sae(pa, sae, cfg)
    assert res.cosine_reference is not None and pa.unscored_index
    assert res.cosine_reference == pytest.approx(port, abs=1e-6)
    assert res.cosine["enc_cos_same"] != pytest.approx(port["enc_cos_same"], abs=1e-6)  # pseval's: balanced set
    # pseval's own protocol collects no unscored pairs and reports no reference cosines.
    plain = PSEvalSettings()
    assert score_sae(collect_pair_activations(lm, _pairs(), [HOOK], plain)[HOOK], sae, plain).cosine_reference is None
    # The record names whose number is whose: pseval's balanced-set means in feature_cosine, the reference's beside.
    (rec,) = evaluate(lm, "tiny-gpt2", [SAEEntry.of(sae, "topk", HOOK, "mem", "topk:test")],
                      prepare_pairs("port", None, 0, pairs=_pairs()), cfg)
    ref = rec.eval_result_unstructured.feature_cosine_reference
    assert ref is not None and ref.model_dump() == pytest.approx(port, abs=1e-6)
    assert rec.eval_result_metrics.feature_cosine.enc_cos_same == pytest.approx(res.cosine["enc_cos_same"], abs=1e-6)


def test_reference_balance_scores_fewer_same_sense_than_valid_prefix(lm):
    cfgs = [PSEvalSettings(protocol="reference"), _ReferenceMatchValidPrefix(balance="valid-prefix")]
    scored = [collect_pair_activations(lm, _pairs(), [HOOK], cfg)[HOOK].counts for cfg in cfgs]
    assert scored[0]["pairs_valid"] == scored[1]["pairs_valid"]
    assert scored[0]["scored_different"] == scored[1]["scored_different"]
    assert scored[0]["scored_same"] < scored[1]["scored_same"] == scored[1]["scored_different"]


# Over-long prompts (the tiny GPT-2 has n_ctx 128): the word early in a long context, twice (read in the head), once
# (a single occurrence in the head: dropped) or only past the head (no template token: dropped).
FILLER = "the field was green and the light was bright . " * 14
LONG_ROWS = [
    ("long-twice", "plant", f"the plant and the plant {FILLER}", "a plant needs water ."),
    ("long-once", "water", f"the water {FILLER}", "pour the water out ."),
    ("long-past", "snake", f"{FILLER} the snake", "a snake bit him ."),
    ("long-twice", "record", f"a record and a record {FILLER}", "the record was broken ."),
    ("kept", "shell", "the shell of the egg .", "a shell of a house ."),
    ("long-twice", "player", f"the player and the player {FILLER}", "a player lost ."),
]
LONG_LABELS = [0, 1, 0, 1, 0, 1]


def test_over_long_prompts_are_cut_to_their_head_as_transformer_lens_cuts_them(lm):
    rows = [{"target_word": w, "context_1": c1, "context_2": c2, "label": y}
            for (_c, w, c1, c2), y in zip(LONG_ROWS, LONG_LABELS, strict=True)]
    pairs = [WordInContextPair(w, "n", c1, c2, None, None, bool(y), f"long:{i}")
             for i, ((_c, w, c1, c2), y) in enumerate(zip(LONG_ROWS, LONG_LABELS, strict=True))]
    model, sae = _HookedGPT2(lm.model, lm.tokenizer), TopKSAE(SAEConfig("topk", 64, 32, k=4)).eval()
    assert len(model.tokenizer(model.tokenizer.bos_token + TEMPLATE.format(context=FILLER, target_word="x"))[
        "input_ids"]) > lm.max_positions  # the prompts really are over-long
    port = reference_main(rows, model, [_RefSAE(sae)])
    cfg = PSEvalSettings(protocol="reference")
    pa = collect_pair_activations(lm, pairs, [HOOK], cfg)[HOOK]
    res = score_sae(pa, sae, cfg)
    c, counts = res.confusion, res.counts
    assert (c.tp, c.fp, c.tn, c.fn) == (port["tp"], port["fp"], port["tn"], port["fn"])
    assert (counts["scored_different"], counts["scored_same"]) == (port["cnt_0"], port["cnt_1"])
    same_feature = (res.features_1 == res.features_2).tolist()
    for label, key in ((False, "same_0"), (True, "same_1")):
        assert [int(f) for f, y in zip(same_feature, pa.same_sense.tolist(), strict=True) if y == label] == port[key]
    # The long pairs with the word twice in the head are read (pseval used to drop every over-long prompt).
    assert counts["pairs_valid"] == 4 and counts["contexts_truncated"] == 3 and "too_long" not in counts["dropped"]
    assert counts["dropped"] == {"reference_no_template_token": 1, "reference_single_occurrence": 1}

