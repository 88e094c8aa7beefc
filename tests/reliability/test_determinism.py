"""Same seed, same machine: identical numbers; PS-Eval does not depend on batching."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from pseval.cli import main
from pseval.data.wic import load_wic
from pseval.ps_eval import PSEvalSettings, collect_pair_activations, score_sae
from pseval.saes import SAEConfig
from pseval.saes.topk import TopKSAE
from pseval.study.store import ResultsStore
from tests.conftest import sweep_toml

pytestmark = pytest.mark.slow


def test_sweep_twice_gives_identical_metrics(tmp_path, tiny_gpt2_dir, wic_dev):
    cfg = tmp_path / "det.toml"
    cfg.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, name="det", train_tokens=2000))
    runs = []
    for name in ("a", "b"):
        res = CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        runs.append({c.cell_id: c for c in ResultsStore(tmp_path / name).records()})
    assert runs[0].keys() == runs[1].keys() and len(runs[0]) == 12
    for cid, a in runs[0].items():
        b = runs[1][cid]
        assert a.eval_result_details == b.eval_result_details, cid
        assert json.dumps(a.eval_result_metrics.model_dump(mode="json"), sort_keys=True) == \
            json.dumps(b.eval_result_metrics.model_dump(mode="json"), sort_keys=True)
        assert a.eval_config == b.eval_config
        assert a.pseval_version


def test_ps_eval_independent_of_batch_size(minilm, wic_dev):
    pairs = load_wic(wic_dev)[:120]
    torch.manual_seed(0)
    sae = TopKSAE(SAEConfig("topk", 384, 1536, k=16))
    results = []
    for max_tokens in (64, 100_000):
        cfg = PSEvalSettings(batch_tokens=max_tokens, encode_chunk=7 if max_tokens == 64 else 4096)
        pa = collect_pair_activations(minilm, pairs, ["blocks.2.hook_mlp_out"], cfg)["blocks.2.hook_mlp_out"]
        results.append((pa, score_sae(pa, sae, cfg)))
    (pa1, r1), (pa2, r2) = results
    torch.testing.assert_close(pa1.acts_1, pa2.acts_1, atol=1e-4, rtol=1e-4)
    assert r1.metrics == r2.metrics
    assert torch.equal(r1.features_1, r2.features_1)
