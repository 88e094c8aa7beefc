"""Every CLI option is checked where it enters, before any model loads: a bad value exits 2 with one line naming the
option, the value and what is allowed, and nothing is written. The guard turns anything unexpected into one line
(exit 1) and --debug shows the traceback."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pseval.cli import main


def invoke(args: list[str], **kw) -> Result:
    return CliRunner().invoke(main, args, **kw)


def error_lines(res: Result) -> list[str]:
    return [ln for ln in res.output.splitlines() if ln.lower().startswith("error:")]


def assert_refused(res: Result, *patterns: str, code: int = 2) -> str:
    """Exit `code`, exactly one error line matching every pattern, no traceback."""
    import re

    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output, res.output
    lines = error_lines(res)
    assert len(lines) == 1, res.output
    for p in patterns:
        assert re.search(p, lines[0]), (p, lines[0])
    return lines[0]


@pytest.fixture()
def paths(tmp_path: Path) -> dict[str, str]:
    """A file where a folder is expected, a model folder without weights, a missing path."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    (noweights / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    return {"file": str(blocker), "noweights": str(noweights), "missing": str(tmp_path / "missing"),
            "out": str(tmp_path / "out")}


# (id, args with {file}/{noweights}/{missing}/{out} placeholders, patterns the one error line must match)
CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("eval-max-pairs-negative", ["eval", "--max-pairs", "-1"], (r"'--max-pairs'", r"-1 is not in the range x>=1",)),
    ("eval-max-pairs-zero", ["eval", "--max-pairs", "0"], (r"'--max-pairs'", r"0 is not in the range x>=1")),
    ("eval-max-pairs-float", ["eval", "--max-pairs", "1.5"], (r"'--max-pairs'", r"'1.5' is not a valid integer")),
    ("eval-seed-negative", ["eval", "--seed", "-1"], (r"'--seed'", r"-1 is not in the range 0<=x<=4294967295")),
    ("eval-seed-too-large", ["eval", "--seed", str(2**32)], (r"'--seed'", r"4294967296 is not in the range")),
    ("eval-device-unknown", ["eval", "--device", "foo"],
     (r"'--device'", r"'foo'", r"expected auto, cpu, cuda, cuda:N or mps")),
    ("eval-device-absent", ["eval", "--device", "cuda:99"],
     (r"'--device'", r"'cuda:99' is not available on this machine; available: cpu")),
    ("eval-device-cpu-index", ["eval", "--device", "cpu:0"],
     (r"'--device'", r"expected auto, cpu, cuda, cuda:N or mps")),
    ("eval-device-auto-index", ["eval", "--device", "auto:0"],
     (r"'--device'", r"expected auto, cpu, cuda, cuda:N or mps")),
    ("eval-readout", ["eval", "--readout", "middle"],
     (r"'--readout'", r"'middle' is not one of 'template', 'context'")),
    ("eval-multi-token", ["eval", "--multi-token", "all"], (r"'--multi-token'", r"'all' is not one of")),
    ("eval-protocol", ["eval", "--protocol", "paper"], (r"'--protocol'", r"'paper' is not one of 'pseval'")),
    ("eval-balance", ["eval", "--balance", "half"], (r"'--balance'", r"'half' is not one of 'reference'")),
    ("eval-too-long", ["eval", "--too-long", "cut"], (r"'--too-long'", r"'cut' is not one of 'truncate', 'skip'")),
    ("eval-data-kind", ["eval", "--data", "wac:/x"], (r"'--data'", r"unknown data spec 'wac:/x'", r"wic:PATH")),
    ("eval-data-missing", ["eval", "--data", "wic:{missing}"], (r"'--data'", r"missing: WiC split folder not found")),
    ("eval-data-empty", ["eval", "--data", ""], (r"'--data'", r"empty data spec")),
    ("eval-out-under-file", ["eval", "--out", "{file}/r.json"], (r"'--out'", r"a-file is not a folder")),
    ("eval-out-is-file", ["eval", "--out", "{file}"], (r"'--out'", r"a-file: exists and is a file, expected a folder")),
    ("eval-saebench-dir", ["eval", "--saebench-dir", "{file}"], (r"'--saebench-dir'", r"exists and is a file")),
    ("eval-cache", ["eval", "--cache", "{file}/c"], (r"'--cache'", r"a-file is not a folder")),
    ("eval-reconstruction-tokens", ["eval", "--reconstruction-tokens", "-5"],
     (r"'--reconstruction-tokens'", r"'-5' is below the minimum 0")),
    ("eval-loss-recovered-tokens", ["eval", "--loss-recovered-tokens", "1.5"],
     (r"'--loss-recovered-tokens'", r"'1.5' is not a whole number")),
    ("eval-corpus-kind", ["eval", "--corpus", "books"], (r"'--corpus'", r"unknown corpus 'books'", r"file:PATH")),
    ("eval-corpus-file", ["eval", "--corpus", "file:{missing}"], (r"'--corpus'", r"missing.*text file not found")),
    ("eval-hook-typo", ["eval", "--hook", "blocks.3.hook_resid"],
     (r"'--hook'", r"'blocks.3.hook_resid'", r"expected blocks.<L>.<hook_resid_pre\|")),
    ("eval-hook-glob", ["eval", "--hook", "blocks.*.hook_mlp_out"],
     (r"'--hook'", r"patterns .* are for sweep configs")),
    ("eval-hook-empty", ["eval", "--hook", ""], (r"'--hook'", r"expected a hook name")),
    ("eval-model-missing", ["eval", "--model", "{missing}"], (r"'--model'", r"no such folder, and not a Hub id")),
    ("eval-model-noweights", ["eval", "--model", "{noweights}"],
     (r"'--model'", r"has config.json but no weights; expected one of model.safetensors")),
    ("eval-model-file", ["eval", "--model", "{file}"], (r"'--model'", r"is a file; expected a model folder")),
    ("train-tokens-zero", ["train", "--out", "{out}", "--tokens", "0"], (r"'--tokens'", r"'0' is below the minimum 1")),
    ("train-tokens-negative", ["train", "--out", "{out}", "--tokens", "-1e6"], (r"'--tokens'", r"below the minimum 1")),
    ("train-tokens-fraction", ["train", "--out", "{out}", "--tokens", "1.5"], (r"'--tokens'", r"not a whole number")),
    ("train-tokens-nan", ["train", "--out", "{out}", "--tokens", "nan"], (r"'--tokens'", r"'nan' is not a whole")),
    ("train-tokens-inf", ["train", "--out", "{out}", "--tokens", "1e400"], (r"'--tokens'", r"'1e400' is not a whole")),
    ("train-lr-zero", ["train", "--out", "{out}", "--lr", "0"], (r"'--lr'", r"0.0 is not in the range x>0")),
    ("train-lr-nan", ["train", "--out", "{out}", "--lr", "nan"], (r"'--lr'", r"'nan' is not a finite number")),
    ("train-lr-negative", ["train", "--out", "{out}", "--lr", "-1e-3"], (r"'--lr'", r"not in the range x>0")),
    ("train-batch-size", ["train", "--out", "{out}", "--batch-size", "0"],
     (r"'--batch-size'", r"not in the range x>=1")),
    ("train-expansion", ["train", "--out", "{out}", "--expansion", "0"], (r"'--expansion'", r"not in the range x>=1")),
    ("train-k-zero", ["train", "--out", "{out}", "--k", "0"], (r"'--k'", r"0 is not in the range x>=1")),
    ("train-k-over-dictionary", ["train", "--out", "{out}", "--expansion", "2", "--k", "769"],
     (r"'--k'", r"769 is larger than the dictionary of topk x2 \(2 x d_model 384 = 768 latents\)")),
    ("train-arch-unknown", ["train", "--out", "{out}", "--arch", "relu6"],
     (r"'--arch'", r"'relu6' is not an architecture; allowed: batchtopk, gated, jumprelu, standard, (.*, )?topk")),
    ("train-arch-identity", ["train", "--out", "{out}", "--arch", "identity"], (r"'--arch'", r"not an architecture")),
    ("train-k-unused", ["train", "--out", "{out}", "--arch", "standard", "--k", "8"],
     (r"'--k'", r"no --arch given takes k \(standard\)")),
    ("train-coeff-unused", ["train", "--out", "{out}", "--sparsity-coeff", "1"],
     (r"'--sparsity-coeff'", r"topk take\(s\) --k, not a sparsity coefficient")),
    ("train-coeff-negative", ["train", "--out", "{out}", "--arch", "standard", "--sparsity-coeff", "-1"],
     (r"'--sparsity-coeff'", r"-1.0 is not in the range x>=0")),
    ("train-coeff-inf", ["train", "--out", "{out}", "--arch", "standard", "--sparsity-coeff", "inf"],
     (r"'--sparsity-coeff'", r"'inf' is not a finite number")),
    ("train-checkpoint-every", ["train", "--out", "{out}", "--checkpoint-every", "0"],
     (r"'--checkpoint-every'", r"not in the range x>=1")),
    ("train-out-required", ["train"], (r"Missing option '--out'",)),
    ("train-out-is-file", ["train", "--out", "{file}"], (r"'--out'", r"exists and is a file")),
    ("train-cache", ["train", "--out", "{out}", "--cache", "{file}"], (r"'--cache'", r"exists and is a file")),
    ("demo-train-tokens", ["demo", "--out", "{out}", "--train-tokens", "0"],
     (r"'--train-tokens'", r"below the minimum 1")),
    ("demo-wordnet-pairs", ["demo", "--out", "{out}", "--max-pairs", "0"],
     (r"'--max-pairs'", r"not in the range x>=1")),
    ("demo-wic", ["demo", "--out", "{out}", "--wic", "{missing}"], (r"'--wic'", r"WiC split folder not found")),
    ("report-n-boot", ["report", "{out}", "--bootstrap-resamples", "0"],
     (r"'--bootstrap-resamples'", r"0 is not in the range x>=1")),
    ("report-missing", ["report", "{missing}"], (r"'RESULTS\.\.\.'", r"missing' does not exist")),
    ("sweep-missing", ["sweep", "{missing}"], (r"'CONFIG'", r"missing' does not exist")),
    ("sweep-folder", ["sweep", "{out}"], (r"'CONFIG'", r"out' is a directory")),
    ("sweep-out-is-file", ["sweep", "{file}", "--out", "{file}"], (r"'--out'", r"exists and is a file")),
    ("hooks-model", ["hooks", "--model", "{noweights}"], (r"'--model'", r"has config.json but no weights")),
]


