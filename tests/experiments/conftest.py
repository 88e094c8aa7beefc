"""A tiny GPT-2 with its BPE tokenizer saved as a model folder, so sweeps can load it by path."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_model


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, bpe_tokenizer):
    d = tmp_path_factory.mktemp("tiny-gpt2")
    tiny_model("gpt2", vocab_size=len(bpe_tokenizer)).save_pretrained(d)
    bpe_tokenizer.save_pretrained(d)
    return d


def sweep_toml(model_dir, wic_dir, name: str = "tiny", datasets: str | None = None, readouts: str = '["template"]',
               train_tokens: int = 3000) -> str:
    """A sweep over 2 layers x 2 components x 2 architectures of the tiny model."""
    ds = datasets or f'["wic:{wic_dir}"]'
    return f"""
name = "{name}"
model = "{model_dir}"
seed = 0
[activations]
corpus = "wordnet-definitions"
train_tokens = {train_tokens}
heldout_tokens = 500
context_size = 64
[train]
batch_size = 128
[[grid]]
hooks = ["blocks.0.hook_attn_out", "blocks.1.hook_attn_out", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
architectures = ["topk", "standard"]
expansions = [2]
k = [8]
[eval]
datasets = {ds}
readouts = {readouts}
multi_token = "last"
max_pairs = 60
"""
