"""Numbers that can be trusted and reproduced: one pipeline for eval and sweep, run keys that refuse mixed
settings, concurrency-safe stores, records SAEBench's own classes accept, outputs that are never lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pseval.cli import main
from pseval.files import temp_files
from pseval.saes import SAEConfig, SAEMetadata, save_sae
from pseval.saes.formats.saelens import load_saelens_v6
from pseval.saes.topk import TopKSAE
from pseval.study.store import ResultsStore
from tests.conftest import sweep_toml

pytestmark = pytest.mark.slow

PY = [sys.executable, "-m", "pseval.cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _all_temp_files(root: Path) -> list[Path]:
    return [p for d in [root, *root.rglob("*")] if d.is_dir() for p in temp_files(d)]


# --- one pipeline -----------------------------------------------------------------------------------------------

def test_eval_and_sweep_select_the_same_pairs_and_give_the_same_numbers(tmp_path, tiny_gpt2_dir, wic_dev):
    cfg = tmp_path / "s.toml"
    cfg.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, name="same"))
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(run)]).exit_code == 0
    hook = "blocks.1.hook_attn_out"
    sweep_cells = {r.sae_name: r for r in ResultsStore(run).records() if r.eval_config.hook_name == hook}
    assert set(sweep_cells) == {"identity", "topk-x2-k8", "standard-x2-cdefault"}
    out = tmp_path / "eval"
    res = CliRunner().invoke(main, ["eval", "--model", str(tiny_gpt2_dir), "--hook", hook, "--sae", "identity",
                                    "--sae", str(run / "saes" / hook / "topk-x2-k8"), "--data", f"wic:{wic_dev}",
                                    "--max-pairs", "60", "--seed", "0", "--multi-token", "last", "--out", str(out)])
    assert res.exit_code == 0, res.output
    evals = {json.loads(p.read_text())["sae_name"]: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert set(evals) == {"identity", "topk-x2-k8"}
    for name, e in evals.items():
        s = json.loads(sweep_cells[name].to_json())
        for field in ("selection_hash", "dataset_hash", "pairs_selected", "max_pairs", "seed", "balance", "readout"):
            assert e["eval_config"][field] == s["eval_config"][field], (name, field)
        assert e["eval_result_metrics"]["ps_eval"] == s["eval_result_metrics"]["ps_eval"], name
        assert e["eval_result_details"] == s["eval_result_details"], name
    assert evals["identity"]["cell_id"] == sweep_cells["identity"].cell_id  # same settings, same SAE: same key


# --- run keys: training ----------------------------------------------------------------------------------------

def _train_args(out: Path, **over: str) -> list[str]:
    opts = {"--hook": "blocks.0.hook_resid_post", "--corpus": "wordnet-definitions", "--tokens": "20000",
            "--lr": "0.001", "--seed": "0", "--arch": "topk", "--expansion": "2", "--k": "16", "--batch-size": "32",
            "--checkpoint-every": "40", **over}
    return ["train", *(x for kv in opts.items() for x in kv), "--out", str(out)]


def test_killed_train_refuses_changed_settings_and_resumes_bit_exact(tmp_path):
    out = tmp_path / "sae"
    proc = subprocess.Popen(PY + _train_args(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    state = out / ".checkpoint" / "blocks.0.hook_resid_post" / "trainer_state.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not state.is_file():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and state.is_file(), "the run ended before its first checkpoint"
    assert not (out / "cfg.json").exists()

    changes = {"--lr": ("0.002", "lr: 0.001 there, 0.002 now"), "--seed": ("1", "seed: 0 there, 1 now"),
               "--corpus": ("wordnet", 'corpus: "wordnet-definitions" there, "wordnet" now'),
               "--hook": ("blocks.1.hook_resid_post", 'hook: "blocks.0.hook_resid_post" there, '
                                                      '"blocks.1.hook_resid_post" now'),
               "--tokens": ("40000", "tokens: 20000 there, 40000 now")}
    for opt, (value, message) in changes.items():
        res = CliRunner().invoke(main, _train_args(out, **{opt: value}))
        assert res.exit_code == 2, (opt, res.output)
        assert message in res.output and "--overwrite" in res.output, (opt, res.output)
        assert state.is_file() and not (out / "cfg.json").exists()  # the refused run touched nothing

    res = CliRunner().invoke(main, _train_args(out))  # unchanged: resumes from the checkpoint
    assert res.exit_code == 0, res.output
    assert not state.exists()  # a finished run leaves no checkpoint
    fresh = tmp_path / "fresh"
    assert CliRunner().invoke(main, _train_args(fresh)).exit_code == 0
    a, b = load_saelens_v6(out), load_saelens_v6(fresh)
    for name in a.weight_names():
        assert torch.equal(a.get_weight(name), b.get_weight(name)), name
    # The held-out FVU history survives the kill: the resumed run records the same probes as the fresh one.
    hist = [json.loads((d / "train_metrics.json").read_text())["fvu_history"] for d in (out, fresh)]
    assert hist[0] == hist[1] and len(hist[0]) >= 10
    key = json.loads((out / "cfg.json").read_text())["metadata"]["training_key"]
    assert key["lr"] == 0.001 and key["hook"] == "blocks.0.hook_resid_post" and key["tokens"] == 20000

    again = CliRunner().invoke(main, _train_args(out, **{"--lr": "0.002"}))  # a finished SAE is refused too
    assert again.exit_code == 2 and "lr: 0.001 there, 0.002 now" in again.output
    over = CliRunner().invoke(main, _train_args(out, **{"--lr": "0.002", "--tokens": "3000"}) + ["--overwrite"])
    assert over.exit_code == 0, over.output
    assert json.loads((out / "cfg.json").read_text())["metadata"]["training_key"]["lr"] == 0.002


# --- run keys: sweeps --------------------------------------------------------------------------------------------

def test_sweep_folder_refuses_a_changed_config_with_the_diff(tmp_path, tiny_gpt2_dir, wic_dev):
    base = sweep_toml(tiny_gpt2_dir, wic_dev, name="keyed")
    cfg = tmp_path / "s.toml"
    cfg.write_text(base)
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(run)]).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.json")}
    assert len(before) == 12
    changed = {"train_tokens = 3000": ("train_tokens = 4000", "train_tokens: 3000 there, 4000 now"),
               "[train]": ("[train]\nlr = 0.002", "lr: 0.001 there, 0.002 now"),
               "max_pairs = 60": ("max_pairs = 50", "max_pairs: 60 there, 50 now")}
    for old, (new, message) in changed.items():
        cfg.write_text(base.replace(old, new))
        res = CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(run)])
        assert res.exit_code == 2 and message in res.output and "--overwrite" in res.output, res.output
        assert {p.name: p.stat().st_mtime_ns for p in (run / "cells").glob("*.json")} == before
    res = CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(run), "--overwrite"])  # max_pairs = 50
    assert res.exit_code == 0, res.output
    records = list(ResultsStore(run).records())
    assert len(records) == 12 and {r.eval_config.max_pairs for r in records} == {50}


def _run_two(cmds: list[list[str]]) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for c in cmds]
    outs = [p.communicate(timeout=600) for p in procs]
    return [subprocess.CompletedProcess(c, p.returncode, o, e) for c, p, (o, e) in zip(cmds, procs, outs,
                                                                                          strict=True)]


def test_concurrent_sweeps_never_mix_and_write_each_cell_once(tmp_path, tiny_gpt2_dir, wic_dev):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, name="c"))
    b.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, name="c").replace("max_pairs = 60", "max_pairs = 50"))
    run = tmp_path / "mixed"
    results = _run_two([PY + ["sweep", str(a), "--out", str(run)], PY + ["sweep", str(b), "--out", str(run)]])
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [r.stderr[-2000:] for r in results]
    loser = next(r for r in results if r.returncode == 2)
    assert "different settings" in loser.stderr and "max_pairs" in loser.stderr
    winner_max = 60 if results[0].returncode == 0 else 50
    records = list(ResultsStore(run).records())
    assert len(records) == 12 and {r.eval_config.max_pairs for r in records} == {winner_max}

    same = tmp_path / "same"
    results = _run_two([PY + ["sweep", str(a), "--out", str(same)]] * 2)
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    # "[sweep] N cell(s) evaluated" is a message: the pseval logger writes it to stderr
    evaluated = [int(r.stderr.split(" cell(s) evaluated")[0].rsplit("\n", 1)[-1].split()[-1]) for r in results]
    assert sum(evaluated) == 12  # every cell computed by exactly one of the two processes
    files = list((same / "cells").glob("*.json"))
    assert len(files) == 12 and len({json.loads(f.read_text())["cell_id"] for f in files}) == 12
    assert _all_temp_files(same) == []


# --- the record --------------------------------------------------------------------------------------------------

def _blocks_overlap(a: dict, b: dict) -> float:
    """Share of the smaller block's (key, value) leaves that the other block repeats."""
    def leaves(d: dict, prefix: str = "") -> set[tuple[str, str]]:
        out = set()
        for k, v in d.items():
            if isinstance(v, dict):
                out |= leaves(v, "")
            else:
                out.add((k, json.dumps(v, sort_keys=True)))
        return out
    la, lb = leaves(a), leaves(b)
    return len(la & lb) / max(1, min(len(la), len(lb)))


