"""Training curves: held-out FVU and dead fraction against tokens for the SAEs of a sweep config, measured with the
sweep's own trainer and probes, and the training speed of each (what a token budget is chosen from).

`scripts/training_curves.py` runs it; `curve_rows_from_store` reads the same curves back from a finished sweep."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pseval.data.corpus import corpus_texts
from pseval.files import write_bytes_atomic, write_text_atomic
from pseval.logs import get_logger
from pseval.models.loading import LoadedModel, load_model
from pseval.saes.config import SAEMetadata
from pseval.study.sweep_config import SweepConfig
from pseval.study.units import SAEPlan, plan_saes
from pseval.training.activations import StreamConfig, collect_activations
from pseval.training.run import METRICS_FILE, held_out_count
from pseval.training.trainer import FVU_PROBE_TOKENS, convergence, train_saes

_log = get_logger("curves")  # messages; a notebook silences them on logging.getLogger("pseval")

CURVE_COLUMNS = ("hook", "sae", "architecture", "expansion", "step", "tokens", "fvu", "dead")
SUMMARY_COLUMNS = ("hook", "sae", "architecture", "expansion", "train_tokens", "seconds", "tokens_per_s",
                   "fvu_first", "fvu_last_fifth_start", "fvu_final", "last_fifth_drop", "converged", "dead_final")
# Activations held at once while measuring (the machine is shared): hooks are collected in groups under this.
CURVE_MEMORY_BYTES = 3 * 2**30


def _csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return buf.getvalue()


def curve_points(plan_hook: str, label: str, architecture: str, expansion: int,
                 history: Sequence[Mapping[str, float]]) -> list[dict[str, Any]]:
    """The rows of one SAE's curve (CURVE_COLUMNS) from its fvu_history."""
    return [{"hook": plan_hook, "sae": label, "architecture": architecture, "expansion": expansion,
             "step": int(h["step"]), "tokens": h.get("tokens"), "fvu": h["fvu"], "dead": h.get("dead")}
            for h in history]


def measure_curves(cfg: SweepConfig, hooks: Sequence[str], tokens: int, out: Path, sae_globs: Sequence[str] = ("*",),
                   probes: int = 20, lm: LoadedModel | None = None,
                   log: Callable[[str], Any] = _log.info) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train each SAE the config plans at `hooks` (labels matching `sae_globs`) alone on `tokens` tokens of its
    corpus, probing the held-out FVU `probes` times; write curves.csv, summary.csv and curves.png to `out` after
    each SAE (a killed run keeps what it finished). Returns (curve rows, summary rows)."""
    lm = lm or load_model(cfg.model, device=cfg.device)
    plans = [p for p in plan_saes(cfg, lm) if p.hook in hooks and p.train is not None
             and any(fnmatch.fnmatchcase(p.label, g) for g in sae_globs)]
    per_hook = (tokens + cfg.heldout_tokens) * lm.d_model * 4
    size = max(1, CURVE_MEMORY_BYTES // per_hook)
    order = list(dict.fromkeys(p.hook for p in plans))
    curves: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    stream = StreamConfig(context_size=cfg.context_size, max_tokens=tokens + cfg.heldout_tokens)
    for start in range(0, len(order), size):
        group = order[start:start + size]
        t0 = time.perf_counter()
        acts = collect_activations(lm, corpus_texts(cfg.corpus), group, stream)
        log(f"[curves] activations of {', '.join(group)}: {time.perf_counter() - t0:.0f} s")
        for hook in group:
            a = acts.pop(hook)
            n_held = held_out_count(a.shape[0], tokens, cfg.heldout_tokens)
            train, held = a[n_held:], a[:n_held][:FVU_PROBE_TOKENS]
            for plan in (p for p in plans if p.hook == hook):
                curves_, row = _measure_one(plan, train, held, probes, cfg)
                curves += curves_
                summary.append(row)
                log(f"[curves] {hook} {plan.label}: {row['tokens_per_s']:.0f} tok/s, FVU {row['fvu_first']:.3f} -> "
                    f"{row['fvu_final']:.3f}, last fifth {row['last_fifth_drop']:.1%}, converged {row['converged']}")
                write_curves(curves, summary, out)
            del a, train, held
    return curves, summary


def _measure_one(plan: SAEPlan, train: Any, held: Any, probes: int,
                 cfg: SweepConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    assert plan.train is not None
    t0 = time.perf_counter()
    ((_, tlog),) = train_saes(train, [plan.train], SAEMetadata(model_name=cfg.model, hook_name=plan.hook),
                              heldout=held, fvu_probes=probes)
    seconds = time.perf_counter() - t0
    c = convergence(tlog.fvu_history, tlog.steps)
    tc = plan.train
    row = {"hook": plan.hook, "sae": plan.label, "architecture": tc.architecture, "expansion": tc.expansion,
           "train_tokens": tlog.tokens, "seconds": round(seconds, 2), "tokens_per_s": tlog.tokens / seconds,
           "fvu_first": c.fvu_first, "fvu_last_fifth_start": c.fvu_last_fifth_start, "fvu_final": c.fvu_final,
           "last_fifth_drop": c.last_fifth_drop, "converged": c.converged, "dead_final": tlog.dead_fraction}
    return curve_points(plan.hook, plan.label, tc.architecture, tc.expansion, tlog.fvu_history), row


def write_curves(curves: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]], out: Path) -> None:
    """curves.csv, summary.csv (when given) and curves.png in `out`, each written atomically."""
    from pseval.study.plots import training_curves

    write_text_atomic(_csv(curves, CURVE_COLUMNS), out / "curves.csv")
    if summary:
        write_text_atomic(_csv(summary, SUMMARY_COLUMNS), out / "summary.csv")
    png = training_curves(curves, "Held-out FVU and dead fraction against training tokens")
    if png is not None:
        write_bytes_atomic(png, out / "curves.png")


def curve_rows_from_store(root: Path) -> list[dict[str, Any]]:
    """The training curves of every SAE a sweep folder trained (from each SAE's train_metrics.json)."""
    rows: list[dict[str, Any]] = []
    for metrics in sorted((root / "saes").glob(f"*/*/{METRICS_FILE}")):
        info = json.loads(metrics.read_text(encoding="utf-8"))
        tc = info["train_config"]
        rows += curve_points(info["key"]["hook"], metrics.parent.name, tc["architecture"], tc["expansion"],
                             info.get("fvu_history", []))
    return rows
