"""Encoding in budgeted chunks changes nothing: top features, similarities, firing counts, every PS-Eval statistic,
the reconstruction metrics and the spliced reconstruction, for every architecture; and the budget is in no key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pseval.errors import ConfigError
from pseval.metrics.encoding import BYTES_PER_LATENT, ROW_ALIGN, chunk_rows, parse_bytes, reconstruct
from pseval.metrics.reconstruction import reconstruction_metrics
from pseval.ps_eval import PSEvalSettings, score_sae
from pseval.ps_eval.cache import cache_key
from pseval.ps_eval.pipeline import cell_id, config_record
from pseval.ps_eval.scoring import PairActivations
from pseval.saes import SAEConfig, get_sae_class, identity_sae, save_sae
from pseval.saes.conventions import from_sae_output, to_sae_input
from pseval.saes.loading import load_sae

D_IN, D_SAE, N = 24, 96, 60
ARCHS = ["standard", "topk", "batchtopk-as-jumprelu", "jumprelu", "gated", "identity"]


def _sae(arch: str, tmp_path):
    if arch == "identity":
        return identity_sae(D_IN)
    name = "batchtopk" if arch == "batchtopk-as-jumprelu" else arch
    sae = get_sae_class(name)(SAEConfig(name, D_IN, D_SAE, k=6 if name in ("topk", "batchtopk") else None))
    gen = torch.Generator().manual_seed(3)
    for w in sae.weight_names():
        t = torch.randn(sae.get_weight(w).shape, generator=gen) * 0.3
        sae.set_weight(w, t.abs() if w == "threshold" else t)
    if arch == "batchtopk-as-jumprelu":  # as saved: a JumpReLU with the learned global threshold
        save_sae(sae, tmp_path / "btk")
        sae = load_sae(str(tmp_path / "btk"))
        assert sae.architecture == "jumprelu"
    return sae


def _pairs() -> PairActivations:
    gen = torch.Generator().manual_seed(0)
    a1, a2 = torch.randn(N, D_IN, generator=gen), torch.randn(N, D_IN, generator=gen)
    a2[: N // 2] = a1[: N // 2] + 0.3 * a2[: N // 2]  # half the pairs: similar contexts
    a1[5] = 0.0  # an all-zero context
    same = torch.rand(N, generator=gen) < 0.5
    return PairActivations("h", a1, a2, same, list(range(N)), {})


def test_chunk_rows_counts_d_sae_and_pairs():
    # Rows that fit the budget, rounded down to whole ROW_ALIGN blocks of encoded rows (two per pair).
    assert chunk_rows(1000, BYTES_PER_LATENT * 1000 * 40) == 32
    assert chunk_rows(1000, BYTES_PER_LATENT * 1000 * 2 * 40, per_row=2) == 40
    assert chunk_rows(2000, BYTES_PER_LATENT * 1000 * 2 * 40, per_row=2) == 16
    assert chunk_rows(1000, 1) == ROW_ALIGN and chunk_rows(1000, 1, per_row=2) == ROW_ALIGN // 2  # never empty
    assert chunk_rows(10, 2**30, cap=64) == 64 and chunk_rows(10, 2**30, cap=7) == ROW_ALIGN
    assert parse_bytes("512MiB") == 512 * 2**20 == parse_bytes("512m") and parse_bytes("2GiB") == 2**31
    with pytest.raises(ConfigError, match="memory budget"):
        parse_bytes("lots")


@pytest.mark.parametrize("arch", ARCHS)
def test_chunked_encode_changes_nothing(arch, tmp_path):
    sae, pa = _sae(arch, tmp_path), _pairs()
    whole = PSEvalSettings(exclude_dense=0.3, memory_budget=2**30, encode_chunk=10**6)
    tiny = PSEvalSettings(exclude_dense=0.3, memory_budget=1)  # the smallest chunks: 8 pairs, the last one padded
    assert chunk_rows(sae.d_sae, tiny.memory_budget, per_row=2) == ROW_ALIGN // 2 < N // 4
    a, b = score_sae(pa, sae, whole), score_sae(pa, sae, tiny)
    assert torch.equal(a.features_1, b.features_1) and torch.equal(a.features_2, b.features_2)
    assert a.confusion == b.confusion and a.counts == b.counts
    assert np.array_equal(a.codes.cosine, b.codes.cosine) and np.array_equal(a.codes.jaccard, b.codes.jaccard)
    assert torch.equal(a.codes.fires, b.codes.fires)
    assert a.robust.excluded == b.robust.excluded
    if a.robust.features_1 is not None:
        assert torch.equal(a.robust.features_1, b.robust.features_1)
    sa, sb = a.statistics(), b.statistics()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k] == sb[k] or (np.isnan(sa[k]) and np.isnan(sb[k])), k
    # The codes are non-trivial: several distinct top features and similarities.
    assert len(set(a.features_1.tolist())) > 3 and len(set(a.codes.cosine.tolist())) > 10
    # Reconstruction metrics and the spliced reconstruction, chunk by chunk.
    x = torch.cat([pa.acts_1, pa.acts_2])
    r1 = reconstruction_metrics(sae, x, budget=2**30).to_dict()
    r2 = reconstruction_metrics(sae, x, budget=1).to_dict()
    for k in r1:
        assert r1[k] == pytest.approx(r2[k], rel=1e-12, abs=1e-12), k
    h = x.reshape(4, N // 2, D_IN)
    full = from_sae_output(sae(to_sae_input(h, sae)), h, sae)
    assert torch.equal(reconstruct(sae, h, budget=1), full)


def test_budget_is_in_no_key():
    from pseval.data.pairs import WordInContextPair
    from pseval.ps_eval.pipeline import prepare_pairs

    pairs = [WordInContextPair("bank", "n", "a bank", "the bank", None, None, True, "x")]
    data = prepare_pairs("memory", None, 0, pairs)
    small, big = PSEvalSettings(memory_budget=1), PSEvalSettings(memory_budget=2**34)
    assert cell_id(config_record("m", "h", data, small), "f") == cell_id(config_record("m", "h", data, big), "f")
    assert cache_key("m", "h", "d", small) == cache_key("m", "h", "d", big)
    # Settings that change the numbers change the cell, not the collected activations.
    for changed in (PSEvalSettings(top_k=4), PSEvalSettings(dtype="bfloat16"), PSEvalSettings(bootstrap_resamples=200),
                    PSEvalSettings(exclude_dense=0.2), PSEvalSettings(bootstrap_seed=1)):
        assert cell_id(config_record("m", "h", data, changed), "f") != cell_id(config_record("m", "h", data, big), "f")
        assert cache_key("m", "h", "d", changed) == cache_key("m", "h", "d", big)
