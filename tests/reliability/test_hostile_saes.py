"""Second round of hostile SAE files: every reader passes what it loads through one validation layer
(pseval.saes.formats.checks), so a malformed file of any format is one exit-2 line naming the file and the field,
never a traceback or "this is a bug". Each case failed on the code before that layer existed."""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from pseval.cli import main
from pseval.saes import SAEConfig, SAEMetadata, save_sae
from pseval.saes.standard import StandardSAE

D, M = 8, 16


class Payload:
    """An object whose unpickling would run code."""

    def __reduce__(self):
        return (print, ("pwned",))


def _w(*shape: int) -> torch.Tensor:
    return torch.randn(*shape) * 0.1


# --- builders: one valid SAE folder or file per format, with one entry replaced --------------------------------------

def dictionary_learning(tmp: Path, cls: str = "AutoEncoder", config: dict | None = None, **state) -> Path:
    d = tmp / "trainer_0"
    d.mkdir()
    sd = {"AutoEncoder": {"encoder.weight": _w(M, D), "encoder.bias": _w(M), "decoder.weight": _w(D, M),
                          "bias": _w(D)},
          "AutoEncoderTopK": {"encoder.weight": _w(M, D), "encoder.bias": _w(M), "decoder.weight": _w(D, M),
                              "b_dec": _w(D), "k": torch.tensor(4)},
          "BatchTopKSAE": {"encoder.weight": _w(M, D), "encoder.bias": _w(M), "decoder.weight": _w(D, M),
                           "b_dec": _w(D), "k": torch.tensor(4), "threshold": torch.tensor(0.1)}}[cls]
    sd.update(state)
    torch.save(sd, d / "ae.pt")
    trainer = {"dict_class": cls, "activation_dim": D, "dict_size": M, "layer": 1, "lm_name": "gpt2",
               "submodule_name": "resid_post_layer_1", **(config or {})}
    (d / "config.json").write_text(json.dumps({"trainer": trainer}))
    return d


def openai(tmp: Path, **state) -> Path:
    sd = {"pre_bias": _w(D), "encoder.weight": _w(M, D), "latent_bias": _w(M), "decoder.weight": _w(D, M),
          "activation": "TopK", "activation_state_dict": {"k": 4, "postact_fn": "ReLU"}}
    sd.update(state)
    p = tmp / "ae.pt"
    torch.save(sd, p)
    return p


def sparsify(tmp: Path, **tensors) -> Path:
    d = tmp / "layers.1"
    d.mkdir()
    w = {"encoder.weight": _w(M, D), "encoder.bias": _w(M), "W_dec": _w(M, D), "b_dec": _w(D)}
    w.update(tensors)
    save_file(w, str(d / "sae.safetensors"))
    (d / "cfg.json").write_text(json.dumps({"k": 4, "d_in": D, "num_latents": M}))
    return d


def gemma_scope(tmp: Path, **arrays) -> Path:
    d = tmp / "gemma-scope-2b-pt-res" / "layer_1" / "width_16" / "average_l0_4"
    d.mkdir(parents=True)
    a = {"W_enc": np.random.randn(D, M).astype(np.float32), "W_dec": np.random.randn(M, D).astype(np.float32),
         "b_enc": np.zeros(M, np.float32), "b_dec": np.zeros(D, np.float32), "threshold": np.zeros(M, np.float32)}
    a.update(arrays)
    np.savez(d / "params.npz", **a)
    return d / "params.npz"


def gemma_huge_header(tmp: Path) -> Path:
    """params.npz whose W_enc header claims 200000 x 200000 float32 (160 GB) over a few bytes of data."""
    p = gemma_scope(tmp)
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (200000, 200000), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64
    keep = {}
    with zipfile.ZipFile(p) as zf:
        for n in zf.namelist():
            keep[n] = zf.read(n)
    keep["W_enc.npy"] = member
    with zipfile.ZipFile(p, "w") as zf:
        for n, b in keep.items():
            zf.writestr(n, b)
    return p


