"""`pseval eval`: many SAEs at many hooks on one pair set, one forward pass, through the one pipeline.

With `--out DIR` the eval is resumable: each finished cell is kept in DIR's results store (the store and cell keys of
sweeps, marked by eval.json), a re-run scores only the missing cells, and `--force` discards DIR's results first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pseval.data.sources import DEFAULT_DATA
from pseval.files import check_writable, write_atomic, write_text_atomic
from pseval.logs import get_logger
from pseval.metrics.encoding import scoring_dtype
from pseval.models.model_dtype import keyed_model_dtype, model_torch_dtype
from pseval.ps_eval.headline import headline_block, legend
from pseval.ps_eval.pipeline import PreparedPairs, evaluate, planned_cells, prepare_pairs
from pseval.ps_eval.plan import eval_plan
from pseval.ps_eval.record import PSEvalRecord
from pseval.ps_eval.resolver import DEFAULT_HOOK, resolve_saes
from pseval.ps_eval.rows import (
    CONCENTRATION_COLUMNS,
    RECON_COLUMNS,
    ROBUST_COLUMNS,
    THRESHOLD_FREE_COLUMNS,
    argmax_rows,
    compare_records,
    concentration_rows,
    detail_columns,
    difference_columns,
    difference_rows,
    record_row,
    robust_rows,
    threshold_free_rows,
)
from pseval.ps_eval.settings import PSEvalSettings, SettingsFields
from pseval.saes.conventions import set_convention
from pseval.saes.identity import is_identity_spec
from pseval.saes.loading import peek_sae
from pseval.saes.selection import expand_specs
from pseval.study.store import ResultsStore
from pseval.tables import text_table

_log = get_logger("eval")  # messages; a notebook silences them on logging.getLogger("pseval")


@dataclass
class EvalRequest:
    """Everything `pseval eval` was asked to do: what to score, where, and the PS-Eval settings."""

    model: str = "minilm"
    hooks: list[str] = field(default_factory=list)
    saes: list[str] = field(default_factory=lambda: ["identity"])
    data: str = DEFAULT_DATA
    settings: PSEvalSettings = field(default_factory=PSEvalSettings)
    device: str = "auto"  # CUDA when present (pseval.devices.auto_device)
    out: Path | None = None  # a .json file, or a folder: the resumable results store
    force: bool = False  # discard the --out folder's results (of any settings) and score every cell again
    saebench_dir: Path | None = None  # also write SAEBench-named `{release}_{sae_id}_eval_results.json` files here
    cache: Path | None = None  # readout-activation cache: scoring more SAEs later skips the model
    # hf or tl_centered: the activation convention of SAEs whose config does not decide it (pseval.saes.conventions)
    sae_convention: str | None = None


def output_names(records: Sequence[PSEvalRecord]) -> list[str]:
    """One file name per record: `{sae}__{hook}.json`, with the cell id added where two would collide."""
    base = [re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{r.sae_name}__{r.eval_config.hook_name}") for r in records]
    return [f"{b}__{r.cell_id[:12]}.json" if base.count(b) > 1 else f"{b}.json"
            for b, r in zip(base, records, strict=True)]


def saebench_names(records: Sequence[PSEvalRecord]) -> list[str]:
    """SAEBench's `{release}_{sae_id}_eval_results.json` names: the SAELens ids when known, else pseval's names
    (release `pseval`, id = SAE name and hook), with the cell id added where two would collide."""
    base = []
    for r in records:
        release = r.sae_lens_release_id or "pseval"
        sae_id = r.sae_lens_id or f"{r.sae_name}__{r.eval_config.hook_name}"
        base.append(f"{release}_{sae_id}".replace("/", "_"))
    return [f"{b}__{r.cell_id[:12]}_eval_results.json" if base.count(b) > 1 else f"{b}_eval_results.json"
            for b, r in zip(base, records, strict=True)]


def write_records(records: Sequence[PSEvalRecord], out: Path, names: Sequence[str] | None = None) -> list[Path]:
    """A `.json` path gets one record (a list when several); any other path is a folder of one file per record."""
    if out.suffix == ".json":
        text = records[0].to_json() if len(records) == 1 else \
            "[\n" + ",\n".join(r.to_json() for r in records) + "\n]"
        write_atomic(out, lambda fh: fh.write(text))
        return [out]
    paths = []
    for rec, name in zip(records, names or output_names(records), strict=True):
        text = rec.to_json()
        write_text_atomic(text, out / name)
        paths.append(out / name)
    return paths


def log_tables(records: Sequence[PSEvalRecord], log: Callable[[str], Any]) -> None:
    """The eval output: pair counts, then the argmax PS-Eval, threshold-free / ceiling, concentration, robust and
    (several records) paired-difference tables, every number with its 95% interval."""
    if not records:
        return
    c = records[0].eval_result_metrics.counts
    cfg = records[0].eval_config
    dropped = {k.removeprefix("dropped_"): v for k, v in c.model_dump().items()
               if k.startswith("dropped_") and k != "dropped_total" and v}
    log(f"pairs read {c.pairs_read}, valid {c.pairs_valid}, scored {c.pairs_scored}, dropped {dropped}")
    log(f"95% intervals: pairs resampled {cfg.bootstrap_resamples} times, seed {cfg.bootstrap_seed}")
    for rec in records:
        lr = rec.eval_result_metrics.loss_recovered
        where = f"{rec.sae_name} at {rec.eval_config.hook_name}"
        if lr is not None and not lr.available:
            log(f"loss recovered unavailable for {where}: {lr.reason}")
        elif lr is not None and lr.reason:
            log(f"loss recovered for {where} is on the {lr.objective} objective: {lr.reason}")
    log(headline_block(records))
    rows = [{**argmax_rows([r])[0], **{k: v for k, v in record_row(r).items() if k in RECON_COLUMNS}} for r in records]
    log("Details: PS-Eval (the paper's argmax metric), every metric\n" + text_table(rows, detail_columns(rows)))
    log("Threshold-free: ROC-AUC of per-pair code similarities; ceiling = the same on the raw activations; "
        "share = (AUC - 0.5) / (ceiling - 0.5)\n" + text_table(threshold_free_rows(records), THRESHOLD_FREE_COLUMNS))
    log("Top-feature concentration\n" + text_table(concentration_rows(records), CONCENTRATION_COLUMNS)
        + ("\n" + legend("dominated") if any(r.eval_result_metrics.concentration.dominated for r in records) else ""))
    robust = robust_rows(records)
    if robust:
        log("Dense-feature-robust PS-Eval (argmax over the latents non-zero on at most the given fraction of the "
            "scored contexts; the paper's metric above is unchanged)\n" + text_table(robust, ROBUST_COLUMNS))
    if len(records) > 1:
        names = [f"{r.sae_name}@{r.eval_config.hook_name}" for r in records]
        diff = difference_rows(compare_records(records, names))
        log(f"Paired differences against {names[0]} (same pairs resampled together; * = interval excludes 0)\n"
            + text_table(diff, difference_columns(diff)))


def store_settings(req: EvalRequest, data: PreparedPairs) -> dict[str, Any]:
    """What an eval's results folder belongs to: the model, the pair set and every setting that changes a number
    (the SAEs and hooks may differ from run to run: a folder gathers the cells of many)."""
    kept = set(SettingsFields.model_fields) - set(SettingsFields.affecting("nothing"))
    return {"model": req.model, "dataset": data.spec, "dataset_hash": data.hash,
            **keyed_model_dtype(req.settings.model_dump(include=kept, mode="json"))}


def run_eval(req: EvalRequest, log: Callable[[str], Any] = _log.info) -> list[PSEvalRecord]:
    """Run the evaluation, give the tables to `log` (stdout on the command line; what happens goes to the `pseval`
    logger), write JSON (a file, or the results store of a folder: resumed when run again); returns the records of
    every requested cell."""
    from pseval.models.loading import load_model

    # Before any model loads: an unusable output must not cost the work.
    if req.out is not None:
        check_writable(req.out, is_dir=req.out.suffix != ".json")
    if req.saebench_dir is not None:
        check_writable(req.saebench_dir, is_dir=True)
    cfg = req.settings
    data = prepare_pairs(req.data, cfg.max_pairs, cfg.seed)
    specs = expand_specs(req.saes)  # globs, release regexes and list files: a pattern matching nothing stops here
    # No guessed convention, refused before the model loads: each file SAE's config or --sae-convention decides
    # (read from a weightless peek: no SAE is loaded here).
    for spec in dict.fromkeys(s for s in specs if not is_identity_spec(s)):
        set_convention(peek_sae(spec), req.sae_convention, spec)
    store = None
    if req.out is not None and req.out.suffix != ".json":
        store = ResultsStore.for_eval(req.out)
        store.claim(store_settings(req, data), overwrite=req.force)  # mixed settings refused before the model loads
        store.clean_temp()
    lm = load_model(req.model, device=req.device, dtype=model_torch_dtype(cfg.model_dtype))
    # Lazy entries, loaded in the scoring dtype when scored (converted once, not copied per cell); no guessed
    # convention: the SAE's config or --sae-convention decides, or the resolver refuses.
    entries = resolve_saes(specs, lm, req.hooks, convention=req.sae_convention, dtype=scoring_dtype(cfg.dtype),
                           default_hook=DEFAULT_HOOK)
    hooks = list(dict.fromkeys(e.hook for e in entries))
    _log.info(f"{len(data.pairs)} of {data.selection.available} pairs from {req.data}; {len(entries)} cell(s) over "
        f"{len(hooks)} hook(s)" + (f"; {data.rows.summary()}" if data.rows else "")
        + (f"; notes: span_not_target {data.notes['span_not_target']} (kept, read at the dataset's index)"
           if data.notes.get("span_not_target") else ""))
    _log.info(eval_plan(entries, len(data.pairs), cfg, scoring_dtype(cfg.dtype)).line())
    cells = planned_cells(lm, req.model, entries, data, cfg)
    done = [cid for _, _, cid in cells if store is not None and store.has(cid)]
    if store is not None and done:
        _log.info(f"{len(done)} of {len(cells)} cell(s) already in {req.out}, skipped; "
                  f"{len(cells) - len(done)} to score")
    new = evaluate(lm, req.model, entries, data, cfg, cache_dir=req.cache, progress=True,
                   skip=None if store is None else store.has, on_record=None if store is None else store.put)
    records = new
    if store is not None:  # every requested cell, the reused ones read back, in the entries' order
        by_id = {r.cell_id: r for r in store.records()}
        records = [by_id[cid] for _, _, cid in cells]
    log_tables(records, log)
    if store is not None:
        _log.info(f"{len(new)} cell(s) scored, {len(done)} reused; records in {store.cells_dir}")
    elif req.out is not None and records:
        write_records(records, req.out)
        _log.info(f"wrote {req.out}")
    if req.saebench_dir is not None and records:
        paths = write_records(records, req.saebench_dir, saebench_names(records))
        _log.info(f"wrote {len(paths)} SAEBench result file(s) to {req.saebench_dir}")
    return records
