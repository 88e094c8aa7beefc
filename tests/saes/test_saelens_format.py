"""SAELens v6 save/load round trips, cfg keys, and clear errors on broken files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from pseval.errors import ConfigError, MissingResourceError, SAEFormatError
from pseval.saes import SAEConfig, SAEMetadata, architectures, get_sae_class, load_saelens_v6, save_sae
from pseval.saes.formats.saelens import SAELENS_LAYOUT_VERSION
from pseval.saes.loading import load_sae

V6_KEYS = {"architecture", "d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations",
           "reshape_activations", "metadata"}
TRAINABLE = [a for a in architectures() if a != "identity"]


def _random_sae(arch: str, d_in: int = 12, d_sae: int = 40):
    cfg = SAEConfig(arch, d_in, d_sae, k=5 if arch in ("topk", "batchtopk") else None,
                    metadata=SAEMetadata(model_name="tiny", hook_name="blocks.1.hook_resid_post",
                                         extra={"note": "x"}))
    sae = get_sae_class(arch)(cfg)
    torch.manual_seed(1)
    for name in sae.weight_names():
        w = torch.randn_like(sae.get_weight(name)) * 0.3
        sae.set_weight(name, w.abs() if name == "threshold" else w)
    return sae


@pytest.mark.parametrize("arch", TRAINABLE)
def test_round_trip_identical_encodings(tmp_path, arch):
    sae = _random_sae(arch)
    save_sae(sae, tmp_path / arch)
    cfg = json.loads((tmp_path / arch / "cfg.json").read_text())
    assert V6_KEYS <= set(cfg)
    assert cfg["architecture"] == (sae.export_architecture or arch)  # BatchTopK is saved as JumpReLU
    assert cfg["metadata"]["hook_name"] == "blocks.1.hook_resid_post"
    assert cfg["metadata"]["model_name"] == "tiny" and cfg["metadata"]["note"] == "x"
    assert set(load_file(str(tmp_path / arch / "sae_weights.safetensors"))) == set(sae.weight_names())
    again = load_saelens_v6(tmp_path / arch)
    x = torch.randn(64, 12)
    assert torch.equal(sae.encode(x), again.encode(x))
    assert torch.equal(sae.decode(sae.encode(x)), again.decode(again.encode(x)))
    assert again.cfg.metadata.extra == {"note": "x", "source_format": "pseval"}


def test_topk_and_relu_encodings_by_hand():
    sae = _random_sae("topk")
    x = torch.randn(3, 12)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    z = sae.encode(x)
    for row in range(3):
        top = pre[row].topk(5).indices
        expected = torch.zeros(40)
        expected[top] = pre[row][top].clamp_min(0)
        torch.testing.assert_close(z[row], expected)
    relu = _random_sae("standard")
    torch.testing.assert_close(relu.encode(x), torch.relu((x - relu.b_dec) @ relu.W_enc + relu.b_enc))


def _saved(tmp_path):
    sae = _random_sae("standard")
    return save_sae(sae, tmp_path / "s")


def test_missing_weight(tmp_path):
    d = _saved(tmp_path)
    w = load_file(str(d / "sae_weights.safetensors"))
    del w["b_enc"]
    save_file(w, str(d / "sae_weights.safetensors"))
    with pytest.raises(SAEFormatError, match="missing weight.*b_enc"):
        load_saelens_v6(d)


def test_wrong_shape(tmp_path):
    d = _saved(tmp_path)
    w = load_file(str(d / "sae_weights.safetensors"))
    w["W_dec"] = w["W_dec"][:, :5].contiguous()
    save_file(w, str(d / "sae_weights.safetensors"))
    with pytest.raises(SAEFormatError, match=r"'W_dec' has shape \(40, 5\), expected \(40, 12\)"):
        load_saelens_v6(d)


def test_nan_weight(tmp_path):
    d = _saved(tmp_path)
    w = load_file(str(d / "sae_weights.safetensors"))
    w["W_enc"][0, 0] = float("nan")
    save_file(w, str(d / "sae_weights.safetensors"))
    with pytest.raises(SAEFormatError, match="'W_enc' has 1 NaN"):
        load_saelens_v6(d)


def test_truncated_file(tmp_path):
    d = _saved(tmp_path)
    f = d / "sae_weights.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(SAEFormatError, match="truncated or corrupt"):
        load_saelens_v6(d)


def test_cfg_errors(tmp_path):
    d = _saved(tmp_path)
    cfg = json.loads((d / "cfg.json").read_text())
    del cfg["d_sae"]
    (d / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(SAEFormatError, match="d_sae"):
        load_saelens_v6(d)
    cfg["d_sae"] = 40
    cfg["architecture"] = "mystery"
    (d / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="unknown SAE architecture 'mystery'.*topk"):
        load_saelens_v6(d)
    (d / "cfg.json").write_text("{not json")
    with pytest.raises(SAEFormatError, match="cfg.json: not valid JSON"):
        load_saelens_v6(d)


def test_load_sae_specs(tmp_path):
    assert load_sae("identity", d_in=7).d_sae == 7
    with pytest.raises(MissingResourceError, match="no such SAE file or folder"):
        load_sae(str(tmp_path / "none"))


def test_saved_metadata_names_a_6x_layout(tmp_path):
    """SAELens 6 reads `metadata` only under a 6.x sae_lens_version; null made it take the file for a pre-6 one."""
    sae = _random_sae("standard")
    save_sae(sae, tmp_path / "new")
    meta = json.loads((tmp_path / "new" / "cfg.json").read_text())["metadata"]
    assert meta["sae_lens_version"] == SAELENS_LAYOUT_VERSION and "source_sae_lens_version" not in meta
    sae.cfg.metadata.sae_lens_version = "3.4.1"  # converted from a pre-6 file: the old version is kept aside
    save_sae(sae, tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "cfg.json").read_text())["metadata"]
    assert (meta["sae_lens_version"], meta["source_sae_lens_version"]) == ("6.0.0", "3.4.1")
    sae.cfg.metadata.sae_lens_version = "6.54.12"  # already 6.x: kept as it is
    save_sae(sae, tmp_path / "six")
    assert json.loads((tmp_path / "six" / "cfg.json").read_text())["metadata"]["sae_lens_version"] == "6.54.12"
    again = load_saelens_v6(tmp_path / "old")
    assert again.cfg.metadata.hook_name == "blocks.1.hook_resid_post" and again.cfg.metadata.model_name == "tiny"
    assert again.cfg.metadata.extra["source_sae_lens_version"] == "3.4.1"
