"""Training curves (scripts/training_curves.py): measured with the sweep's trainer, written as CSV and PNG, and read
back from a sweep folder's SAEs."""

from __future__ import annotations

import csv

from pseval.study.curves import CURVE_COLUMNS, curve_rows_from_store, measure_curves
from pseval.study.sweep_config import parse_sweep
from pseval.training.run import TrainJob, TrainRequest, run_training
from pseval.training.trainer import TrainConfig, probe_steps

HOOK = "blocks.1.hook_resid_post"


def test_measure_curves_writes_one_row_per_probe(tmp_path):
    cfg = parse_sweep({"name": "t", "activations": {"train_tokens": 3000, "heldout_tokens": 500},
                       "train": {"batch_size": 256},
                       "grid": [{"hooks": [HOOK], "architectures": ["topk", "standard"], "expansions": [2]}],
                       "eval": {"datasets": ["wordnet"]}})
    curves, summary = measure_curves(cfg, [HOOK], 3000, tmp_path, ["topk-*"], probes=5, log=lambda _: None)
    assert [s["sae"] for s in summary] == ["topk-x2-k32"]  # the glob left the standard SAE out
    steps = 3000 // 256
    assert [c["step"] for c in curves] == sorted(probe_steps(steps, 5))
    assert summary[0]["train_tokens"] == steps * 256 and summary[0]["tokens_per_s"] > 0
    with open(tmp_path / "curves.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CURVE_COLUMNS and len(rows) == len(curves)
    assert float(rows[-1]["fvu"]) == summary[0]["fvu_final"]
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) < 200_000


def test_curves_read_back_from_a_sweep_folder(tmp_path):
    cfg = TrainConfig("topk", expansion=2, k=8, batch_size=256, seed=0)
    folder = tmp_path / "saes" / HOOK / cfg.label
    req = TrainRequest(model="minilm", corpus="wordnet-definitions", tokens=3000, heldout_tokens=500,
                       jobs=[TrainJob(HOOK, cfg, folder)], checkpoint_root=tmp_path / ".ckpt")
    run_training(req, log=lambda _: None, progress=False)
    rows = curve_rows_from_store(tmp_path)
    assert {r["sae"] for r in rows} == {cfg.label} and {r["hook"] for r in rows} == {HOOK}
    assert [r["tokens"] for r in rows] == [s * 256 for s in sorted(probe_steps(3000 // 256))]
