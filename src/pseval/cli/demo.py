"""The demo job: train a TopK and a ReLU SAE on MiniLM over WordNet text and score them with PS-Eval."""

from __future__ import annotations

import base64
import html
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pseval.cli.eval import output_names, write_records
from pseval.files import write_atomic
from pseval.metrics.statistics import Interval, bootstrap_metrics
from pseval.models.loading import load_model
from pseval.ps_eval import PSEvalConfig
from pseval.ps_eval.headline import CONTROL_COLUMNS, LEGEND, chance_line, control_rows, headline_row, legend
from pseval.ps_eval.pipeline import SAEEntry, evaluate, prepare_pairs
from pseval.ps_eval.record import PSEvalRecord
from pseval.ps_eval.rows import with_ci
from pseval.run_keys import key_id
from pseval.saes import identity_sae
from pseval.saes.fingerprint import training_fingerprint
from pseval.study.cell_rows import row_from_record, short_dataset
from pseval.tables import markdown_table, text_table
from pseval.training.run import TrainJob, TrainRequest, run_training
from pseval.training.trainer import TrainConfig

# The headline first (F1, specificity, MCC with intervals, MCC gain over the random control, share of ceiling),
# then the rest.
TABLE_COLUMNS = ("sae", "dataset", "pairs", "f1 [95% CI]", "specificity [95% CI]", "MCC [95% CI]",
                 "MCC gain vs control", "share of ceiling", "accuracy", "precision", "recall", "AUC cosine [95% CI]",
                 "top feature share", "mse", "fvu", "l0", "converged")
LEGEND_KEYS = ("headline", "gain", "share", "converged")


@dataclass
class DemoConfig:
    """Sizes chosen so the demo finishes in a few minutes on 2 CPU cores."""

    model: str = "minilm"
    hook: str = "blocks.3.hook_resid_post"
    # Definitions only: the WordNet pairs are built from the usage examples, so training never sees them.
    corpus: str = "wordnet-definitions"
    train_tokens: int = 200_000
    heldout_tokens: int = 20_000
    expansion: int = 8
    k: int = 32
    l1_coeff: float = 2.0
    wordnet_pairs: str = "wordnet:max_per_lemma=2,balance=1,seed=0"
    max_wordnet_pairs: int = 2000
    wic: str | None = None
    out: str = "demo-out"
    seed: int = 0
    device: str = "cpu"


