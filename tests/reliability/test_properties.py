"""Property tests: span-to-token mapping on the real tokenizer, and confusion-matrix identities."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pseval.metrics.confusion import Confusion
from pseval.models.readout import ReadoutConfig, plan_readouts

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(WORDS, min_size=1, max_size=12), data=st.data(),
       punct=st.sampled_from(["", ".", ",", "!", "'s"]))
def test_span_maps_to_exactly_the_word(minilm, words, data, punct):
    tok = minilm.tokenizer
    i = data.draw(st.integers(0, len(words) - 1))
    words = [*words[:i], words[i] + punct, *words[i + 1:]]
    text = " ".join(words)
    start = sum(len(w) + 1 for w in words[:i])
    span = (start, start + len(words[i]) - len(punct))
    (plan,) = plan_readouts(tok, [(text, span)], ReadoutConfig(position="context", multi_token="mean"), False, 512)
    assert plan.drop is None
    pieces = tok.convert_ids_to_tokens([plan.input_ids[p] for p in plan.positions])
    assert "".join(p.removeprefix("##") for p in pieces) == words[i][: len(words[i]) - len(punct)]
    assert plan.positions == tuple(range(plan.positions[0], plan.positions[-1] + 1))  # contiguous


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_confusion_identities(tp, fp, tn, fn):
    c = Confusion(tp, fp, tn, fn)
    if c.total:
        assert math.isclose(c.accuracy, (tp + tn) / c.total)
    if tp + fn and tn + fp:
        # Balanced accuracy is the mean of recall and specificity; accuracy equals it when classes are balanced.
        if tp + fn == tn + fp:
            assert math.isclose(c.accuracy, (c.recall + c.specificity) / 2)
    if tp:
        assert math.isclose(1 / c.f1, (1 / c.precision + 1 / c.recall) / 2)
    swapped = Confusion(tn, fn, tp, fp)  # relabel: negative class becomes positive
    if tp + fn and tn + fp:
        assert math.isclose(swapped.recall, c.specificity) and math.isclose(swapped.specificity, c.recall)
