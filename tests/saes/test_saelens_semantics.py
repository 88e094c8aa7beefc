"""SAELens SAEs compute exactly as SAELens defines them, or are refused with the field and value named.

Every expected value here is written from SAELens' own definitions (its sae.py before 6.0 and saes/*.py since),
never by calling pseval's code:
- activations (get_activation_fn): relu = max(0, h); tanh-relu = tanh(max(0, h)); topk = the k largest h kept, ReLU'd,
  others 0. JumpReLU: relu(h) * 1[h > threshold]. Gated: 1[h_gate > 0] * relu(h_mag).
- normalize_activations: expected_average_only_in folds a factor s as W_enc * s, W_dec / s, b_dec / s;
  constant_norm_rescale multiplies x by c = sqrt(d_in) / ||x|| and divides the output by c; layer_norm feeds
  (x - mu) / (std + 1e-5) and un-normalises the output as x_hat * std + mu (std unbiased, no epsilon).
- process_sae_in: normalise first, then subtract b_dec when apply_b_dec_to_input.
"""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from safetensors.torch import save_file

from pseval.errors import SAEFormatError
from pseval.saes.formats.detect import load_any

D, M = 16, 48


@pytest.fixture()
def w():
    g = torch.Generator().manual_seed(3)
    return {"W_enc": torch.randn(D, M, generator=g) * 0.3, "b_enc": torch.randn(M, generator=g) * 0.1,
            "W_dec": torch.randn(M, D, generator=g) * 0.3, "b_dec": torch.randn(D, generator=g) * 0.1,
            # thresholds of both signs: JumpReLU's ReLU matters where a threshold is negative
            "threshold": torch.randn(M, generator=g) * 0.2,
            "x": torch.randn(40, D, generator=g) * 2 + 0.5}


