"""The real SAELens, SAEBench, dictionary_learning, sparsify and TransformerLens objects (`make test-integrations`
installs them into .venv-int): each object gives the records of its file-loaded equivalent, written in the library's
own format and read by `pseval eval`'s loaders; a HookedTransformer gives Hugging Face's activations under the
convention it records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import pseval
from pseval.errors import ConfigError, HookError
from pseval.saes import SAEConfig, SAEMetadata, get_sae_class, save_sae

pytestmark = pytest.mark.integration

HOOK = "blocks.3.hook_resid_post"
D, M = 384, 768


def _randomise(module: nn.Module, seed: int, positive: tuple[str, ...] = ()) -> nn.Module:
    """Random weights (biases included); `positive` tensors (thresholds) drawn in (0.02, 0.07) as trained ones are."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not t.is_floating_point() or t.ndim == 0 and name.split(".")[-1] not in positive:
                continue
            if name.split(".")[-1] in positive:
                t.copy_(0.02 + 0.05 * torch.rand(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * 0.05)
    return module.eval()


def _details(rec) -> list[tuple]:
    return [(d.pair_id, d.feature_1, d.feature_2, d.outcome, d.enc_cos, d.dec_cos) for d in rec.eval_result_details]


def _assert_same(obj, file) -> None:
    own = {"controls", "gain_over_control"}  # random controls are drawn from each SAE's own key
    assert obj.eval_result_metrics.model_dump(exclude=own) == file.eval_result_metrics.model_dump(exclude=own), (
        obj.sae_name, file.sae_name)
    assert _details(obj) == _details(file), (obj.sae_name, file.sae_name)
    assert obj.eval_config == file.eval_config
    m = obj.eval_result_metrics.ps_eval
    assert 0 < m.tp + m.tn < m.tp + m.fp + m.tn + m.fn


def _score(minilm, wic_dev, saes: dict, hook: str | None = None, convention: str | None = None) -> dict:
    res = pseval.evaluate(minilm, saes, data=f"wic:{wic_dev}", hook=hook, max_pairs=150, convention=convention)
    return {r.sae_name: r for r in res.records}


# --- SAELens --------------------------------------------------------------------------------------------------------

SAELENS = [("TopKSAE", "TopKSAEConfig", {"k": 16}), ("StandardSAE", "StandardSAEConfig", {}),
           ("JumpReLUSAE", "JumpReLUSAEConfig", {}), ("GatedSAE", "GatedSAEConfig", {})]


def test_saelens_objects_equal_their_files(minilm, wic_dev, tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    saes: dict = {}
    for i, (cls_name, cfg_name, kw) in enumerate(SAELENS):
        cfg = getattr(sae_lens, cfg_name)(d_in=D, d_sae=M, **kw)
        cfg.metadata.hook_name, cfg.metadata.model_name = HOOK, "minilm"
        # Trained on Hugging Face MiniLM activations: recorded, since nothing may be guessed from the name.
        cfg.metadata.activation_convention = "hf"
        obj = _randomise(getattr(sae_lens, cls_name)(cfg), i, positive=("threshold",))
        obj.save_model(tmp_path / cls_name)  # SAELens' own writer
        saes[f"object-{cls_name}"], saes[f"file-{cls_name}"] = obj, str(tmp_path / cls_name)
    got = _score(minilm, wic_dev, saes)
    for cls_name, _, _ in SAELENS:
        obj = got[f"object-{cls_name}"]
        _assert_same(obj, got[f"file-{cls_name}"])
        assert obj.sae_cfg_dict["metadata"]["activation_convention"] == "hf"  # as recorded in its metadata
        assert obj.sae_lens_version == sae_lens.__version__


def test_saelens_loads_pseval_saes_and_scores_them_the_same(minilm, wic_dev, tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    saes: dict = {}
    x = torch.randn(32, D, generator=torch.Generator().manual_seed(0))
    for i, (arch, kw) in enumerate((("topk", {"k": 16}), ("standard", {}), ("jumprelu", {}), ("gated", {}))):
        meta = SAEMetadata(hook_name=HOOK, model_name="minilm", prepend_bos=False, context_size=128)
        ours = get_sae_class(arch)(SAEConfig(arch, D, M, normalize_activations="none", metadata=meta, **kw))
        _randomise(ours, 10 + i, positive=("threshold",))
        path = save_sae(ours, tmp_path / arch)
        theirs = sae_lens.SAE.load_from_disk(str(path))  # SAELens' own reader, which must take the file for 6.x
        got_meta = theirs.cfg.metadata
        assert (got_meta.hook_name, got_meta.model_name, got_meta.prepend_bos, got_meta.context_size) == (
            HOOK, "minilm", False, 128), (arch, got_meta)
        assert theirs.cfg.normalize_activations == "none" and theirs.cfg.architecture() == arch
        with torch.no_grad():
            assert torch.allclose(theirs.encode(x), ours.encode(x), atol=1e-5), arch
        saes[f"saelens-{arch}"], saes[f"file-{arch}"] = theirs, str(path)
    # No hook or convention given: both come through SAELens' reading of the metadata pseval wrote.
    got = _score(minilm, wic_dev, saes)
    for arch in ("topk", "standard", "jumprelu", "gated"):
        _assert_same(got[f"saelens-{arch}"], got[f"file-{arch}"])


# --- SAEBench custom SAEs --------------------------------------------------------------------------------------------

def test_saebench_custom_saes_equal_saelens_files_of_their_weights(minilm, wic_dev, tmp_path):
    relu_sae = pytest.importorskip("sae_bench.custom_saes.relu_sae")
    topk_sae = pytest.importorskip("sae_bench.custom_saes.topk_sae")
    common = {"d_in": D, "d_sae": M, "model_name": "minilm", "hook_layer": 3, "device": torch.device("cpu"),
              "dtype": torch.float32}
    objs = {"relu": _randomise(relu_sae.ReluSAE(**common), 20),
            "topk": _randomise(topk_sae.TopKSAE(k=16, **common), 21)}
    saes: dict = {}
    for name, obj in objs.items():
        arch = "standard" if name == "relu" else "topk"
        ours = get_sae_class(arch)(SAEConfig(arch, D, M, k=16 if arch == "topk" else None,
                                             metadata=SAEMetadata(hook_name=HOOK)))
        for w in ("W_enc", "b_enc", "W_dec", "b_dec"):
            ours.set_weight(w, getattr(obj, w).detach())
        saes[f"saebench-{name}"], saes[f"file-{name}"] = obj, str(save_sae(ours, tmp_path / name))
    got = _score(minilm, wic_dev, saes)
    for name in objs:
        rec = got[f"saebench-{name}"]
        _assert_same(rec, got[f"file-{name}"])
        assert rec.eval_config.hook_name == HOOK  # from the SAEBench config (hook_layer 3)
        assert rec.sae_cfg_dict["metadata"]["activation_convention"] == "hf"


# --- dictionary_learning ---------------------------------------------------------------------------------------------

def _dl_objects() -> dict[str, tuple[nn.Module, dict]]:
    dl = pytest.importorskip("dictionary_learning")
    from dictionary_learning.trainers.batch_top_k import BatchTopKSAE
    from dictionary_learning.trainers.top_k import AutoEncoderTopK

    return {"AutoEncoder": (_randomise(dl.AutoEncoder(D, M), 30), {}),
            "AutoEncoderTopK": (_randomise(AutoEncoderTopK(D, M, 16), 31), {"k": 16}),
            "BatchTopKSAE": (_randomise(BatchTopKSAE(D, M, 16), 32, positive=("threshold",)), {"k": 16}),
            "GatedAutoEncoder": (_randomise(dl.GatedAutoEncoder(D, M), 33), {}),
            "JumpReluAutoEncoder": (_randomise(dl.JumpReluAutoEncoder(D, M), 34, positive=("threshold",)), {})}


def test_dictionary_learning_objects_equal_their_checkpoints(minilm, wic_dev, tmp_path):
    objs = _dl_objects()
    saes: dict = {}
    for cls_name, (obj, extra) in objs.items():
        folder = tmp_path / cls_name
        folder.mkdir()
        torch.save(obj.state_dict(), folder / "ae.pt")  # what dictionary_learning's trainer writes
        trainer = {"dict_class": cls_name, "activation_dim": D, "dict_size": M, "lm_name": "minilm", "layer": 3,
                   "submodule_name": "resid_post_layer_3", **extra}
        (folder / "config.json").write_text(json.dumps({"trainer": trainer}))
        saes[f"dl-{cls_name}"], saes[f"file-{cls_name}"] = obj, str(folder)
    got = _score(minilm, wic_dev, saes, hook=HOOK)
    for cls_name in objs:
        _assert_same(got[f"dl-{cls_name}"], got[f"file-{cls_name}"])


def test_dictionary_learning_objects_need_a_hook(minilm, wic_dev):
    obj, _ = _dl_objects()["AutoEncoder"]
    with pytest.raises(ConfigError, match="hook"):
        pseval.evaluate(minilm, obj, data=f"wic:{wic_dev}", max_pairs=10)


# --- sparsify --------------------------------------------------------------------------------------------------------

def test_sparsify_sparse_coder_equals_its_folder(minilm, wic_dev, tmp_path):
    sparsify = pytest.importorskip("sparsify")
    obj = _randomise(sparsify.SparseCoder(D, sparsify.SparseCoderConfig(k=16, num_latents=M)), 40)
    folder = tmp_path / "encoder.layer.3"  # sparsify names a folder by its hookpoint: BERT's layer 3
    obj.save_to_disk(folder)  # sparsify's own writer
    got = _score(minilm, wic_dev, {"sparsify": obj, "file": str(folder)}, hook=HOOK)
    _assert_same(got["sparsify"], got["file"])
    with pytest.raises(ConfigError, match="hook"):
        pseval.evaluate(minilm, obj, data=f"wic:{wic_dev}", max_pairs=10)


# --- TransformerLens --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpt2_pair(tmp_path_factory, bpe_tokenizer):
    """A tiny GPT-2 in Hugging Face form and as HookedTransformers, processed (TransformerLens' from_pretrained
    default) and unprocessed (from_pretrained_no_processing), converted by TransformerLens' own weight converter."""
    pytest.importorskip("transformer_lens")
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
    from transformers import AutoTokenizer

    from tests.conftest import tiny_model

    folder = tmp_path_factory.mktemp("tok")
    bpe_tokenizer.save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)  # TransformerLens re-reads a tokenizer from its name_or_path
    hf = tiny_model("gpt2", vocab_size=len(tok))
    c = hf.config

    def hooked(process: bool):
        cfg = HookedTransformerConfig(n_layers=c.n_layer, d_model=c.n_embd, n_ctx=c.n_positions,
                                      d_head=c.n_embd // c.n_head, n_heads=c.n_head, d_mlp=4 * c.n_embd,
                                      d_vocab=c.vocab_size, act_fn="gelu_new", normalization_type="LN",
                                      eps=c.layer_norm_epsilon, original_architecture="GPT2LMHeadModel",
                                      model_name="gpt2", default_prepend_bos=False)
        ht = HookedTransformer(cfg, tokenizer=tok)
        ht.load_and_process_state_dict(convert_gpt2_weights(hf, cfg), fold_ln=process, center_writing_weights=process,
                                       center_unembed=process, fold_value_biases=process)
        return ht.eval()

    return hf, tok, hooked(True), hooked(False)


def _gpt2_sae(seed: int, centred: bool):
    sae_lens = pytest.importorskip("sae_lens")
    cfg = sae_lens.StandardSAEConfig(d_in=64, d_sae=128)
    cfg.metadata.hook_name, cfg.metadata.model_name = "blocks.1.hook_resid_post", "gpt2"
    # How TransformerLens loaded the training model decides the convention (never the model's name): its defaults
    # (centred), or without processing.
    cfg.metadata.model_from_pretrained_kwargs = {} if centred else {"center_writing_weights": False}
    return _randomise(sae_lens.StandardSAE(cfg), seed)


def test_hooked_transformer_activations_are_hugging_faces_under_its_convention(gpt2_pair):
    from pseval.models.extract import extract_positions
    from pseval.models.loading import wrap_model
    from pseval.models.transformer_lens import wrap_hooked_transformer

    hf, tok, processed, raw = gpt2_pair
    lm_hf, lm_tl, lm_raw = wrap_model(hf, tok), wrap_hooked_transformer(processed), wrap_hooked_transformer(raw)
    assert (lm_tl.activation_convention, lm_raw.activation_convention) == ("tl_centered", "hf")
    seqs = [tok(t)["input_ids"] for t in ("the bank of the river", "money", "a plant grows by the bank of it")]
    positions = [list(range(len(s))) for s in seqs]  # every token, the padded batch included
    hooks = ["blocks.0.hook_resid_pre", "blocks.1.hook_attn_out", "blocks.1.hook_resid_post", "blocks.2.hook_mlp_out"]
    want = extract_positions(lm_hf, seqs, positions, hooks)
    centred, plain = extract_positions(lm_tl, seqs, positions, hooks), extract_positions(lm_raw, seqs, positions, hooks)
    for h in hooks:
        assert not torch.allclose(want[h], centred[h], atol=1e-4)  # the conventions really differ
        torch.testing.assert_close(centred[h], want[h] - want[h].mean(-1, keepdim=True), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(plain[h], want[h], atol=1e-5, rtol=1e-4)


def test_hooked_transformer_scores_like_the_hf_model(gpt2_pair, wic_dev):
    hf, tok, processed, raw = gpt2_pair
    saes = {"centred-sae": _gpt2_sae(50, centred=True)}
    kw = {"data": f"wic:{wic_dev}", "max_pairs": 150, "multi_token": "last"}
    by_hf = pseval.evaluate((hf, tok), saes, model_name="gpt2", **kw).records[0]
    by_tl = pseval.evaluate(processed, saes, **kw).records[0]
    assert by_hf.eval_config.model_convention == "hf" and by_tl.eval_config.model_convention == "tl_centered"
    assert by_tl.eval_config.model_dump(exclude={"model_convention"}) == by_hf.eval_config.model_dump(
        exclude={"model_convention"})
    assert by_tl.cell_id != by_hf.cell_id  # the convention is part of the key
    assert by_tl.eval_result_metrics == by_hf.eval_result_metrics and _details(by_tl) == _details(by_hf)
    assert by_tl.sae_cfg_dict["metadata"]["activation_convention"] == "tl_centered"  # SAELens' gpt2 resid SAE
    m = by_tl.eval_result_metrics.ps_eval
    assert m.tp + m.fp + m.tn + m.fn > 50 and m.tn > 0 and len({d.feature_1 for d in by_tl.eval_result_details}) > 1

    hf_sae = {"hf-sae": _gpt2_sae(51, centred=False)}
    with pytest.raises(ConfigError, match="from_pretrained_no_processing"):
        pseval.evaluate(processed, hf_sae, **kw)  # the mean is gone from centred activations
    a = pseval.evaluate(raw, hf_sae, **kw).records[0]
    b = pseval.evaluate((hf, tok), hf_sae, model_name="gpt2", **kw).records[0]
    assert a.eval_result_metrics == b.eval_result_metrics and _details(a) == _details(b)
    with pytest.raises(HookError, match="hook_z"):
        pseval.evaluate(processed, _Identity(), hook="blocks.1.attn.hook_z", **kw)


class _Identity(nn.Module):
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x


# --- SAEBench run_eval with SAELens release ids -----------------------------------------------------------------------

def test_run_eval_reads_release_ids_through_saelens(minilm, wic_dev, tmp_path, monkeypatch):
    sae_lens = pytest.importorskip("sae_lens")
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    from pseval.integrations.saebench import PSEvalSAEBenchConfig, run_eval, validate_with_saebench
    from pseval.saes import loading

    release = "gpt2-small-res-jb"
    sae_id = next(iter(get_pretrained_saes_directory()[release].saes_map))
    cfg = sae_lens.TopKSAEConfig(d_in=D, d_sae=M, k=16)
    cfg.metadata.hook_name, cfg.metadata.model_name = HOOK, "minilm"
    # Trained on Hugging Face MiniLM activations: recorded, since nothing may be guessed from the name.
    cfg.metadata.activation_convention = "hf"
    obj = _randomise(sae_lens.TopKSAE(cfg), 60)
    obj.save_model(tmp_path / "release-copy")
    fetched: list[str] = []
    # No network here: the release's files are served from a local copy, everything else is SAELens' and pseval's.
    monkeypatch.setattr(loading, "fetch_hub", lambda spec: fetched.append(spec) or tmp_path / "release-copy")
    out = tmp_path / "results"
    rc = PSEvalSAEBenchConfig(model_name="minilm", dataset=f"wic:{wic_dev}", max_pairs=150)
    got = run_eval(rc, [(release, sae_id), ("same-object", obj)], "cpu", str(out), model=minilm)
    assert fetched and fetched[0].startswith("hf://jbloom/")
    by_release = json.loads((out / f"{release}_{sae_id}_eval_results.json".replace("/", "_")).read_text())
    by_object = json.loads((out / "same-object_custom_sae_eval_results.json").read_text())
    assert set(got) == {f"{release}_{sae_id}", "same-object_custom_sae"}
    for data in (by_release, by_object):
        validate_with_saebench(data)
    assert (by_release["sae_lens_release_id"], by_release["sae_lens_id"]) == (release, sae_id)
    own = {"controls", "gain_over_control"}  # random controls are drawn from each SAE's own key
    assert {k: v for k, v in by_release["eval_result_metrics"].items() if k not in own} == \
        {k: v for k, v in by_object["eval_result_metrics"].items() if k not in own}
    assert by_release["eval_result_details"] == by_object["eval_result_details"]
    assert Path(out).is_dir() and len(list(out.iterdir())) == 2
