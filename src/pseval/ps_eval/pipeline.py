"""The one evaluation pipeline: (model, SAEs at hooks, a pair set, PS-Eval settings, selection) -> typed records.

`pseval eval`, `pseval sweep`, `pseval demo` and the Python API all go through `evaluate`, so the same spec, seed and
`max_pairs` select the same pairs and give the same numbers everywhere.
"""

from __future__ import annotations

import gc
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from tqdm.auto import tqdm

from pseval.data.corpus import corpus_texts
from pseval.data.pairs import WordInContextPair, dataset_hash
from pseval.data.row_counts import RowCounts
from pseval.data.selection import PairSelection, select_pairs
from pseval.data.sources import load_pair_set
from pseval.data.text import empty_notes
from pseval.errors import ConfigError
from pseval.logs import bar_disabled
from pseval.metrics.encoding import cast_sae, scoring_dtype
from pseval.metrics.loss_recovered import LossBaseline, LossRecovered, loss_baseline, score_loss
from pseval.metrics.reconstruction import ReconstructionMetrics, reconstruction_metrics
from pseval.metrics.statistics import Interval
from pseval.models.loading import LoadedModel
from pseval.models.widths import hook_widths
from pseval.provenance import provenance
from pseval.ps_eval.cache import cached_pair_activations
from pseval.ps_eval.concentration import DOMINANCE_THRESHOLD, most_common_features
from pseval.ps_eval.controls import ControlsResult, chance_category, control_categories, score_controls
from pseval.ps_eval.intervals import NO_INTERVAL, PairArrays, bootstrap_intervals, pair_statistics
from pseval.ps_eval.random_control import CONTROL_METHOD
from pseval.ps_eval.record import (
    CeilingMetrics,
    ConcentrationMetrics,
    ConfusionIntervals,
    ControlRecord,
    CountMetrics,
    DataNotes,
    DataRows,
    FeatureCosineIntervals,
    FeatureCosineMetrics,
    PairOutcome,
    PSEvalConfigRecord,
    PSEvalMetricCategories,
    PSEvalMetrics,
    PSEvalRecord,
    RobustPSEvalMetrics,
    ThresholdFreeMetrics,
    TopFeatureRecord,
    TrainingMetrics,
    Unstructured,
)
from pseval.ps_eval.scoring import PairActivations, PSEvalResult, check_sae_width, score_sae
from pseval.ps_eval.settings import PSEvalSettings, SettingsFields
from pseval.run_keys import key_id
from pseval.saes.base import SAE
from pseval.training.activations import StreamConfig, collect_activations


@dataclass(frozen=True)
class PreparedPairs:
    """A loaded pair set (canonical spec, content hash, text-rule counts) and the seeded selection that is scored."""

    spec: str
    hash: str
    selection: PairSelection
    notes: dict[str, int]
    rows: RowCounts | None = None  # rows of the dataset's files read, kept and dropped; None for pairs given

    @property
    def pairs(self) -> list[WordInContextPair]:
        """The selected pairs, in file order."""
        return self.selection.pairs


def prepare_pairs(spec: str, max_pairs: int | None, seed: int,
                  pairs: Sequence[WordInContextPair] | None = None) -> PreparedPairs:
    """Load a pair set (unless given: then `spec` only names it) and select `max_pairs` of it with `seed`: the one
    selection rule."""
    rows = None
    if pairs is not None:
        loaded, notes = list(pairs), empty_notes()
    else:
        ps = load_pair_set(spec)
        spec, loaded, notes, rows = ps.spec, ps.pairs, ps.notes, ps.rows
    return PreparedPairs(spec, dataset_hash(loaded), select_pairs(loaded, max_pairs, seed), notes, rows)


