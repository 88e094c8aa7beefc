"""PS-Eval settings: the one model every surface reads.

`PSEvalSettings` is the only place a scoring setting is declared. The command line generates its options from it
(`pseval.cli.options`), `pseval.evaluate` takes it (or its fields as keywords), a sweep's TOML `[eval]` section is a
subclass of it, SAEBench's config subclasses it, and the record's `eval_config` is built from it. Each field says once
what it changes (`affects`): the activations read from the model (and so the activation cache's key), the scores
(and so the cell key), or nothing (how the work is cut).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from pseval.data.balance import Balance, canonical_balance
from pseval.data.corpus import check_corpus
from pseval.errors import ConfigError, PsevalError
from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, ScoringDtype, parse_bytes
from pseval.models.model_dtype import DEFAULT_MODEL_DTYPE, ModelDtype, keyed_model_dtype
from pseval.models.readout import PAPER_TEMPLATE, MultiToken, Position, ReadoutConfig, TooLong

# pseval: pseval's readout (the target located by character offsets, wherever the config says) and balancing.
# reference: every choice gouki510/PS-Eval makes: template readout, BOS for causal models, multi-token targets
#   dropped, its string token matching (ReadoutConfig.match="reference") and its balancing (balance="reference").
Protocol = Literal["pseval", "reference"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
Affects = Literal["activations", "scores", "nothing"]
AFFECTS: tuple[str, ...] = get_args(Affects)
MAX_SEED = 2**32 - 1  # numpy's range: every generator pseval seeds accepts it


def setting(default: Any, title: str, description: str, affects: Affects, cli: str | None = None,
            **constraints: Any) -> Any:
    """A settings field: its default, title, description, what it changes and (optionally) its command-line kind."""
    extra: dict[str, Any] = {"affects": affects}
    if cli is not None:
        extra["cli"] = cli
    return Field(default, title=title, description=description, json_schema_extra=extra, **constraints)


def _bytes(value: Any) -> Any:
    """`512MiB`, `2GiB` or a plain number of bytes, as an int (pseval's error for anything else)."""
    if isinstance(value, str):
        try:
            return parse_bytes(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


def _corpus(value: str) -> str:
    try:
        return check_corpus(value)
    except PsevalError as exc:
        raise ValueError(str(exc)) from None


Bytes = Annotated[int, BeforeValidator(_bytes), Field(ge=1)]


class SettingsFields(BaseModel):
    """Every setting of a PS-Eval run, declared once: protocol, readout, pair selection, class balancing, scoring,
    intervals, standard metrics and how the work is cut. `PSEvalSettings` checks them; the record's `eval_config`
    carries them as they were."""

    protocol: Protocol = setting(
        "pseval", "Protocol", "`pseval`: pseval's readout and balancing. `reference`: every choice of the reference "
        "code (gouki510/PS-Eval wic_eval.py): template readout, its string token matching, multi-token targets "
        "dropped, its balancing", "activations")
    readout: Position = setting(
        "template", "Readout position", "`template`: the target word's slot in the appended template (the paper's); "
        "`context`: the target's own token(s) in the sentence", "activations")
    template: str = setting(
        PAPER_TEMPLATE, "Template", "The prompt appended to each context; must contain {context} and {target_word}",
        "activations")
    multi_token: MultiToken = setting(
        "drop", "Multi-token targets", "A target split into several tokens: read the first, last or mean token, or "
        "drop the pair (the reference's behaviour)", "activations")
    too_long: TooLong = setting(
        "truncate", "Over-long prompts", "A prompt longer than the model's context: truncate the context around "
        "the target, skip the pair, or keep its first max-length tokens (head: what TransformerLens does, and protocol "
        "reference)", "activations")
    balance: Balance = setting("reference", "Class balancing", "Which valid pairs are scored: `reference` (alias "
                               "`paper`, the reference code's rule), `valid-prefix`, `exact` (a seeded subsample of "
                               "each class to the smaller one) or `none`", "activations")
    max_pairs: int | None = setting(
        None, "Max pairs", "Score a seeded random subset of this many pairs (unset: every pair)", "activations", ge=1)
    seed: int = setting(
        0, "Seed", "Seed of the pair subset, of `exact` balancing and of the loss-recovered text sample",
        "activations", ge=0, le=MAX_SEED)
    top_k: int = setting(
        8, "Top-k", "Size of the top-k active sets behind the Jaccard AUC and PS-Eval@k", "scores", ge=1)
    exclude_dense: float | None = setting(
        None, "Exclude dense latents", "Also report a robust PS-Eval: argmax over the latents non-zero on at most "
        "this fraction of the scored contexts (the paper's metric is reported unchanged beside it); unset: off",
        "scores", gt=0, lt=1, allow_inf_nan=False)
    dtype: ScoringDtype = setting(
        "float32", "Scoring dtype", "Dtype activations and SAE weights are cast to for scoring (half the memory in 16 "
        "bits)", "scores")
    model_dtype: ModelDtype = setting(
        DEFAULT_MODEL_DTYPE, "Model dtype", "Dtype the language model is loaded in, straight onto the device "
        "(bfloat16/float16: half its memory; activations differ slightly from float32); apart from the scoring dtype",
        "activations")
    bootstrap_resamples: int = setting(
        1000, "Bootstrap resamples", "Resamples of the scored pairs behind every 95% interval", "scores", ge=1)
    bootstrap_seed: int = setting(
        0, "Bootstrap seed", "Seed of the pair resamples behind every interval", "scores", ge=0, le=MAX_SEED)
    controls: int = setting(
        5, "Random controls", "Seeded random-weight SAEs of each SAE's architecture, shape and sparsity scored beside "
        "it on the same pairs (pseval.ps_eval.random_control); their spread and the gain over them come with every "
        "SAE. 0: off",
        "scores", ge=0)
    corpus: str = setting(
        "wordnet-definitions", "Metrics corpus", "Text for the standard metrics (reconstruction and loss recovered): "
        "wordnet, wordnet-definitions, file:PATH[,PATH], hf:NAME[:SPLIT[:COLUMN]]", "scores", cli="corpus")
    reconstruction_tokens: int = setting(
        0, "Reconstruction tokens", "Tokens of `corpus` for MSE, FVU, L0 and dead fraction next to PS-Eval (0: not "
        "measured)", "scores", cli="count", ge=0)
    loss_recovered_tokens: int = setting(
        0, "Loss-recovered tokens", "Tokens of `corpus` for loss recovered and KL with the SAE spliced in (0: not "
        "measured)", "scores", cli="count", ge=0)
    memory_budget: Bytes = setting(
        DEFAULT_MEMORY_BUDGET, "Memory budget", "Bytes of [rows, d_sae] work per encode chunk (e.g. 256MiB, 2GiB); "
        "never changes a result", "nothing", cli="bytes")
    batch_tokens: int = setting(
        16384, "Tokens per forward batch", "Most tokens in one forward batch of the model; never changes a result",
        "nothing", ge=1)
    encode_chunk: int = setting(
        4096, "Pairs per encode chunk", "Most pairs encoded at once (the memory budget may allow fewer); never "
        "changes a result", "nothing", ge=1)

    @classmethod
    def affecting(cls, *what: Affects) -> tuple[str, ...]:
        """The fields that change `what` (activations, scores or nothing)."""
        return tuple(name for name, f in SettingsFields.model_fields.items() if affects(f) in what)


class PSEvalSettings(SettingsFields):
    """The settings of a PS-Eval run, checked: each field's type and range, the template's placeholders and the
    reference protocol's choices; errors are one ConfigError naming every bad field."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, validate_default=True)

    @field_validator("balance", mode="after")
    @classmethod
    def _canonical_balance(cls, v: str) -> str:
        return canonical_balance(v)

    @field_validator("corpus", mode="after")
    @classmethod
    def _check_corpus(cls, v: str) -> str:
        return _corpus(v)

    @model_validator(mode="after")
    def _consistent(self) -> PSEvalSettings:
        self.readout_config()  # the template's placeholders and the reference protocol's choices
        return self

    def readout_config(self) -> ReadoutConfig:
        """The readout these settings give; under protocol `reference`, the reference's token matching."""
        try:
            readout = ReadoutConfig(position=self.readout, multi_token=self.multi_token, too_long=self.too_long,
                                    template=self.template)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if self.protocol != "reference":
            return readout
        wrong = [f"{name}={value!r} (the reference uses {want!r})" for name, value, want in (
            ("readout", self.readout, "template"), ("multi_token", self.multi_token, "drop"),
            ("template", self.template, PAPER_TEMPLATE), ("balance", self.balance, "reference")) if value != want]
        if wrong:
            raise ValueError(f"protocol='reference' makes every choice the reference makes; got {'; '.join(wrong)}")
        # TransformerLens' to_tokens (truncate=True under run_with_cache and to_str_tokens) keeps a prompt's first n_ctx
        # tokens: the reference runs on that head, and so does this protocol.
        return ReadoutConfig(position="template", multi_token="drop", too_long="head", template=self.template,
                             match="reference")

    def key(self) -> dict[str, Any]:
        """Every setting that changes a number (the cell key's share of the settings)."""
        return keyed_model_dtype(self.model_dump(include=set(self.affecting("activations", "scores"))))

    def __init__(self, **values: Any) -> None:
        # pseval's one-line ConfigError (naming every bad field), the same from the CLI, the API and a config file.
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc)) from None

    def settings(self) -> PSEvalSettings:
        """Just the PS-Eval settings (a subclass such as a sweep's [eval] section carries more)."""
        return self.replace()

    def replace(self, **changes: Any) -> PSEvalSettings:
        """A copy with some settings changed, validated like any other."""
        return PSEvalSettings(**{**{k: getattr(self, k) for k in SettingsFields.model_fields}, **changes})


def affects(field: Any) -> str:
    """What a settings field changes, from its declaration."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("affects", "scores"))


def describe_errors(exc: ValidationError, prefix: str = "") -> str:
    """A ValidationError as one line: `field=value: what is wrong` for each error (up to three)."""
    parts = []
    errors = exc.errors(include_url=False)
    for err in errors[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parts.append(f"{prefix}{where}: unknown setting")
        elif err["type"] == "value_error" and not err["loc"]:
            parts.append(msg)
        elif err["type"] == "literal_error":
            allowed = str((err.get("ctx") or {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
            parts.append(f"{prefix}{where}={err.get('input')!r}; expected one of {allowed}")
        else:
            parts.append(f"{prefix}{where}={err.get('input')!r}: {msg}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more
