"""Fuzzing the edges: CLI option values, sweep TOML fields, data specs on the command line and SAE cfg.json fields.
Every run either succeeds or exits 2 with one line naming the culprit, never a traceback; a value accepted is a
value allowed, and it arrives unchanged.

CLI runs stay cheap without mocking anything: the fuzzed option comes first on the command line, so click checks
it first, and a second option that always fails (a missing file, a negative seed) follows. An invalid fuzzed value
must be the one the error names; a valid one must let the check reach the second option.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pseval.cli import main
from pseval.errors import ConfigError, PsevalError
from pseval.saes.registry import architectures
from pseval.study.sweep_config import load_sweep_config
from tests.reliability.sweep_toml import SWEEP_TOML

MISSING = "/nonexistent-pseval-fuzz/sentinel"
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None)


def _cuda_devices() -> set[str]:
    import torch

    n = torch.cuda.device_count()
    return {f"cuda:{i}" for i in range(n)} | ({"cuda"} if n else set())


def _int(lo: int, hi: float = math.inf):
    def ok(v: str) -> bool:
        try:
            n = int(v)
        except ValueError:
            return False
        return lo <= n <= hi
    return ok


def _count(lo: int):
    def ok(v: str) -> bool:
        text = v.strip().replace("_", "")
        if not re.fullmatch(r"[0-9eE.+-]+", text):
            return False
        try:
            x = float(text)
        except ValueError:
            return False
        return math.isfinite(x) and x == int(x) and int(x) >= lo
    return ok


def _float(lo: float, open_: bool):
    def ok(v: str) -> bool:
        try:
            x = float(v)
        except ValueError:
            return False
        return math.isfinite(x) and (x > lo if open_ else x >= lo)
    return ok


def _one_of(*allowed: str):
    return lambda v: v in allowed


def _device(v: str) -> bool:
    name = v.strip().lower()
    return name == "cpu" or name in _cuda_devices()


ARCHS = tuple(a for a in architectures() if a != "identity")  # the registry is the list of what can be trained
# (command, option) -> the rule an accepted value must satisfy, written independently of the implementation
RULES = {
    ("eval", "--max-pairs"): _int(1), ("eval", "--seed"): _int(0, 2**32 - 1),
    ("eval", "--reconstruction-tokens"): _count(0), ("eval", "--loss-recovered-tokens"): _count(0),
    ("eval", "--device"): _device,
    ("eval", "--readout"): _one_of("template", "context"),
    ("eval", "--multi-token"): _one_of("first", "last", "mean", "drop"),
    ("eval", "--balance"): _one_of("reference", "paper", "valid-prefix", "exact", "none"),
    ("train", "--tokens"): _count(1), ("train", "--lr"): _float(0, True),
    ("train", "--sparsity-coeff"): _float(0, False), ("train", "--batch-size"): _int(1),
    ("train", "--expansion"): _int(1), ("train", "--k"): _int(1), ("train", "--checkpoint-every"): _int(1),
    ("train", "--seed"): _int(0, 2**32 - 1), ("train", "--arch"): _one_of(*ARCHS), ("train", "--device"): _device,
    ("demo", "--train-tokens"): _count(1), ("demo", "--max-pairs"): _int(1),
    ("report", "--bootstrap-resamples"): _int(1), ("report", "--bootstrap-seed"): _int(0, 2**32 - 1),
}
# What follows the fuzzed option: it always fails, naming itself.
SENTINELS = {"eval": (["--data", f"jsonl:{MISSING}.jsonl"], "'--data'"),
             "train": (["--corpus", f"file:{MISSING}.txt", "--out", f"{MISSING}/out"], "'--corpus'"),
             "demo": (["--wic", MISSING], "'--wic'"),
             "report": ([MISSING], "'RESULTS...'")}

EDGES = ["", " ", "0", "-0", "1", "+1", " 7 ", "007", "1_000", "1e6", "2E3", "1.0", "1.5", ".5", "5.", "-1", "1e400",
         "nan", "NaN", "inf", "-inf", "infinity", "0x10", "\u0663", "\uff11", "4294967295", "4294967296",
         "99999999999999999999999", "cpu", " CPU ", "cpu:0", "cuda", "cuda:0", "cuda:99", "mps", "template",
         "context", "drop", "paper", "topk", "relu", "--help", "-x", "1e-300", "5e-324"]
VALUES = st.one_of(st.sampled_from(EDGES), st.integers(-10**20, 10**20).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12))


def _error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.lower().startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


@settings(FUZZ, max_examples=500)
@given(key=st.sampled_from(sorted(RULES)), value=VALUES)
def test_fuzz_cli_option_values(key, value):
    command, option = key
    tail, sentinel = SENTINELS[command]
    res = CliRunner().invoke(main, [command, f"{option}={value}", *tail])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), (res.output, res.exception)
    assert "Traceback" not in res.output
    line = _error_line(res.output)
    if RULES[key](value):
        assert sentinel in line, (value, line)  # accepted: the check went on to the next option
    else:
        assert f"'{option}'" in line, (value, line)  # refused, naming the option
    assert not Path(MISSING).exists()


KINDS = ["wic", "WIC", "wordnet", "coarsewsd", "hf", "jsonl", "json", "csv", "tsv", "wac", "", " wic"]
SPECS = st.one_of(
    st.tuples(st.sampled_from(KINDS), st.sampled_from([":", "", "::"]),
              st.text(st.sampled_from("abc/.:=,+_-0123456789 ~"), max_size=20)).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24))


@settings(FUZZ, max_examples=300)
@given(spec=SPECS)
def test_fuzz_data_specs_on_the_command_line(spec):
    from pseval.data.sources import normalise_spec

    res = CliRunner().invoke(main, ["eval", f"--data={spec}", "--seed=-1"])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit) and "Traceback" not in res.output
    line = _error_line(res.output)
    try:
        normalise_spec(spec)
        accepted = True
    except PsevalError:
        accepted = False
    assert ("'--seed'" if accepted else "'--data'") in line, (spec, line)


# --- sweep TOML fields ---------------------------------------------------------------------------------------------

BASE = SWEEP_TOML.replace('seed = 0\n', 'seed = 0\nexecutor = "serial"\n', 1).replace(
    'datasets = ["jsonl:pairs.jsonl"]', 'datasets = ["wordnet:max_per_lemma=2"]')
# TOML path as the error names it, and how to read the value back from the SweepConfig
FIELDS = {
    "name": ("name", lambda c: c.name), "model": ("model", lambda c: c.model),
    "device": ("device", lambda c: c.device), "seed": ("seed", lambda c: c.seed),
    "executor": ("executor", lambda c: c.executor),
    "corpus": ("[activations].corpus", lambda c: c.corpus),
    "train_tokens": ("[activations].train_tokens", lambda c: c.train_tokens),
    "heldout_tokens": ("[activations].heldout_tokens", lambda c: c.heldout_tokens),
    "context_size": ("[activations].context_size", lambda c: c.context_size),
    "lr": ("[train].lr", lambda c: c.lr), "batch_size": ("[train].batch_size", lambda c: c.batch_size),
    "hooks": ("[[grid]] #1.hooks", lambda c: c.grids[0].hooks),
    "architectures": ("[[grid]] #1.", lambda c: c.grids[0].architectures),
    "expansions": ("[[grid]] #1.expansions", lambda c: c.grids[0].expansions),
    "k": ("[[grid]] #1.k", lambda c: c.grids[0].k),
    "sparsity_coeff": ("[[grid]] #1.sparsity_coeff", lambda c: c.grids[0].sparsity_coeff),
    "identity": ("[[grid]] #1.identity", lambda c: c.grids[0].identity),
    "datasets": ("[eval].datasets", None), "readouts": ("[eval].readouts", lambda c: c.readouts),
    "multi_token": ("[eval].multi_token", lambda c: c.eval.multi_token),
    "protocol": ("[eval].protocol", lambda c: c.eval.protocol), "balance": ("[eval].balance", None),
    "max_pairs": ("[eval].max_pairs", lambda c: c.eval.max_pairs),
    "loss_recovered_tokens": ("[eval].loss_recovered_tokens", lambda c: c.eval.loss_recovered_tokens),
}


def _toml(v) -> str:
    """A TOML value (inline form)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007F")
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{ " + ", ".join(f"{_toml(str(k))} = {_toml(x)}" for k, x in v.items()) + " }"


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
SCALARS = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.integers(-3, 70000), st.floats(), TEXT,
                    st.sampled_from(["topk", "standard", "gated", "template", "context", "last", "reference",
                                     "paper", "ray", "serial", "cpu", "CUDA", "wordnet", "file:x", "hf:a/b",
                                     "blocks.0.hook_mlp_out", "../x", "ok-name"]))
