"""SAE configuration: the architecture (what the weights mean) kept apart from provenance metadata.

Every field is validated on construction (types and ranges, as SAELens defines them); an error names the field,
the value and what is allowed. A wrong type is never coerced: `"apply_b_dec_to_input": "no"` is refused, not read
as true.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, overload

from pseval.errors import SAEFormatError

NORMALISATIONS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
RESHAPES = ("none", "hook_z")
# cfg.json `dtype` values SAELens accepts (its DTYPE_MAP): how the SAE was stored, not how pseval loads it.
STORED_DTYPES = ("float32", "float64", "float16", "bfloat16", "torch.float32", "torch.float64", "torch.float16",
                 "torch.bfloat16")
# SAELens' TopKSAEConfig default when a topk cfg.json has no `k`.
SAELENS_DEFAULT_K = 100


def field_error(name: str, value: Any, allowed: str) -> SAEFormatError:
    """The error for a config field whose value is not allowed: field, value and what is allowed."""
    return SAEFormatError(f"SAE config field {name!r} must be {allowed}, got {value!r}")


def check_bool(name: str, value: Any) -> bool:
    """A JSON boolean; strings such as "no" or numbers are refused."""
    if not isinstance(value, bool):
        raise field_error(name, value, "a JSON boolean (true or false)")
    return value


# The overloads tell the checker that only `optional=True` can return None.
@overload
def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None, optional: Literal[False] = False
              ) -> int: ...
@overload
def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None, optional: bool = False
              ) -> int | None: ...
def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None, optional: bool = False
              ) -> int | None:
    """An integer (not a boolean, not a float) in [minimum, maximum]; None only when optional."""
    if value is None and optional:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum and (
        maximum is None or value <= maximum)
    if not ok:
        if maximum is not None:
            allowed = f"an integer in {minimum}..{maximum}"
        else:
            allowed = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise field_error(name, value, allowed + (" or null" if optional else ""))
    return value


@overload
def check_str(name: str, value: Any, choices: tuple[str, ...] | None = None, optional: Literal[False] = False
              ) -> str: ...
@overload
def check_str(name: str, value: Any, choices: tuple[str, ...] | None = None, optional: bool = False
              ) -> str | None: ...
def check_str(name: str, value: Any, choices: tuple[str, ...] | None = None, optional: bool = False) -> str | None:
    """A string (one of `choices` when given); None only when optional."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or (choices is not None and value not in choices):
        allowed = f"one of {', '.join(choices)}" if choices else "a string"
        raise field_error(name, value, allowed + (" or null" if optional else ""))
    return value


def check_scale(name: str, value: Any) -> float | None:
    """A finite number > 0, or None (an activation scaling factor)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise field_error(name, value, "a finite number > 0 or null")
    return float(value)


def check_dict(name: str, value: Any) -> dict[str, Any]:
    """A JSON object (None reads as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise field_error(name, value, "a JSON object")
    return value


@dataclass
class SAEMetadata:
    """Where an SAE belongs and how it was trained (SAELens v6 `metadata` block)."""

    model_name: str | None = None
    hook_name: str | None = None
    hook_head_index: int | None = None
    prepend_bos: bool = True
    # SAELens allows a list of token ids as well as a boolean.
    exclude_special_tokens: bool | list[int] = True
    context_size: int | None = None
    dataset_path: str | None = None
    sae_lens_version: str | None = None
    neuronpedia_id: str | None = None
    # Provenance fields without a SAELens key (pseval version, training run, activation convention, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("model_name", "hook_name", "dataset_path", "sae_lens_version", "neuronpedia_id"):
            check_str(f"metadata.{name}", getattr(self, name), optional=True)
        check_int("metadata.hook_head_index", self.hook_head_index, minimum=0, optional=True)
        check_int("metadata.context_size", self.context_size, optional=True)
        check_bool("metadata.prepend_bos", self.prepend_bos)
        est = self.exclude_special_tokens
        if not isinstance(est, bool) and not (
                isinstance(est, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in est)):
            raise field_error("metadata.exclude_special_tokens", est, "a JSON boolean or a list of token ids")
        check_scale("metadata.norm_scaling_factor", self.extra.get("norm_scaling_factor"))
        check_dict("metadata.model_from_pretrained_kwargs", self.extra.get("model_from_pretrained_kwargs"))

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
        check_str("architecture", self.architecture)
        check_int("d_in", self.d_in)
        check_int("d_sae", self.d_sae)
        check_str("dtype", self.dtype, STORED_DTYPES)
        check_str("device", self.device)
        check_bool("apply_b_dec_to_input", self.apply_b_dec_to_input)
        check_str("normalize_activations", self.normalize_activations, NORMALISATIONS)
        check_str("reshape_activations", self.reshape_activations, RESHAPES)
        check_int("k", self.k, maximum=self.d_sae, optional=True)
        # SAELens 6 keys that change what the weights compute (TopK) or how inputs are scaled.
        for name in ("rescale_acts_by_decoder_norm", "use_sparse_activations"):
            if name in self.extra:
                check_bool(name, self.extra[name])
        check_scale("norm_scaling_factor", self.extra.get("norm_scaling_factor"))

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
        """Build from a SAELens v6 cfg.json dict; missing required keys raise SAEFormatError naming them.

        A topk config without `k` gets SAELens' default (100), as SAELens would load it.
        """
        missing = [k for k in ("architecture", "d_in", "d_sae") if k not in d]
        if missing:
            raise SAEFormatError(f"cfg.json lacks required key(s) {', '.join(missing)}")
        known = {f.name for f in fields(cls)} - {"metadata", "extra"}
        meta = SAEMetadata.from_dict(check_dict("metadata", d.get("metadata")))
        args = {k: v for k, v in d.items() if k in known}
        if d["architecture"] == "topk" and args.get("k") is None:
            args["k"] = SAELENS_DEFAULT_K
        return cls(**args, metadata=meta, extra={k: v for k, v in d.items() if k not in known and k != "metadata"})
