"""PS-Eval metric formulas on hand-made confusion matrices, and properties over random ones."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from pseval.metrics.confusion import Confusion


def test_hand_made_matrix():
    c = Confusion(tp=30, fp=10, tn=50, fn=10)
    assert c.total == 100
    assert c.accuracy == 0.8
    assert c.precision == 0.75
    assert c.recall == 0.75
    assert c.specificity == 50 / 60
    assert c.f1 == 60 / 80
    m = c.metrics()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (30, 10, 50, 10)


def test_degenerate_matrices():
    always_same = Confusion(tp=5, fp=5, tn=0, fn=0)  # e.g. every code all-zero -> feature 0 everywhere
    assert always_same.recall == 1.0 and always_same.specificity == 0.0 and always_same.precision == 0.5
    never_same = Confusion(tp=0, fp=0, tn=5, fn=5)
    assert math.isnan(never_same.precision) and never_same.f1 == 0.0 and never_same.specificity == 1.0
    assert math.isnan(Confusion(0, 0, 0, 0).accuracy)


def test_from_predictions():
    c = Confusion.from_predictions([True, True, False, False, True], [True, False, True, False, True])
    assert (c.tp, c.fn, c.fp, c.tn) == (2, 1, 1, 1)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200))
def test_properties(rows):
    c = Confusion.from_predictions([y for y, _ in rows], [p for _, p in rows])
    assert c.total == len(rows)
    assert c.tp + c.fn == sum(y for y, _ in rows)
    assert 0.0 <= c.accuracy <= 1.0
    if c.tp + c.fp + c.fn:
        f1 = c.f1
        assert 0.0 <= f1 <= 1.0
        if c.tp:  # F1 is the harmonic mean of precision and recall
            assert math.isclose(f1, 2 * c.precision * c.recall / (c.precision + c.recall))
    # Swapping predictions for negatives turns TN into FP, never changing recall.
    flipped = Confusion(c.tp, c.fp + c.tn, 0, c.fn)
    assert flipped.recall == c.recall or math.isnan(c.recall)
