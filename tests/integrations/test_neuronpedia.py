"""Neuronpedia ids from the real SAELens release directory (`make test-integrations`)."""

from __future__ import annotations

import pytest

from pseval.neuronpedia import feature_url, release_neuronpedia_id

pytestmark = pytest.mark.integration


def test_a_saelens_release_gives_its_neuronpedia_id():
    directory = pytest.importorskip("sae_lens.loading.pretrained_saes_directory").get_pretrained_saes_directory()
    entry = directory["gpt2-small-res-jb"]
    want = entry.neuronpedia_id["blocks.0.hook_resid_pre"]
    assert want  # the directory's own value, read independently of pseval
    assert release_neuronpedia_id("gpt2-small-res-jb", "blocks.0.hook_resid_pre") == want
    assert feature_url(want, 42) == f"https://www.neuronpedia.org/{want}/42"
    assert release_neuronpedia_id("gpt2-small-res-jb", "no-such-sae") is None
    assert release_neuronpedia_id("no-such-release", "blocks.0.hook_resid_pre") is None