def run_demo(cfg: DemoConfig, progress: bool = True, log: Any = print) -> list[dict[str, Any]]:
    """Train, evaluate and report; returns one row per (SAE, dataset)."""
    t0 = time.time()
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    configs = [TrainConfig("topk", cfg.expansion, cfg.k, seed=cfg.seed, name=f"topk-x{cfg.expansion}-k{cfg.k}"),
               TrainConfig("standard", cfg.expansion, None, sparsity_coeff=cfg.l1_coeff, seed=cfg.seed,
                           name=f"relu-x{cfg.expansion}-l1_{cfg.l1_coeff:g}")]
    log(f"[demo] training {', '.join(c.label for c in configs)} at {cfg.hook} of {cfg.model} on {cfg.corpus}")
    req = TrainRequest(model=cfg.model, corpus=cfg.corpus, tokens=cfg.train_tokens, heldout_tokens=cfg.heldout_tokens,
                       jobs=[TrainJob(cfg.hook, c, out / "saes" / c.label) for c in configs], device=cfg.device,
                       checkpoint_root=out / "saes" / ".checkpoints", overwrite=True)
    lm = load_model(cfg.model, device=cfg.device)
    trained = run_training(req, log=log, progress=progress, lm=lm)
    entries = [SAEEntry.of(identity_sae(lm.d_model, cfg.model, cfg.hook), "identity", cfg.hook, "identity",
                           f"identity:{lm.d_model}")]
    entries += [SAEEntry.of(t.sae, t.job.config.label, cfg.hook, str(t.job.folder), training_fingerprint(key_id(t.key)),
                            training=t.training, reconstruction=t.reconstruction) for t in trained]
    log(f"[demo] trained in {time.time() - t0:.0f}s; scoring with PS-Eval")
    specs = [(cfg.wordnet_pairs, cfg.max_wordnet_pairs)] + ([(f"wic:{cfg.wic}", None)] if cfg.wic else [])
    ps_cfg = PSEvalConfig(seed=cfg.seed)
    rows = []
    every: list[PSEvalRecord] = []
    for spec, max_pairs in specs:
        records = evaluate(lm, cfg.model, entries, prepare_pairs(spec, max_pairs, cfg.seed), ps_cfg,
                           progress=progress)
        write_records(records, out / "results" / spec.split(":")[0], output_names(records))
        every += records
        for rec in records:
            m, rc = rec.eval_result_metrics, rec.eval_result_metrics.reconstruction
            head = headline_row(rec)
            iv, tf = m.ps_eval_intervals, m.threshold_free
            rows.append({"sae": rec.sae_name, "dataset": short_dataset(spec), "pairs": m.counts.pairs_scored,
                         **m.ps_eval.model_dump(), "mse": rc and rc.mse_per_token, "fvu": rc and rc.fvu,
                         "l0": rc and rc.l0, "dead": rc and rc.dead_fraction,
                         "f1 [95% CI]": with_ci(m.ps_eval.f1, iv.f1_low, iv.f1_high),
                         "specificity [95% CI]": with_ci(m.ps_eval.specificity, iv.specificity_low,
                                                         iv.specificity_high),
                         "AUC cosine [95% CI]": with_ci(tf.auc_cosine, tf.auc_cosine_low, tf.auc_cosine_high),
                         "share of ceiling": m.ceiling.share_cosine,
                         "top feature share": m.concentration.top_feature_share,
                         **{k: head[k] for k in ("MCC [95% CI]", "MCC gain vs control")},
                         "converged": converged_mark(m.training)})
    write_demo_report(out / "report.md", cfg, rows, time.time() - t0, [spec for spec, _ in specs], every)
    write_page(out / "report.html", cfg, every)
    log(text_table(rows, TABLE_COLUMNS))
    log(chance_line(every))
    log(legend(*LEGEND_KEYS))
    ctl = control_rows(every, [f"{r.sae_name} ({short_dataset(r.eval_config.dataset)})" for r in every])
    if ctl:
        log("Random controls and the gain over them\n" + text_table(ctl, CONTROL_COLUMNS) + "\n" + legend("controls"))
    log(f"[demo] done in {time.time() - t0:.0f}s; report {out / 'report.md'} and {out / 'report.html'}")
    return rows


def converged_mark(training: Any) -> str:
    """yes / NO / - (not trained by pseval, or too short to tell)."""
    return "-" if training is None or training.converged is None else ("yes" if training.converged else "NO")


