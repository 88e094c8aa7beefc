"""Second round of hostile in-memory inputs to `pseval.evaluate`: bad objects, bad values and bad hooks each raise
pseval's own error naming the culprit (the CLI's errors, where the CLI has the same option), never a raw
IndexError / RuntimeError from deep inside, and never a silent result. Each case failed before the shared checks
(pseval.cli.as_cli, pseval.saes.code_checks, pseval.models.capture) existed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import pseval
from pseval.cli import main
from pseval.errors import ConfigError, HookError, PsevalError, SAEFormatError
from tests.conftest import tiny_model
from tests.reliability.test_fuzz_inputs import EDGES, FUZZ, MISSING, RULES

HOOK = "blocks.3.hook_resid_post"
D, M = 384, 96


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> str:
    p = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    p.write_text("\n".join(json.dumps({"target_word": "bank", "context_1": f"the bank of river {i} flooded",
                                       "context_2": "a bank loan was refused", "label": i % 2}) for i in range(12)))
    return f"jsonl:{p}"


class Coder(nn.Module):
    """Someone's SAE: a ReLU encoder whose output `shape` rewrites (to model a broken encode)."""

    def __init__(self, shape=lambda z, n: z, d_sae: int | None = None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W_enc = nn.Parameter(torch.randn(D, M, generator=g) * 0.05)
        self.shape, self.calls = shape, 0
        if d_sae is not None:
            self.d_sae = d_sae

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.shape(torch.relu(x @ self.W_enc), self.calls)


def _nan(z, n):
    z = z.clone()
    z[0, 0] = float("nan")
    return z


def _vary(z, n):  # the first call is fine; a later one drops a latent
    return z if n == 1 else z[:, :-1]


# (id, module, regex of the SAEFormatError)
BAD_CODES = [
    ("nan-codes", lambda: Coder(_nan), r"Coder: encode returned 1 NaN/inf code value\(s\)"),
    ("wrong-row-count", lambda: Coder(lambda z, n: z[:-1]), r"Coder: encode returned \[\d+\] row\(s\) of codes for"),
    ("codes-1d", lambda: Coder(lambda z, n: z.flatten()), r"Coder: encode returned codes of shape \(\d+,\) \(1-D\)"),
    ("codes-3d", lambda: Coder(lambda z, n: z[:, None, :]), r"Coder: encode returned codes of shape .* \(3-D\)"),
    ("width-varies", lambda: Coder(_vary), r"Coder: encode returned codes of width 95, but the SAE states d_sae=96"),
    ("width-disagrees-with-d_sae", lambda: Coder(lambda z, n: torch.cat([z, z], -1), d_sae=M),
     r"Coder: encode returned codes of width 192, but the SAE states d_sae=96"),
]


@pytest.mark.parametrize(("make", "pattern"), [c[1:] for c in BAD_CODES], ids=[c[0] for c in BAD_CODES])
def test_a_broken_encode_is_named_never_scored(make, pattern, minilm, pairs):
    with pytest.raises(SAEFormatError, match=pattern):
        # the encode is called several times (chunks, the ceiling): each call is checked
        pseval.evaluate(minilm, make(), data=pairs, hook=HOOK, bootstrap_resamples=10, memory_budget=4096)


# (id, keyword arguments, regex of the ConfigError): the CLI's option checks, by the API's parameter names
BAD_OPTIONS = [
    ("seed-negative", {"seed": -1}, r"^seed=-1: -1 is not in the range 0<=x<=4294967295"),
    ("seed-float", {"seed": 1.5}, r"^seed=1\.5: expected int or str, got float"),
    ("device-unknown", {"device": "foo"}, r"^device='foo': .*expected auto, cpu, cuda, cuda:N or mps"),
    ("hook-integer", {"hook": 3}, r"^hook=3: expected str, got int"),
    ("max-pairs-zero", {"max_pairs": 0}, r"^max_pairs=0: 0 is not in the range x>=1"),
    ("top-k-bool", {"top_k": True}, r"^top_k=True: expected int or str, got bool"),
    ("exclude-dense-one", {"exclude_dense": 1.0}, r"^exclude_dense=1\.0: 1\.0 is not in the range 0<x<1"),
    ("recon-tokens-negative", {"reconstruction_tokens": -5}, r"^reconstruction_tokens=-5: '-5' is below the minimum 0"),
    ("balance-unknown", {"balance": "half"}, r"^balance='half': 'half' is not one of"),
    ("data-kind", {"data": "wac:/x"}, r"^data='wac:/x': unknown data spec 'wac:/x'"),
]


@pytest.mark.parametrize(("kwargs", "pattern"), [c[1:] for c in BAD_OPTIONS], ids=[c[0] for c in BAD_OPTIONS])
def test_the_api_refuses_what_the_cli_refuses_before_loading_anything(kwargs, pattern, pairs):
    # model "minilm" by name: a refusal before loading means no model is ever built here
    args = {"data": pairs, "hook": HOOK, **kwargs}
    with pytest.raises(ConfigError, match=pattern):
        pseval.evaluate("minilm", "identity", **args)


def test_api_and_cli_give_the_same_reason():
    res = CliRunner().invoke(main, ["eval", "--seed", "-1"])
    with pytest.raises(ConfigError) as api:
        pseval.evaluate("minilm", "identity", seed=-1)
    reason = str(api.value).split(": ", 1)[1]
    assert res.exit_code == 2 and reason in res.output, (reason, res.output)


def test_another_models_tokenizer_is_refused(minilm, pairs):
    model = tiny_model("gpt2", vocab_size=2000)
    with pytest.raises(ConfigError, match=r"the tokenizer has 30522 tokens but the model embeds 2000; it is another "
                                          r"model's tokenizer"):
        pseval.evaluate((model, minilm.tokenizer), "identity", data=pairs, hook="blocks.1.hook_resid_post")


def test_a_hook_whose_module_gives_2d_output_is_refused(minilm, pairs):
    with pytest.raises(HookError, match=r"hook 'pooler': the module gives a 2-D output of shape \(1, 384\); a hook "
                                        r"must give one activation per token"):
        pseval.evaluate(minilm, "identity", data=pairs, hook="pooler")


def test_a_module_list_hook_is_refused(minilm, pairs):
    with pytest.raises(HookError, match=r"hook 'encoder\.layer' is a ModuleList, a container that never runs; name "
                                        r"one of its modules \(e\.g\. encoder\.layer\.0\)"):
        pseval.evaluate(minilm, "identity", data=pairs, hook="encoder.layer")


def test_a_module_never_called_is_refused(bpe_tokenizer, pairs):
    model = tiny_model("gpt2", vocab_size=len(bpe_tokenizer))
    model.transformer.unused = nn.Linear(64, 64)  # registered, never called by forward
    with pytest.raises(HookError, match=r"hook 'transformer\.unused': the module never ran in the forward pass"):
        pseval.evaluate((model, bpe_tokenizer), "identity", data=pairs, hook="transformer.unused")


def test_an_sae_of_the_wrong_width_is_refused_before_the_forward_passes(minilm, pairs, tmp_path):
    """The width check comes first: no activation of the pair set is computed (nothing reaches the cache)."""
    from pseval.ps_eval.pipeline import SAEEntry, evaluate, prepare_pairs
    from pseval.ps_eval.settings import PSEvalSettings
    from pseval.saes import SAEConfig, SAEMetadata
    from pseval.saes.standard import StandardSAE

    sae = StandardSAE(SAEConfig("standard", 8, 16, metadata=SAEMetadata(hook_name=HOOK)))
    entry = SAEEntry.of(sae, "narrow", HOOK, "test", "narrow")
    cache = tmp_path / "cache"
    with pytest.raises(SAEFormatError, match=r"SAE d_in=8 does not match the width 384 of hook"):
        evaluate(minilm, "minilm", [entry], prepare_pairs(pairs, None, 0), PSEvalSettings(bootstrap_resamples=10),
                 cache_dir=cache)
    assert not cache.exists()


# --- fuzzing: the API's evaluate with the values the CLI fuzz test gives the same options --------------------------

EVAL_OPTIONS = {"--max-pairs": "max_pairs", "--seed": "seed", "--reconstruction-tokens": "reconstruction_tokens",
                "--loss-recovered-tokens": "loss_recovered_tokens", "--device": "device", "--readout": "readout",
                "--multi-token": "multi_token", "--balance": "balance"}
INTEGER_OPTIONS = {"max_pairs", "seed", "reconstruction_tokens", "loss_recovered_tokens"}
TYPED = st.one_of(st.sampled_from(EDGES), st.integers(-10**20, 10**20), st.integers(-3, 5),
                  st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                  st.text(max_size=8), st.sampled_from([[1], {"a": 1}, b"1", torch.device("cpu")]))


@settings(FUZZ, max_examples=400)
@given(option=st.sampled_from(sorted(EVAL_OPTIONS)), value=TYPED)
def test_fuzz_api_evaluate_options(option, value):
    """Each typed value is accepted exactly when the CLI accepts its text (and its Python type can mean it); then the
    check goes on to the data, which is missing. Nothing loads either way, and every error is pseval's."""
    name = EVAL_OPTIONS[option]
    data = f"jsonl:{MISSING}.jsonl"
    try:
        pseval.evaluate("minilm", "identity", data=data, hook=HOOK, **{name: value})
    except PsevalError as exc:
        msg = str(exc)
    else:  # pragma: no cover - the data never exists
        pytest.fail("evaluate ran without data")
    assert "\n" not in msg
    text = repr(value) if isinstance(value, float) else str(value)
    if value is None:  # the default
        accepted = True
    elif isinstance(value, bool):  # an int to Python; never a count, seed or name
        accepted = False
    elif name in INTEGER_OPTIONS:
        accepted = isinstance(value, (int, str)) and RULES[("eval", option)](text)
    else:
        accepted = isinstance(value, (str, torch.device)) and RULES[("eval", option)](text)
    if accepted:
        assert msg.startswith("data="), (value, msg)
    else:
        assert msg.startswith(f"{name}="), (value, msg)
    assert not Path(MISSING).exists()
