"""A record's (architecture, expansion ratio), the keys the report's width plots and the width claim group by."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pseval.ps_eval.rows import architecture_of


def _record(cfg: dict[str, Any]) -> Any:
    return SimpleNamespace(sae_cfg_dict=cfg)


def test_a_foreign_sae_keeps_its_exact_width_ratio():
    """Widths 768 and 1024 of a 384-wide model are x2 and x2.67: floored, both were x2 and one hid the other."""
    narrow = architecture_of(_record({"architecture": "topk", "d_in": 384, "d_sae": 768, "metadata": {}}))
    wide = architecture_of(_record({"architecture": "topk", "d_in": 384, "d_sae": 1024, "metadata": {}}))
    assert narrow == ("topk", 2.0)
    assert wide[0] == "topk" and abs(wide[1] - 1024 / 384) < 1e-12


def test_a_pseval_trained_sae_reads_its_training_architecture_and_expansion():
    """A BatchTopK SAE is saved as jumprelu: the training config names what it was."""
    cfg = {"architecture": "jumprelu", "d_in": 384, "d_sae": 3072,
           "metadata": {"train_config": {"architecture": "batchtopk", "expansion": 8}}}
    assert architecture_of(_record(cfg)) == ("batchtopk", 8.0)
