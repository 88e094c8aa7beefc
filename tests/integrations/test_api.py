"""`pseval.evaluate` on objects held in memory: each kind gives the records of its file-loaded equivalent, the hook
and convention are never guessed, and the model's training mode is left as it was."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
import torch.nn as nn

import pseval
from pseval.errors import ConfigError, SAEFormatError
from pseval.saes import SAEConfig, SAEMetadata, save_sae
from pseval.saes.standard import StandardSAE
from pseval.saes.topk import TopKSAE

HOOK = "blocks.3.hook_resid_post"
D, M = 384, 768


def _random_(sae: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return sae


def _pseval_sae(cls: type, seed: int, **kw) -> nn.Module:
    meta = SAEMetadata(model_name="minilm", hook_name=HOOK)
    return _random_(cls(SAEConfig(cls.architecture, D, M, metadata=meta, **kw)), seed).eval()


class ReluModule(nn.Module):
    """Someone's own SAE with SAELens-named weights."""

    def __init__(self) -> None:
        super().__init__()
        self.W_enc, self.b_enc = nn.Parameter(torch.zeros(D, M)), nn.Parameter(torch.zeros(M))
        self.W_dec, self.b_dec = nn.Parameter(torch.zeros(M, D)), nn.Parameter(torch.zeros(D))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)


class LinearModule(nn.Module):
    """An SAE built from nn.Linear layers (the dictionary_learning layout), no input bias."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.decoder = nn.Linear(D, M), nn.Linear(M, D, bias=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.encoder(x))


class TopOut(NamedTuple):
    top_acts: torch.Tensor
    top_indices: torch.Tensor


class SparseOutModule(LinearModule):
    """encode returns (top_acts, top_indices) as sparsify does."""

    k = 16

    def encode(self, x: torch.Tensor) -> TopOut:  # type: ignore[override]
        return TopOut(*torch.relu(self.encoder(x)).topk(self.k, dim=-1))


class Identity(nn.Module):
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Centred(nn.Module):
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=-1, keepdim=True)


def _standard_like(module: nn.Module, tmp_path, name: str) -> str:
    """A pseval StandardSAE file with the module's weights (what its encode computes)."""
    w_enc = module.W_enc if hasattr(module, "W_enc") else module.encoder.weight.T
    b_enc = module.b_enc if hasattr(module, "b_enc") else module.encoder.bias
    w_dec = module.W_dec if hasattr(module, "W_dec") else module.decoder.weight.T
    b_dec = module.b_dec if hasattr(module, "b_dec") else torch.zeros(D)
    sae = StandardSAE(SAEConfig("standard", D, M, metadata=SAEMetadata(hook_name=HOOK)))
    for n, t in (("W_enc", w_enc), ("b_enc", b_enc), ("W_dec", w_dec), ("b_dec", b_dec)):
        sae.set_weight(n, t.detach())
    return str(save_sae(sae, tmp_path / name))


@pytest.fixture(scope="module")
def scored(minilm, wic_dev, tmp_path_factory):
    """Every in-memory kind and its file equivalent, scored in one call (one forward pass)."""
    tmp = tmp_path_factory.mktemp("saes")
    topk = _pseval_sae(TopKSAE, 1, k=16)
    relu, linear, sparse = _random_(ReluModule(), 2), _random_(LinearModule(), 3), _random_(SparseOutModule(), 4)
    topk_sparse = TopKSAE(SAEConfig("topk", D, M, k=16, apply_b_dec_to_input=False,
                                    metadata=SAEMetadata(hook_name=HOOK)))
    for n, t in (("W_enc", sparse.encoder.weight.T), ("b_enc", sparse.encoder.bias),
                 ("W_dec", sparse.decoder.weight.T)):
        topk_sparse.set_weight(n, t.detach())
    saes = {"topk-object": topk, "topk-file": str(save_sae(topk, tmp / "topk")),
            "relu-module": relu, "relu-file": _standard_like(relu, tmp, "relu"),
            "linear-module": linear, "linear-file": _standard_like(linear, tmp, "linear"),
            "sparse-module": sparse, "sparse-file": str(save_sae(topk_sparse, tmp / "sparse"))}
    res = pseval.evaluate(minilm, saes, data=f"wic:{wic_dev}", hook=HOOK, max_pairs=150)
    return {r.sae_name: r for r in res.records}


def _details(rec) -> list[tuple]:
    return [(d.pair_id, d.feature_1, d.feature_2, d.outcome, d.enc_cos, d.dec_cos) for d in rec.eval_result_details]


@pytest.mark.parametrize("kind", ["topk", "relu", "linear", "sparse"])
def test_object_gives_the_records_of_its_file(scored, kind):
    obj = scored[f"{kind}-object" if kind == "topk" else f"{kind}-module"]
    file = scored[f"{kind}-file"]
    # The SAE's own numbers are the file's; its random controls are drawn from its own key (and, for a module
    # known only by encode, of an assumed architecture), so they are left out of the comparison.
    own = {"controls", "gain_over_control"}
    assert obj.eval_result_metrics.model_dump(exclude=own) == file.eval_result_metrics.model_dump(exclude=own)
    assert obj.eval_result_metrics.controls is not None and file.eval_result_metrics.gain_over_control is not None
    assert _details(obj) == _details(file)
    assert obj.eval_result_metrics.feature_cosine is not None  # W_enc/W_dec or encoder/decoder were found
    assert obj.eval_config == file.eval_config and obj.cell_id != file.cell_id  # same settings, other SAE key
    assert obj.sae_fingerprint.split(":")[0] in ("tensors", "object") and file.sae_fingerprint.startswith("file:")
    m = obj.eval_result_metrics.ps_eval
    assert 0 < m.tp + m.tn < m.tp + m.fp + m.tn + m.fn  # random SAEs: neither all right nor all wrong