@dataclass
class SAEEntry:
    """One SAE to score at one hook, with what is already known about it (training, held-out metrics)."""

    name: str
    hook: str
    source: str
    fingerprint: str
    load: Callable[[], SAE]
    training: TrainingMetrics | None = None
    reconstruction: ReconstructionMetrics | None = None
    loss_recovered: LossRecovered | None = None
    sae_lens_id: str | None = None
    sae_lens_release_id: str | None = None
    _sae: SAE | None = field(default=None, repr=False)
    # A lazy entry's SAE on the meta device: its config and shapes, no weights (pseval.saes.loading.peek_sae).
    peek: SAE | None = field(default=None, repr=False)

    @classmethod
    def of(cls, sae: SAE, name: str, hook: str, source: str, fingerprint: str, **known: Any) -> SAEEntry:
        """An entry for an SAE already in memory."""
        return cls(name, hook, source, fingerprint, lambda: sae, _sae=sae, **known)

    @classmethod
    def lazy(cls, peek: SAE, load: Callable[[], SAE], name: str, hook: str, source: str, fingerprint: str,
             **known: Any) -> SAEEntry:
        """An entry that loads its SAE when scored and frees it after (`peek` says what it will be)."""
        return cls(name, hook, source, fingerprint, load, peek=peek, **known)

    def sae(self) -> SAE:
        """The SAE, loaded on first use."""
        if self._sae is None:
            self._sae = self.load()
        return self._sae

    def described(self) -> SAE | None:
        """The SAE's config and shapes without loading it: the SAE in memory, or the peek; None if neither."""
        return self._sae if self._sae is not None else self.peek

    def release(self) -> None:
        """Drop a lazy entry's loaded SAE (the next use loads it again); an SAE given in memory stays."""
        if self.peek is not None:
            self._sae = None


def config_record(model_name: str, hook: str, data: PreparedPairs, cfg: PSEvalSettings,
                  model_convention: str = "hf") -> PSEvalConfigRecord:
    """The `eval_config` block: every setting that decides the numbers of one cell (the settings' own, the
    effective readout policies, the model, hook and selected pairs)."""
    r = cfg.readout_config()
    settings = cfg.model_dump(include=set(SettingsFields.model_fields))
    return PSEvalConfigRecord(**{**settings, "too_long": r.too_long, "max_pairs": data.selection.max_pairs},
                              model_name=model_name, model_convention=model_convention, hook_name=hook,
                              dataset=data.spec, dataset_hash=data.hash, pairs_available=data.selection.available,
                              pairs_selected=len(data.pairs), selection_hash=data.selection.ids_hash)


# Fields a cell key leaves out at their default, so that cells keyed before the field existed keep their ids.
KEYED_WHEN_SET = {"model_convention": "hf", "corpus": "wordnet-definitions", "reconstruction_tokens": 0,
                  "loss_recovered_tokens": 0, "controls": 0, "model_dtype": "float32"}


def cell_id(config: PSEvalConfigRecord, fingerprint: str) -> str:
    """Key of a cell: every setting that changes a number but the dataset's spelling (its content hash stands for
    it), and the SAE."""
    exclude = {"dataset", *SettingsFields.affecting("nothing")}
    exclude |= {name for name, default in KEYED_WHEN_SET.items() if getattr(config, name) == default}
    fields = {**config.model_dump(exclude=exclude), "sae": fingerprint}
    return key_id(fields, 24)


def _nan_to_none(x: float) -> float | None:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _category(cat: str, values: dict[str, Any], fields: Any) -> dict[str, Any]:
    """The `cat.field` entries of `values` that are fields of the category model, NaN as None."""
    out = {}
    for key, v in values.items():
        c, _, f = key.partition(".")
        if c == cat and f in fields:
            out[f] = _nan_to_none(float(np.asarray(v).reshape(-1)[0]))
    return out


def _bounds(cat: str, intervals: dict[str, Interval]) -> dict[str, float | None]:
    """`<field>_low` / `<field>_high` of every bounded interval of category `cat`."""
    out: dict[str, float | None] = {}
    for key, iv in intervals.items():
        c, _, f = key.partition(".")
        if c == cat and key not in NO_INTERVAL:
            out[f"{f}_low"], out[f"{f}_high"] = _nan_to_none(iv.low), _nan_to_none(iv.high)
    return out


