"""SAE architectures, their registry, and file formats."""

from pseval.saes import batchtopk, gated, identity, jumprelu, standard, topk  # noqa: F401  (registers the architectures)
from pseval.saes.base import SAE, TrainOutput
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.saelens import load_saelens_v6, save_sae
from pseval.saes.identity import identity_sae
from pseval.saes.registry import architectures, get_sae_class, register_sae

__all__ = ["SAE", "SAEConfig", "SAEMetadata", "TrainOutput", "architectures", "get_sae_class", "identity_sae",
           "load_saelens_v6", "register_sae", "save_sae"]
