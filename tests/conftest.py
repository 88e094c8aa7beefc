"""Shared fixtures: the real MiniLM, real WordNet, ../shared data, and tiny in-process models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
WIC_DEV = SHARED / "data" / "wic" / "dev"
WIC_TRAIN = SHARED / "data" / "wic" / "train"


def require_shared(path: Path) -> Path:
    """Shared data: fail in CI when it is missing, skip elsewhere."""
    if not path.exists():
        msg = f"shared data {path} is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def wic_dev() -> Path:
    """The WiC dev split folder."""
    return require_shared(WIC_DEV)


@pytest.fixture(scope="session")
def minilm():
    """The real embedded all-MiniLM-L6-v2."""
    from pseval.models.loading import load_model

    return load_model("minilm")


@pytest.fixture(scope="session")
def wordnet_source():
    """The installed WordNet 3.0 (make test installs wordnet-base)."""
    from pseval.data.wordnet import find_wordnet

    return find_wordnet()


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """A small byte-level BPE tokenizer (GPT-2 style, with <|endoftext|> as BOS) trained here on WordNet text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from pseval.data.corpus import wordnet_texts

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = [t for _, t in zip(range(20000), wordnet_texts(), strict=False)]
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")


def tiny_model(family: str, vocab_size: int = 2000):
    """A randomly initialised 3-layer model of a family, built in-process."""
    import transformers as tf

    torch.manual_seed(0)
    common = {"vocab_size": vocab_size, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
    if family == "gpt2":
        cfg = tf.GPT2Config(n_layer=3, n_embd=64, n_head=4, n_positions=128, **common)
        return tf.GPT2LMHeadModel(cfg).eval()
    if family == "gpt_neox":
        cfg = tf.GPTNeoXConfig(num_hidden_layers=3, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                               max_position_embeddings=128, **common)
        return tf.GPTNeoXForCausalLM(cfg).eval()
    if family == "llama":
        cfg = tf.LlamaConfig(num_hidden_layers=3, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                             intermediate_size=128, max_position_embeddings=128, **common)
        return tf.LlamaForCausalLM(cfg).eval()
    if family == "gemma2":
        cfg = tf.Gemma2Config(num_hidden_layers=3, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                              head_dim=16, intermediate_size=128, max_position_embeddings=128, **common)
        return tf.Gemma2ForCausalLM(cfg).eval()
    if family == "qwen2":
        cfg = tf.Qwen2Config(num_hidden_layers=3, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                             intermediate_size=128, max_position_embeddings=128, **common)
        return tf.Qwen2ForCausalLM(cfg).eval()
    if family == "bert":
        cfg = tf.BertConfig(num_hidden_layers=3, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                            max_position_embeddings=128, **common)
        return tf.BertModel(cfg).eval()
    raise ValueError(family)


FAMILIES = ("gpt2", "gpt_neox", "llama", "gemma2", "qwen2", "bert")

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
