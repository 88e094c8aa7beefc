"""Records of foreign SAEs (SAELens-format folders pseval did not train) for the report tests: 2 hooks x 2 widths of
random SAEs on MiniLM, scored by pseval.evaluate on WiC dev, and written the three ways a report reads them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import pseval
from pseval.integrations.saebench import results_filepath
from pseval.ps_eval.record import PSEvalRecord
from pseval.saes import save_sae
from pseval.saes.config import SAEConfig, SAEMetadata
from pseval.saes.standard import StandardSAE
from pseval.study.store import ResultsStore

WIDTHS = (768, 1536)
LAYERS = (2, 3)


def neuronpedia_of(layer: int, width: int) -> str | None:
    """The narrow SAEs carry a Neuronpedia id, the wide ones none (links and plain text in one report)."""
    return f"minilm/{layer}-res-x{width // 384}" if width == WIDTHS[0] else None


def foreign_records(root: Path, wic_dev: Path) -> list[PSEvalRecord]:
    """Save the four SAEs with SAELens metadata under root/saes and score them."""
    paths = []
    for layer in LAYERS:
        for width in WIDTHS:
            torch.manual_seed(layer * 10_000 + width)
            meta = SAEMetadata(model_name="minilm", hook_name=f"blocks.{layer}.hook_resid_post",
                               neuronpedia_id=neuronpedia_of(layer, width))
            sae = StandardSAE(SAEConfig("standard", 384, width, metadata=meta))
            paths.append(str(save_sae(sae, root / "saes" / f"L{layer}-w{width}")))
    ev = pseval.evaluate("minilm", paths, data=f"wic:{wic_dev}", max_pairs=80, controls=0, reconstruction_tokens=256,
                         loss_recovered_tokens=0, bootstrap_resamples=50)
    return ev.records


def write_store(records: list[PSEvalRecord], folder: Path) -> Path:
    """An eval --out folder: the sweep's store of cells, without sweep.json."""
    store = ResultsStore(folder)
    for r in records:
        assert store.put(r)
    return folder


def write_saebench(records: list[PSEvalRecord], folder: Path) -> Path:
    """SAEBench's layout: eval_results/ps_eval/<release>_<sae>_eval_results.json, another eval's result beside."""
    for r in records:
        path = results_filepath(folder / "eval_results" / "ps_eval", "local", r.sae_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(r.to_json())
    core = folder / "eval_results" / "core" / "local_x_eval_results.json"
    core.parent.mkdir(parents=True)
    core.write_text(json.dumps({"eval_type_id": "core", "eval_result_metrics": {}}))
    return folder