def saelens(tmp: Path, cfg_edit: Callable[[dict], None] | None = None, sae: StandardSAE | None = None) -> Path:
    torch.manual_seed(0)
    meta = SAEMetadata(model_name="gpt2", hook_name="blocks.1.hook_resid_post")
    d = save_sae(sae or StandardSAE(SAEConfig("standard", D, M, metadata=meta)), tmp / "sae")
    if cfg_edit is not None:
        cfg = json.loads((d / "cfg.json").read_text())
        cfg_edit(cfg)
        (d / "cfg.json").write_text(json.dumps(cfg))
    return d


def _legacy(cfg: dict) -> None:
    meta = cfg.pop("metadata")
    cfg.update(hook_name=meta["hook_name"], model_name=meta["model_name"], hook_head_index=2,
               activation_fn_str="relu")


# (id, build(tmp) -> SAE path, regexes the one error line must match)
CASES: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("dl-encoder-1d", lambda t: dictionary_learning(t, **{"encoder.weight": _w(M * D)}),
     (r"ae\.pt", r"'encoder\.weight'", r"1-D", r"expected 2-D")),
    ("dl-decoder-3d", lambda t: dictionary_learning(t, **{"decoder.weight": _w(D, M, 2)}),
     (r"ae\.pt", r"'decoder\.weight'", r"3-D")),
    ("dl-bias-2d", lambda t: dictionary_learning(t, bias=_w(D, 1)), (r"ae\.pt", r"'bias'", r"expected 1-D")),
    ("dl-non-tensor", lambda t: dictionary_learning(t, **{"encoder.bias": "hello"}),
     (r"ae\.pt", r"'encoder\.bias' holds a str, expected a tensor")),
    ("dl-list-value", lambda t: dictionary_learning(t, **{"decoder.weight": [[1.0, 2.0]]}),
     (r"ae\.pt", r"'decoder\.weight' holds a list")),
    ("dl-integer-weights", lambda t: dictionary_learning(t, **{"encoder.weight": torch.ones(M, D, dtype=torch.long)}),
     (r"ae\.pt", r"'encoder\.weight' has dtype int64, expected floating point")),
    ("dl-string-k", lambda t: dictionary_learning(t, "AutoEncoderTopK", k="eight"),
     (r"ae\.pt", r"'k' is 'eight', expected an integer")),
    ("dl-float-k", lambda t: dictionary_learning(t, "AutoEncoderTopK", k=torch.tensor(4.5)),
     (r"ae\.pt", r"'k'", r"expected an integer")),
    ("dl-config-string-k", lambda t: _dl_without_k(t, "8"),
     (r"config\.json", r"'trainer\.k' is '8', expected an integer")),
    ("dl-batchtopk-threshold-vector", lambda t: dictionary_learning(t, "BatchTopKSAE", threshold=_w(3)),
     (r"ae\.pt", r"'threshold' has 3 values", r"one global threshold")),
    ("dl-trainer-list", lambda t: _dl_config(t, {"trainer": [1, 2]}), (r"config\.json", r"'trainer' holds a list")),
    ("dl-submodule-number", lambda t: dictionary_learning(t, config={"submodule_name": 7}),
     (r"config\.json", r"'trainer\.submodule_name' is 7, expected a string")),
    ("openai-state-list", lambda t: openai(t, activation_state_dict=[4]),
     (r"ae\.pt", r"'activation_state_dict' holds a list, expected a mapping")),
    ("openai-string-k", lambda t: openai(t, activation_state_dict={"k": "many"}),
     (r"ae\.pt", r"'activation_state_dict\.k' is 'many', expected an integer")),
    ("openai-zero-k", lambda t: openai(t, activation_state_dict={"k": 0}),
     (r"ae\.pt", r"'activation_state_dict\.k' is 0, expected an integer >= 1")),
    ("openai-pickled-code", lambda t: openai(t, activation_state_dict={"k": 4, "hook": Payload()}),
     (r"ae\.pt: the file holds code \(a pickled object, not only tensors\) and is refused",)),
    ("openai-encoder-1d", lambda t: openai(t, **{"encoder.weight": _w(M)}),
     (r"ae\.pt", r"'encoder\.weight' has shape \(16,\) \(1-D\), expected 2-D")),
    ("openai-non-tensor-bias", lambda t: openai(t, latent_bias=3.0),
     (r"ae\.pt", r"'latent_bias' holds a float, expected a tensor")),
    ("openai-activation-dict", lambda t: openai(t, activation={"name": "TopK"}),
     (r"ae\.pt", r"'activation' is \{'name': 'TopK'\}, expected a name")),
    ("sparsify-encoder-1d", lambda t: sparsify(t, **{"encoder.weight": _w(M * D)}),
     (r"sae\.safetensors", r"'encoder\.weight' has shape \(128,\), expected 2-D")),
    ("sparsify-encoder-3d", lambda t: sparsify(t, **{"encoder.weight": _w(M, D, 1)}),
     (r"sae\.safetensors", r"'encoder\.weight' has shape \(16, 8, 1\), expected 2-D")),
    ("gemma-w-enc-1d", lambda t: gemma_scope(t, W_enc=np.zeros(D * M, np.float32)),
     (r"params\.npz", r"'W_enc' has shape \(128,\) \(1-D\), expected 2-D")),
    ("gemma-header-160gb", gemma_huge_header,
     (r"params\.npz", r"'W_enc' claims 160,000,000,000 bytes of data but the file stores 64")),
    ("saelens-identity-with-weights", lambda t: saelens(t, lambda c: c.update(architecture="identity")),
     (r"cfg\.json", r"'architecture' is 'identity', which holds no weights")),
    ("saelens-head-index-on-resid", lambda t: saelens(t, lambda c: c["metadata"].update(hook_head_index=3)),
     (r"cfg\.json", r"'hook_head_index' is 3", r"'blocks\.1\.hook_resid_post' is not an attention hook_z")),
    ("saelens-hook-z-on-resid", lambda t: saelens(t, lambda c: c.update(reshape_activations="hook_z")),
     (r"cfg\.json", r"'reshape_activations' is 'hook_z'", r"not an attention hook_z")),
    ("saelens-legacy-head-index-on-resid", lambda t: saelens(t, _legacy),
     (r"cfg\.json", r"'hook_head_index' is 2")),
]


