"""What identifies a model's content (weights and tokenizer), for keys of anything computed from it (the activation
cache): a model folder changed in place must never match an entry made from its old files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from pseval.models.loading import LoadedModel


def _folder_state(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of each file of a model folder: weights, config and tokenizer files. Cheap (no read of
    the weights) and changes whenever any of them is rewritten."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            st = p.stat()
            out.append((p.name, st.st_size, st.st_mtime_ns))
    return out


def _tokenizer_state(tokenizer: Any) -> str:
    """A digest of the tokenizer's vocabulary and special tokens (for models held in memory)."""
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    special = getattr(tokenizer, "all_special_tokens", [])
    blob = json.dumps([sorted(vocab.items()), list(special), type(tokenizer).__name__], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer, by name (for models held in memory: no file to look at)."""
    h = hashlib.sha256()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_content_key(lm: LoadedModel) -> str:
    """A digest of the model's weights, config and tokenizer: its folder's file states when it was loaded from one,
    else its tensors and vocabulary."""
    config = lm.model.config.to_dict() if hasattr(lm.model.config, "to_dict") else {}
    config.pop("_name_or_path", None)  # where the folder is does not change what it computes
    parts: dict[str, Any] = {"config": config, "class": type(lm.model).__name__}
    folder = Path(lm.source)
    if folder.is_dir():
        parts["files"] = _folder_state(folder)
    else:
        parts["weights"] = _weights_digest(lm.model)
        parts["tokenizer"] = _tokenizer_state(lm.tokenizer)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]
