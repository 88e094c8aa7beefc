"""Sweep configuration files (TOML), checked against a schema: one pydantic model per section, a type and range for
every field, unknown keys refused, and errors that name the file, the field's TOML path, its value and what is
allowed."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from pseval.data.corpus import check_corpus, corpus_revision
from pseval.data.sources import normalise_spec
from pseval.devices import parse_device
from pseval.errors import ConfigError, PsevalError
from pseval.models.readout import Position
from pseval.ps_eval.settings import PSEvalSettings
from pseval.saes.registry import architectures
from pseval.training.activations import check_context_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Pairs selected per dataset: 4000 WordNet pairs (about 2,400 scored) keep F1's 95% bootstrap interval under +-0.03
# for identity and a TopK SAE on MiniLM (README, "Sweeps and reports", has the measurement).
DEFAULT_MAX_PAIRS = 4000
Executor = Literal["serial", "ray"]
EXECUTORS: tuple[str, ...] = get_args(Executor)
# Fields that say where a sweep runs, not what it computes: left out of the folder's settings key.
RUN_PLACE = ("device", "source", "executor", "ray_address")
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1)]
# The default output folder is runs/<name>: a plain folder name keeps it there (no `/`, no `..`, not absolute).
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
K_ARCHITECTURES = ("topk", "batchtopk")  # the architectures whose sparsity is set by k, not by a coefficient


class _Section(BaseModel):
    """Strict: no coercion (a string is not a number), no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ActivationsSection(_Section):
    """[activations]: the text and token budgets the SAEs train on."""

    corpus: Text = "wordnet-definitions"
    train_tokens: PositiveInt = 100_000
    heldout_tokens: PositiveInt = 10_000
    context_size: PositiveInt = 128

    @field_validator("corpus")
    @classmethod
    def _corpus(cls, v: str) -> str:
        return _checked(check_corpus, v)


class TrainSection(_Section):
    """[train]: optimiser settings shared by every SAE of the sweep."""

    lr: PositiveFloat = 1e-3
    batch_size: PositiveInt = 1024


class GridSection(_Section):
    """[[grid]]: hooks (globs allowed) x architectures x widths x sparsity settings."""

    hooks: Annotated[list[Text], Field(min_length=1)]
    architectures: Annotated[list[str], Field(min_length=1)] = ["topk"]
    expansions: Annotated[list[PositiveInt], Field(min_length=1)] = [8]
    k: Annotated[list[PositiveInt], Field(min_length=1)] = [32]
    sparsity_coeff: dict[str, Annotated[list[NonNegativeFloat], Field(min_length=1)]] = {}
    identity: bool = True
    # This grid's SAEs train on this many tokens instead of [activations].train_tokens (budgets per architecture or
    # width: one [[grid]] table each). The held-out tokens are the same for every grid.
    train_tokens: PositiveInt | None = None

    @field_validator("architectures")
    @classmethod
    def _architectures(cls, v: list[str]) -> list[str]:
        known = sorted(set(architectures()) - {"identity"})
        bad = [a for a in v if a not in known]
        if bad:
            raise ValueError(f"unknown {', '.join(map(repr, bad))}; known: {', '.join(known)} (the identity "
                             "baseline is `identity = true`)")
        return v

    @model_validator(mode="after")
    def _sparsity_fits(self) -> GridSection:
        # A setting no architecture of the grid reads would be ignored silently: refuse it.
        for arch in self.sparsity_coeff:
            if arch not in self.architectures:
                raise ValueError(f"sparsity_coeff.{arch}: {arch!r} is not in this grid's architectures "
                                 f"({', '.join(self.architectures)})")
            if arch in K_ARCHITECTURES:
                raise ValueError(f"sparsity_coeff.{arch}: {arch} takes k, not a sparsity coefficient")
        if "k" in self.model_fields_set and not set(self.architectures) & set(K_ARCHITECTURES):
            raise ValueError(f"k: no architecture of this grid ({', '.join(self.architectures)}) takes k; k is for "
                             f"{' and '.join(K_ARCHITECTURES)}")
        return self


# PS-Eval settings a sweep does not take in [eval]: it measures reconstruction at training, on held-out tokens.
SWEEP_REFUSED = ("corpus", "reconstruction_tokens")