def _dl_without_k(tmp: Path, k: object) -> Path:
    d = dictionary_learning(tmp, "AutoEncoderTopK", config={"k": k})
    sd = torch.load(d / "ae.pt", weights_only=True)
    del sd["k"]
    torch.save(sd, d / "ae.pt")
    return d


def _dl_config(tmp: Path, conf: dict) -> Path:
    d = dictionary_learning(tmp)
    (d / "config.json").write_text(json.dumps(conf))
    return d


@pytest.mark.parametrize(("build", "patterns"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_sae_is_one_exit_2_line_naming_file_and_field(build, patterns, tmp_path):
    import re

    path = build(tmp_path)
    res = CliRunner().invoke(main, ["sae-info", str(path)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "bug" not in res.output, res.output
    assert "weights_only=False" not in res.output and "pwned" not in res.output, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    for p in patterns:
        assert re.search(p, lines[0]), (p, lines[0])


def test_valid_files_of_every_format_still_load(tmp_path):
    """The layer refuses only what is malformed: the builders' unedited files load."""
    for i, build in enumerate((dictionary_learning, openai, sparsify, gemma_scope, saelens)):
        t = tmp_path / str(i)
        t.mkdir()
        res = CliRunner().invoke(main, ["sae-info", str(build(t))])
        assert res.exit_code == 0, (build.__name__, res.output)


def test_pickled_model_weights_are_refused_as_code_without_torchs_advice(tmp_path, tiny_gpt2_dir):
    """A pytorch_model.bin holding a pickled object (code) is refused as such; torch's advice to reload with
    weights_only=False is never passed on."""
    import shutil

    d = tmp_path / "model"
    shutil.copytree(tiny_gpt2_dir, d)
    for w in d.glob("*.safetensors"):
        w.unlink()
    torch.save({"x": Payload()}, d / "pytorch_model.bin")
    res = CliRunner().invoke(main, ["hooks", "--model", str(d)])
    assert res.exit_code == 2, res.output
    assert "pwned" not in res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("error:"))
    assert "pytorch_model.bin" in line and "holds code" in line and "refused" in line, line
    assert "weights_only=False" not in res.output and "bug" not in line, line