TOML_VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["topk", "standard", "gated", "jumprelu", "x"]), c, max_size=2), max_leaves=4)


@pytest.fixture(scope="module")
def toml_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-toml")


@settings(FUZZ, max_examples=500)
@given(field=st.sampled_from(sorted(FIELDS)), value=TOML_VALUES)
def test_fuzz_sweep_toml_fields(field, value, toml_dir):
    from pseval.data.balance import canonical_balance
    from pseval.devices import parse_device

    lines = BASE.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{field} ="))
    lines[i] = f"{field} = {_toml(value)}"
    p = toml_dir / "fuzz.toml"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    where, read = FIELDS[field]
    try:
        cfg = load_sweep_config(p)
    except ConfigError as exc:
        msg = str(exc)
        assert msg.startswith(f"{p}: ") and "\n" not in msg, msg
        assert where in msg, (where, msg)
        return
    # Accepted: the value arrived as written (no coercion, nothing dropped).
    if field == "device":
        assert cfg.device == parse_device(value)
    elif field == "balance":
        assert cfg.eval.balance == canonical_balance(value)
    elif read is not None:
        got = read(cfg)
        same_type = type(got) is type(value) or (type(value) is int and type(got) is float)
        assert got == value and same_type, (field, value, got)


# --- SAE cfg.json fields -------------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                           | TEXT | st.sampled_from(["topk", "standard", "jumprelu", "gated", "batchtopk", "identity",
                                                    "float32", "bfloat16", "cpu", "none", "expected_average_only_in",
                                                    "blocks.0.hook_resid_post"]),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=2), max_leaves=4)


