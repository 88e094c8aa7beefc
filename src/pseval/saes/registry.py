"""Registry from architecture names (cfg.json `architecture`) to SAE classes; users may add their own."""

from __future__ import annotations

from collections.abc import Callable

from pseval.errors import ConfigError
from pseval.saes.base import SAE

_REGISTRY: dict[str, type[SAE]] = {}


def register_sae(name: str) -> Callable[[type[SAE]], type[SAE]]:
    """Class decorator registering an SAE architecture under `name`."""

    def deco(cls: type[SAE]) -> type[SAE]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ConfigError(f"SAE architecture {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.architecture = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_sae_class(name: str) -> type[SAE]:
    """The class registered for `name`; the error lists the known architectures."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown SAE architecture {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def architectures() -> list[str]:
    """Registered architecture names."""
    return sorted(_REGISTRY)