def test_object_fingerprint_follows_weights_and_hyperparameters():
    from pseval.saes.objects import adapt_sae

    a, b = _random_(SparseOutModule(), 4), _random_(SparseOutModule(), 4)
    fa, fb = adapt_sae(a, HOOK).fingerprint, adapt_sae(b, HOOK).fingerprint
    assert fa == fb
    b.k = 8  # a plain attribute, not in the state dict: still part of the key
    assert adapt_sae(b, HOOK).fingerprint != fa
    with torch.no_grad():
        a.encoder.bias[0] += 1
    assert adapt_sae(a, HOOK).fingerprint != fa


def test_in_memory_hf_model_gives_the_same_records_and_keeps_its_mode(minilm, wic_dev):
    sae = _pseval_sae(TopKSAE, 5, k=8)
    by_name = pseval.evaluate("minilm", sae, data=f"wic:{wic_dev}", max_pairs=60).records[0]
    minilm.model.train()
    try:
        pair = pseval.evaluate((minilm.model, minilm.tokenizer), sae, data=f"wic:{wic_dev}", max_pairs=60,
                               model_name="minilm").records[0]
        assert minilm.model.training  # dropout was off for the evaluation, the caller's mode is back
    finally:
        minilm.model.eval()
    kw = pseval.evaluate(minilm.model, sae, data=f"wic:{wic_dev}", max_pairs=60, tokenizer=minilm.tokenizer,
                         model_name="minilm").records[0]
    for rec in (pair, kw):
        assert rec.eval_result_metrics == by_name.eval_result_metrics and _details(rec) == _details(by_name)
        assert rec.eval_config == by_name.eval_config and rec.cell_id == by_name.cell_id


def test_plain_module_convention(minilm, wic_dev):
    """A plain module gets the model's activations; convention='tl_centered' gives it mean-removed ones."""
    res = pseval.evaluate(minilm, {"centred-input": Identity()}, data=f"wic:{wic_dev}", hook=HOOK, max_pairs=60,
                          convention="tl_centered").records[0]
    ref = pseval.evaluate(minilm, {"centring-module": Centred()}, data=f"wic:{wic_dev}", hook=HOOK,
                          max_pairs=60).records[0]
    own = {"controls", "gain_over_control"}  # drawn from each object's own key
    assert _details(res) == _details(ref)
    assert res.eval_result_metrics.model_dump(exclude=own) == ref.eval_result_metrics.model_dump(exclude=own)
    assert res.sae_cfg_dict["metadata"]["activation_convention"] == "tl_centered"
    assert ref.sae_cfg_dict["metadata"]["activation_convention"] == "hf"
    assert res.eval_config.model_convention == "hf"


def test_nothing_is_guessed(minilm, wic_dev):
    data = f"wic:{wic_dev}"
    with pytest.raises(ConfigError, match="hook"):
        pseval.evaluate(minilm, Identity(), data=data, max_pairs=10)  # a module records no hook
    with pytest.raises(ConfigError, match="hook"):
        pseval.evaluate(minilm, "identity", data=data, max_pairs=10)
    with pytest.raises(ConfigError, match="tokenizer"):
        pseval.evaluate(minilm.model, Identity(), data=data, hook=HOOK, max_pairs=10)
    with pytest.raises(SAEFormatError, match="encode"):
        pseval.evaluate(minilm, object(), data=data, hook=HOOK, max_pairs=10)
    sae = _pseval_sae(TopKSAE, 6, k=8)
    with pytest.raises(ConfigError, match="convention"):
        pseval.evaluate(minilm, sae, data=data, max_pairs=10, convention="tl_centered")  # it records hf
    narrow = ReluModule()
    narrow.W_enc = nn.Parameter(torch.zeros(100, M))
    narrow.W_dec = nn.Parameter(torch.zeros(M, 100))
    narrow.b_dec = nn.Parameter(torch.zeros(100))
    with pytest.raises(SAEFormatError, match="d_in=100"):
        pseval.evaluate(minilm, narrow, data=data, hook=HOOK, max_pairs=10)


def test_result_displays(scored):
    res = pseval.Evaluation([scored["relu-module"], scored["topk-object"]])
    text = res.table()
    assert "relu-module" in text and "specificity" in text and repr(res) == text
    assert res._repr_html_().startswith("<table>") and "<td>topk-object</td>" in res._repr_html_()
    df = res.to_pandas()
    assert list(df["sae"]) == ["relu-module", "topk-object"]
    assert int(df["tp"].iloc[0]) == scored["relu-module"].eval_result_metrics.ps_eval.tp
    assert len(res) == 2 and res[1] is scored["topk-object"] and list(res) == res.records


def test_import_pseval_stays_light():
    import subprocess
    import sys

    code = "import sys, pseval; assert 'torch' not in sys.modules; pseval.evaluate; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
