"""The plan of an eval, said before any SAE loads: how many SAEs, at which hooks, and the estimated peak memory.

Everything comes from the entries' configs and shapes (a lazy entry's weightless peek): SAEs are scored one at a
time (pseval.ps_eval.pipeline.evaluate), so the peak is the largest SAE, its codes on the pairs, and the
activations every hook keeps, whatever the number of SAEs. The language model itself is not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pseval.ps_eval.pipeline import SAEEntry
from pseval.ps_eval.settings import PSEvalSettings
from pseval.saes.loading import weight_bytes


def human_bytes(n: int) -> str:
    """Bytes in MiB or GiB, one decimal."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


@dataclass(frozen=True)
class EvalPlan:
    """What an eval will do and hold at its peak."""

    saes: int  # distinct SAEs (sources)
    cells: int  # SAE x hook
    per_hook: dict[str, int]  # cells per hook, in order
    largest_sae_bytes: int
    codes_bytes: int  # the largest SAE's codes on every scored context
    activation_bytes: int  # pair (and corpus) activations of every hook

    @property
    def peak_bytes(self) -> int:
        """The estimated peak: one SAE, its codes and the activations."""
        return self.largest_sae_bytes + self.codes_bytes + self.activation_bytes

    def line(self) -> str:
        """The plan in one line."""
        hooks = ", ".join(f"{h} {n}" for h, n in self.per_hook.items())
        return (f"plan: {self.saes} SAE(s), {self.cells} cell(s) at {len(self.per_hook)} hook(s) ({hooks}); "
                f"estimated peak memory {human_bytes(self.peak_bytes)} besides the model (largest SAE "
                f"{human_bytes(self.largest_sae_bytes)} + its codes {human_bytes(self.codes_bytes)} + activations "
                f"{human_bytes(self.activation_bytes)}; one SAE in memory at a time)")


def eval_plan(entries: Sequence[SAEEntry], pairs: int, cfg: PSEvalSettings, dtype: torch.dtype) -> EvalPlan:
    """The plan of scoring `entries` on `pairs` pairs with `cfg`, values held in `dtype`, from configs only."""
    size = torch.empty(0, dtype=dtype).element_size()
    contexts = 2 * pairs
    described = [(e, e.described()) for e in entries]
    widths = {e.hook: d.d_in for e, d in described if d is not None}
    tokens = contexts + cfg.reconstruction_tokens  # pair contexts, and the corpus tokens reconstruction reads
    return EvalPlan(
        saes=len({e.source for e in entries}), cells=len(entries),
        per_hook=dict(Counter(e.hook for e in entries)),
        largest_sae_bytes=max((weight_bytes(d) for _, d in described if d is not None), default=0),
        codes_bytes=max((contexts * d.d_sae * size for _, d in described if d is not None), default=0),
        activation_bytes=sum(tokens * w * size for w in widths.values()))
