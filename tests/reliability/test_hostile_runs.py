"""Second round of hostile runs: nothing lost (ownership before deletion, exclusive writers), nothing mixed (keys that
cover content; compare and report never pair two models or two datasets), no silent result, no late error, no hang,
and the smaller cases (diverged training, strict JSON, file modes, newer records, read-only folders, full disks).
Each case failed before its mechanism existed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pseval.cli import main
from pseval.errors import ConfigError
from pseval.files import OutputError
from tests.conftest import sweep_toml

MINILM_HOOK = "blocks.3.hook_resid_post"
TINY_HOOK = "blocks.1.hook_resid_post"


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def refused(res: Result, *patterns: str, code: int = 2) -> str:
    """Exit `code` with exactly one error line matching every pattern; no traceback, no "bug"."""
    import re

    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and "This is a bug" not in res.output, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:") or ln.startswith("Error:")]
    assert len(lines) == 1, res.output
    for p in patterns:
        assert re.search(p, lines[0]), (p, lines[0])
    return lines[0]


def _pairs(path: Path, n: int = 12, labels: tuple[int, ...] = (0, 1)) -> str:
    path.write_text("\n".join(json.dumps({"target_word": "bank", "context_1": f"the bank of river {i} flooded",
                                          "context_2": "a bank loan was refused", "label": labels[i % len(labels)]})
                              for i in range(n)))
    return f"jsonl:{path}"


def _eval(out: Path, data: str, model: str = "minilm", hook: str = MINILM_HOOK, *extra: str) -> Path:
    res = invoke(["eval", "--model", model, "--hook", hook, "--data", data, "--bootstrap-resamples", "10", "--out", out,
                  *extra])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def records(tmp_path_factory, tiny_gpt2_dir) -> dict[str, Path]:
    """Real records: MiniLM and the tiny GPT-2 on the same pairs."""
    t = tmp_path_factory.mktemp("records")
    data = _pairs(t / "pairs.jsonl")
    return {"minilm": _eval(t / "minilm.json", data),
            "tiny": _eval(t / "tiny.json", data, str(tiny_gpt2_dir), TINY_HOOK, "--multi-token", "last"),
            "data": data}


def _edited(src: Path, dst: Path, edit) -> Path:
    rec = json.loads(src.read_text())
    edit(rec)
    dst.write_text(json.dumps(rec))
    return dst


# --- compare: never pairs records of two models or two datasets; the record schema is checked ----------------------

def test_compare_refuses_records_of_two_models(records):
    refused(invoke(["compare", records["minilm"], records["tiny"]]), r"minilm\.json and .*tiny\.json are records of "
            r"different models \('minilm' vs '.*tiny-gpt2.*'\)")


def test_compare_refuses_two_datasets_whose_pair_ids_collide(tmp_path, wic_dev):
    """Two WiC folders both called dev: ids wic:dev:<line> collide, the contents differ."""
    outs = []
    for name, swap in (("a", False), ("b", True)):
        d = tmp_path / name / "dev"
        d.mkdir(parents=True)
        data = (wic_dev / "dev.data.txt").read_text().splitlines()[:40]
        gold = (wic_dev / "dev.gold.txt").read_text().splitlines()[:40]
        if swap:  # the same lines, the two contexts of the first pair swapped: other content, same ids and labels
            f = data[0].split("\t")
            a, b = f[2].split("-")
            data[0] = "\t".join([f[0], f[1], f"{b}-{a}", f[4], f[3]])
        (d / "dev.data.txt").write_text("\n".join(data) + "\n")
        (d / "dev.gold.txt").write_text("\n".join(gold) + "\n")
        outs.append(_eval(tmp_path / f"{name}.json", f"wic:{d}"))
    ids = [[p["pair_id"] for p in json.loads(o.read_text())["eval_result_details"]] for o in outs]
    assert ids[0] == ids[1]  # the collision the check must see through
    refused(invoke(["compare", *outs]), r"a\.json and .*b\.json were scored on different datasets \(dataset_hash")


def test_compare_refuses_a_negative_feature_id(records, tmp_path):
    bad = _edited(records["minilm"], tmp_path / "neg.json",
                  lambda r: r["eval_result_details"][0].update(feature_1=-1))
    refused(invoke(["compare", records["minilm"], bad]), r"neg\.json", r"feature_1", r"greater than or equal to 0")


def test_a_record_from_a_newer_schema_says_upgrade(records, tmp_path):
    new = _edited(records["minilm"], tmp_path / "new.json", lambda r: r.update(schema_version=99))
    line = refused(invoke(["compare", new]), r"new\.json", r"layout 99 by a newer pseval", r"upgrade pseval")
    assert "Re-run" not in line


def test_records_are_strict_json_with_null_for_nan(records):
    from pseval.ps_eval.record import PSEvalRecord

    rec = PSEvalRecord.model_validate_json(records["minilm"].read_text())
    rec = rec.model_copy(update={"sae_cfg_dict": {"norm_scaling_factor": float("nan"), "b": [float("inf")]}})

    def no_constants(name: str):
        raise AssertionError(f"non-strict JSON constant {name}")

    back = json.loads(rec.to_json(), parse_constant=no_constants)
    assert back["sae_cfg_dict"] == {"norm_scaling_factor": None, "b": [None]}


# --- report: cells of different models never share a panel or a claim ----------------------------------------------

def _store(root: Path, *recs: Path) -> Path:
    (root / "cells").mkdir(parents=True)
    (root / "sweep.json").write_text(json.dumps({"settings": {}, "pseval_version": "test"}))
    for r in recs:
        rec = json.loads(r.read_text())
        (root / "cells" / f"{r.stem}__{rec['cell_id']}.json").write_text(r.read_text())
    return root


@pytest.mark.slow
def test_report_puts_two_models_in_separate_panels(records, tmp_path):
    root = _store(tmp_path / "study", records["minilm"], records["tiny"])
    res = invoke(["report", root, "--bootstrap-resamples", "10"])
    assert res.exit_code == 0, res.output
    claims = json.loads((root / "report" / "claims.json").read_text())
    assert len(claims) == 2 and any("model minilm" in k for k in claims), list(claims)
    md = (root / "report" / "report.md").read_text()
    assert md.count("readout, model ") == 2, md[:2000]


def _read_only(folder: Path):
    """Make a folder unwritable even for root (the immutable attribute), or skip where that is impossible."""
    folder.chmod(0o555)
    if os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only here")


def test_a_read_only_report_folder_exits_2_before_any_work(records, tmp_path):
    root = _store(tmp_path / "study", records["minilm"])
    (root / "report").mkdir()
    _read_only(root / "report")
    try:
        refused(invoke(["report", root, "--bootstrap-resamples", "10"]), r"report: not writable")
    finally:
        subprocess.run(["chattr", "-i", str(root / "report")], capture_output=True)
        (root / "report").chmod(0o755)
    assert list((root / "report").iterdir()) == []


# --- sweep: ownership before deletion, early config errors, no hang ------------------------------------------------

@pytest.fixture()
def sweep_cfg(tmp_path, tiny_gpt2_dir, wic_dev) -> Path:
    p = tmp_path / "sweep.toml"
    p.write_text(sweep_toml(tiny_gpt2_dir, wic_dev))
    return p


def _users_folder(tmp_path: Path) -> Path:
    out = tmp_path / "mine"
    (out / "cells").mkdir(parents=True)
    (out / "cells" / "thesis-notes.txt").write_text("years of work")
    (out / "saes").mkdir()
    (out / "saes" / "my.pt").write_bytes(b"mine")
    return out


def test_sweep_overwrite_never_deletes_a_folder_it_does_not_own(sweep_cfg, tmp_path):
    out = _users_folder(tmp_path)
    refused(invoke(["sweep", sweep_cfg, "--out", out, "--overwrite"]), r"mine: not a sweep folder \(no sweep\.json\), "
            r"yet it holds cells/, saes/")
    assert (out / "cells" / "thesis-notes.txt").read_text() == "years of work" and (out / "saes" / "my.pt").exists()


def test_sweep_never_writes_into_a_users_folders_of_its_names(sweep_cfg, tmp_path):
    out = _users_folder(tmp_path)
    refused(invoke(["sweep", sweep_cfg, "--out", out]), r"not a sweep folder")
    assert not (out / "sweep.json").exists() and sorted(p.name for p in (out / "cells").iterdir()) == [
        "thesis-notes.txt"]


def test_a_truncated_sweep_json_is_one_line_and_nothing_is_deleted(sweep_cfg, tmp_path):
    out = tmp_path / "study"
    (out / "cells").mkdir(parents=True)
    (out / "cells" / "keep.json").write_text("{}")
    (out / "sweep.json").write_text('{"settings": {"name": "ti')
    refused(invoke(["sweep", sweep_cfg, "--out", out, "--overwrite"]), r"sweep\.json: not a readable sweep file",
            r"will neither use nor delete")
    assert (out / "cells" / "keep.json").exists()


def test_a_reference_protocol_conflict_in_a_sweep_toml_is_refused_at_load(tmp_path, tiny_gpt2_dir, wic_dev):
    from pseval.study.sweep_config import load_sweep_config

    p = tmp_path / "s.toml"
    p.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, readouts='["context"]') + 'protocol = "reference"\n')
    with pytest.raises(ConfigError, match=r"s\.toml: \[eval\]\.protocol='reference' makes every choice the reference "
                                          r"makes; got multi_token='last'"):
        load_sweep_config(p)
    # The section's own choices agree, but one of its readouts does not: refused at load too.
    p.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, readouts='["template", "context"]').replace(
        'multi_token = "last"', 'multi_token = "drop"') + 'protocol = "reference"\n')
    with pytest.raises(ConfigError, match=r"s\.toml: \[eval\]\.protocol = 'reference' conflicts with the other "
                                          r"\[eval\] settings .*readout='context'"):
        load_sweep_config(p)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nobody listens there


@pytest.mark.slow
def test_sweep_on_an_unreachable_ray_address_fails_in_one_line(sweep_cfg, tmp_path):
    pytest.importorskip("ray")
    port = _closed_port()
    out = tmp_path / "out"
    refused(invoke(["sweep", sweep_cfg, "--out", out, "--executor", "ray", "--address", f"127.0.0.1:{port}"]),
            rf"--address 127\.0\.0\.1:{port}: cannot reach a Ray cluster there")
    assert not out.exists()


# --- eval: no silent result, no late error, keys that cover content ------------------------------------------------

def test_an_eval_of_one_class_only_scores_nothing_and_says_so(tmp_path):
    data = _pairs(tmp_path / "same.jsonl", labels=(1,))
    refused(invoke(["eval", "--data", data, "--hook", MINILM_HOOK]), r"no pair left to score: 12 read, 12 valid "
            r"\(12 same sense, 0 different\), and balance 'reference' keeps none")


def test_an_eval_of_one_pair_scores_nothing_and_says_so(tmp_path):
    """--max-pairs 1 picks one same-sense pair here (seed 0), and balance 'reference' keeps as many same-sense
    pairs as different-sense ones: none."""
    data = _pairs(tmp_path / "p.jsonl", labels=(1,) * 11 + (0,))
    refused(invoke(["eval", "--data", data, "--hook", MINILM_HOOK, "--max-pairs", "1"]), r"no pair left to score")


def test_an_empty_reconstruction_corpus_is_refused_where_it_enters(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    refused(invoke(["eval", "--corpus", f"file:{empty}", "--reconstruction-tokens", "100"]), r"'--corpus'",
            r"the file holds no text")


def test_a_foreign_sae_without_a_hook_is_not_scored_at_a_default_hook(tmp_path, records):
    from tests.reliability.test_hostile_saes import openai

    sae = openai(tmp_path)  # OpenAI files record no hook point
    refused(invoke(["eval", "--sae", sae, "--data", records["data"]]), r"records no hook point", r"pass --hook")


def test_demo_refuses_a_bad_wic_label_before_training(tmp_path, wic_dev):
    d = tmp_path / "dev"
    d.mkdir()
    shutil.copy(wic_dev / "dev.data.txt", d)
    gold = (wic_dev / "dev.gold.txt").read_text().splitlines()
    gold[4] = "maybe"
    (d / "dev.gold.txt").write_text("\n".join(gold) + "\n")
    refused(invoke(["demo", "--wic", d, "--out", tmp_path / "demo"]), r"'--wic'", r"dev\.gold\.txt, line 5: label "
            r"'maybe' is not T or F")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(("option", "value"), [("--top", "0"), ("--max-per-sense", "0"), ("--examples", "-1")])
def test_inspect_counts_are_checked_where_they_enter(option, value):
    refused(invoke(["inspect", "--sae", "identity", "--word", "bank", option, value]), rf"'{option}'",
            rf"{value} is not in the range")


def _cache_entries(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir() if p.is_dir()} if cache.is_dir() else set()


def test_the_activation_cache_is_keyed_by_the_models_weights(tmp_path, tiny_gpt2_dir, records):
    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_gpt2_dir, model)
    cache = tmp_path / "cache"
    first = _eval(tmp_path / "a.json", records["data"], str(model), TINY_HOOK, "--multi-token", "last", "--cache",
                  cache)
    entries = _cache_entries(cache)
    w = load_file(str(model / "model.safetensors"))
    for t in w.values():
        t.mul_(-1.5)
    save_file(w, str(model / "model.safetensors"), metadata={"format": "pt"})
    second = _eval(tmp_path / "b.json", records["data"], str(model), TINY_HOOK, "--multi-token", "last", "--cache",
                   cache)
    assert len(_cache_entries(cache) - entries) == 1  # a new entry, not the old activations
    raw = [[p["raw_cosine"] for p in json.loads(r.read_text())["eval_result_details"]] for r in (first, second)]
    assert raw[0] != raw[1]


def test_the_activation_cache_is_keyed_by_the_tokenizer(tmp_path, tiny_gpt2_dir, records):
    model = tmp_path / "model"
    shutil.copytree(tiny_gpt2_dir, model)
    cache = tmp_path / "cache"
    _eval(tmp_path / "a.json", records["data"], str(model), TINY_HOOK, "--multi-token", "last", "--cache", cache)
    entries = _cache_entries(cache)
    tok = json.loads((model / "tokenizer.json").read_text())
    tok["pre_tokenizer"]["add_prefix_space"] = True  # other token ids for the same text, same weights
    (model / "tokenizer.json").write_text(json.dumps(tok))
    _eval(tmp_path / "b.json", records["data"], str(model), TINY_HOOK, "--multi-token", "last", "--cache", cache)
    assert len(_cache_entries(cache) - entries) == 1


# --- train: exclusive writers, divergence, modes, full disk, absurd sizes, portable locks --------------------------

TRAIN = ["train", "--model", "minilm", "--hook", MINILM_HOOK, "--corpus", "wordnet-definitions", "--arch", "topk",
         "--expansion", "2", "--k", "8", "--tokens", "2000", "--batch-size", "256"]


@pytest.mark.slow
def test_a_diverged_run_names_the_learning_rate_and_saves_nothing(tmp_path):
    out = tmp_path / "out"
    refused(invoke([*TRAIN, "--lr", "1e30", "--out", out]), r"training of topk-x2-k8 diverged at step \d+",
            r"learning rate lr=1e\+30; lower --lr")
    assert not list(out.rglob("cfg.json")) and not list(out.rglob("*.safetensors"))
    ok = invoke([*TRAIN, "--out", out])  # a sane rerun into the same folder is not refused for the failed one
    assert ok.exit_code == 0, ok.output


def test_an_absurd_expansion_is_refused_before_allocating(tmp_path):
    refused(invoke([*TRAIN[:9], "--expansion", "10000000", "--out", tmp_path / "out"]),
            r"topk-x10000000-k32: d_sae=3,840,000,000 latents x d_in=384 needs about", r"use a smaller --expansion")


@pytest.mark.slow
def test_two_trainings_with_other_settings_cannot_both_claim_one_folder(tmp_path):
    """B checks the folder (empty), then A trains and saves there, then B finishes: B must not overwrite A. (Run
    at once from two shells, the per-hook checkpoint lock orders them the same way: A saves while B waits.)"""
    out = tmp_path / "out"
    state = {"ran": False}

    def log(line: str) -> None:
        if line.startswith("[train]") and not state["ran"]:
            state["ran"] = True
            first = invoke([*TRAIN, "--seed", "1", "--out", out])  # A, with another seed
            assert first.exit_code == 0, first.output

    from pseval.training.run import TrainJob, TrainRequest, grid, run_training

    (config,) = grid(["topk"], [2], [8], [None], batch_size=256)
    held = 500  # what `pseval train --tokens 2000` holds out: B and A differ only in the seed
    req = TrainRequest(model="minilm", corpus="wordnet-definitions", tokens=2000, heldout_tokens=held,
                       jobs=[TrainJob(MINILM_HOOK, config, out)], checkpoint_root=tmp_path / "b-checkpoints")
    with pytest.raises(OutputError, match=r"another pseval train finished an SAE with other settings here"):
        run_training(req, log=log, progress=False)
    meta = json.loads((out / "train_metrics.json").read_text())
    cfg = json.loads((out / "cfg.json").read_text())
    assert meta["train_config"]["seed"] == 1 and cfg["metadata"]["training_key"] == meta["key"]  # A's, intact


@pytest.mark.slow
def test_a_full_disk_during_train_is_one_line_naming_the_folder(tmp_path):
    out = tmp_path / "out"
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))\n"
              "from pseval.cli import main\n"
              "main(sys.argv[1:], prog_name='pseval')\n")
    proc = subprocess.run([sys.executable, "-c", script, *TRAIN, "--out", str(out)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(out) in errors[0] and "cannot write (File too large)" in errors[0], proc.stderr
    assert "bug" not in proc.stderr and "Traceback" not in proc.stderr


def test_weights_get_the_same_mode_as_cfg_json(tmp_path):
    from pseval.saes import SAEConfig, save_sae
    from pseval.saes.standard import StandardSAE

    old = os.umask(0o022)
    try:
        d = save_sae(StandardSAE(SAEConfig("standard", 8, 16)), tmp_path / "sae")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in d.iterdir()}
    assert modes == {"cfg.json": 0o644, "sae_weights.safetensors": 0o644}, modes


def test_pseval_imports_without_fcntl(tmp_path):
    """Locks go through filelock: the package imports, and locks, where fcntl does not exist (Windows)."""
    lock = tmp_path / "x.lock"
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import pseval, pseval.files, pseval.training.run, pseval.study.sweep\n"
            "from pathlib import Path\n"
            f"with pseval.files.file_lock(Path({str(lock)!r})):\n"
            "    print('held', 'fcntl' in sys.modules and sys.modules['fcntl'] is not None)\n"
            "print(pseval.files.file_lock.__module__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["held", "False", "pseval.files"], proc.stdout


def test_a_lock_is_exclusive_across_processes(tmp_path):
    from pseval.files import file_lock

    lock = tmp_path / "x.lock"
    code = ("import sys, time; from pathlib import Path; from pseval.files import file_lock\n"
            f"with file_lock(Path({str(lock)!r})):\n"
            "    print('held', flush=True); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        from filelock import FileLock, Timeout

        with pytest.raises(Timeout):
            FileLock(str(lock)).acquire(blocking=False)
    finally:
        proc.kill()
        proc.wait()
    with file_lock(lock):  # released by the dead holder's exit
        pass


def test_a_model_folder_with_another_models_tokenizer_is_refused(tmp_path, tiny_gpt2_dir, minilm):
    model = tmp_path / "model"
    shutil.copytree(tiny_gpt2_dir, model)
    for f in model.glob("*token*"):
        f.unlink()
    minilm.tokenizer.save_pretrained(model)  # 30522 tokens for an embedding of 2000
    refused(invoke(["eval", "--model", model, "--hook", TINY_HOOK]), r"the tokenizer has 30522 tokens but the model "
            r"embeds \d+; it is another model's tokenizer")
