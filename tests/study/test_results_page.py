"""The published results page: drawn by `pseval report RUN --page`, and every number in its tables is the value in
the summary CSV its table names, for a tiny sweep and for the committed docs/results pages (so they cannot drift)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pseval.cli import main
from pseval.study.results_page import SOURCE_MARK, page_value
from tests.conftest import sweep_toml

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def page_tables(text: str) -> list[tuple[dict, list[str], list[list[str]]]]:
    """(source mark, header, rows) of every Markdown table of a page; a table without a source mark is an error."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("|"):
            mark = lines[i - 1]
            assert mark.startswith(SOURCE_MARK), f"table at line {i + 1} names no source: {lines[i]}"
            source = json.loads(mark[len(SOURCE_MARK):].removesuffix(" -->"))
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows = []
            i += 2  # past the separator
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split(" | ")])
                i += 1
            out.append((source, header, rows))
        i += 1
    return out


def check_page(page: Path) -> int:
    """Assert every table cell of the page equals its source CSV's value; returns the number of cells checked."""
    folder = page.with_suffix("")
    checked = 0
    tables = page_tables(page.read_text(encoding="utf-8"))
    assert tables, f"{page} has no tables"
    for source, header, rows in tables:
        with open(folder / source["file"], newline="", encoding="utf-8") as fh:
            summary = [r for r in csv.DictReader(fh)
                       if all(r[k] in v if isinstance(v, list) else r[k] == v for k, v in source["where"].items())]
        index = {tuple(r[k] for k in source["key"]): r for r in summary}
        assert len(index) == len(summary), f"{source}: the key does not identify one row"
        assert len(rows) == len(summary), f"{source}: {len(rows)} rows on the page, {len(summary)} in the summary"
        for row in rows:
            assert len(row) == len(header), row
            cells = dict(zip(header, row, strict=True))
            src = index[tuple(cells[k] for k in source["key"])]
            for col, shown in cells.items():
                assert shown == page_value(src[col]), f"{page.name} {source['file']} {col}: {shown!r} vs {src[col]!r}"
                checked += 1
    return checked


@pytest.mark.slow
def test_page_of_a_tiny_sweep(tmp_path, tiny_gpt2_dir, wic_dev):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(sweep_toml(tiny_gpt2_dir, wic_dev))
    run = tmp_path / "run"
    assert CliRunner().invoke(main, ["sweep", str(cfg), "--out", str(run)]).exit_code == 0
    page = tmp_path / "pages" / "tiny.md"
    res = CliRunner().invoke(main, ["report", str(run), "--page", str(page), "--bootstrap-resamples", "200",
                                    "--sweep-command", f"OMP_NUM_THREADS=1 pseval sweep {cfg} --out {run}"])
    assert res.exit_code == 0, res.output
    text = page.read_text()
    commit = json.loads((run / "sweep.json").read_text())["git_commit"]
    assert f"pseval report {run} --page {page}" in text and commit in text
    assert f"\nOMP_NUM_THREADS=1 pseval sweep {cfg} --out {run}\n" in text
    assert text.startswith(f"# PS-Eval on `{tiny_gpt2_dir}`") and "What MiniLM can" not in text  # MiniLM's own
    assert check_page(page) > 100
    # Each panel says what chance scores on its pairs.
    assert text.count("\nChance on these 60 pairs (") == text.count("\n## PS-Eval: ") >= 1
    # Drawn again over the committed page (the reproduction step): accepted, and the same page.
    again = CliRunner().invoke(main, ["report", str(run), "--page", str(page), "--bootstrap-resamples", "200",
                                      "--sweep-command", f"OMP_NUM_THREADS=1 pseval sweep {cfg} --out {run}"])
    assert again.exit_code == 0, again.output
    assert page.read_text() == text
    for name in ("cells.csv", "training.csv", "claims.csv", "curves.csv"):
        assert (tmp_path / "pages" / "tiny" / name).is_file()
    figures = sorted((tmp_path / "pages" / "tiny").glob("*.png"))
    assert len(figures) >= 4 and all(f.stat().st_size <= 200_000 for f in figures)
    for f in figures:  # every figure written is shown, and every figure shown exists
        assert f"](tiny/{f.name})" in text
    # Compared with itself as the shorter budget: every cell and claim is matched, and nothing changed.
    checked = tmp_path / "pages" / "checked.md"
    res = CliRunner().invoke(main, ["report", str(run), "--page", str(checked), "--bootstrap-resamples", "200",
                                    "--budget-check", str(tmp_path / "pages" / "tiny")])
    assert res.exit_code == 0, res.output
    both = checked.read_text()
    assert "## Does the budget change the answer?" in both and f"--budget-check {tmp_path / 'pages' / 'tiny'}" in both
    with open(tmp_path / "pages" / "checked" / "budget_cells.csv", newline="") as fh:
        compared = list(csv.DictReader(fh))
    with open(tmp_path / "pages" / "tiny" / "cells.csv", newline="") as fh:
        assert len(compared) == len(list(csv.DictReader(fh)))
    assert all(float(r["d_specificity"]) == 0 and float(r["d_f1"]) == 0 for r in compared)
    assert "\n0 of " in both and check_page(checked) > check_page(page)
    # A changed number in the page is caught.
    with open(tmp_path / "pages" / "tiny" / "cells.csv", newline="") as fh:
        f1 = page_value(next(csv.DictReader(fh))["f1"])
    page.write_text(text.replace(f"| {f1} |", "| 0.999 |", 1))
    with pytest.raises(AssertionError, match="f1"):
        check_page(page)


@pytest.mark.parametrize("page", sorted(RESULTS.glob("*.md")), ids=lambda p: p.name)
def test_committed_pages_equal_their_summaries(page):
    assert check_page(page) > 0


def test_minilm_section_names_each_claims_verdicts_and_budget_mixing():
    from pseval.study.results_page import _minilm_section

    claims = [{"key": "width", "statement": "Specificity depends on width", "verdict": v, "dataset": ds,
               "readout": "template"} for v, ds in (("holds", "wic:/x/dev"), ("inconclusive", "wordnet:seed=0"))]
    one = "\n".join(_minilm_section(claims, {"train_tokens": 400_000, "grids": [{}, {}]}))
    assert "- **width** (Specificity depends on width): " in one and "holds" in one and "inconclusive" in one
    assert "different token budgets" not in one
    mixed = "\n".join(_minilm_section(claims, {"train_tokens": 200_000, "grids": [{}, {"train_tokens": 80_000}]}))
    assert "different token budgets" in mixed
