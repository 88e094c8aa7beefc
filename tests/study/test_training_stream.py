"""The paper studies' training streams never hold a context their evaluation scores: no WiC dev sentence and no
WordNet usage example that a WordNet pair reads is a training text.

Known leak (the test is a strict xfail until it is fixed): 29 WordNet usage examples are also, word for word, the
definition of another synset ("a female heir", "fly a kite"), so `wordnet-definitions` trains on them; 11 of the
4,000 WordNet pairs the paper configs select (0.3%) read one of them. The fix (wordnet-definitions leaving out
definitions that are some synset's usage example) changes the stream of every SAE trained on it, so it waits until
the converged sweep launched at commit b9aa6d1 is finished: that sweep must resume under the stream it started with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pseval.data.corpus import corpus_texts
from pseval.data.sources import load_pairs
from pseval.study.sweep_config import load_sweep_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.xfail(strict=True, reason="29 WordNet usage examples are also definitions (module docstring)")
def test_no_scored_context_is_in_the_training_stream(wic_dev):
    for name in ("paper-minilm.toml", "paper-minilm-converged.toml"):
        cfg = load_sweep_config(CONFIGS / name)
        training = {_norm(t) for t in corpus_texts(cfg.corpus)}
        assert len(training) > 100_000  # the whole corpus was read
        for spec in cfg.datasets:
            contexts = {_norm(c) for p in load_pairs(spec) for c in (p.context_1, p.context_2)}
            assert len(contexts) > 500, spec
            leaked = sorted(contexts & training)
            assert not leaked, f"{name}: {len(leaked)} scored context(s) of {spec} are training texts: {leaked[:3]}"
