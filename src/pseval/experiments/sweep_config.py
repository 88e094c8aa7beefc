"""Sweep configuration files (TOML): validated, with errors that name the field."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pseval.data.sources import normalise_spec
from pseval.errors import ConfigError
from pseval.metrics.ps_eval.balance import BALANCE_RULES, canonical_balance
from pseval.metrics.ps_eval.config import PROTOCOLS
from pseval.saes.registry import architectures

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# Pairs selected per dataset: 4000 WordNet pairs (about 2,400 scored) keep F1's 95% bootstrap interval under +-0.03
# for identity and a TopK SAE on MiniLM (README, "Sweeps and reports", has the measurement).
DEFAULT_MAX_PAIRS = 4000


@dataclass
class GridSpec:
    """Hooks (globs allowed) x architectures x widths x sparsity settings."""

    hooks: list[str]
    architectures: list[str] = field(default_factory=lambda: ["topk"])
    expansions: list[int] = field(default_factory=lambda: [8])
    k: list[int] = field(default_factory=lambda: [32])
    sparsity_coeff: dict[str, list[float]] = field(default_factory=dict)
    identity: bool = True


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
    multi_token: str = "drop"
    protocol: str = "pseval"
    balance: str = "reference"
    max_pairs: int | None = DEFAULT_MAX_PAIRS
    loss_recovered_tokens: int = 0
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain form."""
        return asdict(self)

    def settings(self) -> dict[str, Any]:
        """Everything that decides the sweep's results (not where it runs, nor which file it was read from)."""
        return {k: v for k, v in asdict(self).items() if k not in ("device", "source")}


_TOP = {"name", "model", "device", "seed", "activations", "train", "grid", "eval"}


def _typed(section: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any) -> Any:
    if key not in section:
        return default
    v = section[key]
    ok = isinstance(v, kind) and not (kind in (int, float) and isinstance(v, bool))
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if not ok:
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}.{key}: expected {name}, got {v!r}")
    return v


def _list(section: dict[str, Any], key: str, kind: type, where: str, default: list[Any]) -> list[Any]:
    v = section.get(key, default)
    if not isinstance(v, list) or not v or not all(isinstance(x, kind) and not isinstance(x, bool) for x in v):
        raise ConfigError(f"{where}.{key}: expected a non-empty list of {kind.__name__}, got {v!r}")
    return list(v)


