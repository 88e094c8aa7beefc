"""Faults: corrupt caches are recomputed with a warning and give the same numbers; a model folder that cannot load is
an error naming it; a write that fails keeps finished results and leaves no debris; the temp files of a killed save
are removed by the next run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pseval.cli import main
from pseval.errors import MissingResourceError
from pseval.files import temp_files, temp_path
from pseval.models.content_key import model_content_key
from pseval.models.loading import load_model, model_shape
from pseval.training.activations import StreamConfig, cache_key, cached_activations, load_activation_cache

TEXTS = [f"The bank of river {i} flooded after the storm, and the loan office closed early." for i in range(40)]
HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def tiny_lm(tiny_gpt2_dir):
    return load_model(str(tiny_gpt2_dir))


def _debris(final: Path, pid: int) -> Path:
    """The temp name a killed writer `pid` on this host would have left beside `final`."""
    tmp = temp_path(final)
    return tmp.with_name(tmp.name.replace(f".pid{os.getpid()}.", f".pid{pid}."))


def _dead_pid() -> int:
    """A pid no process can have (above the kernel's pid_max), so it cannot be reused by a live one mid-test."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def _pairs(tmp: Path, n: int = 12) -> Path:
    p = tmp / "pairs.jsonl"
    p.write_text("\n".join(json.dumps({"target_word": "bank", "context_1": f"the bank of river {i} flooded",
                                       "context_2": "a bank loan was refused", "label": i % 2}) for i in range(n)))
    return p


def _corrupt(folder: Path, how: str) -> None:
    acts, meta = folder / "acts.npy", folder / "meta.json"
    if how == "truncated":
        acts.write_bytes(acts.read_bytes()[:300])
    elif how == "garbage":
        acts.write_bytes(b"this is not a numpy file")
    elif how == "meta-json":
        meta.write_text("{")
    elif how == "meta-shape":
        m = json.loads(meta.read_text())
        m["shape"][0] += 1
        meta.write_text(json.dumps(m))
    elif how == "array-missing":
        acts.unlink()
    elif how == "float64":
        np.save(acts, np.load(acts).astype(np.float64))
    elif how == "pickle":  # a loader must never execute a pickle: it is refused and recomputed
        np.save(acts, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        raise ValueError(how)


CORRUPTIONS = ["truncated", "garbage", "meta-json", "meta-shape", "array-missing", "float64", "pickle"]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_corrupt_training_activation_cache_is_recomputed_with_a_warning(how, tiny_lm, tmp_path):
    cfg = StreamConfig(context_size=32, max_tokens=400)
    fresh = cached_activations(tiny_lm, "tiny", "texts", TEXTS, HOOK, cfg, tmp_path)
    folder = tmp_path / cache_key("tiny", HOOK, "texts", cfg, model_content_key(tiny_lm))
    assert torch.equal(load_activation_cache(folder)[0], fresh)
    _corrupt(folder, how)
    with pytest.warns(UserWarning, match=rf"{folder}.*activation cache.*recomputing it"):
        again = cached_activations(tiny_lm, "tiny", "texts", TEXTS, HOOK, cfg, tmp_path)
    assert torch.equal(again, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten cache is whole: read back without a warning
        assert torch.equal(cached_activations(tiny_lm, "tiny", "texts", TEXTS, HOOK, cfg, tmp_path), fresh)
    assert temp_files(folder) == []


def test_activation_cache_writes_under_unique_names_and_clears_dead_writers_debris(tiny_lm, tmp_path):
    cfg = StreamConfig(context_size=32, max_tokens=200)
    folder = tmp_path / cache_key("tiny", HOOK, "texts", cfg, model_content_key(tiny_lm))
    folder.mkdir()
    stale = _debris(folder / "acts.npy", _dead_pid())
    stale.write_bytes(b"half an array")
    live = temp_path(folder / "acts.npy")  # this process's: a live writer, never touched
    live.write_bytes(b"being written")
    cached_activations(tiny_lm, "tiny", "texts", TEXTS, HOOK, cfg, tmp_path)
    assert not stale.exists() and live.exists()
    assert sorted(p.name for p in folder.iterdir() if p != live) == ["acts.npy", "meta.json"]
    assert load_activation_cache(folder)[0].shape == (200, 64)


def test_a_context_longer_than_the_model_takes_is_refused_before_the_forward(tiny_lm):
    from pseval.errors import ConfigError
    from pseval.training.activations import collect_activations

    with pytest.raises(ConfigError, match=r"context_size 256 is longer than model .* \(128 positions\)"):
        collect_activations(tiny_lm, TEXTS, [HOOK], StreamConfig(context_size=256, max_tokens=100))


def _model_fault(src: Path, dst: Path, how: str) -> Path:
    shutil.copytree(src, dst)
    if how == "no-weights":
        (dst / "model.safetensors").unlink()
    elif how == "truncated-weights":
        data = (dst / "model.safetensors").read_bytes()
        (dst / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif how == "config-json":
        (dst / "config.json").write_text("{not json")
    elif how == "config-model-type":
        (dst / "config.json").write_text(json.dumps({"model_type": "no-such-family"}))
    elif how == "no-config":
        (dst / "config.json").unlink()
    elif how == "no-tokenizer":
        for f in ("tokenizer.json", "tokenizer_config.json"):
            (dst / f).unlink()
    elif how == "a-file":
        return dst / "model.safetensors"
    elif how == "missing":
        return dst / "nothing-here"
    return dst


MODEL_FAULTS = [
    ("no-weights", r"has config.json but no weights; expected one of model.safetensors, "
                   r"model.safetensors.index.json, pytorch_model.bin"),
    ("truncated-weights", r"cannot load the weights of model .*: .*(header|metadata|incomplete)"),
    ("config-json", r"cannot load the config of model .*not a valid JSON"),
    ("config-model-type", r"cannot load the config of model .*no-such-family"),
    ("no-config", r"has no config.json; a model folder holds config.json, the weights"),
    ("no-tokenizer", r"has no usable tokenizer \(it encodes text to nothing, vocabulary of 1\)"),
    ("a-file", r"model.safetensors is a file; expected a model folder"),
    ("missing", r"nothing-here'?: no such folder, and not a Hub id"),
]


@pytest.mark.parametrize(("how", "pattern"), MODEL_FAULTS, ids=[m[0] for m in MODEL_FAULTS])
def test_model_folder_that_cannot_load_is_named(how, pattern, tiny_gpt2_dir, tmp_path):
    folder = _model_fault(Path(tiny_gpt2_dir), tmp_path / "model", how)
    with pytest.raises(MissingResourceError, match=pattern) as err:
        load_model(str(folder))
    assert str(folder) in str(err.value)
    if how not in ("truncated-weights", "no-tokenizer"):  # the config alone is read before anything loads
        with pytest.raises(MissingResourceError, match=pattern):
            model_shape(str(folder))
    res = CliRunner().invoke(main, ["eval", "--model", str(folder), "--data", f"jsonl:{_pairs(tmp_path)}",
                                    "--hook", HOOK])
    assert res.exit_code == 2 and "Traceback" not in res.output and str(folder) in res.output, res.output


def test_killed_saves_debris_is_removed_by_the_next_train(tiny_gpt2_dir, tmp_path):
    corpus = tmp_path / "texts.txt"
    corpus.write_text("\n".join(TEXTS))
    out, cache = tmp_path / "sae", tmp_path / "cache"
    dead = _dead_pid()
    debris = [_debris(out / "cfg.json", dead), _debris(out / ".checkpoint" / HOOK / "state.pt", dead),
              _debris(cache / "0123456789abcdef" / "acts.npy", dead)]
    for p in debris:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half-written")
    live = temp_path(out / "other.json")
    live.write_text("a live writer's file")
    res = CliRunner().invoke(main, ["train", "--model", str(tiny_gpt2_dir), "--hook", HOOK, "--corpus",
                                    f"file:{corpus}", "--tokens", "300", "--batch-size", "64", "--expansion", "2",
                                    "--k", "4", "--out", str(out), "--cache", str(cache)])
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in debris) and live.exists()
    assert (out / "cfg.json").is_file() and (out / "train_metrics.json").is_file()


def test_corrupt_pair_activation_cache_is_recomputed_by_eval(tiny_gpt2_dir, tmp_path):
    data, cache = _pairs(tmp_path), tmp_path / "cache"
    args = ["eval", "--model", str(tiny_gpt2_dir), "--hook", HOOK, "--data", f"jsonl:{data}", "--multi-token",
            "last", "--cache", str(cache)]
    first = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a.json")])
    assert first.exit_code == 0, first.output
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    (entry / "acts.safetensors").write_bytes(b"\x00" * 16)
    stale = _debris(cache / entry.name / "meta.json", _dead_pid())
    stale.write_text("{")
    with pytest.warns(UserWarning, match="corrupt activation cache entry.*recomputing it"):
        second = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b.json")])
    assert second.exit_code == 0, second.output
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["eval_result_metrics"] == b["eval_result_metrics"] and a["eval_result_details"] == b["eval_result_details"]
    assert not stale.exists()


@pytest.mark.slow
def test_a_write_that_fails_exits_1_keeps_finished_results_and_leaves_no_debris(tiny_gpt2_dir, tmp_path):
    """A real OS write failure (the process's file-size limit, as a full disk would): one line, exit 1."""
    out = tmp_path / "r.json"
    args = ["eval", "--model", str(tiny_gpt2_dir), "--hook", HOOK, "--data", f"jsonl:{_pairs(tmp_path)}",
            "--multi-token", "last", "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    finished = out.read_bytes()
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
              "from pseval.cli import main\n"
              "main(sys.argv[1:], prog_name='pseval')\n")
    proc = subprocess.run([sys.executable, "-c", script, *args, "--seed", "7"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and f"{out}: cannot write (File too large)" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == finished and temp_files(tmp_path) == []
