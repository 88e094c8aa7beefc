"""What PS-Eval reads from the two contexts' codes of every pair, computed chunk by chunk.

Per pair, in one pass over budget-sized chunks (never a full [contexts, d_sae] matrix):

* the argmax latent of each context, over the signed code values (as the reference's `argmax`): ties, and codes
  whose entries are all exactly 0, go to the lowest index; whether the code was all exactly 0;
* the cosine of the two codes (0 when either is all zero), float64-accumulated;
* the Jaccard index |A ∩ B| / |A ∪ B| of the two top-k active sets: A = the k largest entries of the code among those
  that are not 0 (ties at the k-th value go to the lowest indices), so a code with fewer than k non-zero entries has
  a smaller set and an all-zero code the empty set; J(∅, ∅) = 0;
* how many contexts each latent is non-zero on (the dense-latent statistic).

Similarities are rounded to SIMILARITY_DECIMALS, the precision the record keeps, so every statistic computed here
equals the one recomputed from a saved record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pseval.metrics.encoding import aligned, chunk_rows, row_chunks

SIMILARITY_DECIMALS = 6

Encoder = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PairCodes:
    """Per-pair readings of two contexts' codes, and per-latent firing counts over both contexts."""

    feature_1: torch.Tensor  # [n] long: argmax latent of context 1
    feature_2: torch.Tensor  # [n] long
    zero_1: torch.Tensor  # [n] bool: context 1's code is all exactly 0
    zero_2: torch.Tensor  # [n] bool
    cosine: np.ndarray  # [n] float64, rounded to SIMILARITY_DECIMALS
    jaccard: np.ndarray  # [n] float64, rounded to SIMILARITY_DECIMALS
    fires: torch.Tensor  # [d_sae] long: contexts (of 2n) on which each latent is non-zero

    @property
    def contexts(self) -> int:
        """Number of contexts read (two per pair)."""
        return 2 * len(self.cosine)


def top_k_sets(z: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean [rows, d] mask of each row's k largest non-zero entries; ties at the k-th value to the lowest index."""
    k = min(k, z.shape[-1])
    active = z != 0
    ranked = z.masked_fill(~active, float("-inf"))  # zeros are not candidates, even below negative codes
    kth = ranked.topk(k, dim=-1).values[:, -1:]
    above = ranked > kth
    tied = ranked == kth
    room = k - above.sum(-1, keepdim=True)
    # Which tied entries fit: the first `room` of them in index order (cumsum counts ties up to each position).
    keep = tied & (tied.cumsum(-1, dtype=torch.int32) <= room)
    return (above | keep) & active


def _cosine(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine in float64 accumulation; 0 where either row is all zero."""
    a, b = z1.float(), z2.float()
    dot = (a * b).sum(-1, dtype=torch.float64)
    norms = a.square().sum(-1, dtype=torch.float64).sqrt() * b.square().sum(-1, dtype=torch.float64).sqrt()
    return torch.where(norms > 0, dot / norms.clamp_min(1e-300), torch.zeros_like(dot))


def _jaccard(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    inter = (s1 & s2).sum(-1, dtype=torch.float64)
    union = s1.sum(-1, dtype=torch.float64) + s2.sum(-1, dtype=torch.float64) - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))


def round_similarity(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-pair similarities at the precision the record keeps."""
    arr = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.round(arr.astype(np.float64), SIMILARITY_DECIMALS)


@torch.inference_mode()
def pair_codes(encode: Encoder, acts_1: torch.Tensor, acts_2: torch.Tensor, d_sae: int, top_k: int,
               budget: int, max_rows: int | None = None) -> PairCodes:
    """Encode both contexts of every pair chunk by chunk and keep only the per-pair readings (see module doc)."""
    n = acts_1.shape[0]
    rows = chunk_rows(d_sae, budget, per_row=2, cap=max_rows)
    f1, f2, z1s, z2s, cos, jac = [], [], [], [], [], []
    fires = torch.zeros(d_sae, dtype=torch.long)
    for s in row_chunks(n, rows):
        z = aligned(encode, torch.cat([acts_1[s], acts_2[s]]))
        m = s.stop - s.start
        a, b = z[:m], z[m:]
        f1.append(a.argmax(-1).cpu())
        f2.append(b.argmax(-1).cpu())
        nonzero = z != 0
        z1s.append((~nonzero[:m].any(-1)).cpu())
        z2s.append((~nonzero[m:].any(-1)).cpu())
        fires += nonzero.sum(0).cpu()
        del nonzero
        cos.append(_cosine(a, b).cpu())
        jac.append(_jaccard(top_k_sets(a, top_k), top_k_sets(b, top_k)).cpu())
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long)
        return PairCodes(empty, empty, empty.bool(), empty.bool(), np.zeros(0), np.zeros(0), fires)
    return PairCodes(torch.cat(f1), torch.cat(f2), torch.cat(z1s), torch.cat(z2s), round_similarity(torch.cat(cos)),
                     round_similarity(torch.cat(jac)), fires)


@torch.inference_mode()
def masked_argmax(encode: Encoder, acts: torch.Tensor, excluded: torch.Tensor, d_sae: int, budget: int,
                  max_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax over the latents not `excluded` (ties and all-zero remainders to the lowest such index), and whether
    the remaining code was all exactly 0; chunk by chunk."""
    keep = ~excluded
    kept_idx = keep.nonzero().flatten()
    rows = chunk_rows(d_sae, budget, cap=max_rows)
    feats, zero = [], []
    for s in row_chunks(acts.shape[0], rows):
        z = aligned(encode, acts[s])
        rest = z[:, kept_idx.to(z.device)]
        feats.append(kept_idx[rest.argmax(-1).cpu()])
        zero.append((~(rest != 0).any(-1)).cpu())
    if not feats:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool)
    return torch.cat(feats), torch.cat(zero)
