"""The dtype the language model is loaded in (`--model-dtype`), apart from the scoring dtype (`--dtype`)."""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch

from pseval.errors import ConfigError

ModelDtype = Literal["float32", "bfloat16", "float16"]
MODEL_DTYPES: tuple[str, ...] = get_args(ModelDtype)
DEFAULT_MODEL_DTYPE = "float32"


def keyed_model_dtype(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as a key holds them: `model_dtype` only when not the default, so keys made before the setting existed
    (activation caches, sweep and eval folders) still match."""
    if settings.get("model_dtype") == DEFAULT_MODEL_DTYPE:
        return {k: v for k, v in settings.items() if k != "model_dtype"}
    return settings


def model_torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a model dtype name; a ConfigError names the allowed values."""
    if name not in MODEL_DTYPES:
        raise ConfigError(f"model_dtype={name!r}; expected one of {', '.join(MODEL_DTYPES)}")
    return getattr(torch, name)


def model_dtype_name(dtype: torch.dtype) -> str:
    """A loaded model's parameter dtype as a model dtype name; a ConfigError for one pseval cannot record."""
    name = str(dtype).removeprefix("torch.")
    if name not in MODEL_DTYPES:
        raise ConfigError(f"the model's weights are {name}; pseval runs models in {', '.join(MODEL_DTYPES)}")
    return name


def recorded_model_dtype(model_dtype: torch.dtype, asked: str | None) -> str:
    """The model dtype a record keeps for a model already loaded: its own; a ConfigError when `asked` differs (pseval
    does not convert a model it was handed)."""
    have = model_dtype_name(model_dtype)
    if asked is not None and asked != have:
        raise ConfigError(f"model_dtype={asked!r}, but the model given is already loaded in {have}: load it in "
                          f"{asked}, or leave model_dtype out")
    return have