def _unknown(section: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(section) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")


def parse_sweep(data: dict[str, Any], source: str = "<config>") -> SweepConfig:
    """Validate a parsed TOML document into a SweepConfig."""
    _unknown(data, _TOP, source)
    if "name" not in data:
        raise ConfigError(f"{source}: missing key 'name'")
    act = data.get("activations", {})
    _unknown(act, {"corpus", "train_tokens", "heldout_tokens", "context_size"}, f"{source}: [activations]")
    train = data.get("train", {})
    _unknown(train, {"lr", "batch_size"}, f"{source}: [train]")
    ev = data.get("eval", {})
    _unknown(ev, {"datasets", "readouts", "multi_token", "protocol", "balance", "max_pairs", "loss_recovered_tokens"},
             f"{source}: [eval]")
    grids_raw = data.get("grid", [])
    if not isinstance(grids_raw, list) or not grids_raw:
        raise ConfigError(f"{source}: needs at least one [[grid]] table")
    known = set(architectures())
    grids = []
    for i, g in enumerate(grids_raw):
        where = f"{source}: [[grid]] #{i + 1}"
        _unknown(g, {"hooks", "architectures", "expansions", "k", "sparsity_coeff", "identity"}, where)
        archs = _list(g, "architectures", str, where, ["topk"])
        bad = [a for a in archs if a not in known or a == "identity"]
        if bad:
            raise ConfigError(f"{where}.architectures: unknown {bad}; known: {', '.join(sorted(known - {'identity'}))}")
        coeffs = g.get("sparsity_coeff", {})
        if not isinstance(coeffs, dict):
            raise ConfigError(f"{where}.sparsity_coeff: expected a table of architecture = [numbers]")
        for arch, vals in coeffs.items():
            if arch not in known:
                raise ConfigError(f"{where}.sparsity_coeff.{arch}: unknown architecture")
            if not isinstance(vals, list) or not all(isinstance(v, (int, float)) for v in vals):
                raise ConfigError(f"{where}.sparsity_coeff.{arch}: expected a list of numbers, got {vals!r}")
        exps = _list(g, "expansions", int, where, [8])
        if any(e <= 0 for e in exps):
            raise ConfigError(f"{where}.expansions: must be positive, got {exps}")
        grids.append(GridSpec(hooks=_list(g, "hooks", str, where, []), architectures=archs, expansions=exps,
                              k=_list(g, "k", int, where, [32]),
                              sparsity_coeff={a: [float(v) for v in vs] for a, vs in coeffs.items()},
                              identity=bool(_typed(g, "identity", bool, where, True))))
    readouts = _list(ev, "readouts", str, f"{source}: [eval]", ["template"])
    if any(r not in ("template", "context") for r in readouts):
        raise ConfigError(f"{source}: [eval].readouts: expected template and/or context, got {readouts}")
    multi = _typed(ev, "multi_token", str, f"{source}: [eval]", "drop")
    if multi not in ("first", "last", "mean", "drop"):
        raise ConfigError(f"{source}: [eval].multi_token: expected first, last, mean or drop, got {multi!r}")
    balance = _typed(ev, "balance", str, f"{source}: [eval]", "reference")
    if balance not in BALANCE_RULES:
        raise ConfigError(f"{source}: [eval].balance: expected one of {', '.join(BALANCE_RULES)}, got {balance!r}")
    protocol = _typed(ev, "protocol", str, f"{source}: [eval]", "pseval")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{source}: [eval].protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    cfg = SweepConfig(
        name=_typed(data, "name", str, source, ""), model=_typed(data, "model", str, source, "minilm"),
        device=_typed(data, "device", str, source, "cpu"), seed=_typed(data, "seed", int, source, 0),
        corpus=_typed(act, "corpus", str, f"{source}: [activations]", "wordnet-definitions"),
        train_tokens=_typed(act, "train_tokens", int, f"{source}: [activations]", 100_000),
        heldout_tokens=_typed(act, "heldout_tokens", int, f"{source}: [activations]", 10_000),
        context_size=_typed(act, "context_size", int, f"{source}: [activations]", 128),
        lr=_typed(train, "lr", float, f"{source}: [train]", 1e-3),
        batch_size=_typed(train, "batch_size", int, f"{source}: [train]", 1024),
        grids=grids, datasets=_list(ev, "datasets", str, f"{source}: [eval]", []), readouts=readouts,
        multi_token=multi, protocol=protocol, balance=canonical_balance(balance),
        max_pairs=_typed(ev, "max_pairs", int, f"{source}: [eval]", DEFAULT_MAX_PAIRS),
        loss_recovered_tokens=_typed(ev, "loss_recovered_tokens", int, f"{source}: [eval]", 0), source=source)
    if cfg.train_tokens <= 0 or cfg.heldout_tokens <= 0:
        raise ConfigError(f"{source}: [activations] train_tokens and heldout_tokens must be positive")
    return cfg


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a TOML sweep config; TOML syntax errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: sweep config not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    cfg = parse_sweep(data, str(p))
    # Relative data paths are relative to the config file's folder, so a config works from any directory.
    cfg.datasets = [_rebase(d, p.parent) for d in cfg.datasets]
    return cfg


PATH_KINDS = ("wic", "coarsewsd", "jsonl", "csv", "tsv", "json")


def _rebase(spec: str, base: Path) -> str:
    """A dataset spec with a relative path made relative to `base` (the config's folder), then canonical."""
    kind, sep, rest = spec.partition(":")
    if sep and kind.strip().lower() in PATH_KINDS:
        path, colon, opts = rest.partition(":") if kind.strip().lower() == "coarsewsd" else (rest, "", "")
        if path and not Path(path).is_absolute():
            spec = f"{kind}:{(base / path).resolve()}{colon}{opts}"
    return normalise_spec(spec)