def test_records_validate_with_saebench_and_no_block_repeats_another(tmp_path, wic_dev):
    from pseval.integrations.saebench import validate_with_saebench

    sae = TopKSAE(SAEConfig("topk", 384, 768, k=8, metadata=SAEMetadata(model_name="minilm",
                                                                       hook_name="blocks.2.hook_attn_out")))
    save_sae(sae, tmp_path / "topk")
    out, bench = tmp_path / "out", tmp_path / "bench"
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "40", "--sae", "identity",
                                    "--sae", str(tmp_path / "topk"), "--reconstruction-tokens", "300", "--out",
                                    str(out), "--saebench-dir", str(bench)])
    assert res.exit_code == 0, res.output
    files = sorted((out / "cells").glob("*.json"))
    assert len(files) == 2
    for f in files:
        rec = json.loads(f.read_text())
        obj = validate_with_saebench(rec)
        assert obj.eval_result_metrics.ps_eval.tp == rec["eval_result_metrics"]["ps_eval"]["tp"]
        assert len(obj.eval_result_details) == rec["eval_result_metrics"]["counts"]["pairs_scored"]
        assert rec["sae_lens_id"] is None and rec["sae_lens_release_id"] is None  # truthful: not a SAELens SAE
        blocks = {k: v for k, v in rec.items() if isinstance(v, dict)}
        for x in blocks:
            for y in blocks:
                if x < y:
                    assert _blocks_overlap(blocks[x], blocks[y]) < 0.25, (x, y)
    names = sorted(p.name for p in bench.iterdir())
    assert names == ["pseval_identity__blocks.3.hook_resid_post_eval_results.json",
                     "pseval_topk__blocks.2.hook_attn_out_eval_results.json"]
    # A record of the old layout is refused with what to do, by SAEBench's classes and by pseval.
    old = json.loads(files[0].read_text())
    for k in ("sae_bench_commit_hash", "sae_lens_version", "schema_version"):
        old.pop(k)
    with pytest.raises(ValueError, match="sae_bench_commit_hash"):
        validate_with_saebench(old)