def write_demo_report(path: Path, cfg: DemoConfig, rows: list[dict[str, Any]], seconds: float,
                 datasets: list[str], records: list[PSEvalRecord] | None = None) -> None:
    """Short Markdown report of the demo."""
    lines = [
        "# pseval demo",
        "",
        f"Model `{cfg.model}`, hook `{cfg.hook}`. SAEs trained on {cfg.train_tokens:,} tokens of `{cfg.corpus}` "
        f"(special tokens excluded); MSE, FVU and L0 on {cfg.heldout_tokens:,} held-out tokens.",
        f"Datasets: {', '.join(f'`{spec}`' for spec in datasets)}.",
        "PS-Eval: template readout (`{context} The {target_word} means`), multi-token targets dropped, "
        "the reference's class balancing. Positive class = same sense; predicted positive = same argmax feature.",
        "",
        markdown_table(rows, (*TABLE_COLUMNS, "dead")),
        "",
        *(f"- {LEGEND[k]}" for k in LEGEND_KEYS),
        "",
        *([chance_line(records), ""] if records else []),
        *(["Random controls and the gain over them:", "",
           markdown_table(control_rows(records), CONTROL_COLUMNS), "", f"- {LEGEND['controls']}", ""]
          if records and control_rows(records) else []),
        f"Finished in {seconds:.0f} s. Configuration:",
        "",
        "```",
        *(f"{k} = {v!r}" for k, v in asdict(cfg).items()),
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


INTERVAL_METRICS = ("f1", "specificity")
DEMO_BOOTSTRAP = 1000  # resamples when a record carries no intervals of its own


def record_intervals(rec: PSEvalRecord, seed: int = 0) -> dict[str, Interval]:
    """95% intervals of F1 and specificity: the record's own when it has them, else a pair bootstrap (seeded) of its
    per-pair outcomes."""
    stored = getattr(rec.eval_result_metrics, "ps_eval_intervals", None)  # records that carry their intervals
    values = rec.eval_result_metrics.ps_eval
    nan = float("nan")
    if stored is not None:
        return {m: Interval(nan if getattr(values, m) is None else getattr(values, m),
                            nan if getattr(stored, f"{m}_low") is None else getattr(stored, f"{m}_low"),
                            nan if getattr(stored, f"{m}_high") is None else getattr(stored, f"{m}_high"))
                for m in INTERVAL_METRICS}
    same_sense, same_feature = row_from_record(rec).pair
    ci = bootstrap_metrics(same_sense, same_feature, DEMO_BOOTSTRAP, seed)
    return {m: ci[m] for m in INTERVAL_METRICS}


def write_page(path: Path, cfg: DemoConfig, records: list[PSEvalRecord]) -> None:
    """report.html: PS-Eval against MSE and L0 with 95% intervals (an embedded PNG) and the table behind it."""
    from pseval.study import plots
    from pseval.tables import fmt

    rows = [row_from_record(r) for r in records]
    intervals = [record_intervals(r, cfg.seed) for r in records]
    png = plots.metrics_vs_reconstruction(rows, intervals, f"PS-Eval vs reconstruction: {cfg.model} {cfg.hook}")
    head = ("SAE", "dataset", "pairs", "F1 [95% CI]", "specificity [95% CI]", "MCC [95% CI]", "MCC gain vs control",
            "share of ceiling", "MSE", "FVU", "L0", "converged")
    body = []
    for rec, row, iv in zip(records, rows, intervals, strict=True):
        tr = rec.eval_result_metrics.training
        conv = converged_mark(tr)
        hl = headline_row(rec)
        cells = (row.sae, short_dataset(row.dataset), len(row.same_sense),
                 *(f"{fmt(iv[m].value)} [{fmt(iv[m].low)}, {fmt(iv[m].high)}]" for m in INTERVAL_METRICS),
                 *(hl[k] for k in ("MCC [95% CI]", "MCC gain vs control", "share of ceiling")),
                 fmt(row.recon.get("mse_per_token")), fmt(row.recon.get("fvu")), fmt(row.recon.get("l0")), conv)
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    figure = (f"<p><img alt='PS-Eval vs MSE and L0' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
              "</p>") if png else ""
    text = "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>pseval demo</title><style>",
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}img{max-width:100%}",
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}th{background:#eee}",
        "</style></head><body><h1>pseval demo</h1>",
        f"<p>Model <code>{html.escape(cfg.model)}</code>, hook <code>{html.escape(cfg.hook)}</code>; SAEs trained on "
        f"{cfg.train_tokens:,} tokens of <code>{html.escape(cfg.corpus)}</code>, MSE and L0 on "
        f"{cfg.heldout_tokens:,} held-out tokens. Intervals: 95% percentile bootstrap over the scored pairs "
        f"({DEMO_BOOTSTRAP} resamples, seed {cfg.seed}) unless the record carries its own. Identity has no "
        "reconstruction error: it is the dashed line, its interval the band. The same numbers are in report.md.</p>",
        figure,
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>", *body, "</table>",
        *(f"<p style='font-size:smaller'>{html.escape(t)}</p>" for t in (chance_line(records),
                                                                         *(LEGEND[k] for k in LEGEND_KEYS)) if t),
        "</body></html>"])
    write_atomic(path, lambda fh: fh.write(text))
