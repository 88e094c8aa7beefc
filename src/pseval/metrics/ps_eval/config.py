"""PS-Eval settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pseval.errors import ConfigError
from pseval.models.readout import ReadoutConfig

Balance = Literal["paper", "exact", "none"]


@dataclass(frozen=True)
class PSEvalConfig:
    """Readout, class balancing and batching of one PS-Eval run."""

    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    # paper: same-sense pairs cut to the number of valid different-sense pairs, by file order (the reference's rule).
    # exact: seeded subsample to equal class sizes. none: score every valid pair.
    balance: Balance = "paper"
    seed: int = 0
    max_tokens: int = 16384
    encode_chunk: int = 4096

    def __post_init__(self) -> None:
        if self.balance not in ("paper", "exact", "none"):
            raise ConfigError(f"balance={self.balance!r}; expected paper, exact or none")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)
