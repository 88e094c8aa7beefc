"""Sweep configs are checked against a schema before anything runs: every problem is a ConfigError naming the file,
the field's TOML path, the value and what is allowed; names stay inside runs/; one dataset has one identity."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pseval.cli import main
from pseval.errors import ConfigError
from pseval.ps_eval.settings import PSEvalSettings
from pseval.study.sweep_config import load_sweep_config
from tests.conftest import WIC_DEV, require_shared
from tests.reliability.sweep_toml import SWEEP_TOML

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

BASE = SWEEP_TOML


def _set(line_start: str, new: str):
    """Replace the line that starts with `line_start` (first occurrence)."""
    def edit(text: str) -> str:
        lines = text.splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.startswith(line_start))
        lines[i] = new
        return "\n".join(lines) + "\n"
    return edit


def _drop(line_start: str):
    return _set(line_start, "")


def _add(after: str, new: str):
    return lambda text: text.replace(after, after + "\n" + new, 1)


# (id, edit of BASE, pattern after "<file>: ") — each pattern names the TOML path, the value and what is allowed.
CASES = [
    ("grid-scalars", lambda t: re.sub(r"\[\[grid\]\].*?\n\n", "", t, flags=re.S).replace(
        'seed = 0', 'seed = 0\ngrid = [1, 2]'),
     r"^\[\[grid\]\] #1 = 1: expected a \[\[grid\]\] table with hooks = \[\.\.\.\]; \[\[grid\]\] #2 = 2: "),
    ("eval-string", lambda t: t.split("[eval]")[0].replace('seed = 0', 'seed = 0\neval = "x"'),
     r'^eval = "x": expected a table$'),
    ("activations-scalar", lambda t: t.replace("[activations]", "activations = 5\n[unused]"),
     r"activations = 5: expected a table"),
    ("no-grid", lambda t: re.sub(r"\[\[grid\]\].*?\n\n", "", t, flags=re.S), r"^grid: missing \(required\)$"),
    ("empty-grid", lambda t: re.sub(r"\[\[grid\]\].*?\n\n", "", t, flags=re.S).replace(
        'seed = 0', 'seed = 0\ngrid = []'), r"^grid: needs at least one \[\[grid\]\] table$"),
    ("no-eval", lambda t: t.split("[eval]")[0], r"^eval: missing \(required\)$"),
    ("no-name", _drop("name ="), r"^name: missing \(required\)$"),
    ("name-escapes", _set("name =", 'name = "../../x"'), r'name = "\.\./\.\./x": expected a plain folder name'),
    ("name-absolute", _set("name =", 'name = "/tmp/x"'), r'name = "/tmp/x": expected a plain folder name .*no \'/\''),
    ("name-nested", _set("name =", 'name = "a/b"'), r'name = "a/b": expected a plain folder name'),
    ("name-hidden", _set("name =", 'name = ".x"'), r'name = "\.x": expected a plain folder name'),
    ("name-dotdot", _set("name =", 'name = ".."'), r'name = "\.\.": expected a plain folder name'),
    ("name-number", _set("name =", "name = 3"), r"name = 3: expected a string"),
    ("unknown-top", lambda t: t.replace("[train]", "[training]"),
     r"unknown key 'training'; allowed: name, model, device, seed, executor, ray_address, activations, train, grid, "
     r"eval"),
    ("unknown-eval", _add("[eval]", "foo = 1"),
     r"\[eval\]: unknown key 'foo'; allowed: protocol, readout, .*, datasets, readouts$"),
    ("unknown-grid", _add("[[grid]]", "width = 3"), r"\[\[grid\]\] #1: unknown key 'width'; allowed: hooks,"),
    ("seed-negative", _set("seed =", "seed = -1"), r"^seed = -1: expected an integer >= 0$"),
    ("seed-float", _set("seed =", "seed = 1.5"), r"^seed = 1\.5: expected an integer$"),
    ("seed-bool", _set("seed =", "seed = true"), r"^seed = true: expected an integer$"),
    ("seed-huge", _set("seed =", "seed = 4294967296"), r"seed = 4294967296: expected an integer <= 4294967295"),
    ("device-unknown", _set("device =", 'device = "gpu"'),
     r'device = "gpu": .*expected auto, cpu, cuda, cuda:N or mps'),
    ("device-number", _set("device =", "device = 0"), r"device = 0: expected a string"),
    ("executor", _add('seed = 0', 'executor = "dask"'), r"executor = \"dask\": expected 'serial' or 'ray'"),
    ("train-tokens-zero", _set("train_tokens", "train_tokens = 0"),
     r"\[activations\]\.train_tokens = 0: expected an integer >= 1"),
    ("train-tokens-string", _set("train_tokens", 'train_tokens = "many"'),
     r'\[activations\]\.train_tokens = "many": expected an integer'),
    ("train-tokens-float", _set("train_tokens", "train_tokens = 3e3"),
     r"\[activations\]\.train_tokens = 3000\.0: expected an integer"),
    ("heldout-negative", _set("heldout_tokens", "heldout_tokens = -5"),
     r"\[activations\]\.heldout_tokens = -5: expected an integer >= 1"),
    ("context-size-zero", _set("context_size", "context_size = 0"), r"\[activations\]\.context_size = 0: expected"),
    ("corpus-kind", _set("corpus =", 'corpus = "books"'),
     r'\[activations\]\.corpus = "books": unknown corpus \'books\'; expected wordnet'),
    ("corpus-file", _set("corpus =", 'corpus = "file:/nonexistent/t.txt"'),
     r"\[activations\]\.corpus = \"file:/nonexistent/t\.txt\": .*text file not found"),
    ("lr-zero", _set("lr =", "lr = 0"), r"\[train\]\.lr = 0: expected a number > 0"),
    ("lr-nan", _set("lr =", "lr = nan"), r"\[train\]\.lr = NaN: expected a finite number"),
    ("lr-inf", _set("lr =", "lr = inf"), r"\[train\]\.lr = Infinity: expected a finite number"),
    ("lr-string", _set("lr =", 'lr = "fast"'), r'\[train\]\.lr = "fast": expected a number'),
    ("batch-size-zero", _set("batch_size", "batch_size = 0"), r"\[train\]\.batch_size = 0: expected an integer >= 1"),
    ("hooks-empty", _set("hooks =", "hooks = []"), r"\[\[grid\]\] #1\.hooks = \[\]: expected a non-empty list"),
    ("hooks-string", _set("hooks =", 'hooks = "blocks.0.hook_resid_post"'),
     r'\[\[grid\]\] #1\.hooks = "blocks\.0\.hook_resid_post": expected a list'),
    ("hooks-blank", _set("hooks =", 'hooks = [""]'), r'\[\[grid\]\] #1\.hooks\[0\] = "": expected a non-empty string'),
    ("arch-unknown", _set("architectures", 'architectures = ["topk", "relu6"]'),
     r"\[\[grid\]\] #1\.architectures = \[\"topk\", \"relu6\"\]: unknown 'relu6'; known: batchtopk, gated, jumprelu"),
    ("arch-identity", _set("architectures", 'architectures = ["identity"]'),
     r"unknown 'identity'.*the identity baseline is `identity = true`"),
    ("arch-empty", _set("architectures", "architectures = []"),
     r"\[\[grid\]\] #1\.architectures = \[\]: expected a non-empty list"),
    ("expansion-zero", _set("expansions", "expansions = [0]"), r"\[\[grid\]\] #1\.expansions\[0\] = 0: expected an "
                                                                r"integer >= 1"),
    ("expansion-float", _set("expansions", "expansions = [2.5]"),
     r"\[\[grid\]\] #1\.expansions\[0\] = 2\.5: expected an integer"),
    ("k-zero", _set("k =", "k = [0]"), r"\[\[grid\]\] #1\.k\[0\] = 0: expected an integer >= 1"),
    ("k-scalar", _set("k =", "k = 8"), r"\[\[grid\]\] #1\.k = 8: expected a list"),
    ("k-unused", lambda t: _set("architectures", 'architectures = ["standard"]')(t),
     r"\[\[grid\]\] #1\.k: no architecture of this grid \(standard\) takes k"),
    ("coeff-for-topk", _set("sparsity_coeff", "sparsity_coeff = { topk = [1.0], standard = [2.0] }"),
     r"\[\[grid\]\] #1\.sparsity_coeff\.topk: topk takes k, not a sparsity coefficient"),
    ("coeff-absent-arch", _set("sparsity_coeff", "sparsity_coeff = { gated = [1.0] }"),
     r"\[\[grid\]\] #1\.sparsity_coeff\.gated: 'gated' is not in this grid's architectures \(topk, standard\)"),
    ("coeff-negative", _set("sparsity_coeff", "sparsity_coeff = { standard = [-1.0] }"),
     r"\[\[grid\]\] #1\.sparsity_coeff\.standard\[0\] = -1\.0: expected a number >= 0"),
    ("coeff-scalar", _set("sparsity_coeff", "sparsity_coeff = { standard = 2.0 }"),
     r"\[\[grid\]\] #1\.sparsity_coeff\.standard = 2\.0: expected a list"),
    ("coeff-list", _set("sparsity_coeff", "sparsity_coeff = [2.0]"),
     r"\[\[grid\]\] #1\.sparsity_coeff = \[2\.0\]: expected a table"),
    ("identity-string", _set("identity", 'identity = "yes"'),
     r'\[\[grid\]\] #1\.identity = "yes": expected true or false'),
    ("datasets-empty", _set("datasets", "datasets = []"), r"\[eval\]\.datasets = \[\]: expected a non-empty list"),
    ("datasets-missing", _drop("datasets"), r"\[eval\]\.datasets: missing \(required\)"),
    ("dataset-kind", _set("datasets", 'datasets = ["wac:/x"]'),
     r'\[eval\]\.datasets\[0\] = "wac:/x": unknown data spec'),
    ("dataset-file", _set("datasets", 'datasets = ["jsonl:nope.jsonl"]'),
     r'\[eval\]\.datasets\[0\] = "jsonl:nope\.jsonl": .*nope\.jsonl: file not found'),
    ("dataset-twice", _set("datasets", 'datasets = ["jsonl:pairs.jsonl", "JSONL:./pairs.jsonl"]'),
     r'\[eval\]\.datasets\[1\] = "JSONL:\./pairs\.jsonl": the same dataset as datasets\[0\] \(jsonl:/'),
    ("readout-unknown", _set("readouts", 'readouts = ["middle"]'),
     r"\[eval\]\.readouts\[0\] = \"middle\": expected 'template' or 'context'"),
    ("readout-twice", _set("readouts", 'readouts = ["template", "template"]'),
     r"\[eval\]\.readouts = \[\"template\", \"template\"\]: expected each readout once"),
    ("multi-token", _set("multi_token", 'multi_token = "all"'),
     r"\[eval\]\.multi_token = \"all\": expected 'first', 'last', 'mean' or 'drop'"),
    ("protocol", _set("protocol", 'protocol = "x"'), r"\[eval\]\.protocol = \"x\": expected 'pseval' or 'reference'"),
    ("balance", _set("balance", 'balance = "half"'), r"\[eval\]\.balance = \"half\": expected 'reference', 'paper'"),
    ("max-pairs-zero", _set("max_pairs", "max_pairs = 0"), r"\[eval\]\.max_pairs = 0: expected an integer >= 1"),
    ("max-pairs-negative", _set("max_pairs", "max_pairs = -1"), r"\[eval\]\.max_pairs = -1: expected an integer"),
    ("loss-tokens-negative", _set("loss_recovered_tokens", "loss_recovered_tokens = -1"),
     r"\[eval\]\.loss_recovered_tokens = -1: expected an integer >= 0"),
    ("toml-syntax", lambda t: t + "\n[[grid\n", r"invalid TOML: Expected ']]' .*\(at line \d+, column \d+\)"),
    ("several", lambda t: _set("seed =", "seed = -1")(_set("lr =", "lr = -1")(t)),
     r"seed = -1: expected an integer >= 0; \[train\]\.lr = -1: expected a number > 0"),
]


def _write(tmp: Path, text: str | bytes, name: str = "study.toml") -> Path:
    (tmp / "pairs.jsonl").write_text(json.dumps({"target_word": "bank", "context_1": "the bank of the river",
                                                 "context_2": "a bank loan", "label": 0}) + "\n")
    p = tmp / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def test_base_is_valid(tmp_path):
    cfg = load_sweep_config(_write(tmp_path, BASE))
    assert cfg.name == "study" and cfg.grids[0].sparsity_coeff == {"standard": [2.0]}
    assert cfg.datasets == [f"jsonl:{(tmp_path / 'pairs.jsonl').resolve()}"]


@pytest.mark.parametrize(("name", "edit", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_file_field_value_and_allowed(name, edit, pattern, tmp_path):
    text = edit(BASE)
    assert text != BASE
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_sweep_config(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: ") and "\n" not in msg, msg
    assert re.search(pattern, msg.removeprefix(f"{p}: ")), msg


def test_not_utf8_is_named(tmp_path):
    p = _write(tmp_path, BASE.encode("utf-8").replace(b'"study"', b'"st\xffudy"'))
    with pytest.raises(ConfigError, match=r"study\.toml: not UTF-8 text \(byte 10\)"):
        load_sweep_config(p)


def test_bom_and_crlf_are_accepted(tmp_path):
    plain = load_sweep_config(_write(tmp_path, BASE, "a.toml"))
    bom = load_sweep_config(_write(tmp_path, "\ufeff" + BASE.replace("\n", "\r\n"), "b.toml"))
    assert plain.settings() == bom.settings()


def test_settings_hold_what_decides_results(tmp_path):
    """The folder claim keys on settings(): where and how a sweep runs are not in them; every result field is."""
    cfg = load_sweep_config(_write(tmp_path, BASE.replace('seed = 0', 'seed = 0\nexecutor = "serial"')))
    s = cfg.settings()
    assert not {"device", "source", "executor", "ray_address"} & set(s)
    # corpus_revision: the corpus's stream changed under its name (pseval.data.corpus.CORPUS_REVISIONS)
    assert set(s) == {"name", "model", "seed", "corpus", "corpus_revision", "train_tokens", "heldout_tokens",
                      "context_size", "lr", "batch_size", "grids", "datasets", "readouts", "eval"}
    assert s["corpus"] == "wordnet-definitions" and s["corpus_revision"] == 2
    # Every PS-Eval setting that changes a number, and none that only cuts the work.
    # (the model dtype only when it is not float32: folders made before that setting existed keep their key)
    assert set(s["eval"]) == set(PSEvalSettings.affecting("activations", "scores")) - {"model_dtype"}
    bf16 = load_sweep_config(_write(tmp_path, BASE.replace("[eval]", '[eval]\nmodel_dtype = "bfloat16"'), "b.toml"))
    assert bf16.settings()["eval"]["model_dtype"] == "bfloat16"
    assert not {"memory_budget", "batch_tokens", "encode_chunk"} & set(s["eval"])
    assert s["grids"] == [{"hooks": ["blocks.0.hook_resid_post"], "architectures": ["topk", "standard"],
                           "expansions": [2], "k": [8], "sparsity_coeff": {"standard": [2.0]}, "identity": True}]
    paper = load_sweep_config(_write(tmp_path, BASE.replace('balance = "reference"', 'balance = "paper"')))
    assert paper.eval.balance == "reference" and paper.settings() == s  # the alias is one setting


def test_shipped_configs_parse():
    require_shared(WIC_DEV)  # paper-minilm.toml scores WiC dev from ../shared
    for p in sorted(CONFIGS.glob("*.toml")):
        cfg = load_sweep_config(p)
        assert cfg.name == p.stem and cfg.grids and cfg.datasets


def test_cli_refuses_a_bad_config_in_one_line(tmp_path):
    p = _write(tmp_path, _set("name =", 'name = "../../x"')(BASE))
    res = CliRunner().invoke(main, ["sweep", str(p)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.strip() == (f'error: {p}: name = "../../x": expected a plain folder name (results go to '
                                  "runs/<name>): letters, digits, '.', '_' or '-', starting with a letter or digit, "
                                  "at most 100 characters; no '/', no '..'")
    assert not (tmp_path.parent.parent / "x").exists()


@pytest.mark.slow
def test_cli_checks_device_k_and_context_before_anything_is_written(tmp_path, tiny_gpt2_dir, monkeypatch):
    import pseval.models.loading as loading

    def no_model(*_a, **_k):
        raise AssertionError("the model was loaded before the config was checked")

    monkeypatch.setattr(loading, "load_model", no_model)
    text = BASE.replace('model = "minilm"', f'model = "{tiny_gpt2_dir}"')  # d_model 64
    out = tmp_path / "run"
    p = _write(tmp_path, _set("device =", 'device = "cuda:99"')(text))
    res = CliRunner().invoke(main, ["sweep", str(p), "--out", str(out)])
    assert res.exit_code == 2 and f"{p}: device = 'cuda:99': " in res.output and "available: cpu" in res.output
    p = _write(tmp_path, _set("k =", "k = [8, 129]")(text))
    res = CliRunner().invoke(main, ["sweep", str(p), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert f"{p}: [[grid]] #1.k = 129: larger than the dictionary of topk x2 (2 x d_model 64 = 128 latents)" \
        in res.output
    p = _write(tmp_path, _set("context_size", "context_size = 256")(text))  # the tiny GPT-2 has 128 positions
    res = CliRunner().invoke(main, ["sweep", str(p), "--out", str(out)])
    assert res.exit_code == 2 and f"{p}: [activations].context_size = 256: context_size 256 is longer than model " \
        in res.output and "(128 positions); expected context_size <= 128" in res.output, res.output
    assert not out.exists()
