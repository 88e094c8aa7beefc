"""Loss recovered and KL on tiny causal and masked models, and the sentence-embedding fallback for MiniLM."""

from __future__ import annotations

import math

import pytest
import torch

from pseval.data.corpus import wordnet_texts
from pseval.metrics.loss_recovered import loss_baseline, loss_recovered, score_loss
from pseval.models.loading import LoadedModel, load_model
from pseval.models.replay import replay_block
from pseval.saes import SAEConfig, identity_sae
from pseval.saes.standard import StandardSAE
from tests.conftest import tiny_model

HOOK = "blocks.1.hook_resid_post"


def _texts():
    return (t for t in wordnet_texts() if len(t) > 30)


@pytest.fixture(scope="module")
def tiny_gpt2(bpe_tokenizer):
    return LoadedModel(tiny_model("gpt2", vocab_size=len(bpe_tokenizer)), bpe_tokenizer, "tiny-gpt2", "memory")


def test_identity_recovers_everything(tiny_gpt2):
    r = loss_recovered(tiny_gpt2, identity_sae(64), HOOK, _texts(), max_tokens=1500)
    assert r.available and r.objective == "next_token" and r.tokens > 1000
    assert r.sae_loss == pytest.approx(r.clean_loss, abs=1e-5)
    assert r.loss_recovered_zero == pytest.approx(1.0, abs=1e-4)
    assert r.kl_sae == pytest.approx(0.0, abs=1e-5)
    assert r.kl_zero_ablation > 0


def test_dead_sae_recovers_nothing_of_zero_ablation(tiny_gpt2):
    sae = StandardSAE(SAEConfig("standard", 64, 128))
    with torch.no_grad():
        sae.b_enc.fill_(-1e6)  # never fires, decodes to b_dec = 0: the same as zero ablation
    r = loss_recovered(tiny_gpt2, sae, HOOK, _texts(), max_tokens=1500)
    assert r.sae_loss == pytest.approx(r.zero_ablation_loss, rel=1e-5)
    assert r.loss_recovered_zero == pytest.approx(0.0, abs=1e-4)
    assert r.kl_sae == pytest.approx(r.kl_zero_ablation, rel=1e-4)


@pytest.mark.slow
def test_masked_lm_with_head(tmp_path, minilm):
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                        vocab_size=minilm.tokenizer.vocab_size)
    tf.BertForMaskedLM(cfg).save_pretrained(tmp_path)
    minilm.tokenizer.save_pretrained(tmp_path)
    lm = load_model(str(tmp_path))
    r = loss_recovered(lm, identity_sae(64), HOOK, _texts(), max_tokens=3000)
    assert r.available and r.objective == "masked_token" and r.tokens > 100
    assert r.loss_recovered_mean == pytest.approx(1.0, abs=1e-4)


def test_minilm_falls_back_to_its_sentence_embedding(minilm):
    hook = "blocks.3.hook_resid_post"
    r = loss_recovered(minilm, identity_sae(384), hook, _texts(), max_tokens=500)
    assert r.available and r.objective == "sentence_embedding" and "no masked-LM head" in r.reason
    assert r.tokens > 300 and r.clean_loss == 0.0 and math.isnan(r.kl_sae)
    assert r.sae_loss == pytest.approx(0.0, abs=1e-6)  # identity reconstruction changes nothing
    assert r.zero_ablation_loss > 0.01 and r.loss_recovered_zero == pytest.approx(1.0, abs=1e-4)

    dead = StandardSAE(SAEConfig("standard", 384, 768))
    with torch.no_grad():
        dead.b_enc.fill_(-1e6)  # decodes to b_dec = 0 everywhere: zero ablation
    r0 = loss_recovered(minilm, dead, hook, _texts(), max_tokens=500)
    assert r0.sae_loss == pytest.approx(r.zero_ablation_loss, rel=1e-6)
    assert r0.loss_recovered_zero == pytest.approx(0.0, abs=1e-6)


