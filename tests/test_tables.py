"""Console tables fit the terminal: panels of columns under one another, each led by the key column; `--wide` keeps
one line per row."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pseval.cli.app import main
from pseval.tables import fit_text, reset_table_width, set_table_width, table_width, text_table

ROWS = [{"sae": f"sae-{i}-with-a-long-name", "hook": "blocks.3.hook_resid_post", "F1 [95% CI]": "0.563 [0.515, 0.611]",
         "specificity [95% CI]": "0.204 [0.160, 0.250]", "MCC gain vs control": "+0.052 [0.010, 0.094] better",
         "pairs": 468, "note": "x" * 120} for i in range(3)]
COLUMNS = list(ROWS[0])


def _cells(table: str) -> set[str]:
    return {c.strip() for line in table.splitlines() for c in line.split("  ") if c.strip() and set(c) != {"-"}}


def test_a_wide_table_fits_80_columns_in_panels_keeping_every_value():
    wide = text_table(ROWS, COLUMNS)
    assert max(map(len, wide.splitlines())) > 190  # unfitted: as wide as its rows
    fitted = text_table(ROWS, COLUMNS, width=80)
    assert max(map(len, fitted.splitlines())) <= 80
    panels = fitted.split("\n\n")
    assert len(panels) > 1 and all(p.splitlines()[0].startswith("sae") for p in panels)  # each led by the key
    # Every value that fits beside the key survives whole; only the 120-character note is clipped.
    assert _cells(wide) - _cells(fitted) == {"x" * 120}
    assert any(c.startswith("x" * 40) and c.endswith("~") for c in _cells(fitted))


def test_a_table_that_fits_is_unchanged():
    rows = [{"a": 1, "b": 0.5}]
    fitted, plain = text_table(rows, ["a", "b"], width=80), text_table(rows, ["a", "b"])
    assert fitted.splitlines() == [line.rstrip() for line in plain.splitlines()]


def test_width_follows_the_setting_and_resets():
    assert table_width() is None
    token = set_table_width(10)  # narrower than any table can be: the floor
    try:
        assert table_width() == 40 and max(map(len, text_table(ROWS, COLUMNS).splitlines())) <= 40
    finally:
        reset_table_width(token)
    assert table_width() is None


def test_fit_text_wraps_prose_only():
    text = "short\n" + "word " * 40
    lines = fit_text(text, 50).splitlines()
    assert lines[0] == "short" and len(lines) > 4 and max(map(len, lines)) <= 50
    assert " ".join(lines).split() == text.split()  # only wrapped, nothing lost
    assert fit_text(text, None) == text


@pytest.mark.slow
def test_eval_output_fits_an_80_column_terminal_and_wide_does_not(wic_dev):
    args = ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "20", "--controls", "2"]
    res = CliRunner().invoke(main, args, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()  # the results; messages (stderr) are wrapped only on a terminal
    assert len(lines) > 20 and max(map(len, lines)) <= 80, max(lines, key=len)
    wide = CliRunner().invoke(main, ["--wide", *args], env={"COLUMNS": "80"})
    assert wide.exit_code == 0 and max(map(len, wide.stdout.splitlines())) > 150
    assert table_width() is None  # the command line's width does not outlive its run


def test_an_sae_at_several_hooks_keeps_its_hook_in_every_panel():
    rows = [{"sae": "identity", "hook": f"blocks.{i}.hook_resid_post", "a": "x" * 30, "b": "y" * 30, "c": "z" * 30}
            for i in (2, 3)]
    fitted = text_table(rows, list(rows[0]), width=80)
    panels = fitted.split("\n\n")
    assert len(panels) > 1 and max(map(len, fitted.splitlines())) <= 80
    for p in panels:  # each panel tells the two rows apart
        assert p.splitlines()[0].split()[:2] == ["sae", "hook"]
        assert [ln.split()[1] for ln in p.splitlines()[2:]] == ["blocks.2.hook_resid_post", "blocks.3.hook_resid_post"]
    unique = [{**r, "sae": f"sae-{i}"} for i, r in enumerate(rows)]  # the first column alone tells them apart
    assert all(p.splitlines()[0].split()[1] != "hook" for p in text_table(unique, list(rows[0]), 80).split("\n\n")[1:])