def pair_details(res: PSEvalResult, pa: PairActivations, pairs: Sequence[WordInContextPair]) -> list[PairOutcome]:
    """The per-pair outcomes of a scored cell (what the record stores and every interval is computed from)."""
    details = []
    f1s, f2s = res.features_1.tolist(), res.features_2.tolist()
    enc, dec = res.pair_cos_enc.tolist(), res.pair_cos_dec.tolist()
    codes, raw, rb = res.codes, res.raw, res.robust
    assert codes is not None and raw is not None
    r1 = rb.features_1.tolist() if rb is not None and rb.features_1 is not None else None
    r2 = rb.features_2.tolist() if rb is not None and rb.features_2 is not None else None
    for row, i in enumerate(pa.pair_index):
        p = pairs[i]
        same_feat = f1s[row] == f2s[row]
        outcome = ("TP" if same_feat else "FN") if p.same_sense else ("FP" if same_feat else "TN")
        details.append(PairOutcome(
            pair_id=p.source_id, target=p.target, pos=p.pos, same_sense=p.same_sense, feature_1=f1s[row],
            feature_2=f2s[row], outcome=outcome, enc_cos=_nan_to_none(round(enc[row], 5)),
            dec_cos=_nan_to_none(round(dec[row], 5)), code_cosine=float(codes.cosine[row]),
            code_jaccard=float(codes.jaccard[row]), raw_cosine=float(raw.cosine[row]),
            raw_jaccard=float(raw.jaccard[row]), feature_1_robust=None if r1 is None else r1[row],
            feature_2_robust=None if r2 is None else r2[row]))
    return details


def result_metrics(res: PSEvalResult, details: Sequence[PairOutcome], config: PSEvalConfigRecord
                   ) -> tuple[dict[str, Any], list[TopFeatureRecord]]:
    """The PS-Eval metric categories of a cell (all but counts, data notes and known SAE metrics) and its most
    common top features; every interval from the pairs as the record stores them, so a saved record reproduces it."""
    arrays = PairArrays.from_details(details)
    point = pair_statistics(arrays)
    ivs = bootstrap_intervals(arrays, config.bootstrap_resamples, config.bootstrap_seed)
    f1, f2 = arrays.feature_1, arrays.feature_2
    tops = most_common_features(f1, f2)
    same = int((f1 == f2).sum())
    share = _category("concentration", point, ConcentrationMetrics.model_fields)
    cats: dict[str, Any] = {
        "ps_eval": PSEvalMetrics(**res.metrics),
        "ps_eval_intervals": ConfusionIntervals(**_bounds("ps_eval", ivs)),
        "threshold_free": ThresholdFreeMetrics(top_k=config.top_k, **_category("threshold_free", point,
                                                                               ThresholdFreeMetrics.model_fields),
                                               **_bounds("threshold_free", ivs)),
        "ps_eval_at_k": PSEvalMetrics(**res.confusion_at_k.metrics()),
        "ps_eval_at_k_intervals": ConfusionIntervals(**_bounds("ps_eval_at_k", ivs)),
        "ceiling": CeilingMetrics(**_category("ceiling", point, CeilingMetrics.model_fields),
                                  **_bounds("ceiling", ivs)),
        "concentration": ConcentrationMetrics(
            distinct_top_features=len(set(f1.tolist()) | set(f2.tolist())),
            top_feature=tops[0].feature if tops else None, same_predictions=same,
            same_predictions_top_feature=tops[0].same_predictions if tops else 0,
            dominated=(share.get("top_feature_share") or 0.0) > DOMINANCE_THRESHOLD, **share,
            **_bounds("concentration", ivs)),
        "feature_cosine": FeatureCosineMetrics(**{k: _nan_to_none(v) for k, v in res.cosine.items()}),
        "feature_cosine_intervals": FeatureCosineIntervals(**_bounds("feature_cosine", ivs)),
    }
    rb = res.robust
    if rb is not None:
        m = rb.confusion.metrics() if rb.confusion is not None else {}
        cats["ps_eval_robust"] = RobustPSEvalMetrics(
            exclude_dense=rb.exclude_dense, reference_contexts=rb.reference_contexts,
            excluded_latents=rb.excluded, all_zero_codes=rb.all_zero_codes,
            **{k: _nan_to_none(v) if isinstance(v, float) else v for k, v in m.items()})
        if rb.confusion is not None:
            cats["ps_eval_robust_intervals"] = ConfusionIntervals(**_bounds("ps_eval_robust", ivs))
    return cats, [TopFeatureRecord(**vars(t)) for t in tops]