@pytest.fixture(scope="module")
def sae_folder(tmp_path_factory) -> tuple[Path, dict]:
    import torch

    from pseval.saes import SAEConfig, save_sae
    from pseval.saes.topk import TopKSAE

    torch.manual_seed(0)
    d = save_sae(TopKSAE(SAEConfig("topk", 8, 16, k=4)), tmp_path_factory.mktemp("fuzz-sae") / "sae")
    return d, json.loads((d / "cfg.json").read_text())


def _sae_fields() -> list[str]:
    return ["architecture", "d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations",
            "reshape_activations", "k", "metadata", "metadata.model_name", "metadata.hook_name",
            "metadata.hook_head_index", "metadata.prepend_bos", "metadata.exclude_special_tokens",
            "metadata.context_size", "metadata.dataset_path", "metadata.sae_lens_version", "metadata.neuronpedia_id",
            "metadata.source_format", "extra-key", "metadata.extra-key"]


@settings(FUZZ, max_examples=300)
@given(field=st.sampled_from(_sae_fields()), value=JSON_VALUES)
def test_fuzz_sae_cfg_fields(field, value, sae_folder):
    """`pseval sae-info` on an SAE whose cfg.json has one field fuzzed: it loads or exits 2 in one line."""
    folder, base = sae_folder
    cfg = json.loads(json.dumps(base))
    head, _, sub = field.partition(".")
    (cfg[head] if sub else cfg)[sub or head] = value
    (folder / "cfg.json").write_text(json.dumps(cfg))
    res = CliRunner().invoke(main, ["sae-info", str(folder)])
    assert res.exit_code in (0, 2) and isinstance(res.exception, SystemExit | None), (field, value, res.output)
    assert "Traceback" not in res.output
    if res.exit_code == 2:
        assert _error_line(res.output).startswith("error: ")
    elif field in ("d_in", "d_sae", "k"):  # the shapes are the weights': a changed width never loads
        assert value == base[field], (field, value, res.output)
