"""Batched forward passes that keep only the activations at readout positions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from pseval.logs import bar_disabled
from pseval.models.capture import hooked, model_inputs
from pseval.models.loading import LoadedModel


def length_batches(lengths: Sequence[int], max_tokens: int, max_batch: int) -> Iterator[list[int]]:
    """Indices grouped by similar length so that padded batches stay under `max_tokens`."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    longest = 0
    for i in order:
        n = max(1, lengths[i])
        if batch and (max(longest, n) * (len(batch) + 1) > max_tokens or len(batch) >= max_batch):
            yield batch
            batch, longest = [], 0
        batch.append(i)
        longest = max(longest, n)
    if batch:
        yield batch


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids and attention mask."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids.to(device), mask.to(device)


def pad_token_id(lm: LoadedModel) -> int:
    """The tokenizer's pad id, else EOS, else 0 (padding is masked out anyway)."""
    tok = lm.tokenizer
    for v in (getattr(tok, "pad_token_id", None), getattr(tok, "eos_token_id", None)):
        if v is not None:
            return int(v)
    return 0


@torch.inference_mode()
def extract_positions(lm: LoadedModel, sequences: Sequence[Sequence[int]], positions: Sequence[Sequence[int]],
                      hook_names: Sequence[str], max_tokens: int = 16384, max_batch: int = 256,
                      progress: bool = False) -> dict[str, torch.Tensor]:
    """For each sequence, the mean activation over its `positions` at every hook: {hook: [n, d] float32}."""
    n = len(sequences)
    out: dict[str, torch.Tensor] = {}
    device = lm.device
    pad = pad_token_id(lm)
    batches = list(length_batches([len(s) for s in sequences], max_tokens, max_batch))
    state: dict[str, torch.Tensor] = {}

    def on_activation(name: str, h: torch.Tensor) -> None:
        vals = h[state["b"], state["t"]].float() * state["w"][:, None]
        if name not in out:
            out[name] = torch.zeros((n, h.shape[-1]), dtype=torch.float32, device=device)
        out[name].index_add_(0, state["item"], vals)

    with hooked(lm.model, hook_names, on_activation) as run:
        for batch in tqdm(batches, desc="forward", disable=bar_disabled(progress), leave=False):
            ids, mask = pad_batch([sequences[i] for i in batch], pad, device)
            b, t, item, w = [], [], [], []
            for r, i in enumerate(batch):
                pos = positions[i]
                for p in pos:
                    b.append(r)
                    t.append(p)
                    item.append(i)
                    w.append(1.0 / len(pos))
            state["b"] = torch.tensor(b, dtype=torch.long, device=device)
            state["t"] = torch.tensor(t, dtype=torch.long, device=device)
            state["item"] = torch.tensor(item, dtype=torch.long, device=device)
            state["w"] = torch.tensor(w, dtype=torch.float32, device=device)
            run(**model_inputs(ids, mask, lm.is_causal))
    return {k: v.cpu() for k, v in out.items()}

