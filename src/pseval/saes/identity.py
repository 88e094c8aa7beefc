"""The identity 'SAE': the model's own basis (neurons) as features, the baseline every SAE should beat."""

from __future__ import annotations

import torch

from pseval.saes.base import SAE
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.registry import register_sae

# The spec that names the identity baseline wherever SAEs are given (`--sae identity`, `pseval.evaluate`, SAEBench).
IDENTITY_SPEC = "identity"


def is_identity_spec(spec: object) -> bool:
    """Whether an SAE spec names the identity baseline."""
    return isinstance(spec, str) and spec == IDENTITY_SPEC


def is_identity_architecture(architecture: str) -> bool:
    """Whether an SAE architecture (as a config or record names it) is the identity baseline."""
    return architecture == IdentitySAE.architecture_name


@register_sae("identity")
class IdentitySAE(SAE):
    """encode(x) = x: the argmax feature is the largest coordinate of the activation itself."""

    architecture_name = "identity"

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Identity encoder and decoder, zero biases."""
        with torch.no_grad():
            eye = torch.eye(self.cfg.d_in)
            self.W_enc.copy_(eye)
            self.W_dec.copy_(eye)
            self.b_enc.zero_()
            self.b_dec.zero_()

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        """No nonlinearity: raw coordinates, negative ones included."""
        return pre

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x itself (skips the d x d matmul)."""
        return x.to(self.W_enc.dtype) * self.input_scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z itself."""
        return z / self.input_scale


def identity_sae(d_in: int, model_name: str | None = None, hook_name: str | None = None) -> IdentitySAE:
    """An identity SAE for a hook of width d_in."""
    cfg = SAEConfig(architecture="identity", d_in=d_in, d_sae=d_in, apply_b_dec_to_input=False,
                    metadata=SAEMetadata(model_name=model_name, hook_name=hook_name))
    return IdentitySAE(cfg)
