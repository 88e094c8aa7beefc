"""`pseval eval`: many SAEs at many hooks on one pair set, one forward pass, through the one pipeline."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pseval.files import check_writable, write_atomic
from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, scoring_dtype
from pseval.ps_eval import PSEvalConfig
from pseval.ps_eval.headline import HEADLINE_COLUMNS, headline_block, headline_row, legend
from pseval.ps_eval.pipeline import CorpusMetrics, SAEEntry, evaluate, prepare_pairs
from pseval.ps_eval.record import PSEvalRecord
from pseval.ps_eval.rows import (
    ARGMAX_COLUMNS,
    CONCENTRATION_COLUMNS,
    ROBUST_COLUMNS,
    THRESHOLD_FREE_COLUMNS,
    argmax_rows,
    compare_records,
    concentration_rows,
    difference_columns,
    difference_rows,
    robust_rows,
    threshold_free_rows,
)
from pseval.saes.base import SAE
from pseval.saes.fingerprint import files_fingerprint, tensors_fingerprint
from pseval.saes.identity import identity_sae
from pseval.saes.loading import load_sae, sae_display_name
from pseval.tables import text_table

DEFAULT_HOOK = "blocks.3.hook_resid_post"
DEFAULT_DATA = "wordnet:max_per_lemma=2,balance=1"
RECON_COLUMNS = ("mse", "fvu", "l0", "dead", "loss_rec")


@dataclass
class EvalRequest:
    """Everything `pseval eval` was asked to do."""

    model: str = "minilm"
    hooks: list[str] = field(default_factory=list)
    saes: list[str] = field(default_factory=lambda: ["identity"])
    data: str = DEFAULT_DATA
    readout: str = "template"
    multi_token: str = "drop"
    protocol: str = "pseval"
    balance: str = "reference"
    too_long: str = "truncate"
    max_pairs: int | None = None
    seed: int = 0
    device: str = "cpu"
    out: Path | None = None
    saebench_dir: Path | None = None  # also write SAEBench-named `{release}_{sae_id}_eval_results.json` files here
    corpus: str = "wordnet-definitions"
    recon_tokens: int = 0  # tokens of `corpus` for MSE / FVU / L0 / dead fraction next to PS-Eval
    loss_tokens: int = 0  # tokens of `corpus` for loss recovered and KL
    cache: Path | None = None  # readout-activation cache: scoring more SAEs later skips the model
    top_k: int = 8  # size of the top-k active sets (Jaccard AUC, PS-Eval@k)
    exclude_dense: float | None = None  # robust variant: leave out latents non-zero on more than this fraction
    dtype: str = "float32"  # scoring dtype of activations and SAE weights
    n_boot: int = 1000  # bootstrap resamples of every interval
    bootstrap_seed: int = 0
    memory_budget: int = DEFAULT_MEMORY_BUDGET  # bytes per encode chunk (never changes a result)
    controls: int = 5  # seeded random controls per SAE (0: none)

    def ps_eval_config(self) -> PSEvalConfig:
        """The PS-Eval settings of the request."""
        return PSEvalConfig.from_options(readout=self.readout, multi_token=self.multi_token, too_long=self.too_long,
                                         balance=self.balance, seed=self.seed, protocol=self.protocol,
                                         top_k=self.top_k, exclude_dense=self.exclude_dense, dtype=self.dtype,
                                         n_boot=self.n_boot, bootstrap_seed=self.bootstrap_seed,
                                         memory_budget=self.memory_budget, controls=self.controls)


def plan_cells(sae_specs: list[str], hooks: list[str], loaded: dict[str, SAE]) -> list[tuple[str, str]]:
    """(SAE spec, hook) cells: identity at every hook; a file SAE at the given hooks, else at its recorded hook."""
    cells = []
    for spec in sae_specs:
        if spec == "identity":
            cells += [(spec, h) for h in (hooks or [DEFAULT_HOOK])]
            continue
        recorded = loaded[spec].cfg.metadata.hook_name
        targets = hooks or ([recorded] if recorded else [DEFAULT_HOOK])
        cells += [(spec, h) for h in targets]
    return list(dict.fromkeys(cells))


def spec_entry(spec: str, sae: SAE, hook: str) -> SAEEntry:
    """The entry of an SAE loaded from a spec (`identity`, a path, hf://, saelens:): its name, fingerprint and
    SAELens ids."""
    if spec == "identity":
        return SAEEntry.of(sae, "identity", hook, "identity", f"identity:{sae.d_in}")
    fingerprint = files_fingerprint(spec) if Path(spec).exists() else tensors_fingerprint(sae)
    release, sae_id = (spec.removeprefix("saelens:").split("/", 1) if spec.startswith("saelens:") else (None, None))
    return SAEEntry.of(sae, sae_display_name(spec), hook, spec, fingerprint, sae_lens_release_id=release,
                       sae_lens_id=sae_id)


def _entries(req: EvalRequest, loaded: dict[str, SAE], d_model: int) -> list[SAEEntry]:
    entries = []
    for spec, hook in plan_cells(req.saes, req.hooks, loaded):
        sae = identity_sae(d_model, req.model, hook).to(req.device) if spec == "identity" else loaded[spec]
        entries.append(spec_entry(spec, sae, hook))
    return entries


def record_row(rec: PSEvalRecord) -> dict[str, Any]:
    """One table row of a record: the headline (F1, specificity, MCC with intervals, MCC gain over the random
    control, share of ceiling), then the rest of the argmax PS-Eval numbers and any reconstruction figures."""
    argmax = argmax_rows([rec])[0]
    row = {**headline_row(rec), **{c: argmax[c] for c in DETAIL_COLUMNS}}
    m = rec.eval_result_metrics
    if m.reconstruction is not None and m.reconstruction.tokens:
        row.update(mse=m.reconstruction.mse_per_token, fvu=m.reconstruction.fvu, l0=m.reconstruction.l0,
                   dead=m.reconstruction.dead_fraction)
    if m.loss_recovered is not None:
        row["loss_rec"] = m.loss_recovered.loss_recovered_zero
    return row


DETAIL_COLUMNS = ("accuracy", "precision", "recall", "tp", "fp", "tn", "fn")


def table_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The table's columns: the headline first, the other argmax PS-Eval ones, and the reconstruction ones that
    some row has."""
    return HEADLINE_COLUMNS + DETAIL_COLUMNS + tuple(col for col in RECON_COLUMNS if any(col in r for r in rows))


def detail_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The full argmax table's columns, with the reconstruction ones that some row has."""
    return ARGMAX_COLUMNS + tuple(col for col in RECON_COLUMNS if any(col in r for r in rows))


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
        write_atomic(out / name, lambda fh, text=text: fh.write(text))
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


def run_eval(req: EvalRequest, log: Callable[[str], Any] = print) -> list[PSEvalRecord]:
    """Run the evaluation, print a table, write JSON; returns the result records."""
    from pseval.models.loading import load_model

    # Before any model loads: an unusable output must not cost the work.
    if req.out is not None:
        check_writable(req.out, is_dir=req.out.suffix != ".json")
    if req.saebench_dir is not None:
        check_writable(req.saebench_dir, is_dir=True)
    cfg = req.ps_eval_config()
    data = prepare_pairs(req.data, req.max_pairs, req.seed)
    # Scored in cfg.dtype: converted once here (in place: these SAEs are this run's own), not copied per cell.
    dtype = scoring_dtype(cfg.dtype)
    loaded = {s: load_sae(s, dtype=dtype, device=req.device) for s in dict.fromkeys(req.saes) if s != "identity"}
    lm = load_model(req.model, device=req.device)
    entries = _entries(req, loaded, lm.d_model)
    hooks = list(dict.fromkeys(e.hook for e in entries))
    log(f"{len(data.pairs)} of {data.selection.available} pairs from {req.data}; {len(entries)} cell(s) over "
        f"{len(hooks)} hook(s)")
    records = evaluate(lm, req.model, entries, data, cfg, CorpusMetrics(req.corpus, req.recon_tokens,
                                                                        req.loss_tokens),
                       cache_dir=req.cache, progress=True)
    log_tables(records, log)
    if req.out is not None and records:
        write_records(records, req.out)
        log(f"wrote {req.out}")
    if req.saebench_dir is not None and records:
        paths = write_records(records, req.saebench_dir, saebench_names(records))
        log(f"wrote {len(paths)} SAEBench result file(s) to {req.saebench_dir}")
    return records
