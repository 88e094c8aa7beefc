"""PS-Eval (Minegishi et al., ICLR 2025): do an SAE's top features separate word senses?"""

from pseval.ps_eval.scoring import PairActivations, PSEvalResult, collect_pair_activations, score_sae
from pseval.ps_eval.settings import PSEvalSettings

__all__ = ["PSEvalSettings", "PSEvalResult", "PairActivations", "collect_pair_activations", "score_sae"]
