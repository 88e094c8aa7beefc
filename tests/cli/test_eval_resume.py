"""`pseval eval` over a whole release: a glob of 40 SAE folders, scored one SAE in memory at a time, kept cell by cell
in the --out results store, killed midway and resumed to the same records an uninterrupted run gives."""

from __future__ import annotations

import json
import logging
import weakref
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import pseval.ps_eval.pipeline as pipeline
import pseval.ps_eval.resolver as resolver
from pseval.cli import main
from pseval.cli.eval import EvalRequest, run_eval
from pseval.ps_eval.settings import PSEvalSettings
from pseval.run_keys import SettingsMismatchError
from pseval.saes import SAEConfig, SAEMetadata, save_sae
from pseval.saes.topk import TopKSAE
from pseval.study.store import ResultsStore

HOOKS = ("blocks.1.hook_resid_post", "blocks.3.hook_resid_post")
N = 40


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """40 random TopK SAEs of MiniLM, 20 at each of two hooks, in nested folders as a release lays them out."""
    root = tmp_path_factory.mktemp("release")
    torch.manual_seed(0)
    for i in range(N):
        hook = HOOKS[i % 2]
        sae = TopKSAE(SAEConfig("topk", 384, 32 + i, k=4, metadata=SAEMetadata(model_name="minilm", hook_name=hook)))
        with torch.no_grad():
            sae.W_enc.normal_()
            sae.W_dec.normal_()
        save_sae(sae, root / hook / f"w{32 + i}")
    return root


def _args(release: Path, wic_dev: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--sae", f"{release}/**", "--data", f"wic:{wic_dev}", "--max-pairs", "24",
            "--bootstrap-resamples", "10", "--controls", "0", "--out", str(out), *extra]


def _cells(out: Path) -> dict[str, dict]:
    """cell id -> record, without what differs between two runs of one cell (its run id and time)."""
    recs = {}
    for p in sorted((out / "cells").glob("*.json")):
        rec = json.loads(p.read_text())
        for k in ("eval_id", "datetime_epoch_millis"):
            rec.pop(k)
        recs[rec["cell_id"]] = rec
    return recs


@pytest.mark.slow
def test_killed_eval_resumes_only_the_missing_cells_to_the_same_records(tmp_path, release, wic_dev, monkeypatch):
    whole = tmp_path / "whole"
    res = CliRunner().invoke(main, _args(release, wic_dev, whole))
    assert res.exit_code == 0, res.output
    assert f"plan: {N} SAE(s), {N} cell(s) at 2 hook(s) ({HOOKS[0]} 20, {HOOKS[1]} 20)" in res.output
    expected = _cells(whole)
    assert len(expected) == N

    # Killed after 15 cells: what was finished is kept, nothing else.
    real_build, built = pipeline.build_record, []

    def dying_build(*args, **kwargs):
        if len(built) == 15:
            raise KeyboardInterrupt  # the user's Ctrl-C in the middle of the 16th cell
        built.append(1)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_record", dying_build)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_eval(_request(release, wic_dev, out), log=lambda _m: None)
    assert len(_cells(out)) == 15

    # The re-run scores the 25 missing cells only, each SAE loaded once, and says so.
    monkeypatch.setattr(pipeline, "build_record", real_build)
    loads, real_load = [], resolver.load_sae
    monkeypatch.setattr(resolver, "load_sae", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    res = CliRunner().invoke(main, _args(release, wic_dev, out))
    assert res.exit_code == 0, res.output
    assert f"15 of {N} cell(s) already in {out}, skipped; 25 to score" in res.output
    assert "25 cell(s) scored, 15 reused" in res.output
    assert len(loads) == len(set(loads)) == 25
    assert _cells(out) == expected  # same confusion counts, pairs and metrics as the uninterrupted run

    # Other settings are refused with the differing field; --force discards the folder and scores it all again.
    res = CliRunner().invoke(main, _args(release, wic_dev, out, "--seed", "1"))
    assert res.exit_code != 0 and "seed" in res.output and "--force" in res.output
    assert _cells(out) == expected
    loads.clear()
    res = CliRunner().invoke(main, _args(release, wic_dev, out, "--seed", "1", "--force"))
    assert res.exit_code == 0, res.output
    assert len(loads) == N and len(_cells(out)) == N and not set(_cells(out)) & set(expected)


def _request(release: Path, wic_dev: Path, out: Path, max_pairs: int = 24) -> EvalRequest:
    """The request `_args` makes on the command line."""
    cfg = PSEvalSettings().replace(max_pairs=max_pairs, bootstrap_resamples=10, controls=0)
    return EvalRequest(saes=[f"{release}/**"], data=f"wic:{wic_dev}", settings=cfg, out=out)


@pytest.mark.slow
def test_one_sae_in_memory_at_a_time_and_the_plan_before_any_load(tmp_path, release, wic_dev, monkeypatch):
    events: list[str] = []
    alive: list[weakref.ref] = []
    real_load = resolver.load_sae

    def watched_load(spec, *args, **kwargs):
        # Every SAE loaded before this one has been freed: never two in memory.
        assert [r for r in alive if r() is not None] == [], f"an SAE was still in memory when {spec} loaded"
        sae = real_load(spec, *args, **kwargs)
        alive.append(weakref.ref(sae))
        events.append(f"load {spec}")
        return sae

    class Messages(logging.Handler):  # the plan is a message of the `pseval` logger, in order with the loads
        def emit(self, record: logging.LogRecord) -> None:
            events.append(record.getMessage())

    monkeypatch.setattr(resolver, "load_sae", watched_load)
    handler, logger = Messages(), logging.getLogger("pseval")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        records = run_eval(_request(release, wic_dev, tmp_path / "out"), log=events.append)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert len(records) == N and len(alive) == N
    plan = next(i for i, e in enumerate(events) if e.startswith("plan: "))
    first_load = next(i for i, e in enumerate(events) if e.startswith("load "))
    assert plan < first_load
    # The estimate comes from the configs: the largest SAE (d_sae 71) in float32, weights and biases.
    assert f"largest SAE {(2 * 384 * 71 + 71 + 384 + 1) * 4 / 2**20:.1f} MiB" in events[plan]
    # Each hook's SAEs in turn: the stream of one hook, then the other's.
    hooks = [e.split("/")[-2] for e in events if e.startswith("load ")]
    assert hooks == [HOOKS[0]] * 20 + [HOOKS[1]] * 20
    # The store refuses another config before anything is computed.
    with pytest.raises(SettingsMismatchError):
        run_eval(_request(release, wic_dev, tmp_path / "out", max_pairs=25), log=events.append)
    assert len(list(ResultsStore.for_eval(tmp_path / "out").records())) == N
