"""What identifies an SAE in a result's key: its training key, its files' content, or its tensors' content."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pseval.run_keys import canonical_json
from pseval.saes.base import SAE

_CHUNK = 1 << 22


def _hash_file(h: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)


def files_fingerprint(spec: str | Path) -> str:
    """SHA-256 over the files an SAE spec names: a file (with a dictionary_learning config.json beside ae.pt) or
    every visible file directly in a folder, by name and content."""
    p = Path(spec)
    if p.is_file():
        files = [p] + ([p.parent / "config.json"] if p.name == "ae.pt" and (p.parent / "config.json").is_file()
                       else [])
    else:
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        _hash_file(h, f)
    return "file:" + h.hexdigest()[:32]


def _hash_tensor(h: hashlib._Hash, name: str, tensor: torch.Tensor) -> None:
    t = tensor.detach().to("cpu").contiguous().reshape(-1)  # 0-d tensors (a k buffer) cannot be viewed as bytes
    h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def tensors_fingerprint(sae: SAE) -> str:
    """SHA-256 over an SAE's config and weight tensors (for SAEs that exist only in memory)."""
    h = hashlib.sha256(canonical_json({k: v for k, v in sae.cfg.to_dict().items() if k != "metadata"}).encode())
    for name in sae.weight_names():
        _hash_tensor(h, name, sae.get_weight(name))
    return "tensors:" + h.hexdigest()[:32]


def module_fingerprint(module: Any, config: Mapping[str, Any]) -> str:
    """SHA-256 over another library's SAE object: its class, the config that decides its encoding (k, ...), and
    every tensor of its state dict by name."""
    cls = type(module)
    h = hashlib.sha256(canonical_json({"class": f"{cls.__module__}.{cls.__qualname__}", **config}).encode())
    state = module.state_dict() if isinstance(module, torch.nn.Module) else {}
    for name in sorted(state):
        _hash_tensor(h, name, state[name])
    return "object:" + h.hexdigest()[:32]


def training_fingerprint(key_id: str) -> str:
    """The fingerprint of an SAE pseval trained: its training key."""
    return "train:" + key_id
