"""A tiny sweep end to end: store, resume, figures, claims, and the HTML in headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from pseval.cli import main
from pseval.errors import ConfigError
from pseval.integrations.saebench import validate_with_saebench
from pseval.study.store import ResultsStore
from pseval.study.sweep_config import load_sweep_config
from tests.conftest import sweep_toml

pytestmark = pytest.mark.slow


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_tiny_sweep_and_report(tmp_path, tiny_gpt2_dir, wic_dev):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(sweep_toml(tiny_gpt2_dir, wic_dev))
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    cells = list(ResultsStore(out).records())
    assert len(cells) == 4 * 3  # 4 hooks x (identity + 2 SAEs)
    assert len({c.cell_id for c in cells}) == 12
    for c in cells:
        m = c.eval_result_metrics
        assert m.ps_eval.tp + m.ps_eval.fp + m.ps_eval.tn + m.ps_eval.fn == m.counts.pairs_scored \
            == len(c.eval_result_details)
        if c.sae_name != "identity":
            assert m.reconstruction.l0 > 0 and m.training.steps == 3000 // 128
    # A second run finds everything done.
    again = CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(out)])
    assert "0 cell(s) evaluated, 12 already in the store" in again.output

    rep = CliRunner().invoke(main, ["report", str(out), "--bootstrap-resamples", "200"])
    assert rep.exit_code == 0, rep.output
    report_dir = out / "report"
    figures = sorted((report_dir / "figures").glob("*.png"))
    assert len(figures) >= 4
    for f in figures:
        data = f.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    claims = json.loads((report_dir / "claims.json").read_text())
    (panel,) = claims.values()
    # The raw claims, then the same five on each SAE's gain over its random controls (the sweep scores controls).
    keys = ["frontier", "width", "activation", "depth", "attention"]
    assert [(c["key"], c["scale"]) for c in panel] == [(k, "raw") for k in keys] + [(k, "gain over controls")
                                                                                     for k in keys]
    assert any("specificity gain over controls" in c["statistic"] for c in panel[5:])
    assert all(c["evidence"] for c in panel)  # each verdict path is tested in test_claims.py
    attention = next(c for c in panel if c["key"] == "attention")
    assert any("attn_out minus resid_post" in e for e in attention["evidence"])
    md = (report_dir / "report.md").read_text()
    assert "### Claims" in md and "F1 [95% CI]" in md and "| MCC gain vs control |" in md
    assert "MCC gain vs control: the SAE's MCC minus" in md  # the legend under the cell table
    assert "| claim | on | verdict | test | statistic | p | comparisons | evidence |" in md
    assert "one-sided pair bootstraps" in md  # the tiny sweep's 4 hooks make the attention claim testable
    assert "Family: the claims testable on this panel (up to five). Each claim's p-value is Holm-adjusted" in md
    assert "### By target word" in md
    with (report_dir / "by_target.csv").open() as f:
        per_word = list(csv.DictReader(f))
    for c in cells:  # each cell's words partition its scored pairs
        cfg = c.eval_config
        mine = [r for r in per_word if r["hook"] == cfg.hook_name and r["sae"] == c.sae_name
                and r["readout"] == cfg.readout and r["dataset"] == cfg.dataset]
        assert sum(int(r["pairs"]) for r in mine) == len(c.eval_result_details)
        assert {r["target"] for r in mine} == {d.target for d in c.eval_result_details}
    # cells.csv: one row per cell, its counts and F1 the record's, plain numbers.
    from pseval.study.cells_csv import read_cells_csv
    table = {(r["hook"], r["sae"], r["readout"]): r for r in read_cells_csv(report_dir / "cells.csv")}
    assert len(table) == len(cells)
    for c in cells:
        row, m = table[c.eval_config.hook_name, c.sae_name, c.eval_config.readout], c.eval_result_metrics
        assert (int(row["tp"]), int(row["fn"]), int(row["pairs"])) == (m.ps_eval.tp, m.ps_eval.fn,
                                                                       m.counts.pairs_scored)
        assert float(row["f1"]) == m.ps_eval.f1 and float(row["f1_low"]) <= m.ps_eval.f1 <= float(row["f1_high"])
        assert (row["fvu"] == "") == (c.sae_name == "identity")
    commits = {str(c.git_commit)[:12] for c in cells}
    assert len(commits) == 1 and f"cells computed at commit(s) {commits.pop()}." in md
    page = (report_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(figures)
    # Convergence per cell, and the inspection pages of the panel's best and worst SAE, linked.
    trained = [c for c in cells if c.sae_name != "identity"]
    assert all(c.eval_result_metrics.training.converged is not None for c in trained)
    validate_with_saebench(json.loads(trained[0].to_json()))  # the training summary is a flat SAEBench category
    marks = {"yes" if c.eval_result_metrics.training.converged else "NO" for c in trained}
    assert "| converged |" in md and all(f"| {m} |" in md for m in marks)
    assert "### Per-sense inspection of the best and worst SAE" in md
    f1 = {(c.sae_name, c.eval_config.hook_name): c.eval_result_metrics.ps_eval.f1 for c in trained}
    links = re.findall(r"\]\((inspect/[^)]+\.html)\)", md)
    assert len(links) == 2 and all((report_dir / link).is_file() for link in links)
    for link, want in zip(links, (max(f1.values()), min(f1.values())), strict=True):
        insp = json.loads((report_dir / link).with_suffix(".json").read_text())
        assert f1[insp["sae_name"], insp["hook_name"]] == want
        assert insp["dataset"] == cells[0].eval_config.dataset and insp["contexts_read"] > 0
        assert f"href='{link}'" in page

    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (scripts/sysdeps.sh installs it)")
        pytest.skip("chromium is not installed")
    shot = tmp_path / "shot.png"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                           f"--screenshot={shot}", "--window-size=1200,2000", f"file://{report_dir / 'report.html'}"],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console


def test_bad_configs_name_the_field(tmp_path, tiny_gpt2_dir, wic_dev):
    base = sweep_toml(tiny_gpt2_dir, wic_dev)
    cases = {
        base.replace('architectures = ["topk", "standard"]', 'architectures = ["topk", "relu6"]'): "relu6",
        base.replace("train_tokens = 3000", 'train_tokens = "many"'): r"\[activations\].*train_tokens",
        base.replace('readouts = ["template"]', 'readouts = ["middle"]'): "readouts",
        base.replace("[train]", "[training]"): "unknown key.*training",
        base.replace('name = "tiny"', ""): "name",
        base + "\n[[grid\n": "invalid TOML",
    }
    for text, match in cases.items():
        p = tmp_path / "bad.toml"
        p.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_sweep_config(p)


def test_sweep_streams_when_activations_do_not_fit(tmp_path, tiny_gpt2_dir, wic_dev, monkeypatch):
    import pseval.study.sweep as sweep_mod
    import pseval.training.run as run_mod

    monkeypatch.setattr(run_mod, "ACTIVATION_MEMORY_BYTES", 1000)  # nothing fits: every hook is streamed
    cfg_path = tmp_path / "stream.toml"
    cfg_path.write_text(sweep_toml(tiny_gpt2_dir, wic_dev, name="stream"))
    lines = []
    store = sweep_mod.run_sweep(load_sweep_config(cfg_path), tmp_path / "run", log=lines.append, progress=False)
    assert any("3,000 tokens of wordnet-definitions (streamed)" in ln for ln in lines)
    cells = list(store.records())
    assert len(cells) == 12
    trained = [c for c in cells if c.sae_name != "identity"]
    assert all(c.eval_result_metrics.training.steps == 3000 // 128 for c in trained)
    assert all(c.eval_result_metrics.reconstruction.tokens == 500 for c in trained)
