"""Each foreign SAE format, written here from its published layout with known weights, loads and encodes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from pseval.cli import main
from pseval.errors import ConfigError, SAEFormatError
from pseval.saes.conventions import TL_CENTERED, convention_of, set_convention, to_sae_input
from pseval.saes.formats.detect import detect_format, load_any

D, M = 16, 48


@pytest.fixture()
def w():
    g = torch.Generator().manual_seed(0)
    return {"W_enc": torch.randn(D, M, generator=g) * 0.3, "b_enc": torch.randn(M, generator=g) * 0.1,
            "W_dec": torch.randn(M, D, generator=g) * 0.3, "b_dec": torch.randn(D, generator=g) * 0.1,
            "threshold": torch.rand(M, generator=g) * 0.2, "x": torch.randn(32, D, generator=g)}


def _topk(pre, k):
    v, i = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, i, torch.relu(v))


def test_saelens_legacy_topk(tmp_path, w):
    d = tmp_path / "blocks.8.hook_resid_pre"
    d.mkdir()
    (d / "cfg.json").write_text(json.dumps({
        "model_name": "gpt2-small", "hook_point": "blocks.8.hook_resid_pre", "hook_point_layer": 8, "d_in": D,
        "d_sae": M, "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 5}, "apply_b_dec_to_input": True,
        "normalize_activations": False, "context_size": 128, "dataset_path": "Skylion007/openwebtext"}))
    save_file({k: w[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}, str(d / "sae_weights.safetensors"))
    assert detect_format(d) == "saelens_legacy"
    sae = load_any(d)
    assert sae.architecture == "topk" and sae.cfg.k == 5
    assert sae.cfg.metadata.hook_name == "blocks.8.hook_resid_pre"
    # Neither model_from_pretrained_kwargs nor a runner config says how the model was loaded: no guess from
    # "gpt2-small", a refusal naming the option; the option then decides, and the record says so.
    with pytest.raises(ConfigError, match=r"^topk SAE of gpt2-small at blocks.8.hook_resid_pre: .*--sae-convention"):
        convention_of(sae)
    set_convention(sae, TL_CENTERED)
    assert convention_of(sae) == TL_CENTERED
    assert sae.cfg.to_dict()["metadata"]["activation_convention_source"] == "the explicit option"
    x = w["x"]
    expected = _topk((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"], 5)
    torch.testing.assert_close(sae.encode(x), expected, atol=1e-6, rtol=1e-6)


def test_saelens_v6_jumprelu_and_gated(tmp_path, w):
    d = tmp_path / "jr"
    d.mkdir()
    meta = {"model_name": "gemma-2-2b", "hook_name": "blocks.3.hook_resid_post"}
    (d / "cfg.json").write_text(json.dumps({"architecture": "jumprelu", "d_in": D, "d_sae": M,
                                            "apply_b_dec_to_input": False, "metadata": meta}))
    save_file({k: w[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")}, str(d / "sae_weights.safetensors"))
    sae = load_any(d)
    pre = w["x"] @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(w["x"]), pre * (pre > w["threshold"]), atol=1e-6, rtol=1e-6)
    # No model_from_pretrained_kwargs: nothing says how the model was loaded (no guess from "gemma"): refused.
    with pytest.raises(ConfigError, match="pass --sae-convention"):
        convention_of(sae)
    set_convention(sae, "hf")
    assert convention_of(sae) == "hf"

    g = tmp_path / "gated"
    g.mkdir()
    (g / "cfg.json").write_text(json.dumps({"architecture": "gated", "d_in": D, "d_sae": M, "metadata": {}}))
    r_mag = torch.randn(M) * 0.1
    b_gate, b_mag = torch.randn(M) * 0.1, torch.randn(M) * 0.1
    save_file({"W_enc": w["W_enc"], "b_gate": b_gate, "b_mag": b_mag, "r_mag": r_mag, "W_dec": w["W_dec"],
               "b_dec": w["b_dec"]}, str(g / "sae_weights.safetensors"))
    gated = load_any(g)
    h = (w["x"] - w["b_dec"]) @ w["W_enc"]
    expected = ((h + b_gate) > 0).float() * torch.relu(h * r_mag.exp() + b_mag)
    torch.testing.assert_close(gated.encode(w["x"]), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dict_class", ["AutoEncoder", "AutoEncoderTopK", "BatchTopKSAE", "GatedAutoEncoder",
                                        "JumpReluAutoEncoder"])
def test_dictionary_learning(tmp_path, w, dict_class):
    d = tmp_path / "trainer_0"
    d.mkdir()
    enc_w, enc_b, dec_w = w["W_enc"].T.contiguous(), w["b_enc"], w["W_dec"].T.contiguous()  # nn.Linear layout
    x = w["x"]
    if dict_class == "AutoEncoder":
        sd = {"bias": w["b_dec"], "encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w}
        expected = torch.relu((x - w["b_dec"]) @ enc_w.T + enc_b)
    elif dict_class == "AutoEncoderTopK":
        sd = {"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "b_dec": w["b_dec"],
              "k": torch.tensor(6)}
        expected = _topk((x - w["b_dec"]) @ enc_w.T + enc_b, 6)
    elif dict_class == "BatchTopKSAE":
        sd = {"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "b_dec": w["b_dec"],
              "k": torch.tensor(6), "threshold": torch.tensor(0.15)}
        pre = (x - w["b_dec"]) @ enc_w.T + enc_b
        expected = torch.relu(pre) * (pre > 0.15)
    elif dict_class == "GatedAutoEncoder":
        r_mag, gate_b, mag_b = torch.randn(M) * 0.1, torch.randn(M) * 0.1, torch.randn(M) * 0.1
        sd = {"decoder_bias": w["b_dec"], "encoder.weight": enc_w, "r_mag": r_mag, "gate_bias": gate_b,
              "mag_bias": mag_b, "decoder.weight": dec_w}
        h = (x - w["b_dec"]) @ enc_w.T
        expected = ((h + gate_b) > 0).float() * torch.relu(h * r_mag.exp() + mag_b)
    else:
        sd = {k: w[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")}
        pre = x @ w["W_enc"] + w["b_enc"]
        expected = torch.relu(pre) * (pre > w["threshold"])
    torch.save(sd, d / "ae.pt")
    (d / "config.json").write_text(json.dumps({"trainer": {"dict_class": dict_class, "activation_dim": D,
                                                           "dict_size": M, "k": 6, "layer": 3,
                                                           "lm_name": "EleutherAI/pythia-70m-deduped",
                                                           "submodule_name": "resid_post_layer_3"}}))
    assert detect_format(d) == "dictionary_learning"
    sae = load_any(d)
    assert sae.cfg.metadata.hook_name == "blocks.3.hook_resid_post"
    torch.testing.assert_close(sae.encode(x), expected, atol=1e-6, rtol=1e-6)
    x_hat = sae.decode(sae.encode(x))
    torch.testing.assert_close(x_hat, expected @ dec_w.T + w["b_dec"], atol=1e-5, rtol=1e-5)


def test_dictionary_learning_refuses_pickled_code(tmp_path):
    d = tmp_path / "evil"
    d.mkdir()

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"bias": Payload()}, d / "ae.pt")
    (d / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder"}}))
    with pytest.raises(SAEFormatError, match=r"holds code \(a pickled object, not only tensors\) and is refused"):
        load_any(d)


def test_sparsify_bf16(tmp_path, w):
    d = tmp_path / "run" / "layers.6.mlp"
    d.mkdir(parents=True)
    (d / "cfg.json").write_text(json.dumps({"expansion_factor": 3, "normalize_decoder": True, "num_latents": 0,
                                            "k": 7, "d_in": D}))
    bf = {"encoder.weight": w["W_enc"].T.contiguous().bfloat16(), "encoder.bias": w["b_enc"].bfloat16(),
          "W_dec": w["W_dec"].bfloat16(), "b_dec": w["b_dec"].bfloat16()}
    save_file(bf, str(d / "sae.safetensors"))
    assert detect_format(d) == "sparsify"
    sae = load_any(d)
    assert sae.cfg.metadata.hook_name == "blocks.6.hook_mlp_out" and sae.cfg.dtype == "bfloat16"
    enc = bf["encoder.weight"].float()
    expected = _topk((w["x"] - bf["b_dec"].float()) @ enc.T + bf["encoder.bias"].float(), 7)
    torch.testing.assert_close(sae.encode(w["x"]), expected, atol=1e-6, rtol=1e-6)


def test_gemma_scope_npz(tmp_path, w):
    d = tmp_path / "gemma-scope-2b-pt-res" / "layer_12" / "width_16k" / "average_l0_82"
    d.mkdir(parents=True)
    np.savez(d / "params.npz", **{k: w[k].numpy() for k in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")})
    sae = load_any(d / "params.npz")
    assert sae.architecture == "jumprelu" and not sae.cfg.apply_b_dec_to_input
    assert sae.cfg.metadata.hook_name == "blocks.12.hook_resid_post" and sae.cfg.metadata.model_name == "gemma-2-2b"
    pre = w["x"] @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(w["x"]), pre * (pre > w["threshold"]), atol=1e-6, rtol=1e-6)


def test_openai_topk_layer_norm(tmp_path, w):
    sd = {"pre_bias": w["b_dec"], "latent_bias": w["b_enc"], "encoder.weight": w["W_enc"].T.contiguous(),
          "decoder.weight": w["W_dec"].T.contiguous(), "stats_last_nonzero": torch.zeros(M, dtype=torch.long),
          "activation": "TopK", "activation_state_dict": {"k": 4, "postact_fn": "ReLU"}}
    torch.save(sd, tmp_path / "8.pt")
    sae = load_any(tmp_path / "8.pt", hook_name="blocks.8.hook_resid_post")
    x = w["x"] * 1e-3 + 2e-3  # a small std, where un-normalising with std + eps instead of std would show
    mu = x.mean(-1, keepdim=True)
    std = (x - mu).std(-1, keepdim=True)
    xn = (x - mu) / (std + 1e-5)
    z = _topk((xn - w["b_dec"]) @ w["W_enc"] + w["b_enc"], 4)
    torch.testing.assert_close(sae.encode(x), z, atol=1e-5, rtol=1e-5)
    # OpenAI's Autoencoder.decode: ret * info["std"] + info["mu"] (the epsilon is only in LN's division)
    torch.testing.assert_close((sae(x) - mu) / std, z @ w["W_dec"] + w["b_dec"], atol=1e-5, rtol=1e-4)


def test_openai_relu_takes_raw_inputs(tmp_path, w):
    # Their from_state_dict normalises exactly when the activation is TopK: ReLU autoencoders see raw activations.
    sd = {"pre_bias": w["b_dec"], "latent_bias": w["b_enc"], "encoder.weight": w["W_enc"].T.contiguous(),
          "decoder.weight": w["W_dec"].T.contiguous(), "activation": "ReLU"}
    torch.save(sd, tmp_path / "relu.pt")
    sae = load_any(tmp_path / "relu.pt")
    assert sae.cfg.normalize_activations == "none"
    x = w["x"] * 5 + 2
    torch.testing.assert_close(sae.encode(x), torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]),
                               atol=1e-5, rtol=1e-5)


def test_openai_identity_postact_refused(tmp_path, w):
    sd = {"pre_bias": w["b_dec"], "latent_bias": w["b_enc"], "encoder.weight": w["W_enc"].T.contiguous(),
          "decoder.weight": w["W_dec"].T.contiguous(), "activation": "TopK",
          "activation_state_dict": {"k": 4, "postact_fn": "Identity"}}
    torch.save(sd, tmp_path / "id.pt")
    with pytest.raises(SAEFormatError, match=r"postact_fn='Identity'"):
        load_any(tmp_path / "id.pt")


def test_sae_info(tmp_path, w):
    d = tmp_path / "trainer_0"
    d.mkdir()
    torch.save({"bias": w["b_dec"], "encoder.weight": w["W_enc"].T.contiguous(), "encoder.bias": w["b_enc"],
                "decoder.weight": w["W_dec"].T.contiguous()}, d / "ae.pt")
    (d / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder", "layer": 2,
                                                           "lm_name": "gpt2", "submodule_name": "attn_out_layer2"}}))
    res = CliRunner().invoke(main, ["sae-info", str(d)])
    assert res.exit_code == 0, res.output
    assert "dictionary_learning" in res.output and "blocks.2.hook_attn_out" in res.output
    assert any(ln.split()[:2] == ["weight", "W_enc"] and f"({D}, {M})" in ln for ln in res.output.splitlines())


def test_to_sae_input_centres_for_tl(w):
    from pseval.saes import SAEConfig, SAEMetadata
    from pseval.saes.standard import StandardSAE

    sae = StandardSAE(SAEConfig("standard", D, M, metadata=SAEMetadata(extra={"activation_convention": TL_CENTERED})))
    out = to_sae_input(w["x"] + 3.0, sae)
    torch.testing.assert_close(out.mean(-1), torch.zeros(32), atol=1e-6, rtol=0)
    torch.testing.assert_close(out, w["x"] - w["x"].mean(-1, keepdim=True), atol=1e-5, rtol=1e-5)
