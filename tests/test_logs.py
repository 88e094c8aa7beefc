"""Messages go through the `pseval` logger (silent in a library, plain lines on stderr from the command line) and
progress bars draw only on a terminal."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest
from click.testing import CliRunner

from pseval.cli.app import main
from pseval.logs import bar_disabled, get_logger, is_terminal


def test_library_is_silent_until_a_handler_is_installed():
    code = ("import logging, sys\n"
            "from pseval.logs import get_logger, install_cli_handler\n"
            "get_logger('pseval.eval').info('before')\n"
            "install_cli_handler(); install_cli_handler()  # once, however often it is called\n"
            "get_logger('eval').info('after')\n"
            "logging.getLogger('pseval').setLevel(logging.WARNING)  # what a notebook does to silence it\n"
            "get_logger('eval').info('silenced')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "after\n")


def test_child_loggers_hang_under_pseval():
    assert get_logger("eval").name == get_logger("pseval.eval").name == "pseval.eval"
    assert get_logger("eval").parent is logging.getLogger("pseval")


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_bars_draw_only_on_a_terminal(monkeypatch):
    assert is_terminal(_Stream(True)) and not is_terminal(_Stream(False)) and not is_terminal(object())
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    assert not bar_disabled(True) and bar_disabled(False)
    monkeypatch.setattr(sys, "stderr", _Stream(False))
    assert bar_disabled(True)


@pytest.mark.slow
def test_eval_results_on_stdout_messages_on_stderr_no_carriage_returns(tmp_path, wic_dev):
    out = tmp_path / "rec.json"
    res = CliRunner().invoke(main, ["eval", "--data", f"wic:{wic_dev}", "--max-pairs", "20", "--controls", "0",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "pairs from" in res.stderr and f"wrote {out}" in res.stderr
    assert "pairs from" not in res.stdout and "identity" in res.stdout  # the table is a result
    assert "\r" not in res.output  # not a terminal: no progress bar


def test_messages_wrap_on_a_terminal_and_stay_whole_in_a_log(monkeypatch):
    from pseval.logs import install_cli_handler
    from pseval.tables import reset_table_width, set_table_width

    handler = install_cli_handler()
    message = "word " * 30
    record = logging.LogRecord("pseval.eval", logging.INFO, __file__, 1, message, None, None)
    token = set_table_width(50)
    try:
        for tty in (False, True):
            stream = _Stream(tty)
            monkeypatch.setattr(sys, "stderr", stream)
            handler.emit(record)
            lines = stream.getvalue().splitlines()
            assert (len(lines) == 1) is (not tty) and " ".join(lines).split() == message.split()
            assert not tty or max(map(len, lines)) <= 50
    finally:
        reset_table_width(token)
        logging.getLogger("pseval").removeHandler(handler)


def test_eval_on_a_terminal_draws_one_bar_over_its_cells(monkeypatch, wic_dev):
    from pseval.cli.eval import EvalRequest, run_eval
    from pseval.ps_eval.settings import PSEvalSettings

    term = _Stream(True)
    monkeypatch.setattr(sys, "stderr", term)
    req = EvalRequest(hooks=["blocks.2.hook_resid_post", "blocks.3.hook_resid_post"], data=f"wic:{wic_dev}",
                      settings=PSEvalSettings(max_pairs=20, controls=0), device="cpu")
    records = run_eval(req, log=lambda _: None)
    assert len(records) == 2
    drawn = term.getvalue()
    # The cells bar counts the two cells (identity at two hooks) to the end, on the terminal given.
    assert "\r" in drawn and "cells: 100%" in drawn and "2/2" in drawn, drawn[-500:]


def test_library_code_never_prints():
    import ast

    from tests.conftest import REPO

    calls = []
    for path in sorted((REPO / "src" / "pseval").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # print(...) itself, or print handed on as a default callback (log=print)
            if isinstance(node, ast.Name) and node.id == "print":
                calls.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not calls, "messages go through pseval.logs.get_logger, results through the caller's `log`:\n" + \
        "\n".join(calls)