@pytest.mark.parametrize(("name", "args", "patterns"), CASES, ids=[c[0] for c in CASES])
def test_bad_option_is_refused_before_any_work(name, args, patterns, paths, monkeypatch):
    import pseval.models.loading as loading

    def no_model(*_a, **_k):
        raise AssertionError("a model was loaded although an option was invalid")

    monkeypatch.setattr(loading, "load_model", no_model)
    if name in ("report-n-boot", "sweep-folder"):
        Path(paths["out"]).mkdir()
    res = invoke([a.format(**paths) for a in args])
    assert_refused(res, *patterns)
    if name not in ("report-n-boot", "sweep-folder"):
        assert not Path(paths["out"]).exists()  # nothing written


def test_help_documents_the_exit_codes():
    res = invoke(["--help"])
    assert res.exit_code == 0
    assert "Exit codes:" in res.output and "2  bad input" in res.output and "1  failure" in res.output
    assert "--debug" in res.output
    page = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    assert "## Errors and exit codes" in page and "| 2 | bad input" in page and "| 1 | a failure" in page


def _raise(exc: BaseException):
    def run_eval(*_a, **_k):
        raise exc
    return run_eval


def test_unexpected_error_is_one_line_naming_the_command_and_input(monkeypatch):
    import pseval.cli.eval as evaluate

    monkeypatch.setattr(evaluate, "run_eval", _raise(RuntimeError("boom\nsecond line")))
    res = invoke(["eval", "--max-pairs", "5"])
    line = assert_refused(res, r"`pseval eval --max-pairs 5` failed with RuntimeError: boom second line",
                          r"This is a bug; run with --debug for the traceback", code=1)
    # Nothing else but the one line `--device auto` gives when it resolves (a message, before any work).
    assert res.output.strip().splitlines() == ["device: cpu (auto: no CUDA device)", line]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(monkeypatch, how):
    import pseval.cli.eval as evaluate

    monkeypatch.setattr(evaluate, "run_eval", _raise(RuntimeError("boom")))
    args, env = (["--debug", "eval"], {}) if how == "flag" else (["eval"], {"PSEVAL_DEBUG": "1"})
    res = invoke(args, env=env)
    assert res.exit_code == 1 and "Traceback (most recent call last)" in res.output
    assert 'raise exc' in res.output and "This is a bug" in res.output


