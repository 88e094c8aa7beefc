"""Torch device names: their syntax checked before any work, their presence checked against this machine."""

from __future__ import annotations

import logging
import re

from pseval.errors import ConfigError

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d{1,3}))?$")
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"
# The default everywhere: CUDA when this machine has it, else the CPU (said in one log line when resolved).
AUTO = "auto"
log = logging.getLogger("pseval.devices")


def parse_device(text: object) -> str:
    """The canonical (lower-case, stripped) form of a device name; a ConfigError names the allowed forms."""
    name = text.strip().lower() if isinstance(text, str) else None
    m = _DEVICE_RE.match(name or "")
    if name is None or m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise ConfigError(f"device {text!r}: expected {DEVICE_HELP}")
    return name


def available_devices() -> list[str]:
    """The devices this machine has: cpu, each cuda:N, and mps."""
    import torch

    out = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def auto_device() -> str:
    """`cuda` when torch sees a CUDA device, else `cpu`; announced in one INFO line."""
    import torch

    if torch.cuda.is_available():
        log.info("device: cuda (auto: %s)", torch.cuda.get_device_name(0))
        return "cuda"
    log.info("device: cpu (auto: no CUDA device)")
    return "cpu"


def require_device(text: object) -> str:
    """A device name that is well formed and present on this machine (`auto`: resolved by auto_device); a
    ConfigError lists what is."""
    name = parse_device(text)
    if name == AUTO:
        return auto_device()
    if name == "cpu":  # always there: no need to import torch
        return name
    have = available_devices()
    wanted = "cuda:0" if name == "cuda" else name
    if wanted not in have:
        raise ConfigError(f"device {name!r} is not available on this machine; available: {', '.join(have)}")
    return name