class EvalSection(PSEvalSettings):
    """[eval]: the datasets, readouts and PS-Eval settings every cell is scored with. Every PS-Eval setting is a key
    here, as the settings model declares it (pseval.ps_eval.settings); a sweep adds its datasets and readouts."""

    # Validated inside SweepFile: pydantic's own errors, which _describe turns into TOML paths (no ConfigError here).
    __init__ = BaseModel.__init__

    datasets: Annotated[list[Text], Field(min_length=1)] = Field(
        title="Datasets", description="pair-set specs scored in every cell (paths relative to the config file)")
    readouts: Annotated[list[Position], Field(min_length=1)] | None = Field(
        None, title="Readouts", description="several readout positions, one cell each (default: [readout])")

    @model_validator(mode="before")
    @classmethod
    def _sweep_rules(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key in SWEEP_REFUSED:
            if key in data:
                raise ValueError(f"{key}: a sweep measures reconstruction at training, on the [activations] corpus's "
                                 "held-out tokens; set [activations].heldout_tokens instead")
        if "readout" in data and "readouts" in data:
            raise ValueError("readout: give `readouts` (a list) or `readout`, not both")
        # The sweep's own default: 4000 WordNet pairs (about 2,400 scored) keep F1's 95% interval under +-0.03.
        return {"max_pairs": DEFAULT_MAX_PAIRS, **data}

    @field_validator("readouts")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("expected each readout once")
        return v


class SweepFile(_Section):
    """The whole TOML document: top-level keys and one table per section."""

    name: str
    model: Text = "minilm"
    device: str = "cpu"
    seed: Seed = 0  # training; also [eval]'s seed (the pair subset) unless [eval] sets its own
    executor: Executor = "serial"  # where units run (not a result setting)
    ray_address: Text | None = None  # the Ray cluster for executor = "ray" (None: a local one)
    activations: ActivationsSection = ActivationsSection()
    train: TrainSection = TrainSection()
    grid: Annotated[list[GridSection], Field(min_length=1)]
    eval: EvalSection

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("expected a plain folder name (results go to runs/<name>): letters, digits, '.', '_' "
                             "or '-', starting with a letter or digit, at most 100 characters; no '/', no '..'")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return _checked(parse_device, v)


def _checked(check: Any, v: Any) -> Any:
    """A pseval check as a pydantic validator: its error becomes the field's error."""
    try:
        return check(v)
    except PsevalError as exc:
        raise ValueError(str(exc)) from exc




@dataclass
class GridSpec:
    """Hooks (globs allowed) x architectures x widths x sparsity settings."""

    hooks: list[str]
    architectures: list[str] = field(default_factory=lambda: ["topk"])
    expansions: list[int] = field(default_factory=lambda: [8])
    k: list[int] = field(default_factory=lambda: [32])
    sparsity_coeff: dict[str, list[float]] = field(default_factory=dict)
    identity: bool = True
    train_tokens: int | None = None  # None: the sweep's train_tokens

    def oversized_k(self, d_model: int) -> list[tuple[str, int, int]]:
        """(architecture, expansion, k) whose k exceeds the dictionary (expansion x d_model latents)."""
        return [(a, e, k) for a in self.architectures if a in K_ARCHITECTURES for e in self.expansions
                for k in self.k if k > e * d_model]


@dataclass
class SweepConfig:
    """A whole study: one model, activation settings, grids of SAEs, and the evaluations of every cell."""

    name: str
    model: str = "minilm"
    device: str = "cpu"
    seed: int = 0
    corpus: str = "wordnet-definitions"
    train_tokens: int = 100_000
    heldout_tokens: int = 10_000
    context_size: int = 128
    lr: float = 1e-3
    batch_size: int = 1024
    grids: list[GridSpec] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    readouts: list[str] = field(default_factory=lambda: ["template"])
    eval: PSEvalSettings = field(default_factory=PSEvalSettings)  # every cell's PS-Eval settings but the readout
    source: str | None = None
    executor: str = "serial"  # where the work runs (serial or ray), not what it computes
    ray_address: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("grids", "eval")},
                "grids": [_grid_dict(g) for g in self.grids], "eval": self.eval.model_dump()}

    def grid_tokens(self, g: GridSpec) -> int:
        """The training tokens of one grid's SAEs: its own train_tokens, else the sweep's."""
        return g.train_tokens if g.train_tokens is not None else self.train_tokens

    @property
    def max_train_tokens(self) -> int:
        """The largest training budget of any grid (what one hook's activations may need)."""
        return max([self.train_tokens, *(self.grid_tokens(g) for g in self.grids)])

    def settings(self) -> dict[str, Any]:
        """Everything that decides the sweep's results (not where or how it runs, nor which file it was read from)."""
        return {**{k: v for k, v in self.to_dict().items() if k not in RUN_PLACE}, **corpus_revision(self.corpus),
                "eval": self.eval.key()}

    def ps_eval_settings(self, readout: str) -> PSEvalSettings:
        """The PS-Eval settings of one readout's cells. The standard metrics come from training (held-out tokens),
        so the pipeline measures none of its own."""
        return self.eval.replace(readout=readout, reconstruction_tokens=0, loss_recovered_tokens=0)

    def check_model(self, d_model: int, max_positions: int) -> None:
        """Refuse, before any activation is computed, what the model cannot take: a k larger than its dictionary
        (expansion x d_model), a context longer than its position table."""
        where = self.source or "<config>"
        for i, g in enumerate(self.grids):
            bad = g.oversized_k(d_model)
            if bad:
                arch, e, k = bad[0]
                raise ConfigError(f"{where}: [[grid]] #{i + 1}.k = {k}: larger than the dictionary of {arch} x{e} "
                                  f"({e} x d_model {d_model} = {e * d_model} latents); expected k <= {e * d_model}")
        try:
            check_context_size(self.context_size, max_positions, self.model)
        except ConfigError as exc:
            raise ConfigError(f"{where}: [activations].context_size = {self.context_size}: {exc}") from exc


