"""The paper studies' training streams never hold a context their evaluation scores: no WiC dev sentence and no
WordNet usage example that a WordNet pair reads is a training text.

29 WordNet usage examples are also, word for word, the definition of another synset ("a female heir", "fly a kite");
revision 1 of `wordnet-definitions` trained on them and 11 of the 4,000 WordNet pairs the paper configs select read
one. Revision 2 leaves them out (pseval.data.corpus.CORPUS_REVISIONS).
"""

from __future__ import annotations

from pathlib import Path

from pseval.data.corpus import corpus_texts
from pseval.data.sources import load_pairs
from pseval.study.sweep_config import load_sweep_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


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
