"""`--device auto` (the default) and `--model-dtype`: the model is loaded on the chosen device in its dtype, and the
record keeps the model dtype, the scoring dtype and the device."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from click.testing import CliRunner

import pseval
from pseval.cli.app import main
from pseval.devices import require_device
from pseval.errors import ConfigError
from pseval.models.loading import load_model
from pseval.ps_eval.cache import cache_key
from pseval.ps_eval.settings import PSEvalSettings


def test_auto_is_the_cpu_without_cuda_and_says_so(caplog, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="pseval"):
        assert require_device("auto") == "cpu"
    assert [r.getMessage() for r in caplog.records] == ["device: cpu (auto: no CUDA device)"]


def test_auto_takes_cuda_when_present(caplog, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Test GPU")
    with caplog.at_level(logging.INFO, logger="pseval"):
        assert require_device(" AUTO ") == "cuda"
    assert [r.getMessage() for r in caplog.records] == ["device: cuda (auto: Test GPU)"]


def test_eval_device_defaults_to_auto():
    eval_cmd = main.commands["eval"]
    device = next(p for p in eval_cmd.params if p.name == "device")
    assert device.default == "auto"
    model_dtype = next(p for p in eval_cmd.params if p.name == "model_dtype")
    assert model_dtype.default == "float32" and set(model_dtype.type.choices) == {"float32", "bfloat16", "float16"}


@pytest.mark.slow
def test_model_loads_in_bf16_and_the_record_says_so(wic_dev, tmp_path):
    lm = load_model("minilm", device="auto", dtype=torch.bfloat16)
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    out = tmp_path / "rec.json"
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "20", "--controls", "0",
                                    "--model-dtype", "bfloat16", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads(out.read_text())
    assert (rec["eval_config"]["model_dtype"], rec["eval_config"]["dtype"], rec["device"]) == (
        "bfloat16", "float32", "cpu")
    assert "device: cpu (auto: no CUDA device)" in res.output or torch.cuda.is_available()


@pytest.mark.slow
def test_api_records_a_given_models_own_dtype(minilm, wic_dev):
    data = f"wic:{wic_dev}"
    ev = pseval.evaluate(minilm, "identity", data=data, hook="blocks.3.hook_resid_post", max_pairs=20, controls=0)
    assert ev.records[0].eval_config.model_dtype == "float32" and ev.records[0].device == "cpu"
    with pytest.raises(ConfigError, match="already loaded in float32"):
        pseval.evaluate(minilm, "identity", data=data, hook="blocks.3.hook_resid_post", max_pairs=20,
                        model_dtype="bfloat16")


def test_model_dtype_keys_activations_only_when_set():
    base = PSEvalSettings()
    key = cache_key("minilm", "blocks.3.hook_resid_post", "h", base)
    # float32 (the default) leaves the key as it was before the setting existed; another dtype changes it.
    assert key == cache_key("minilm", "blocks.3.hook_resid_post", "h", base.replace(model_dtype="float32"))
    assert key != cache_key("minilm", "blocks.3.hook_resid_post", "h", base.replace(model_dtype="bfloat16"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_loads_straight_onto_cuda_in_bf16():
    lm = load_model("minilm", device="auto", dtype=torch.bfloat16)
    assert {(p.device.type, p.dtype) for p in lm.model.parameters()} == {("cuda", torch.bfloat16)}
    assert lm.device.type == "cuda"


def test_a_gpu_load_asks_transformers_for_the_device_and_dtype_up_front(monkeypatch):
    # No GPU here: the real loader runs on the CPU with whatever else pseval asked for, and the request is checked.
    import transformers

    asked: list[dict] = []
    real = transformers.AutoModel.from_pretrained

    def recording(source, **kw):
        asked.append(dict(kw))
        kw.pop("device_map", None)
        return real(source, **kw)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", recording)
    lm = load_model("minilm", device=torch.device("cuda"), dtype=torch.bfloat16)
    (kw,) = asked
    assert kw["device_map"] == {"": torch.device("cuda", 0)} and kw["dtype"] == torch.bfloat16
    # Not loaded on the CPU and then moved: had pseval called .to("cuda") this CPU-only torch would have raised.
    assert {p.device.type for p in lm.model.parameters()} == {"cpu"}


def test_folder_keys_name_the_model_dtype_only_when_set():
    # float32 keys exactly as before the setting existed (folders made then still resume); bf16 is another key.
    assert "model_dtype" not in PSEvalSettings().key()
    assert PSEvalSettings(model_dtype="bfloat16").key()["model_dtype"] == "bfloat16"


def test_an_eval_folder_refuses_another_model_dtype_before_the_model_loads(tmp_path, wic_dev, monkeypatch):
    import pseval.models.loading as loading

    out = tmp_path / "results"
    args = ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "20", "--controls", "0", "--out", str(out)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    again = CliRunner().invoke(main, [*args, "--model-dtype", "bfloat16"])
    assert again.exit_code != 0
    assert 'model_dtype: null there, "bfloat16" now' in again.output, again.output
