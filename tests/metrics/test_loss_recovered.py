"""Loss recovered and KL on tiny causal and masked models, and the honest 'unavailable' for MiniLM."""

from __future__ import annotations

import math

import pytest
import torch

from pseval.data.corpus import wordnet_texts
from pseval.metrics.loss_recovered import loss_recovered
from pseval.models.loading import LoadedModel, load_model
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


def test_minilm_has_no_head(minilm):
    r = loss_recovered(minilm, identity_sae(384), "blocks.3.hook_resid_post", _texts(), max_tokens=500)
    assert not r.available and "no masked-LM head" in r.reason and math.isnan(r.loss_recovered_zero)
