"""The README's Python section runs as written, and its identity module gives `pseval eval --sae identity`'s
counts on WiC dev with MiniLM at blocks.3.hook_resid_post."""

from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

from pseval.cli.eval import EvalRequest, run_eval
from tests.conftest import REPO

START, END = "<!-- notebook-flow:", "<!-- /notebook-flow -->"


def readme_block() -> str:
    """The one ```python block between the notebook-flow markers of README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(START):text.index(END)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the notebook-flow markers hold exactly one python block"
    return blocks[0]


def test_readme_block_is_at_most_ten_lines():
    assert len(readme_block().rstrip("\n").splitlines()) <= 10


@pytest.mark.slow
def test_readme_block_runs_and_matches_sae_identity(wic_dev, monkeypatch):
    monkeypatch.chdir(REPO)  # the block's data path is relative to the repository, as in the README
    assert os.path.samefile(REPO / "../shared/data/wic/dev", wic_dev)
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_block(), "README.md:notebook-flow", "exec"), ns)  # noqa: S102
    res = ns["res"]
    assert "spec" in out.getvalue() and "module" in out.getvalue()  # the printed table
    by_name = {r.sae_name: r for r in res.records}
    assert set(by_name) == {"spec", "module"}

    cli = run_eval(EvalRequest(model="minilm", hooks=["blocks.3.hook_resid_post"], saes=["identity"],
                               data=f"wic:{wic_dev}"), log=lambda _: None)
    want = cli[0].eval_result_metrics
    for rec in by_name.values():
        got = rec.eval_result_metrics
        assert got.ps_eval == want.ps_eval and got.counts == want.counts
        assert rec.eval_config == cli[0].eval_config  # model, hook, data, selection, readout, balance: all the same
    # the module has no weights: no cosines; the identity SAE has its identity matrices
    assert by_name["module"].eval_result_metrics.feature_cosine is None
    assert by_name["spec"].eval_result_metrics.feature_cosine is not None
    assert [(d.feature_1, d.feature_2) for d in by_name["module"].eval_result_details] == \
        [(d.feature_1, d.feature_2) for d in cli[0].eval_result_details]
