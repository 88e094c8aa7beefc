"""A faithful port of the reference PS-Eval loop (gouki510/PS-Eval `wic_eval.py`), used only as a baseline.

Per pair and per SAE: one full forward of each prompt, the target found by string match (`" " + word` must be a
single token, same id in both prompts, read at its last occurrence), and the argmax read from a per-token table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pseval.data.pairs import WordInContextPair
from pseval.metrics.confusion import Confusion
from pseval.models.loading import LoadedModel
from pseval.saes.base import SAE


def _target_id(lm: LoadedModel, word: str) -> int | None:
    # BERT's WordPiece has no leading-space tokens; the reference's `" " + word` becomes the bare word there.
    text = word if lm.model_type == "bert" else " " + word
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


@torch.inference_mode()
def _feature(lm: LoadedModel, sae: SAE, layer: int, prompt: str, token_id: int) -> int | None:
    enc = lm.tokenizer(prompt, return_tensors="pt")
    ids = enc["input_ids"]
    if lm.is_causal and lm.tokenizer.bos_token_id is not None and ids[0, 0] != lm.tokenizer.bos_token_id:
        ids = torch.cat([torch.tensor([[lm.tokenizer.bos_token_id]]), ids], dim=1)
        enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    out = lm.model(**enc, output_hidden_states=True)  # full forward, every layer cached
    acts = out.hidden_states[layer + 1][0]
    latents = sae.encode(acts)
    # The per-token table: one row per token, one column per latent (the reference builds a DataFrame here).
    table = [{"token": int(t), "acts": row} for t, row in zip(ids[0].tolist(), latents.tolist(), strict=True)]
    rows = [r for r in table if r["token"] == token_id]
    if not rows:
        return None
    row = rows[-1]["acts"]
    return max(range(len(row)), key=lambda j: (row[j], -j))  # argmax, ties to the lowest index


def reference_ps_eval(lm: LoadedModel, pairs: Sequence[WordInContextPair], saes: Sequence[SAE],
                      layer: int) -> list[Confusion]:
    """Confusion per SAE, resid_post of `layer`, template readout, paper balancing."""
    out = []
    for sae in saes:
        labels, same = [], []
        for p in pairs:
            tid = _target_id(lm, p.target)
            if tid is None:
                continue
            f1 = _feature(lm, sae, layer, f"{p.context_1} The {p.target} means", tid)
            f2 = _feature(lm, sae, layer, f"{p.context_2} The {p.target} means", tid)
            if f1 is None or f2 is None:
                continue
            labels.append(p.same_sense)
            same.append(f1 == f2)
        n_diff = sum(not y for y in labels)
        kept, n_same = [], 0
        for y, s in zip(labels, same, strict=True):  # label-1 rows cut to the number of label-0 rows, by order
            if y:
                if n_same >= n_diff:
                    continue
                n_same += 1
            kept.append((y, s))
        out.append(Confusion.from_predictions([y for y, _ in kept], [s for _, s in kept]))
    return out
