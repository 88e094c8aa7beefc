"""Planted sense pairs: synthetic contexts whose senses sit on known coordinates, for tests that need a ground truth."""

from __future__ import annotations

import torch

from pseval.ps_eval.scoring import PairActivations

SENSES = 8


def sense_pairs(n: int, d_in: int, noise: float, seed: int = 0) -> tuple[PairActivations, torch.Tensor, torch.Tensor]:
    """n pairs, half same sense; a context of sense s is 3 e_s plus N(0, noise²) in each of d_in dimensions.
    Returns the pairs and both contexts' senses."""
    gen = torch.Generator().manual_seed(seed)
    s1 = torch.randint(0, SENSES, (n,), generator=gen)
    same = torch.arange(n) % 2 == 0
    s2 = torch.where(same, s1, (s1 + torch.randint(1, SENSES, (n,), generator=gen)) % SENSES)
    acts = [3 * torch.nn.functional.one_hot(s, d_in).float() + noise * torch.randn(n, d_in, generator=gen)
            for s in (s1, s2)]
    return PairActivations("h", acts[0], acts[1], same, list(range(n)), {}), s1, s2
