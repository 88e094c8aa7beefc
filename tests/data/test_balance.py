"""Class-balancing rules on hand-made label orders."""

from __future__ import annotations

import pytest

from pseval.data.balance import BALANCE_RULES, balance_pairs, canonical_balance
from pseval.errors import ConfigError
from pseval.ps_eval.settings import PSEvalSettings

# File order: S = same sense, D = different; lower case = invalid (dropped by the readout).
ORDER = "SsDSDsSDS"
LABELS = [c in "Ss" for c in ORDER]
VALID = [c.isupper() for c in ORDER]


def test_reference_looks_at_the_first_cnt0_same_sense_rows_valid_or_not():
    # cnt_0 = 3 valid D (2, 4, 7); the first 3 S rows are 0, 1 (invalid), 3, so 6 and 8 are never looked at.
    assert balance_pairs(LABELS, VALID, "reference") == [0, 2, 3, 4, 7]
    assert balance_pairs(LABELS, VALID, "paper") == balance_pairs(LABELS, VALID, "reference")


def test_valid_prefix_none_and_exact():
    assert balance_pairs(LABELS, VALID, "valid-prefix") == [0, 2, 3, 4, 6, 7]
    assert balance_pairs(LABELS, VALID, "none") == [0, 2, 3, 4, 6, 7, 8]
    exact = balance_pairs(LABELS, VALID, "exact", seed=3)
    assert exact == balance_pairs(LABELS, VALID, "exact", seed=3)
    assert all(VALID[i] for i in exact)
    assert sum(LABELS[i] for i in exact) == 3 == sum(not LABELS[i] for i in exact)


def test_reference_can_score_fewer_same_than_different_and_never_reads_invalid_rows():
    labels = [True, True, False, False, True]
    valid = [False, False, True, True, True]
    assert balance_pairs(labels, valid, "reference") == [2, 3]
    assert balance_pairs(labels, valid, "valid-prefix") == [2, 3, 4]


def test_names_and_errors():
    assert set(BALANCE_RULES) == {"reference", "paper", "valid-prefix", "exact", "none"}
    assert canonical_balance("paper") == "reference"
    assert PSEvalSettings(balance="paper").balance == "reference" == PSEvalSettings().balance
    with pytest.raises(ConfigError, match="valid-prefix"):
        PSEvalSettings(balance="equal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3 labels for 2"):
        balance_pairs([True, False, True], [True, True], "none")