def _grid_dict(g: GridSpec) -> dict[str, Any]:
    """A grid's plain form; a grid without its own budget has no train_tokens key, so sweep folders made before the
    field existed keep their settings key (and resume)."""
    d = asdict(g)
    if d["train_tokens"] is None:
        del d["train_tokens"]
    return d


def _where(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a TOML path: `name`, `[eval].readouts[0]`, `[[grid]] #2.k[1]`."""
    if len(loc) == 1:
        return str(loc[0])
    head, rest = loc[0], list(loc[1:])
    first = rest[0] if rest else None
    if head == "grid" and isinstance(first, int):
        rest.pop(0)
        out = f"[[grid]] #{first + 1}"
    else:
        out = f"[{head}]"
    for part in rest:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


_SECTIONS: dict[str, type[BaseModel]] = {"": SweepFile, "activations": ActivationsSection, "train": TrainSection,
                                        "grid": GridSection, "eval": EvalSection}


def _value(v: Any) -> str:
    if isinstance(v, dict):
        return "a table"
    text = json.dumps(v, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(err: ErrorDetails) -> str:
    """One error: where, the value given, and what is allowed."""
    loc, kind, v, ctx = err["loc"], err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = loc[:-1]
        section = _SECTIONS.get(str(parent[0]) if parent else "", SweepFile)
        where = "" if not parent else f"[{parent[0]}]: " if len(parent) == 1 else f"{_where(parent)}: "
        allowed = [k for k in section.model_fields if k not in SWEEP_REFUSED]
        return f"{where}unknown key {loc[-1]!r}; allowed: {', '.join(allowed)}"
    where = _where(loc)
    if kind == "missing":
        return f"{where}: missing (required)"
    if tuple(loc) == ("grid",) and kind == "too_short":
        return "grid: needs at least one [[grid]] table"
    if kind == "value_error" and isinstance(v, dict):  # a check across fields: its message starts with the field
        head = f"[{loc[0]}]" if len(loc) == 1 and loc[0] in _SECTIONS else where
        return f"{head}.{str(err['msg']).removeprefix('Value error, ')}"
    bound = next((ctx[b] for b in ("ge", "gt", "le") if b in ctx), None)
    number = "a number" if isinstance(bound, float) or not isinstance(v, int) else "an integer"
    expected = {
        "model_type": "expected a table" if loc[0] != "grid" else "expected a [[grid]] table with hooks = [...]",
        "dict_type": "expected a table", "list_type": "expected a list", "int_type": "expected an integer",
        "float_type": "expected a number", "string_type": "expected a string", "bool_type": "expected true or false",
        "finite_number": "expected a finite number", "too_short": "expected a non-empty list",
        "string_too_short": "expected a non-empty string",
        "greater_than_equal": f"expected {number} >= {bound:g}" if bound is not None else None,
        "greater_than": f"expected {number} > {bound:g}" if bound is not None else None,
        "less_than_equal": f"expected {number} <= {bound}" if bound is not None else None,
        "literal_error": f"expected {ctx.get('expected')}",
    }.get(kind)
    if expected is None:
        expected = str(err["msg"]).removeprefix("Value error, ").replace("Input should be", "expected")
    return f"{where} = {_value(v)}: {expected}"


def parse_sweep(data: dict[str, Any], source: str = "<config>") -> SweepConfig:
    """Validate a parsed TOML document into a SweepConfig; a ConfigError names every problem (up to three)."""
    try:
        doc = SweepFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ConfigError(f"{source}: " + "; ".join(_describe(e) for e in errors[:3]) + more) from None
    act, train, ev = doc.activations, doc.train, doc.eval
    # The sweep's seed selects the pairs too, unless [eval] sets its own.
    settings = ev.settings() if "seed" in ev.model_fields_set else ev.replace(seed=doc.seed)
    grids = [GridSpec(hooks=list(g.hooks), architectures=list(g.architectures), expansions=list(g.expansions),
                      k=list(g.k), sparsity_coeff={a: list(c) for a, c in g.sparsity_coeff.items()},
                      identity=g.identity, train_tokens=g.train_tokens) for g in doc.grid]
    for ro in ev.readouts or [ev.readout]:  # every cell's settings checked now, not after training
        try:
            settings.replace(readout=ro)
        except ConfigError as exc:
            what = "protocol = 'reference'" if ev.protocol == "reference" else f"readouts: {ro!r}"
            raise ConfigError(f"{source}: [eval].{what} conflicts with the other [eval] settings ({exc})") from None
    return SweepConfig(name=doc.name, model=doc.model, device=doc.device, seed=doc.seed, corpus=act.corpus,
                       train_tokens=act.train_tokens, heldout_tokens=act.heldout_tokens,
                       context_size=act.context_size, lr=train.lr, batch_size=train.batch_size, grids=grids,
                       datasets=list(ev.datasets), readouts=list(ev.readouts or [ev.readout]), eval=settings,
                       source=source,
                       executor=doc.executor,
                       ray_address=doc.ray_address)


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a TOML sweep config (a UTF-8 BOM is accepted); errors name the file and the field."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: sweep config not found")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); a TOML file is UTF-8") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    cfg = parse_sweep(data, str(p))
    # Relative data paths are relative to the config file's folder, so a config works from any directory.
    cfg.datasets = _datasets(cfg.datasets, p)
    return cfg


def _datasets(specs: list[str], config: Path) -> list[str]:
    """Each dataset spec rebased and made canonical; one dataset named twice is refused."""
    out: list[str] = []
    for i, spec in enumerate(specs):
        where = f"{config}: [eval].datasets[{i}] = {_value(spec)}"
        try:
            canonical = _rebase(spec, config.parent)
        except PsevalError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        if canonical in out:
            raise ConfigError(f"{where}: the same dataset as datasets[{out.index(canonical)}] ({canonical})")
        out.append(canonical)
    return out


PATH_KINDS = ("wic", "coarsewsd", "jsonl", "csv", "tsv", "json")


def _rebase(spec: str, base: Path) -> str:
    """A dataset spec with a relative path made relative to `base` (the config's folder), then canonical."""
    kind, sep, rest = spec.partition(":")
    if sep and kind.strip().lower() in PATH_KINDS:
        path, colon, opts = rest.partition(":") if kind.strip().lower() == "coarsewsd" else (rest, "", "")
        if path and not Path(path).is_absolute():
            spec = f"{kind}:{(base / path).resolve()}{colon}{opts}"
    return normalise_spec(spec)
