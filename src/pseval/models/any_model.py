"""Any form of model a user holds, as pseval's LoadedModel: a name or path, a (model, tokenizer) pair, a LoadedModel,
or a TransformerLens HookedTransformer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pseval.errors import ConfigError
from pseval.models.loading import LoadedModel, load_model, wrap_model
from pseval.models.transformer_lens import is_hooked_transformer, wrap_hooked_transformer


def as_loaded_model(model: Any, tokenizer: Any = None, model_name: str | None = None,
                    device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> LoadedModel:
    """Whatever `model` is (a name or path, a (model, tokenizer) pair, a LoadedModel, a HookedTransformer) as a
    LoadedModel; a name or path is loaded on `device` (default `auto`: CUDA when present) in `dtype`."""
    if isinstance(model, tuple):
        if len(model) != 2 or tokenizer is not None:
            raise ConfigError("model=(model, tokenizer): a pair, and then no tokenizer= as well")
        model, tokenizer = model
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, (str, Path)):
        return load_model(str(model), device=device or "auto", dtype=dtype)
    if is_hooked_transformer(model):
        if tokenizer is not None:
            raise ConfigError("a HookedTransformer brings its own tokenizer (model.tokenizer); pass no tokenizer")
        return wrap_hooked_transformer(model, model_name)
    if tokenizer is None:
        raise ConfigError(f"model: a {type(model).__name__} needs its tokenizer: evaluate((model, tokenizer), ...) "
                          "or evaluate(model, ..., tokenizer=tokenizer)")
    return wrap_model(model, tokenizer, model_name)