def _write(tmp_path, cfg: dict, tensors: dict, name: str = "sae"):
    d = tmp_path / name
    d.mkdir()
    (d / "cfg.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / "sae_weights.safetensors"))
    return d


def _legacy(**over) -> dict:
    cfg = {"d_in": D, "d_sae": M, "model_name": "pythia-70m", "hook_point": "blocks.2.hook_resid_post",
           "hook_point_layer": 2, "activation_fn_str": "relu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "context_size": 128, "dtype": "float32", "device": "cpu"}
    cfg.update(over)
    return {k: v for k, v in cfg.items() if v is not None}


def _v6(arch: str = "standard", **over) -> dict:
    cfg = {"architecture": arch, "d_in": D, "d_sae": M, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"model_name": "gemma-2-2b", "hook_name": "blocks.3.hook_resid_post"}}
    cfg.update(over)
    return cfg


BASIC = ("W_enc", "b_enc", "W_dec", "b_dec")


def _top_k_relu(h: torch.Tensor, k: int) -> torch.Tensor:
    out = torch.zeros_like(h)
    for row in range(h.shape[0]):
        idx = sorted(range(h.shape[1]), key=lambda j: -float(h[row, j]))[:k]
        for j in idx:
            out[row, j] = max(0.0, float(h[row, j]))
    return out


# ---- every pre-6.0 activation_fn_str, on each architecture it occurs with ----

def test_legacy_relu_standard(tmp_path, w):
    sae = load_any(_write(tmp_path, _legacy(), {k: w[k] for k in BASIC}))
    h = (w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(w["x"]), h.clamp_min(0), atol=1e-6, rtol=1e-6)


def test_legacy_tanh_relu(tmp_path, w):
    sae = load_any(_write(tmp_path, _legacy(activation_fn_str="tanh-relu"), {k: w[k] for k in BASIC}))
    h = (w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    expected = torch.tensor([[math.tanh(max(0.0, float(v))) for v in row] for row in h])
    torch.testing.assert_close(sae.encode(w["x"]), expected, atol=1e-6, rtol=1e-6)
    assert sae.architecture == "tanh_relu"
    z = sae.encode(w["x"])
    torch.testing.assert_close(sae.decode(z), z @ w["W_dec"] + w["b_dec"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["standard", "topk"])
def test_legacy_topk(tmp_path, w, arch):
    cfg = _legacy(activation_fn_str="topk", activation_fn_kwargs={"k": 6}, architecture=arch)
    sae = load_any(_write(tmp_path, cfg, {k: w[k] for k in BASIC}))
    h = (w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(w["x"]), _top_k_relu(h, 6), atol=1e-6, rtol=1e-6)


def test_legacy_activation_fn_spelling(tmp_path, w):
    # The oldest configs name the field `activation_fn` (SAELens renamed it to activation_fn_str).
    cfg = _legacy(activation_fn_str=None, activation_fn="topk", activation_fn_kwargs={"k": 3})
    sae = load_any(_write(tmp_path, cfg, {k: w[k] for k in BASIC}))
    h = (w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(w["x"]), _top_k_relu(h, 3), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["legacy", "v6"])
def test_jumprelu_relu_below_negative_thresholds(tmp_path, w, fmt):
    cfg = _legacy(architecture="jumprelu", apply_b_dec_to_input=False) if fmt == "legacy" else _v6(
        "jumprelu", apply_b_dec_to_input=False)
    sae = load_any(_write(tmp_path, cfg, {k: w[k] for k in (*BASIC, "threshold")}))
    h = w["x"] @ w["W_enc"] + w["b_enc"]
    expected = torch.where(h > w["threshold"], h.clamp_min(0), torch.zeros_like(h))
    assert bool(((h < 0) & (h > w["threshold"])).any()), "the fixture must exercise the negative-threshold case"
    z = sae.encode(w["x"]).detach()
    torch.testing.assert_close(z, expected, atol=1e-6, rtol=1e-6)
    assert float(z.min()) >= 0


def test_legacy_gated(tmp_path, w):
    g = torch.Generator().manual_seed(5)
    extra = {"b_gate": torch.randn(M, generator=g) * 0.1, "b_mag": torch.randn(M, generator=g) * 0.1,
             "r_mag": torch.randn(M, generator=g) * 0.1}
    sae = load_any(_write(tmp_path, _legacy(architecture="gated"),
                          {"W_enc": w["W_enc"], "W_dec": w["W_dec"], "b_dec": w["b_dec"], **extra}))
    xc = w["x"] - w["b_dec"]
    gate = xc @ w["W_enc"] + extra["b_gate"]
    mag = xc @ (w["W_enc"] * extra["r_mag"].exp()) + extra["b_mag"]
    torch.testing.assert_close(sae.encode(w["x"]), (gate > 0).float() * mag.clamp_min(0), atol=1e-6, rtol=1e-6)


# ---- every normalize_activations value, string and legacy boolean ----

@pytest.mark.parametrize("value", ["none", False, None])
def test_normalisation_none(tmp_path, w, value):
    cfg = _legacy(normalize_activations=value) if value is not None else {**_legacy(), "normalize_activations": None}
    sae = load_any(_write(tmp_path, cfg, {k: w[k] for k in BASIC}))
    assert sae.cfg.normalize_activations == "none"
    h = (w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(w["x"]), h.clamp_min(0), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(("value", "where"), [("expected_average_only_in", "top"), (True, "top"),
                                              ("expected_average_only_in", "v6-metadata")])
def test_expected_average_only_in_folds_the_factor(tmp_path, w, value, where):
    s = 0.37
    if where == "v6-metadata":
        cfg = _v6(normalize_activations=value)
        cfg["metadata"]["norm_scaling_factor"] = s
    else:
        cfg = _legacy(normalize_activations=value, norm_scaling_factor=s)
    sae = load_any(_write(tmp_path, cfg, {k: w[k] for k in BASIC}))
    # SAELens' fold_activation_norm_scaling_factor: W_enc * s, W_dec / s, b_dec / s; then a plain ReLU SAE.
    W_enc, W_dec, b_dec = w["W_enc"] * s, w["W_dec"] / s, w["b_dec"] / s
    z = ((w["x"] - b_dec) @ W_enc + w["b_enc"]).clamp_min(0)
    got_z, got_x = sae.encode_decode(w["x"])
    torch.testing.assert_close(got_z, z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_x, z @ W_dec + b_dec, atol=1e-5, rtol=1e-5)


def test_expected_average_only_in_without_factor_warns_and_leaves_inputs(tmp_path, w):
    d = _write(tmp_path, _legacy(normalize_activations="expected_average_only_in"), {k: w[k] for k in BASIC})
    with pytest.warns(UserWarning, match="no norm_scaling_factor"):
        sae = load_any(d)
    h = (w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.encode(w["x"]), h.clamp_min(0), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["legacy", "v6"])
def test_constant_norm_rescale(tmp_path, w, fmt):
    cfg = (_legacy if fmt == "legacy" else _v6)(normalize_activations="constant_norm_rescale")
    sae = load_any(_write(tmp_path, cfg, {k: w[k] for k in BASIC}))
    x = w["x"]
    c = torch.tensor([[math.sqrt(D) / math.sqrt(sum(float(v) ** 2 for v in row))] for row in x])
    z = ((x * c - w["b_dec"]) @ w["W_enc"] + w["b_enc"]).clamp_min(0)
    got_z, got_x = sae.encode_decode(x)
    torch.testing.assert_close(got_z, z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_x, (z @ w["W_dec"] + w["b_dec"]) / c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["legacy", "v6"])
def test_layer_norm(tmp_path, w, fmt):
    cfg = (_legacy if fmt == "legacy" else _v6)(normalize_activations="layer_norm")
    sae = load_any(_write(tmp_path, cfg, {k: w[k] for k in BASIC}))
    x = w["x"] * 1e-3  # std ~ 2e-3: the epsilon (1e-5) is 0.5% of it, so using std + eps to un-normalise shows
    mu = x.sum(-1, keepdim=True) / D
    std = (((x - mu) ** 2).sum(-1, keepdim=True) / (D - 1)).sqrt()  # unbiased, as torch.std
    z = (((x - mu) / (std + 1e-5) - w["b_dec"]) @ w["W_enc"] + w["b_enc"]).clamp_min(0)
    got_z, got_x = sae.encode_decode(x)
    torch.testing.assert_close(got_z, z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((got_x - mu) / std, z @ w["W_dec"] + w["b_dec"], atol=1e-5, rtol=1e-4)


def test_v6_topk_rescale_acts_by_decoder_norm(tmp_path, w):
    sae = load_any(_write(tmp_path, _v6("topk", k=5, rescale_acts_by_decoder_norm=True), {k: w[k] for k in BASIC}))
    norms = w["W_dec"].norm(dim=-1)
    z = _top_k_relu(((w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]) * norms, 5)
    got_z, got_x = sae.encode_decode(w["x"])
    torch.testing.assert_close(got_z, z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_x, (z / norms) @ w["W_dec"] + w["b_dec"], atol=1e-5, rtol=1e-5)


def test_v6_topk_without_k_takes_saelens_default(tmp_path):
    g = torch.Generator().manual_seed(0)
    m = 150
    t = {"W_enc": torch.randn(D, m, generator=g), "b_enc": torch.zeros(m), "W_dec": torch.randn(m, D, generator=g),
         "b_dec": torch.zeros(D)}
    sae = load_any(_write(tmp_path, {**_v6("topk"), "d_sae": m}, t))
    assert sae.cfg.k == 100  # SAELens' TopKSAEConfig default


def test_finetuning_scaling_factor_of_ones_is_accepted(tmp_path, w):
    t = {**{k: w[k] for k in BASIC}, "finetuning_scaling_factor": torch.ones(M)}
    sae = load_any(_write(tmp_path, _legacy(finetuning_scaling_factor=True), t))
    h = (w["x"] - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    torch.testing.assert_close(sae.decode(sae.encode(w["x"])), h.clamp_min(0) @ w["W_dec"] + w["b_dec"],
                               atol=1e-5, rtol=1e-5)


# ---- refusals: each names the field and the value ----

REFUSALS = [
    ("activation softmax", _legacy(activation_fn_str="softmax"), BASIC,
     r"'activation_fn_str'.*relu, tanh-relu, topk, jump-relu.*'softmax'"),
    # jump-relu is the PS-Eval authors' fork's (tests/saes/test_fork_checkpoints.py); upstream never wrote it.
    ("activation spelled twice", _legacy(activation_fn="topk"), BASIC, r"'activation_fn_str'.*activation_fn='topk'"),
    ("topk without k", _legacy(activation_fn_str="topk"), BASIC, r"'activation_fn_kwargs.k'.*got None"),
    ("topk k too large", _legacy(activation_fn_str="topk", activation_fn_kwargs={"k": M + 1}), BASIC,
     rf"'activation_fn_kwargs.k' must be an integer in 1..{M}, got {M + 1}"),
    ("topk postact", _legacy(activation_fn_str="topk", activation_fn_kwargs={"k": 2, "postact_fn": "Identity"}),
     BASIC, r"'activation_fn_kwargs'.*postact_fn"),
    ("jumprelu with topk", _legacy(architecture="jumprelu", activation_fn_str="topk", activation_fn_kwargs={"k": 2}),
     (*BASIC, "threshold"), r"'architecture'.*activation_fn_str='topk'.*got 'jumprelu'"),
    ("topk arch with relu", _legacy(architecture="topk"), BASIC, r"'architecture'.*SAELens 5 computed a plain ReLU"),
    ("unknown architecture", _legacy(architecture="relu6"), BASIC, r"'architecture'.*'relu6'"),
    ("normalisation value", _legacy(normalize_activations="batch_norm"), BASIC,
     r"'normalize_activations' must be one of none, expected_average_only_in.*'batch_norm'"),
    ("factor nan", _legacy(normalize_activations="expected_average_only_in", norm_scaling_factor=float("nan")),
     BASIC, r"'norm_scaling_factor' must be a finite number > 0.*nan"),
    ("factor zero", _legacy(normalize_activations="expected_average_only_in", norm_scaling_factor=0), BASIC,
     r"'norm_scaling_factor'.*got 0"),
    ("factor negative", _legacy(norm_scaling_factor=-2.0), BASIC, r"'norm_scaling_factor'.*got -2.0"),
    ("factor string", _legacy(norm_scaling_factor="1.5"), BASIC, r"'norm_scaling_factor'.*got '1.5'"),
    ("v6 factor nan", _v6(normalize_activations="expected_average_only_in",
                          metadata={"norm_scaling_factor": float("inf")}), BASIC,
     r"'metadata.norm_scaling_factor'.*inf"),
    ("b_dec flag string", _legacy(apply_b_dec_to_input="no"), BASIC,
     r"'apply_b_dec_to_input' must be a JSON boolean \(true or false\), got 'no'"),
    ("v6 b_dec flag int", _v6(apply_b_dec_to_input=1), BASIC, r"'apply_b_dec_to_input'.*got 1"),
    ("prepend_bos string", _legacy(prepend_bos="yes"), BASIC, r"'metadata.prepend_bos'.*got 'yes'"),
    ("v6 prepend_bos", _v6(metadata={"prepend_bos": "false"}), BASIC, r"'metadata.prepend_bos'.*got 'false'"),
    ("finetuning flag string", _legacy(finetuning_scaling_factor="false"), BASIC,
     r"'finetuning_scaling_factor'.*got 'false'"),
    ("rescale flag string", _v6("topk", k=3, rescale_acts_by_decoder_norm="true"), BASIC,
     r"'rescale_acts_by_decoder_norm'.*got 'true'"),
    ("d_in string", _v6(d_in="16"), BASIC, r"'d_in' must be a positive integer, got '16'"),
    ("d_sae float", _legacy(d_sae=48.0), BASIC, r"'d_sae' must be a positive integer, got 48.0"),
    ("dtype", _v6(dtype="int8"), BASIC, r"'dtype' must be one of float32.*got 'int8'"),
    ("reshape", _v6(reshape_activations="heads"), BASIC, r"'reshape_activations' must be one of none, hook_z"),
    ("head index", _v6(metadata={"hook_head_index": -1}), BASIC, r"'metadata.hook_head_index'.*>= 0.*-1"),
    ("context size", _legacy(context_size=0), BASIC, r"'metadata.context_size'.*got 0"),
    ("hook layer", _legacy(hook_point_layer="2"), BASIC, r"'hook_layer'.*got '2'"),
    ("metadata not object", {**_v6(), "metadata": {"model_name": 7}}, BASIC, r"'metadata.model_name'.*got 7"),
    ("threshold beside relu", _legacy(), (*BASIC, "threshold"),
     r"tensor\(s\) threshold are not weights of architecture 'standard'"),
    ("v6 extra tensor", _v6("topk", k=3), (*BASIC, "threshold"), r"threshold are not weights of architecture 'topk'"),
    ("finetuning without tensor", _legacy(finetuning_scaling_factor=True), BASIC,
     r"finetuning_scaling_factor=true but the file has no"),
]


@pytest.mark.parametrize(("name", "cfg", "tensors", "pattern"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(tmp_path, w, name, cfg, tensors, pattern):
    d = _write(tmp_path, cfg, {k: w[k].abs() if k == "threshold" else w[k] for k in tensors})
    with pytest.raises(SAEFormatError, match=pattern) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_any(d)
    assert "cfg.json" in str(info.value) or "sae_weights.safetensors" in str(info.value)  # names the file


@pytest.mark.parametrize("tensor", ["finetuning_scaling_factor", "scaling_factor"])
def test_finetuning_scale_not_ones_is_refused(tmp_path, w, tensor):
    scale = torch.ones(M)
    scale[3] = 2.0
    d = _write(tmp_path, _legacy(finetuning_scaling_factor=True), {**{k: w[k] for k in BASIC}, tensor: scale})
    with pytest.raises(SAEFormatError, match=rf"'{tensor}'.*not all ones"):
        load_any(d)
