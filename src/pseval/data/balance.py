"""Class balancing of PS-Eval pairs: which valid pairs are scored."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, get_args

from pseval.errors import ConfigError

# reference: the reference code's rule (gouki510/PS-Eval `wic_eval.py`): every valid different-sense pair is kept
#   (cnt_0 of them); of the same-sense pairs only the first cnt_0 rows in file order are looked at, valid or not,
#   and the valid ones among them are kept, so the same-sense class can end up smaller. `paper` is an alias.
# valid-prefix: the first cnt_0 *valid* same-sense pairs (what pseval called `paper` before; equal classes when it
#   can).
# exact: a seeded random subsample of each class to the smaller class's size. none: every valid pair.
Balance = Literal["reference", "paper", "valid-prefix", "exact", "none"]
BALANCE_RULES: tuple[str, ...] = get_args(Balance)
BALANCE_ALIASES = {"paper": "reference"}


def canonical_balance(rule: str) -> str:
    """The rule a name stands for (`paper` is `reference`); a ConfigError names the allowed values."""
    if rule not in BALANCE_RULES:
        raise ConfigError(f"balance={rule!r}; expected one of {', '.join(BALANCE_RULES)}")
    return BALANCE_ALIASES.get(rule, rule)


def balance_pairs(labels: Sequence[bool], valid: Sequence[bool], rule: str, seed: int = 0) -> list[int]:
    """Indices (into all pairs, in file order) of the pairs scored; `labels` is same-sense, `valid` readable."""
    if len(labels) != len(valid):
        raise ValueError(f"{len(labels)} labels for {len(valid)} validity flags")
    rule = canonical_balance(rule)
    ok = [i for i, v in enumerate(valid) if v]
    same = [i for i in ok if labels[i]]
    diff = [i for i in ok if not labels[i]]
    if rule == "none":
        return ok
    if rule == "reference":
        # range(len(df_label1))[:cnt_0]: the first cnt_0 same-sense rows of the whole file, valid or not.
        looked_at = set([i for i, y in enumerate(labels) if y][: len(diff)])
        keep = set(diff) | {i for i in same if i in looked_at}
    elif rule == "valid-prefix":
        keep = set(diff) | set(same[: len(diff)])
    else:
        n = min(len(same), len(diff))
        rng = random.Random(seed)
        keep = set(rng.sample(same, n)) | set(rng.sample(diff, n))
    return [i for i in ok if i in keep]
