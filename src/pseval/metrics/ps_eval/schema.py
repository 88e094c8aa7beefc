"""PS-Eval results as JSON shaped like SAEBench's (one object per SAE and evaluation)."""

from __future__ import annotations

import json
import math
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from pseval.metrics.ps_eval.config import PSEvalConfig
from pseval.metrics.ps_eval.runner import PSEvalResult
from pseval.provenance import provenance
from pseval.saes.base import SAE

EVAL_TYPE_ID = "ps_eval"


def _clean(x: Any) -> Any:
    """NaN and inf become null so the file is strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def result_record(result: PSEvalResult, sae: SAE, sae_name: str, model_name: str, hook: str, data_spec: str,
                  data_hash: str, cfg: PSEvalConfig, extra_metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON object for one (SAE, hook, dataset, readout) evaluation."""
    config = {"model_name": model_name, "hook_name": hook, "sae": sae_name, "dataset": data_spec,
              "dataset_hash": data_hash, **cfg.to_dict()}
    metrics = result.metrics
    prov = provenance()
    record: dict[str, Any] = {
        "eval_type_id": EVAL_TYPE_ID,
        "eval_id": str(uuid.uuid4()),
        "datetime_epoch_millis": prov.pop("datetime_epoch_millis"),
        "eval_config": config,
        "eval_result_metrics": {"ps_eval": metrics, "feature_cosine": result.cosine, **(extra_metrics or {})},
        "eval_result_details": [],
        "eval_result_unstructured": {"counts": result.counts},
        "sae_cfg_dict": sae.cfg.to_dict(),
        "sae_lens_id": sae_name,
        "sae_lens_release_id": None,
        # Plain views of the same numbers for readers that do not know SAEBench's nesting.
        "metrics": metrics,
        "counts": result.counts,
        "config": config,
        **prov,
    }
    return _clean(record)


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write JSON through a temp file and rename, so a crash never leaves a half-written file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=p.parent, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
        json.dump(_clean(obj), tmp, indent=2)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, p)
    return p