def build_record(res: PSEvalResult, pa: PairActivations, data: PreparedPairs, entry: SAEEntry, sae: SAE,
                 config: PSEvalConfigRecord, cid: str, reconstruction: ReconstructionMetrics | None,
                 loss: LossRecovered | None, controls: ControlsResult | None = None,
                 device: str | torch.device | None = None) -> PSEvalRecord:
    """The typed record of one scored cell (`device`: where the model ran)."""
    counts = res.counts
    # collect_pair_activations writes these two entries as reason -> count and reason -> example ids.
    dropped = dict(cast(dict[str, int], counts["dropped"]))
    count_fields = {k: v for k, v in counts.items() if k not in ("dropped", "dropped_examples")}
    details = pair_details(res, pa, data.pairs)
    cats, tops = result_metrics(res, details, config)
    has_weights = getattr(sae, "W_enc", None) is not None or getattr(sae, "W_dec", None) is not None
    if not has_weights:  # a module with only `encode`
        cats["feature_cosine"] = cats["feature_cosine_intervals"] = None
    cos_ref = FeatureCosineMetrics(**{k: _nan_to_none(v) for k, v in res.cosine_reference.items()}) \
        if res.cosine_reference is not None and has_weights else None
    cats["chance"] = chance_category(details)
    control_list: list[ControlRecord] = []
    if controls is not None:
        cats["controls"], cats["gain_over_control"], control_list = control_categories(
            controls, details, config.bootstrap_resamples, config.bootstrap_seed)
    metrics = PSEvalMetricCategories(
        **cats,
        counts=CountMetrics(**count_fields, dropped_total=sum(dropped.values()),
                            **{f"dropped_{k}": v for k, v in dropped.items()}),
        data=DataNotes(**data.notes),
        reconstruction=reconstruction or entry.reconstruction, loss_recovered=loss or entry.loss_recovered,
        training=entry.training)
    prov = provenance()
    meta = sae.cfg.metadata
    return PSEvalRecord(
        eval_id=str(uuid.uuid4()), datetime_epoch_millis=int(time.time() * 1000), cell_id=cid, eval_config=config,
        eval_result_metrics=metrics, eval_result_details=details,
        eval_result_unstructured=Unstructured(dropped_examples=cast(dict[str, list[str]], counts["dropped_examples"]),
                                              top_features=tops, feature_cosine_reference=cos_ref,
                                              data_rows=DataRows(**data.rows.to_dict()) if data.rows else None,
                                              controls=control_list,
                                              control_method=CONTROL_METHOD if controls is not None else None),
        sae_name=entry.name, sae_source=entry.source, sae_fingerprint=entry.fingerprint,
        sae_cfg_dict=sae.cfg.to_dict(), sae_lens_id=entry.sae_lens_id, sae_lens_release_id=entry.sae_lens_release_id,
        sae_lens_version=meta.sae_lens_version, pseval_version=prov["pseval_version"], git_commit=prov["git_commit"],
        device=str(device) if device is not None else None, torch_version=prov["torch_version"],
        transformers_version=prov["transformers_version"], python_version=prov["python"])


def planned_cells(lm: LoadedModel, model_name: str, entries: Sequence[SAEEntry], data: PreparedPairs,
                  cfg: PSEvalSettings) -> list[tuple[SAEEntry, PSEvalConfigRecord, str]]:
    """(entry, its eval_config, its cell id) of every entry, in order: what a store is asked about before scoring."""
    out = []
    for e in entries:
        cfg_rec = config_record(model_name, e.hook, data, cfg, lm.activation_convention)
        out.append((e, cfg_rec, cell_id(cfg_rec, e.fingerprint)))
    return out