def test_old_layout_cells_are_refused_with_what_to_do(tmp_path):
    cells = tmp_path / "run" / "cells"
    cells.mkdir(parents=True)
    (cells / "x.json").write_text(json.dumps({"eval_type_id": "ps_eval", "metrics": {}, "config": {}}))
    res = CliRunner().invoke(main, ["report", str(tmp_path / "run")])
    assert res.exit_code == 2 and "layout 1" in res.output and "--overwrite" in res.output


# --- outputs are never lost --------------------------------------------------------------------------------------

def test_same_named_saes_keep_both_files(tmp_path, wic_dev):
    for parent, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        save_sae(TopKSAE(SAEConfig("topk", 384, 768, k=8)), tmp_path / parent / "good")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "20", "--sae",
                                    str(tmp_path / "a" / "good"), "--sae", str(tmp_path / "b" / "good"),
                                    "--hook", "blocks.3.hook_resid_post", "--out", str(out)])
    assert res.exit_code == 0, res.output
    recs = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    assert len(recs) == 2 and {r["sae_source"] for r in recs} == {str(tmp_path / "a" / "good"),
                                                                  str(tmp_path / "b" / "good")}
    assert recs[0]["sae_fingerprint"] != recs[1]["sae_fingerprint"]


def test_unusable_out_is_refused_before_the_model_loads(tmp_path, wic_dev, monkeypatch):
    import pseval.models.loading as loading

    def no_model(*_a, **_k):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(loading, "load_model", no_model)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker / "r.json", blocker / "dir"):
        res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--out", str(out)])
        assert res.exit_code == 2 and str(blocker) in res.output and "not a folder" in res.output, res.output
