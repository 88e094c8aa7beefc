"""SAEBench compatibility: pseval's record expressed in SAEBench's own pydantic classes (needs `sae-bench`).

`saebench_output_class(record)` builds, from pseval's pydantic models, the `BaseEvalOutput` subclass SAEBench would
declare for PS-Eval (config, metric categories, per-pair details), so a record can be validated by SAEBench's own
validators: required fields, flat metric categories, category types.
"""

from __future__ import annotations

import json
import types
from typing import Any, get_args

from pydantic import BaseModel, Field, TypeAdapter
from pydantic.dataclasses import dataclass as pydantic_dataclass

from pseval.errors import MissingResourceError
from pseval.metrics.ps_eval.schema import PairOutcome, PSEvalConfigRecord, PSEvalMetricCategories, PSEvalRecord


def _sae_bench() -> Any:
    try:
        from sae_bench.evals import base_eval_output  # type: ignore[import-not-found]
    except ImportError as exc:
        raise MissingResourceError("SAEBench compatibility needs the `sae-bench` package: "
                                   "pip install --no-deps sae-bench==0.6.0 (its output classes need only pydantic)"
                                   ) from exc
    return base_eval_output


def _as_dataclass(name: str, base: type, model: type[BaseModel], fields: dict[str, Any] | None = None) -> type:
    """A pydantic dataclass subclass of a SAEBench base with the model's fields, titles and descriptions."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__annotations__": annotations, "__doc__": model.__doc__}
    for fname, f in model.model_fields.items():
        annotations[fname] = (fields or {}).get(fname, f.annotation)
        default = ... if f.is_required() else f.get_default(call_default_factory=True)
        namespace[fname] = Field(default, title=f.title, description=f.description)
    return pydantic_dataclass(type(name, (base,), namespace), kw_only=True)


def _category_type(annotation: Any) -> type[BaseModel]:
    return next(a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel))


def saebench_output_class(present_categories: list[str]) -> type:
    """SAEBench's `BaseEvalOutput` subclass for PS-Eval with the given metric categories (SAEBench forbids null
    categories, so an output class carries the categories a record has)."""
    beo = _sae_bench()
    config_cls = _as_dataclass("PSEvalSAEBenchConfig", beo.BaseEvalConfig, PSEvalConfigRecord)
    cat_fields = {}
    for name in present_categories:
        model = _category_type(PSEvalMetricCategories.model_fields[name].annotation)
        cat_fields[name] = _as_dataclass(f"PSEval_{name}", beo.BaseMetrics, model)

    categories_ns: dict[str, Any] = {"__annotations__": dict(cat_fields)}
    for name in present_categories:
        f = PSEvalMetricCategories.model_fields[name]
        categories_ns[name] = Field(..., title=f.title, description=f.description)
    categories_cls = pydantic_dataclass(type("PSEvalSAEBenchCategories", (beo.BaseMetricCategories,), categories_ns),
                                        kw_only=True)
    detail_cls = _as_dataclass("PSEvalSAEBenchDetail", beo.BaseResultDetail, PairOutcome)
    generic = beo.BaseEvalOutput[config_cls, categories_cls, detail_cls]  # type: ignore[valid-type]
    ns = {"__annotations__": {"eval_config": config_cls, "eval_id": str, "datetime_epoch_millis": int,
                              "eval_result_metrics": categories_cls, "eval_result_details": list[detail_cls],
                              "eval_type_id": str},
          "__doc__": PSEvalRecord.__doc__,
          "eval_result_details": Field(default_factory=list, title="Per-pair outcomes"),
          "eval_type_id": Field(default="ps_eval", title="Eval Type ID")}
    cls = types.new_class("PSEvalSAEBenchOutput", (generic,), exec_body=lambda body: body.update(ns))
    return pydantic_dataclass(cls, kw_only=True)


def validate_with_saebench(record: PSEvalRecord | dict[str, Any]) -> Any:
    """Validate a record (model or its JSON dict) with SAEBench's classes; returns the SAEBench object."""
    data = json.loads(record.to_json()) if isinstance(record, PSEvalRecord) else record
    present = [k for k, v in data["eval_result_metrics"].items() if v is not None]
    data = {**data, "eval_result_metrics": {k: data["eval_result_metrics"][k] for k in present}}
    return TypeAdapter(saebench_output_class(present)).validate_python(data)
