"""SAEBench compatibility: PS-Eval as a SAEBench eval, and pseval's record in SAEBench's own pydantic classes.

`run_eval(config, selected_saes, device, output_path, force_rerun)` has the signature of SAEBench's evals (e.g.
`sae_bench.evals.absorption.main.run_eval`): `selected_saes` lists `(release, sae_id)` pairs (loaded through SAELens'
release directory) or `(name, SAE object)` pairs, each result goes to `{release}_{sae_id}_eval_results.json`
(`sae_id` = `custom_sae` for objects, as SAEBench names them), and finished files are skipped unless forced.

`saebench_output_class(record)` builds, from pseval's pydantic models, the `BaseEvalOutput` subclass SAEBench would
declare for PS-Eval (config, metric categories, per-pair details), so a record can be validated by SAEBench's own
validators: required fields, flat metric categories, category types. Only `validate_with_saebench` needs `sae-bench`.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, TypeAdapter, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from pseval.data.sources import DEFAULT_DATA
from pseval.errors import ConfigError, MissingResourceError
from pseval.files import check_writable, write_atomic
from pseval.logs import get_logger
from pseval.models.model_dtype import recorded_model_dtype
from pseval.ps_eval.record import (
    NOT_SAE_BENCH,
    PairOutcome,
    PSEvalConfigRecord,
    PSEvalMetricCategories,
    PSEvalRecord,
)
from pseval.ps_eval.settings import PSEvalSettings


def _sae_bench() -> Any:
    try:
        from sae_bench.evals import base_eval_output
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
    generic = beo.BaseEvalOutput[config_cls, categories_cls, detail_cls]
    details = types.GenericAlias(list, detail_cls)  # list[detail_cls], spelt as a call: a class built at run time
    ns: dict[str, Any] = {"__annotations__": {"eval_config": config_cls, "eval_id": str, "datetime_epoch_millis": int,
                                              "eval_result_metrics": categories_cls, "eval_result_details": details,
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

_log = get_logger("saebench")


class PSEvalSAEBenchConfig(PSEvalSettings):
    """PS-Eval settings of a SAEBench run: every PS-Eval setting (pseval.ps_eval.settings, titled and described in
    SAEBench's eval-config style) and what SAEBench's runner adds: the model, the pair set, the hook and the LLM's
    dtype."""

    model_name: str = Field(default="", title="Model Name", description="model to read activations from: a "
                            "TransformerLens name (mapped to its Hub id when transformer_lens is installed), a Hub id, "
                            "a local folder or pseval's `minilm`")
    dataset: str = Field(default=DEFAULT_DATA, title="Dataset", description="pseval pair-set spec, e.g. "
                         "wic:PATH or hf:gouki510/Wic_data_for_SAE-Eval:test")
    hook_name: str | None = Field(default=None, title="Hook Name", description="hook to read; null: each SAE's "
                                  "recorded hook (required for SAEs that record none)")
    llm_dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        default=None, title="LLM dtype", description="SAEBench's name for model_dtype (the dtype the language model is "
        "loaded in); when given, model_dtype follows it")

    @model_validator(mode="before")
    @classmethod
    def _llm_dtype_is_model_dtype(cls, data: Any) -> Any:
        """SAEBench's `llm_dtype` and pseval's `model_dtype` are one setting: either sets it, both must agree."""
        if isinstance(data, dict) and data.get("llm_dtype") is not None:
            if data.get("model_dtype", data["llm_dtype"]) != data["llm_dtype"]:
                raise ValueError(f"llm_dtype={data['llm_dtype']!r} and model_dtype={data['model_dtype']!r} name one "
                                 "setting (the language model's dtype): give one of them")
            data = {**data, "model_dtype": data["llm_dtype"]}
        return data


def results_filepath(output_path: str | Path, release: str, sae_id: str) -> Path:
    """SAEBench's result file name (`general_utils.get_results_filepath`): `{release}_{sae_id}_eval_results.json`,
    slashes replaced."""
    return Path(output_path) / f"{release}_{sae_id}_eval_results.json".replace("/", "_")


def hf_model_id(name: str) -> str:
    """A TransformerLens model name (`pythia-70m-deduped`) as its Hub id where transformer_lens knows it; local
    paths, Hub ids and other names unchanged."""
    if "/" in name or Path(name).exists():
        return name
    try:
        from transformer_lens.loading_from_pretrained import get_official_model_name
    except ImportError:
        return name
    try:
        return str(get_official_model_name(name))
    except ValueError:
        return name


def sae_bench_version() -> str:
    """What `sae_bench_commit_hash` says: the installed SAEBench release, or that SAEBench is not installed."""
    try:
        return f"sae-bench {version('sae-bench')} (PS-Eval run by pseval)"
    except PackageNotFoundError:
        return NOT_SAE_BENCH



def run_eval(config: PSEvalSAEBenchConfig, selected_saes: Sequence[tuple[str, Any]], device: str,
             output_path: str | Path, force_rerun: bool = False, model: Any = None) -> dict[str, dict[str, Any]]:
    """SAEBench's eval entry point for PS-Eval: score every selected SAE in one forward pass per hook, write each
    `{release}_{sae_id}_eval_results.json` as soon as it is scored, skip those already written unless
    `force_rerun`; returns {`{release}_{sae_id}`: result dict} for the SAEs scored now. `model` (optional, beyond
    SAEBench's signature) is an already loaded model in any form `pseval.evaluate` takes."""
    import torch

    from pseval.models.any_model import as_loaded_model
    from pseval.models.loading import load_model
    from pseval.ps_eval.pipeline import evaluate, prepare_pairs
    from pseval.ps_eval.resolver import resolve_saes

    out = Path(output_path)
    check_writable(out, is_dir=True)
    todo: list[tuple[str, str, Any, Path]] = []
    for item in selected_saes:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ConfigError(f"selected_saes: expected (release, sae_id) or (name, SAE object) pairs, got {item!r}")
        release, sae = item
        sae_id = sae if isinstance(sae, str) else "custom_sae"
        path = results_filepath(out, release, sae_id)
        if path.exists() and not force_rerun:
            _log.info(f"Skipping {release}_{sae_id} as results already exist")
            continue
        todo.append((release, sae_id, sae, path))
    if not todo:
        return {}
    cfg = config.settings()
    data = prepare_pairs(config.dataset, cfg.max_pairs, cfg.seed)
    lm = (as_loaded_model(model) if model is not None else
          load_model(hf_model_id(config.model_name), device=device, dtype=getattr(torch, cfg.model_dtype)))
    if model is not None:  # a model handed over keeps its own dtype, and the records say which
        asked = cfg.model_dtype if "model_dtype" in config.model_fields_set else None
        have = recorded_model_dtype(next(lm.model.parameters()).dtype, asked)
        cfg = cfg.replace(model_dtype=have) if have != cfg.model_dtype else cfg
    hooks = [config.hook_name] if config.hook_name else []
    entries = []
    for release, sae_id, sae, path in todo:
        (entry,) = resolve_saes(f"saelens:{release}/{sae_id}" if isinstance(sae, str) else {release: sae}, lm, hooks)
        entry.sae_lens_release_id, entry.sae_lens_id = release, sae_id
        entry.name = f"{release}_{sae_id}"
        entries.append((entry, path))
    paths = {id(e): p for e, p in entries}
    by_name = {e.name: e for e, _ in entries}
    results: dict[str, dict[str, Any]] = {}
    stamp = sae_bench_version()

    def write(rec: PSEvalRecord) -> None:
        rec = rec.model_copy(update={"sae_bench_commit_hash": stamp})
        text = rec.to_json()
        write_atomic(paths[id(by_name[rec.sae_name])], lambda fh: fh.write(text))
        results[rec.sae_name] = json.loads(text)

    os.makedirs(out, exist_ok=True)
    evaluate(lm, config.model_name or lm.name, [e for e, _ in entries], data, cfg, on_record=write)
    return results