def evaluate(lm: LoadedModel, model_name: str, entries: Sequence[SAEEntry], data: PreparedPairs, cfg: PSEvalSettings,
             cache_dir: str | Path | None = None,
             skip: Callable[[str], bool] | None = None, on_record: Callable[[PSEvalRecord], Any] | None = None,
             progress: bool = False) -> list[PSEvalRecord]:
    """Score every entry on the selected pairs (one forward pass for all hooks); returns the new records, in the
    entries' order.

    The SAEs are scored as a stream, hook by hook: each lazy entry's SAE is loaded, scored and freed before the next
    is loaded, so memory holds one SAE and the activations whatever the number of SAEs. `skip(cell_id)` leaves out
    cells already done; `on_record` receives each record as soon as it is made, so a caller can store it before the
    next SAE is scored.
    """
    todo = [c for c in planned_cells(lm, model_name, entries, data, cfg) if skip is None or not skip(c[2])]
    if not todo:
        return []
    hooks = list(dict.fromkeys(e.hook for e, _, _ in todo))
    order = {id(e): i for i, (e, _, _) in enumerate(todo)}
    todo.sort(key=lambda c: hooks.index(c[0].hook))  # stable: the hook's SAEs in turn, then the next hook's
    # Every SAE is checked against its hook's width now (from its config: nothing is loaded), not after the passes.
    described = [(e, d) for e, _, _ in todo if (d := e.described()) is not None]
    if described:
        widths = hook_widths(lm, [e.hook for e, _ in described])
        for e, d in described:
            check_sae_width(d, widths[e.hook], e.hook)
    acts = cached_pair_activations(lm, model_name, data.pairs, hooks, cfg, cache_dir, progress=progress)
    corpus_acts: dict[str, Any] = {}
    if cfg.reconstruction_tokens > 0:
        corpus_acts = collect_activations(lm, corpus_texts(cfg.corpus), hooks,
                                          StreamConfig(max_tokens=cfg.reconstruction_tokens), progress=progress)
        if any(a.shape[0] == 0 for a in corpus_acts.values()):  # reconstruction over no tokens is no result
            raise ConfigError(f"corpus {cfg.corpus!r} gave no tokens for reconstruction metrics (reconstruction_tokens="
                              f"{cfg.reconstruction_tokens}); give a corpus with text, or reconstruction_tokens=0")
    records: list[tuple[int, PSEvalRecord]] = []
    # Loss-recovered baselines: made once per hook, dropped after the hook's last SAE.
    baselines: dict[str, LossBaseline] = {}
    last_at_hook = {e.hook: i for i, (e, _, _) in enumerate(todo)}
    # One bar over the cells (SAE x hook), drawn only on a terminal.
    for i, (e, cfg_rec, cid) in tqdm(enumerate(todo), total=len(todo), desc="cells", unit="cell", leave=False,
                                     disable=bar_disabled(progress)):
        sae = cast_sae(e.sae(), scoring_dtype(cfg.dtype))  # every number of the cell at the scoring dtype
        # (on a lazy entry's first use, this is its load: the previous SAE was freed below)
        pa = acts[e.hook]
        res = score_sae(pa, sae, cfg, model_name)
        # Right after the SAE, on its activations: the controls cost SAE encodes, never a model pass.
        ctl = score_controls(pa, sae, res, cfg, e.fingerprint)
        recon = reconstruction_metrics(sae, corpus_acts[e.hook], budget=cfg.memory_budget) if corpus_acts else None
        loss = None
        if cfg.loss_recovered_tokens > 0:
            if e.hook not in baselines:
                baselines[e.hook] = loss_baseline(lm, e.hook, corpus_texts(cfg.corpus), cfg.loss_recovered_tokens,
                                                  seed=cfg.seed)
            loss = score_loss(baselines[e.hook], sae, cfg.memory_budget)
            if last_at_hook[e.hook] == i:
                del baselines[e.hook]
        rec = build_record(res, pa, data, e, sae, cfg_rec, cid, recon, loss, ctl, device=lm.device)
        # Freed before the next SAE loads: peak memory is one SAE (and its codes) whatever the count.
        del sae, res, ctl, recon, loss
        e.release()
        gc.collect()
        if on_record is not None:
            on_record(rec)
        records.append((order[id(e)], rec))
    return [rec for _, rec in sorted(records, key=lambda ir: ir[0])]
