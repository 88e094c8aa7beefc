"""SAE configuration: the architecture (what the weights mean) kept apart from provenance metadata."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pseval.errors import SAEFormatError

NORMALISATIONS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")


@dataclass
class SAEMetadata:
    """Where an SAE belongs and how it was trained (SAELens v6 `metadata` block)."""

    model_name: str | None = None
    hook_name: str | None = None
    hook_head_index: int | None = None
    prepend_bos: bool = True
    exclude_special_tokens: bool = True
    context_size: int | None = None
    dataset_path: str | None = None
    sae_lens_version: str | None = None
    neuronpedia_id: str | None = None
    # Provenance fields without a SAELens key (pseval version, training run, activation convention, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat dict with `extra` merged in, as written to cfg.json."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SAEMetadata:
        """Inverse of to_dict; unknown keys go to `extra`."""
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known})


@dataclass
class SAEConfig:
    """Architecture-defining settings of an SAE (SAELens v6 cfg.json top level)."""

    architecture: str
    d_in: int
    d_sae: int
    dtype: str = "float32"
    device: str = "cpu"
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"
    reshape_activations: str = "none"
    k: int | None = None
    metadata: SAEMetadata = field(default_factory=SAEMetadata)
    # Architecture keys pseval does not model itself, kept so a round trip loses nothing.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("d_in", "d_sae"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise SAEFormatError(f"SAE config field {name!r} must be a positive integer, got {v!r}")
        if self.normalize_activations not in NORMALISATIONS:
            raise SAEFormatError(f"SAE config field 'normalize_activations'={self.normalize_activations!r}; "
                                 f"expected one of {', '.join(NORMALISATIONS)}")
        if self.k is not None and not (isinstance(self.k, int) and 0 < self.k <= self.d_sae):
            raise SAEFormatError(f"SAE config field 'k'={self.k!r} must be an integer in 1..d_sae={self.d_sae}")

    def to_dict(self) -> dict[str, Any]:
        """SAELens v6 cfg.json content."""
        d = {k: v for k, v in asdict(self).items() if k not in ("metadata", "extra")}
        if d["k"] is None:
            del d["k"]
        d.update(self.extra)
        d["metadata"] = self.metadata.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SAEConfig:
        """Build from a SAELens v6 cfg.json dict; missing required keys raise SAEFormatError naming them."""
        missing = [k for k in ("architecture", "d_in", "d_sae") if k not in d]
        if missing:
            raise SAEFormatError(f"cfg.json lacks required key(s) {', '.join(missing)}")
        known = {f.name for f in fields(cls)} - {"metadata", "extra"}
        meta = SAEMetadata.from_dict(d.get("metadata") or {})
        return cls(**{k: v for k, v in d.items() if k in known}, metadata=meta,
                   extra={k: v for k, v in d.items() if k not in known and k != "metadata"})