def test_pseval_errors_exit_2_and_output_errors_exit_1(monkeypatch):
    import pseval.cli.eval as evaluate
    from pseval.errors import ConfigError
    from pseval.files import OutputError

    monkeypatch.setattr(evaluate, "run_eval", _raise(ConfigError("field 'x' = 3: expected\n  a string")))
    assert_refused(invoke(["eval"]), r"^error: field 'x' = 3: expected a string$")
    res = invoke(["--debug", "eval"])
    assert res.exit_code == 2 and "Traceback" in res.output  # --debug keeps the exit code
    monkeypatch.setattr(evaluate, "run_eval", _raise(OutputError("/x/r.json: no space left on device")))
    assert_refused(invoke(["eval"]), r"^error: /x/r.json: no space left on device$", code=1)
    monkeypatch.setattr(evaluate, "run_eval", _raise(MemoryError()))
    assert_refused(invoke(["eval"]), r"^error: out of memory", code=1)
    # a write refused by the system outside pseval.files is a failure too, not a bug
    monkeypatch.setattr(evaluate, "run_eval", _raise(OSError(errno.ENOSPC, "No space left on device", "/x/a.png")))
    assert_refused(invoke(["eval"]), r"^error: /x/a.png: No space left on device$", code=1)


def test_valid_values_pass(paths, monkeypatch):
    """The accepted forms: token counts in exponent and underscore notation, devices in any case."""
    import pseval.cli.eval as evaluate

    seen = {}

    def run_eval(req, log):
        seen.update(vars(req))

    monkeypatch.setattr(evaluate, "run_eval", run_eval)
    res = invoke(["eval", "--max-pairs", "7", "--reconstruction-tokens", "2e3", "--loss-recovered-tokens", "1_000",
                  "--device", " CPU ",
                  "--seed", str(2**32 - 1), "--hook", "blocks.0.hook_mlp_out", "--hook", "blocks.0.hook_mlp_out",
                  "--out", f"{paths['out']}/r.json"])
    assert res.exit_code == 0, res.output
    cfg = seen["settings"]
    assert cfg.max_pairs == 7 and cfg.reconstruction_tokens == 2000 and cfg.loss_recovered_tokens == 1000
    assert seen["device"] == "cpu" and cfg.seed == 2**32 - 1 and seen["hooks"] == ["blocks.0.hook_mlp_out"]
    assert seen["out"] == Path(paths["out"]) / "r.json" and not Path(paths["out"]).exists()
