"""Resampling weights are the bootstrap's draws; scoring in bf16/fp16 gives fp32's argmax up to near-ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pseval.metrics.statistics import resample_weights
from pseval.ps_eval import PSEvalSettings, score_sae
from pseval.ps_eval.intervals import NO_INTERVAL, paired_intervals
from pseval.ps_eval.scoring import sae_encoder
from tests.metrics.test_encoding_chunks import ARCHS, _pairs, _sae


@pytest.mark.parametrize("n", [1, 37, 500])
def test_weight_blocks_are_the_seeded_draws(n):
    idx = np.random.default_rng(5).integers(0, n, size=(300, n))  # resample i draws row i, pairs with replacement
    counts = np.stack([np.bincount(row, minlength=n) for row in idx]).astype(float)
    blocks = list(resample_weights(n, 300, seed=5, max_elements=n * 7))  # blocks of 7 resamples
    assert len(blocks) == 43
    assert np.array_equal(np.concatenate(blocks), counts)


def test_paired_difference_of_a_cell_with_itself_is_exactly_zero():
    pa = _pairs()
    torch.manual_seed(0)
    a = score_sae(pa, _sae("topk", None)).arrays()
    per_cell, diffs = paired_intervals([a, a], [(1, 0)], n_boot=200)
    triple = {k: (iv.value, iv.low, iv.high) for k, iv in per_cell[0].items()}
    assert all(np.array_equal(v, (lambda iv: (iv.value, iv.low, iv.high))(per_cell[1][k]), equal_nan=True)
               for k, v in triple.items())
    assert np.isfinite(triple["ps_eval.f1"]).all() and triple["ps_eval.f1"][1] < triple["ps_eval.f1"][2]
    for k, iv in diffs[0].items():
        if k in NO_INTERVAL:  # a value, no interval
            assert np.isnan(iv.low) and np.isnan(per_cell[0][k].high) and np.isfinite(per_cell[0][k].value)
            continue
        assert (iv.value, iv.low, iv.high) == (0.0, 0.0, 0.0) or np.isnan(triple[k][0]), k
    with pytest.raises(ValueError, match="same pairs"):
        b = score_sae(pa, _sae("topk", None)).arrays()
        b.same_sense = ~b.same_sense
        paired_intervals([a, b], [(1, 0)])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_argmax_equals_fp32_but_for_near_ties(arch, dtype, tmp_path, capsys):
    sae, pa = _sae(arch, tmp_path), _pairs()
    a, b = score_sae(pa, sae), score_sae(pa, sae, PSEvalSettings(dtype=dtype))
    assert sae.W_enc.dtype == torch.float32  # the caller's SAE is not converted
    f32, f16 = torch.cat([a.features_1, a.features_2]), torch.cat([b.features_1, b.features_2])
    with torch.no_grad():
        z = sae_encoder(sae)(torch.cat([pa.acts_1, pa.acts_2]))
    differ = (f32 != f16).nonzero().flatten().tolist()
    # A context may change its top feature only where fp32's two candidates are within half-precision rounding
    # (2^-8 relative for bf16) of each other: a near-tie, not a different reading.
    gaps = [float(z[i, f32[i]] - z[i, f16[i]]) / float(z[i].abs().max()) for i in differ]
    with capsys.disabled():
        print(f"\n{arch} {dtype}: {len(differ)} of {len(f32)} top features differ from fp32; relative fp32 gaps "
              f"{[round(g, 5) for g in gaps]}")
    assert all(0 <= g < 2**-7 for g in gaps), gaps
    assert len(differ) <= len(f32) // 20
