"""PS-Eval (Minegishi et al., ICLR 2025): do an SAE's top features separate word senses?"""

from pseval.metrics.ps_eval.config import PSEvalConfig
from pseval.metrics.ps_eval.runner import PairActivations, PSEvalResult, collect_pair_activations, score_sae

__all__ = ["PSEvalConfig", "PSEvalResult", "PairActivations", "collect_pair_activations", "score_sae"]
