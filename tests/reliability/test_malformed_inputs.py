"""Malformed inputs of every kind pseval reads: each raises a specific error whose message names the culprit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from pseval.data.rows import load_table
from pseval.data.sources import load_pairs
from pseval.data.wic import load_wic
from pseval.data.wordnet import find_wordnet, parse_data_line
from pseval.errors import (
    ConfigError,
    DataFormatError,
    HookError,
    MissingResourceError,
    PsevalError,
    SAEFormatError,
)
from pseval.saes import SAEConfig, load_saelens_v6, save_sae
from pseval.saes.standard import StandardSAE

GOOD = "board\tN\t2-2\tRoom and board .\tHe nailed boards across the windows .\n"


def wic(tmp: Path, data: str | bytes, gold: str = "F\n") -> Path:
    d = tmp / "dev"
    d.mkdir(exist_ok=True)
    (d / "dev.data.txt").write_bytes(data if isinstance(data, bytes) else data.encode())
    (d / "dev.gold.txt").write_text(gold)
    return d


def table(tmp: Path, rows: list[str]) -> Path:
    p = tmp / "pairs.jsonl"
    p.write_text("\n".join(rows) + "\n")
    return p


def sae_dir(tmp: Path) -> Path:
    torch.manual_seed(0)
    return save_sae(StandardSAE(SAEConfig("standard", 8, 16)), tmp / "sae")


def edit_weights(d: Path, fn) -> Path:
    w = load_file(str(d / "sae_weights.safetensors"))
    fn(w)
    save_file(w, str(d / "sae_weights.safetensors"))
    return d


ROW = {"target_word": "bank", "context_1": "the bank of the river", "context_2": "a bank loan", "label": 1}


def _row(**kw) -> str:
    return json.dumps({**ROW, **kw})


def _wordnet_dir(tmp: Path, drop: str | None = None) -> Path:
    d = tmp / "wn"
    d.mkdir()
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        if name != drop:
            (d / name).write_text('00001740 03 n 01 entity 0 000 | a thing; "an entity"\n')
    return d


def _cases():
    """(id, action(tmp), expected error type, regex the message must match)."""
    return [
        ("wic-columns", lambda t: load_wic(wic(t, "board\tN\t2-2\tRoom and board .\n")), DataFormatError,
         r"dev\.data\.txt, line 1: expected 5 tab-separated"),
        ("wic-index-range", lambda t: load_wic(wic(t, "board\tN\t7-2\tRoom and board .\tHe nailed boards .\n")),
         DataFormatError, r"line 1, field 'sentence_1': token index 7 out of range"),
        ("wic-index-format", lambda t: load_wic(wic(t, "board\tN\t2_2\tRoom .\tHe .\n")), DataFormatError,
         r"line 1, field 'index'"),
        ("wic-pos", lambda t: load_wic(wic(t, "board\tX\t0-0\tRoom .\tHe .\n")), DataFormatError,
         r"line 1, field 'PoS'"),
        ("wic-line-count", lambda t: load_wic(wic(t, GOOD + GOOD, "F\n")), DataFormatError,
         r"dev\.gold\.txt: 1 gold labels for 2 data lines"),
        ("wic-label", lambda t: load_wic(wic(t, GOOD, "maybe\n")), DataFormatError,
         r"dev\.gold\.txt, line 1: label 'maybe' is not T or F"),
        ("wic-empty-line", lambda t: load_wic(wic(t, GOOD + "   \n", "F\nF\n")), DataFormatError,
         r"dev\.data\.txt, line 2: empty line"),
        ("wic-utf8", lambda t: load_wic(wic(t, b"caf\xe9\tN\t0-0\tx\ty\n")), DataFormatError,
         r"dev\.data\.txt, line 1: not valid UTF-8"),
        ("wic-missing-folder", lambda t: load_wic(t / "nowhere"), MissingResourceError, r"nowhere.*not found"),
        ("table-json", lambda t: load_table(table(t, [_row(), "{oops"])), DataFormatError,
         r"pairs\.jsonl, line 2: not valid JSON"),
        ("table-missing-field", lambda t: load_table(table(t, [_row(context_2="")])), DataFormatError,
         r"pairs\.jsonl, line 1, field 'context_2': missing value"),
        ("table-label", lambda t: load_table(table(t, [_row(label=7)])), DataFormatError,
         r"line 1, field 'label': label 7"),
        ("table-span", lambda t: load_table(table(t, [_row(target_word_location_1={"char_start": 5,
                                                                                   "char_end": 99})])),
         DataFormatError, r"line 1, field 'location_1': character span \(5, 99\)"),
        ("table-schema", lambda t: load_table(table(t, [json.dumps({"a": 1})])), DataFormatError,
         r"line 1: row has neither PS-Eval columns"),
        ("wordnet-missing", lambda t: find_wordnet(t / "nown"), MissingResourceError,
         r"nown.*apt-get install wordnet-base.*nltk\.downloader wordnet"),
        ("wordnet-incomplete", lambda t: find_wordnet(_wordnet_dir(t, drop="data.adv")), MissingResourceError,
         r"missing data\.adv"),
        ("wordnet-line", lambda t: parse_data_line("0000xyz 03 n zz", "/wn/data.noun", 42), DataFormatError,
         r"/wn/data\.noun, line 42: malformed synset line"),
        ("sae-truncated", lambda t: (lambda d: ((d / "sae_weights.safetensors").write_bytes(
            (d / "sae_weights.safetensors").read_bytes()[:64]), load_saelens_v6(d)))(sae_dir(t)), SAEFormatError,
         r"sae_weights\.safetensors: cannot read safetensors \(truncated or corrupt"),
        ("sae-missing-key", lambda t: load_saelens_v6(edit_weights(sae_dir(t), lambda w: w.pop("W_dec"))),
         SAEFormatError, r"missing weight\(s\) W_dec"),
        ("sae-shape", lambda t: load_saelens_v6(edit_weights(sae_dir(t), lambda w: w.update(b_enc=torch.zeros(3)))),
         SAEFormatError, r"'b_enc' has shape \(3,\), expected \(16,\)"),
        ("sae-inf", lambda t: load_saelens_v6(edit_weights(sae_dir(t), lambda w: w["b_dec"].fill_(float("inf")))),
         SAEFormatError, r"'b_dec' has 8 NaN/inf"),
        ("sae-cfg-json", lambda t: (lambda d: ((d / "cfg.json").write_text("{"), load_saelens_v6(d)))(sae_dir(t)),
         SAEFormatError, r"cfg\.json: not valid JSON"),
        ("sae-cfg-d_sae", lambda t: (lambda d: ((d / "cfg.json").write_text(json.dumps(
            {**json.loads((d / "cfg.json").read_text()), "d_sae": -4})), load_saelens_v6(d)))(sae_dir(t)),
         SAEFormatError, r"'d_sae' must be a positive integer"),
        ("sae-architecture", lambda t: (lambda d: ((d / "cfg.json").write_text(json.dumps(
            {**json.loads((d / "cfg.json").read_text()), "architecture": "relu6"})), load_saelens_v6(d)))(sae_dir(t)),
         ConfigError, r"unknown SAE architecture 'relu6'; known: batchtopk"),
        ("data-spec", lambda t: load_pairs("wick:/x"), ConfigError, r"unknown data spec 'wick:/x'"),
        ("wordnet-option", lambda t: load_pairs("wordnet:max_per_lemma=lots"), ConfigError,
         r"max_per_lemma='lots' is not an integer"),
    ]


CASES = _cases()


@pytest.mark.parametrize(("name", "action", "error", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input(tmp_path, name, action, error, pattern):
    with pytest.raises(error, match=pattern):
        action(tmp_path)


def test_errors_are_pseval_errors():
    for _, _, error, _ in CASES:
        assert issubclass(error, PsevalError)


def test_hook_and_width_mismatches(minilm, tmp_path):
    from pseval.data.pairs import WordInContextPair
    from pseval.models.hooks import resolve_hook
    from pseval.ps_eval import collect_pair_activations, score_sae

    with pytest.raises(HookError, match=r"blocks\.0\.hook_resid_pre.*blocks\.0\.hook_resid_post"):
        resolve_hook(minilm.model, "blocks.2.resid")
    pair = WordInContextPair("bank", "n", "the bank of the river", "a bank loan", (4, 8), (2, 6), False, "x:1")
    pa = collect_pair_activations(minilm, [pair], ["blocks.1.hook_resid_post"])["blocks.1.hook_resid_post"]
    wrong = load_saelens_v6(sae_dir(tmp_path))
    with pytest.raises(SAEFormatError, match=r"d_in=8 does not match the width 384 of hook 'blocks\.1"):
        score_sae(pa, wrong)


def test_nan_activations_name_the_pairs(bpe_tokenizer):
    from pseval.data.pairs import WordInContextPair
    from pseval.models.loading import LoadedModel
    from pseval.ps_eval import PSEvalSettings, collect_pair_activations
    from tests.conftest import tiny_model

    model = tiny_model("gpt2", vocab_size=len(bpe_tokenizer))
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight.fill_(float("nan"))
    lm = LoadedModel(model, bpe_tokenizer, "tiny", "memory")
    pairs = [WordInContextPair("bank", "n", "the bank", "a bank", (4, 8), (2, 6), True, "src:7")]
    with pytest.raises(PsevalError, match=r"NaN/inf activations at blocks\.1\.hook_resid_post.*src:7"):
        collect_pair_activations(lm, pairs, ["blocks.1.hook_resid_post"],
                                 PSEvalSettings(multi_token="last", balance="none"))


def test_target_missing_from_context_is_counted_by_id(minilm):
    from pseval.data.rows import pairs_from_rows
    from pseval.ps_eval import PSEvalSettings, collect_pair_activations

    pairs = pairs_from_rows([ROW, {**ROW, "context_2": "a loan from the lender", "id": "no-bank"}], "mem")
    assert pairs[1].span_2 is None
    cfg = PSEvalSettings(readout="context", multi_token="last", balance="none")
    pa = collect_pair_activations(minilm, pairs, ["blocks.1.hook_resid_post"], cfg)["blocks.1.hook_resid_post"]
    assert pa.counts["dropped"] == {"target_not_in_context": 1}
    assert pa.counts["dropped_examples"] == {"target_not_in_context": ["mem:no-bank"]}
