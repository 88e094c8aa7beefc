"""`pseval inspect`: senses from each kind of data, planted per-sense features found, the page in Chromium."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch
from click.testing import CliRunner

from pseval.cli import main
from pseval.models.extract import extract_positions
from pseval.models.readout import plan_readouts, prompt_and_span
from pseval.ps_eval.settings import PSEvalSettings
from pseval.saes.config import SAEConfig
from pseval.saes.standard import StandardSAE
from pseval.study.inspect import WordInspection, concentration, inspect_word, sense_contexts
from tests.conftest import SHARED, require_shared
from tests.data.builders import BAT, PEN, write_coarsewsd
from tests.study.chromium import load_page

pytestmark = pytest.mark.slow

HOOK = "blocks.3.hook_resid_post"


def test_component_grouping_of_a_pair_table(tmp_path):
    rows = [  # a~b, b~c same sense; c/d different; d~e same; a/c different contradicts a~b~c
        ("the bank of the river", "a muddy bank", 1), ("a muddy bank", "the grassy bank sloped", 1),
        ("the grassy bank sloped", "the bank lent money", 0), ("the bank lent money", "a bank loan", 1),
        ("the bank of the river", "the grassy bank sloped", 0), ("the bank was closed", "a bank loan", 1)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"target_word": "bank", "context_1": a, "context_2": b, "label": y})
                              for a, b, y in rows))
    s = sense_contexts(f"jsonl:{path}", "Bank")
    groups: dict[str, set[str]] = {}
    for c in s.contexts:
        groups.setdefault(c.sense, set()).add(c.context)
        assert c.context[c.span[0]:c.span[1]] == "bank"
    assert sorted(map(sorted, groups.values())) == sorted(map(sorted, [
        {"the bank of the river", "a muddy bank", "the grassy bank sloped"},
        {"the bank lent money", "a bank loan", "the bank was closed"}]))
    assert s.grouping == "components" and s.conflicting_pairs == 1 and len(s.contexts) == 6


def test_wordnet_senses_are_synsets_with_definitions():
    s = sense_contexts("wordnet:pos=n", "bank")
    assert s.grouping == "wordnet"
    # 09213565-n is "sloping land (especially the slope beside a body of water)"; 08420278-n the institution.
    assert s.descriptions["09213565-n"].startswith("09213565-n: sloping land")
    assert "financial institution" in s.descriptions["08420278-n"]
    by_sense = Counter(c.sense for c in s.contexts)
    assert set(by_sense) == set(s.descriptions) and all(k.endswith("-n") for k in by_sense)
    assert all(c.source.startswith(f"wordnet:{c.sense}#") for c in s.contexts)
    assert "he cashed a check at the bank" in {c.context for c in s.contexts if c.sense == "08420278-n"}
    with pytest.raises(Exception, match="target of no pair"):
        sense_contexts("wordnet:pos=n", "xyzzy")


def test_concentration_definition():
    c = concentration([5, 5, 5, 5])
    assert (c.most_common_feature, c.most_common_share, c.effective_top_features) == (5, 1.0, 1.0)
    c = concentration([1, 2, 3, 3])
    assert c.most_common_feature == 3 and c.most_common_share == 0.5 and c.distinct_top_features == 3
    assert c.effective_top_features == pytest.approx(math.exp(-(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))))
    assert concentration([7, 2]).most_common_feature == 2  # ties: the lowest index, as PS-Eval's argmax


def _readout(lm, texts_spans, word, cfg):
    items = [prompt_and_span(t, sp, word, cfg.readout_config()) for t, sp in texts_spans]
    plans = plan_readouts(lm.tokenizer, items, cfg.readout_config(), add_bos=lm.is_causal, max_len=lm.max_positions)
    assert all(p.drop is None for p in plans)
    return extract_positions(lm, [p.input_ids for p in plans], [p.positions for p in plans], [HOOK])[HOOK]


def test_planted_per_sense_features_on_coarsewsd(minilm, tmp_path):
    root = require_shared(SHARED / "data" / "coarsewsd20")
    cfg = PSEvalSettings()
    senses = sense_contexts(f"coarsewsd:{root}", "apple")
    names = list(senses.descriptions)
    assert names == ["apple_apple_inc.", "apple_apple"]  # class order of classes_map.txt
    n = 30
    per = {s: [c for c in senses.contexts if c.sense == s][:n] for s in names}
    acts = {s: _readout(minilm, [(c.context, c.span) for c in per[s]], "apple", cfg) for s in names}
    centre = torch.cat(list(acts.values())).mean(0)
    # Feature k points from the centre to sense k's mean; feature 2 fires a little everywhere; feature 3 never.
    d = acts[names[0]].shape[1]
    sae = StandardSAE(SAEConfig("standard", d, 4))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.b_enc.copy_(torch.tensor([0.0, 0.0, 0.01, -1.0]))
        sae.b_dec.copy_(centre)
        for k, s in enumerate(names):
            sae.W_enc[:, k] = torch.nn.functional.normalize(acts[s].mean(0) - centre, dim=0)
        sae.W_dec.copy_(torch.eye(4, d))
    insp = inspect_word(minilm, "minilm", sae, HOOK, senses, cfg, "planted", "test", top=3, examples=4,
                        max_per_sense=n)
    assert [v.sense for v in insp.senses] == names and insp.contexts_read == 2 * n and not insp.dropped
    for k, (s, v) in enumerate(zip(names, insp.senses, strict=True)):
        z = sae.encode(acts[s]).detach().double()
        assert v.top_features[0].feature == k  # the planted feature leads its own sense
        assert [f.feature for f in v.top_features] == torch.argsort(-z.mean(0), stable=True)[:3].tolist()
        for f in v.top_features:
            assert f.mean_activation == pytest.approx(float(z[:, f.feature].mean()), rel=1e-5)
            assert f.firing_rate == pytest.approx(float((z[:, f.feature] > 0).double().mean()))
        wins = z.argmax(1).tolist()
        assert v.concentration == concentration(wins)
        assert v.top_features[0].top_share == wins.count(k) / n > 0.5
        assert 3 not in [f.feature for f in v.top_features]  # the dead feature is never listed
        ex = v.examples[0]
        assert ex.context == per[s][0].context and ex.top_feature == wins[0]
        assert {fv.feature: fv.value for fv in ex.values}[k] == pytest.approx(float(z[0, k]), rel=1e-5)
    assert 2 in [sf.feature for sf in insp.shared]  # on everywhere: among both senses' top features
    assert all(len(sf.senses) >= 2 for sf in insp.shared)
    assert WordInspection.model_validate_json(insp.model_dump_json()) == insp


def test_cli_writes_html_and_json_that_load_in_chromium(tmp_path):
    root = write_coarsewsd(tmp_path / "c20", {"bat": BAT, "pen": PEN})
    out = tmp_path / "pages"
    res = CliRunner().invoke(main, ["inspect", "--sae", "identity", "--word", "bat", "--data", f"coarsewsd:{root}",
                                    "--out", str(out), "--top", "5"])
    assert res.exit_code == 0, res.output
    (page,) = out.glob("*.html")
    (data,) = out.glob("*.json")
    insp = WordInspection.model_validate_json(data.read_text())
    assert [v.sense for v in insp.senses] == ["bat_animal", "bat_club"]
    assert [v.contexts for v in insp.senses] == [1, 3] and insp.hook_name == HOOK
    text = page.read_text()
    assert "<mark>bat</mark>" in text and "bat_club" in text and "<script" not in text
    assert "http://" not in text and "https://" not in text  # self-contained
    assert load_page(page, tmp_path) == []
    bad = CliRunner().invoke(main, ["inspect", "--sae", "identity", "--word", "cat", "--data", f"coarsewsd:{root}",
                                    "--out", str(out)])
    assert bad.exit_code == 2 and "known: bat, pen" in bad.output