def test_sentence_embedding_loss_matches_an_independent_computation(minilm):
    from pseval.models.splice import spliced

    hook = "blocks.2.hook_mlp_out"
    text = "The bank raised its interest rates again."
    r = loss_recovered(minilm, identity_sae(384), hook, iter([text]), max_tokens=100)
    enc = minilm.tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    content = ~enc["special_tokens_mask"].bool()
    with torch.no_grad():
        clean = minilm.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        with spliced(minilm.model, hook, torch.zeros_like, lambda: content):
            zero = minilm.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    expect = 1 - torch.nn.functional.cosine_similarity(clean.double().mean(1), zero.double().mean(1)).item()
    assert r.zero_ablation_loss == pytest.approx(expect, rel=1e-5)


def _random_sae(d: int, seed: int) -> StandardSAE:
    g = torch.Generator().manual_seed(seed)
    sae = StandardSAE(SAEConfig("standard", d, 2 * d))
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return sae


@pytest.mark.parametrize("family", ["gpt2", "gpt_neox", "llama"])
@pytest.mark.parametrize("hook", ["blocks.1.hook_resid_post", "blocks.2.hook_resid_pre", "blocks.1.hook_attn_out",
                                  "blocks.2.hook_mlp_out"])
def test_shared_baseline_with_replay_gives_each_sae_its_own_numbers(bpe_tokenizer, family, hook):
    """Three SAEs scored against one baseline whose runs start after the hook's block give the numbers each SAE gets
    from its own baseline with every block run (the way it was before)."""
    lm = LoadedModel(tiny_model(family, vocab_size=len(bpe_tokenizer)), bpe_tokenizer, f"tiny-{family}", "memory")
    saes = [_random_sae(64, s) for s in range(3)]
    shared = loss_baseline(lm, hook, _texts(), max_tokens=600)
    assert shared.replay == replay_block(lm.model, hook) is not None  # the replay was checked and kept
    assert all(b.resume is not None for b in shared.batches)
    for sae in saes:
        got = score_loss(shared, sae)
        want = score_loss(loss_baseline(lm, hook, _texts(), max_tokens=600, replay=False), sae)
        for f in ("sae_loss", "clean_loss", "zero_ablation_loss", "mean_ablation_loss", "kl_sae", "kl_zero_ablation",
                  "loss_recovered_zero", "loss_recovered_mean"):
            assert getattr(got, f) == pytest.approx(getattr(want, f), rel=1e-5, abs=1e-6), f
        assert got.tokens == want.tokens > 400 and 0 < got.kl_sae


def test_clean_outputs_beyond_the_memory_bound_are_recomputed(tiny_gpt2):
    """With nothing kept (keep_bytes 0) every clean output is recomputed per SAE: the same numbers."""
    sae = _random_sae(64, 7)
    kept = loss_baseline(tiny_gpt2, HOOK, _texts(), max_tokens=800)
    none_kept = loss_baseline(tiny_gpt2, HOOK, _texts(), max_tokens=800, keep_bytes=0)
    assert all(b.clean is not None for b in kept.batches) and all(b.clean is None for b in none_kept.batches)
    assert all(b.resume is None for b in none_kept.batches)
    a, b = score_loss(kept, sae), score_loss(none_kept, sae)
    assert a.kl_sae == pytest.approx(b.kl_sae, rel=1e-5) and a.sae_loss == pytest.approx(b.sae_loss, rel=1e-6)


def test_one_tokeniser_for_the_activation_stream_and_loss_recovered(tiny_gpt2):
    """Loss recovered counts the same content tokens, in the same texts and order, as the activation stream."""
    from pseval.training.activations import StreamConfig, stream_activations

    hook = "blocks.1.hook_resid_post"
    texts = [t for _, t in zip(range(200), _texts(), strict=False)]
    base = loss_baseline(tiny_gpt2, hook, iter(texts), max_tokens=10**9)
    streamed = sum(int(b[hook].shape[0]) for b in stream_activations(tiny_gpt2, iter(texts), [hook],
                                                                      StreamConfig(max_tokens=10**9)))
    dropped = sum(1 for t in texts if len(tiny_gpt2.tokenizer(t)["input_ids"]) + 1 < 3)  # BOS + fewer than 2
    assert dropped == 0 and base.tokens == streamed
    first = base.batches[0]
    assert bool((first.input_ids[:, 0] == tiny_gpt2.tokenizer.bos_token_id).all())  # BOS first, as the stream has it
