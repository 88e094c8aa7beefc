"""One pinned file of result numbers: MiniLM's own neurons (identity) on WiC dev, every metric the record holds.

A change that moves any of these numbers must be deliberate: re-pin with `PSEVAL_REPIN=1 pytest
tests/regression` and say why in the commit. (Independent computations elsewhere check that the numbers are right;
this file checks that they stay put.)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from pseval.ps_eval import PSEvalSettings
from pseval.ps_eval.pipeline import SAEEntry, cell_id, evaluate, prepare_pairs
from pseval.saes import identity_sae

pytestmark = pytest.mark.slow

PINNED = Path(__file__).with_name("minilm_identity_wic_dev.json")
HOOK = "blocks.3.hook_resid_post"
# Settings, selection and every metric category; not the run's id, time, versions or the file path of the data.
KEPT_CONFIG = ("model_name", "hook_name", "dataset_hash", "max_pairs", "seed", "pairs_available", "pairs_selected",
               "selection_hash", "protocol", "readout", "template", "multi_token", "too_long", "balance", "top_k",
               "exclude_dense", "dtype", "bootstrap_resamples", "bootstrap_seed")


def _numbers(minilm, wic_dev) -> dict:
    sae = identity_sae(minilm.d_model, "minilm", HOOK)
    (rec,) = evaluate(minilm, "minilm", [SAEEntry.of(sae, "identity", HOOK, "identity", "identity:384")],
                      prepare_pairs(f"wic:{wic_dev}", None, 0), PSEvalSettings())
    data = json.loads(rec.to_json())
    # Run with the default random controls on: they must not move a pinned number. Controls enter the cell key;
    # without them the key is the pinned one.
    no_controls = cell_id(rec.eval_config.model_copy(update={"controls": 0}), rec.sae_fingerprint)
    return {"eval_config": {k: data["eval_config"][k] for k in KEPT_CONFIG},
            "eval_result_metrics": data["eval_result_metrics"], "cell_id": no_controls,
            "outcomes": "".join(d["outcome"][0] for d in data["eval_result_details"])}


# Fields added after the file was pinned (chance, controls, gains, MCC): present now, not pinned; every pinned field
# must still be there with its pinned value.
ADDED = {"chance", "controls", "gain_over_control", "mcc", "balanced_accuracy", "mcc_low", "mcc_high",
         "balanced_accuracy_low", "balanced_accuracy_high"}


def _close(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert set(a) == set(b) - ADDED, f"{where}: fields {sorted(set(a) ^ (set(b) - ADDED))}"
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), f"{where}: pinned {a}, now {b}"
    else:
        assert a == b, f"{where}: pinned {a!r}, now {b!r}"


def test_minilm_identity_on_wic_dev_is_pinned(minilm, wic_dev):
    now = _numbers(minilm, wic_dev)
    assert now["eval_result_metrics"]["gain_over_control"] is not None  # the controls did run
    if os.environ.get("PSEVAL_REPIN") == "1":
        PINNED.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    _close(json.loads(PINNED.read_text()), now, "record")
