"""The demo's closing sentences: whether each trained SAE beats its random controls, in plain words."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pseval.cli.demo import plain_verdicts


def _record(name: str, verdict: str | None, mcc: float = 0.01, converged: bool | None = False,
            drop: float | None = 0.047) -> Any:
    gain = None if verdict is None else SimpleNamespace(mcc=mcc, mcc_low=mcc - 0.05, mcc_high=mcc + 0.05,
                                                        mcc_verdict=verdict)
    training = SimpleNamespace(converged=converged, fvu_last_fifth_drop=drop)
    metrics = SimpleNamespace(gain_over_control=gain, training=training)
    return SimpleNamespace(sae_name=name, eval_config=SimpleNamespace(dataset="wic:../shared/data/wic/dev"),
                           eval_result_metrics=metrics)


def test_each_verdict_is_said_in_plain_words():
    lines = plain_verdicts([_record("identity", "better"), _record("topk-x8-k32", "not distinguishable", -0.03),
                            _record("standard-x8-c2", "better", 0.08, converged=True),
                            _record("relu-bad", "worse", -0.09), _record("no-controls", None)])
    assert len(lines) == 3  # the identity and an SAE without controls get no sentence
    nd, better, worse = lines
    assert nd.startswith("topk-x8-k32 on WiC dev does NOT beat random-weight SAEs") and "MCC gain -0.030" in nd
    assert "had not converged" in nd and "4.7%" in nd
    assert "standard-x8-c2 on WiC dev beats random-weight SAEs" in better and "had converged" in better
    assert "scores BELOW random-weight SAEs" in worse and "not beat" not in worse
