"""`pseval train` end to end on MiniLM: several SAEs from one stream, saved, reloadable; the activation cache."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from pseval.cli import main
from pseval.models.content_key import model_content_key
from pseval.saes.formats.saelens import load_saelens_v6
from pseval.training.activations import StreamConfig, cache_key


def test_train_two_architectures_with_cache(tmp_path, minilm):
    out, cache = tmp_path / "saes", tmp_path / "cache"
    args = ["train", "--tokens", "3000", "--arch", "topk", "--arch", "jumprelu", "--expansion", "2", "--k", "8",
            "--batch-size", "256", "--out", str(out), "--cache", str(cache)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert folders == ["jumprelu-x2-cdefault", "topk-x2-k8"]
    cfg = json.loads((out / "topk-x2-k8" / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 8 and cfg["d_sae"] == 768
    assert cfg["metadata"]["hook_name"] == "blocks.3.hook_resid_post"
    assert cfg["metadata"]["exclude_special_tokens"] is True and cfg["metadata"]["dataset_path"] == "wordnet"
    sae = load_saelens_v6(out / "topk-x2-k8")
    x = torch.randn(5, 384)
    assert (sae.encode(x) != 0).sum(-1).le(8).all()
    (entry,) = list(cache.iterdir())
    assert entry.name == cache_key("minilm", "blocks.3.hook_resid_post", "wordnet",
                                   StreamConfig(max_tokens=3000 + 500), model_content_key(minilm))
    stamp = (entry / "acts.npy").stat().st_mtime_ns
    again = CliRunner().invoke(main, args)  # served from the cache: the file is not rewritten
    assert again.exit_code == 0, again.output
    assert (entry / "acts.npy").stat().st_mtime_ns == stamp
    assert torch.equal(load_saelens_v6(out / "topk-x2-k8").W_dec, sae.W_dec)  # same data, same seed
