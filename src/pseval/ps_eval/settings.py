"""PS-Eval settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

from pseval.data.balance import Balance, canonical_balance
from pseval.errors import ConfigError
from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, ScoringDtype, scoring_dtype
from pseval.models.readout import PAPER_TEMPLATE, MultiToken, Position, ReadoutConfig, TooLong

# pseval: pseval's readout (the target located by character offsets, wherever the config says) and balancing.
# reference: every choice gouki510/PS-Eval makes: template readout, BOS for causal models, multi-token targets
#   dropped, its string token matching (ReadoutConfig.match="reference") and its balancing (balance="reference").
Protocol = Literal["pseval", "reference"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)


@dataclass(frozen=True)
class PSEvalConfig:
    """Protocol, readout, class balancing and batching of one PS-Eval run."""

    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    # See pseval.data.balance; `paper` is stored as its canonical name `reference`.
    balance: Balance = "reference"
    seed: int = 0
    max_tokens: int = 16384
    encode_chunk: int = 4096  # most pairs encoded at once (the memory budget may allow fewer)
    protocol: Protocol = "pseval"
    # Scoring: size of the top-k active sets (Jaccard, PS-Eval@k); latents firing on more than this fraction of the
    # scored contexts left out of the robust variant's argmax (None: no robust variant); the dtype codes are
    # computed in; bootstrap resamples and seed of every interval.
    top_k: int = 8
    exclude_dense: float | None = None
    dtype: ScoringDtype = "float32"
    n_boot: int = 1000
    bootstrap_seed: int = 0
    # Bytes of transient [rows, d_sae] work per encode chunk: changes how the work is cut, never a result.
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    # Seeded random-weight controls scored beside each SAE (pseval.saes.control); 0 turns them off.
    controls: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "balance", canonical_balance(self.balance))
        scoring_dtype(self.dtype)
        if self.top_k < 1:
            raise ConfigError(f"top_k={self.top_k}; must be at least 1")
        if self.exclude_dense is not None and not 0 < self.exclude_dense < 1:
            raise ConfigError(f"exclude_dense={self.exclude_dense}; must be a fraction strictly between 0 and 1")
        if self.n_boot < 1:
            raise ConfigError(f"n_boot={self.n_boot}; must be at least 1")
        if self.controls < 0:
            raise ConfigError(f"controls={self.controls}; must be >= 0 (0 turns the random controls off)")
        if self.memory_budget < 1 or self.encode_chunk < 1:
            raise ConfigError(f"memory_budget={self.memory_budget}, encode_chunk={self.encode_chunk}; must be "
                              "positive")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol={self.protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        if self.protocol == "reference":
            object.__setattr__(self, "readout", reference_readout(self.readout, self.balance))

    @classmethod
    def from_options(cls, *, readout: str = "template", multi_token: str = "drop", too_long: str = "truncate",
                     template: str = PAPER_TEMPLATE, balance: str = "reference", protocol: str = "pseval",
                     dtype: str = "float32", **rest: Any) -> PSEvalConfig:
        """The settings as the CLI, a sweep config or the Python API give them (plain strings), each checked
        against its Literal type; `rest` are the numeric fields (seed, top_k, n_boot, ...)."""
        return cls(readout=ReadoutConfig(position=_allowed(Position, readout, "readout"),
                                         multi_token=_allowed(MultiToken, multi_token, "multi_token"),
                                         too_long=_allowed(TooLong, too_long, "too_long"), template=template),
                   balance=_allowed(Balance, balance, "balance"), protocol=_allowed(Protocol, protocol, "protocol"),
                   dtype=_allowed(ScoringDtype, dtype, "dtype"), **rest)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def _allowed(kind: Any, value: str, name: str) -> Any:
    """`value` if it is one of the Literal `kind`'s values, else a ConfigError naming the setting and the values."""
    allowed = get_args(kind)
    if value not in allowed:
        raise ConfigError(f"{name}={value!r}; expected one of {', '.join(map(str, allowed))}")
    return value


def reference_readout(readout: ReadoutConfig, balance: str) -> ReadoutConfig:
    """The readout of protocol `reference`: the reference's token matching, no truncation; a conflict is an error."""
    wrong = [f"{name}={value!r} (the reference uses {want!r})" for name, value, want in (
        ("readout position", readout.position, "template"), ("multi_token", readout.multi_token, "drop"),
        ("template", readout.template, PAPER_TEMPLATE), ("balance", balance, "reference"))
        if value != want]
    if wrong:
        raise ConfigError(f"protocol='reference' makes every choice the reference makes; got {'; '.join(wrong)}")
    # The reference cannot run a prompt longer than the model: such pairs are dropped (too_long), never truncated.
    return replace(readout, match="reference", too_long="skip")
