"""SAE architectures, their registry, and file formats.

Loading (`loading.load_sae`, `formats.detect.load_any`, each format's reader) takes `dtype` (float32 by default,
exact; bfloat16 or float16 halve memory and round the weights, so an argmax may move at near-ties) and `device`.
Weights are read straight into that dtype and device (`tensor_io`) and become the module's parameters without
copies (`build`): peak memory is about the weights' size.

Foreign SAEs compute as their library defines them or are refused: cfg.json is validated field by field
(`config`), pre-6.0 SAELens configs are translated in `formats.saelens_legacy`. A tensor the declared
architecture does not use is an error in the SAELens layout (cfg.json and weights disagree); in the other formats,
whose tensor sets are fixed by the library, unknown entries are ignored with a warning naming them.
"""

from pseval.saes import batchtopk, gated, identity, jumprelu, standard, topk  # noqa: F401  (registers the architectures)
from pseval.saes.base import SAE, TrainOutput
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.formats.saelens import load_saelens_v6, save_sae
from pseval.saes.identity import identity_sae
from pseval.saes.registry import architectures, get_sae_class, register_sae

__all__ = ["SAE", "SAEConfig", "SAEMetadata", "TrainOutput", "architectures", "get_sae_class", "identity_sae",
           "load_saelens_v6", "register_sae", "save_sae"]
