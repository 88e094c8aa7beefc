"""collect_activations writes each hook's rows into one buffer: the same rows as the stream's batches, in order."""

from __future__ import annotations

import itertools

import pytest
import torch

from pseval.data.corpus import wordnet_texts
from pseval.models.loading import LoadedModel
from pseval.training import activations
from pseval.training.activations import StreamConfig, collect_activations, stream_activations
from tests.conftest import tiny_model

HOOKS = ["blocks.0.hook_resid_post", "blocks.2.hook_mlp_out"]


@pytest.fixture(scope="module")
def tiny_gpt2(bpe_tokenizer):
    return LoadedModel(tiny_model("gpt2", vocab_size=len(bpe_tokenizer)), bpe_tokenizer, "tiny-gpt2", "memory")


@pytest.mark.parametrize("max_tokens", [700, 10**9])  # a budget the corpus fills, and one it does not (grown buffer)
def test_buffer_holds_the_streamed_rows_in_order(tiny_gpt2, monkeypatch, max_tokens):
    monkeypatch.setattr(activations, "_FIRST_ROWS", 64)  # several doublings on a small corpus
    texts = list(itertools.islice(wordnet_texts(), 400))
    cfg = StreamConfig(max_tokens=max_tokens, batch_texts=8)
    got = collect_activations(tiny_gpt2, iter(texts), HOOKS, cfg)
    parts: dict[str, list[torch.Tensor]] = {h: [] for h in HOOKS}
    for batch in stream_activations(tiny_gpt2, iter(texts), HOOKS, cfg):
        for h in HOOKS:
            parts[h].append(batch[h])
    for h in HOOKS:
        want = torch.cat(parts[h])
        assert torch.equal(got[h], want)
        assert got[h].untyped_storage().nbytes() == want.numel() * 4  # unused buffer rows released
    n = got[HOOKS[0]].shape[0]
    assert n == 700 if max_tokens == 700 else n > 700  # the budget, or the whole corpus when it is larger


def test_no_text_gives_empty_activations(tiny_gpt2):
    got = collect_activations(tiny_gpt2, iter([]), HOOKS, StreamConfig(max_tokens=100))
    assert all(got[h].shape == (0, 64) for h in HOOKS)
