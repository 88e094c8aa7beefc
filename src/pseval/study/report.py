"""`pseval report RESULTS...`: Markdown summary and a self-contained HTML report with plots and the claims, for any
set of records (a sweep, an eval --out folder, SAEBench-style result folders, record files: see record_sets)."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pseval.errors import ConfigError, PsevalError
from pseval.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from pseval.logs import get_logger
from pseval.metrics.statistics import METRICS as METRIC_COLUMNS
from pseval.metrics.statistics import bootstrap_metrics, breakdown
from pseval.neuronpedia import feature_url, neuronpedia_id
from pseval.ps_eval.concentration import DOMINANCE_THRESHOLD
from pseval.ps_eval.headline import LEGEND, chance_line, gain_cell
from pseval.ps_eval.record import PSEvalRecord
from pseval.ps_eval.rows import CellRow, rows_from_records, short_dataset
from pseval.study import plots
from pseval.study.cells_csv import sorted_cells, write_cells_csv
from pseval.study.claims import Claim, evaluate_claims, family_note
from pseval.study.record_sets import RecordSet, distinct, load_record_set
from pseval.study.store import ResultsStore
from pseval.tables import fmt, markdown_table
from pseval.templating import render
from pseval.training.trainer import CONVERGENCE_MAX_DROP

_log = get_logger("report")  # messages; a notebook silences them on logging.getLogger("pseval")


@dataclass
class Panel:
    """The cells of one (dataset, readout), their claims and figures."""

    dataset: str
    readout: str
    rows: list[CellRow]
    claims: list[Claim] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    # What tells this panel from another of the same dataset name and readout (another model, or other data under
    # the same spec); empty when nothing needs telling.
    distinct: str = ""

    @property
    def title(self) -> str:
        """Heading text."""
        return f"{short_dataset(self.dataset)}, {self.readout} readout" + (f", {self.distinct}" if self.distinct
                                                                           else "")

    @property
    def stem(self) -> str:
        """File-name stem of the panel's figures and pages."""
        return _safe(f"{short_dataset(self.dataset)}_{self.readout}" + (f"_{self.distinct}" if self.distinct else ""))

    @property
    def key(self) -> str:
        """Key of the panel in claims.json."""
        return f"{self.dataset}|{self.readout}" + (f"|{self.distinct}" if self.distinct else "")


def build_panels(source: ResultsStore | RecordSet | Iterable[PSEvalRecord], n_boot: int = 1000,
                 seed: int = 0) -> list[Panel]:
    """Group cells by panel, evaluate claims and draw figures."""
    if isinstance(source, ResultsStore):
        records, where = list(source.records()), str(source.root)
    elif isinstance(source, RecordSet):
        records, where = source.records, ", ".join(str(p) for p in source.sources)
    else:
        records, where = list(source), "the records given"
    rows = rows_from_records(records)
    if not rows:
        raise ConfigError(f"{where}: no PS-Eval records to report on")
    groups: dict[tuple[str, str, str, str], list[CellRow]] = defaultdict(list)
    for r in rows:
        groups[r.panel].append(r)
    # Cells of different models, or of different data under one spec, never share a panel (nor its claims).
    models = {k[2] for k in groups}
    hashes = defaultdict(set)
    for ds, _, _, h in groups:
        hashes[ds].add(h)
    panels = []
    for (ds, ro, model, h), grp in sorted(groups.items()):
        grp.sort(key=lambda r: (r.layer if r.layer is not None else -1, r.component, r.architecture, r.expansion,
                                r.sae))
        distinct = ", ".join(([f"model {model}"] if len(models) > 1 else [])
                             + ([f"data {h[:8]}"] if len(hashes[ds]) > 1 else []))
        claims = evaluate_claims(grp, n_boot, seed)
        if any(r.control_same_feature is not None for r in grp):
            claims += evaluate_claims(grp, n_boot, seed, gain=True)  # the second family: gains over controls
        p = Panel(ds, ro, grp, claims, distinct=distinct)
        figs = {
            "pareto": plots.pareto(grp, f"MSE vs L0 ({p.title})"),
            "expansion": plots.versus_expansion(grp, "PS-Eval vs dictionary size"),
            "confusion": plots.confusion_grid([r for r in grp if not r.is_identity] or grp,
                                              f"Confusion matrices ({p.title})"),
            "cosines": plots.cosine_histograms(grp, f"Top-feature cosines ({p.title})"),
            # PS-Eval against sparsity and width, one series per hook: what a release of foreign SAEs is read by.
            "l0": plots.versus_size(grp, "l0", f"PS-Eval vs L0 ({p.title})"),
            "width": plots.versus_size(grp, "width", f"PS-Eval vs width ({p.title})"),
        }
        multi_layer = sorted({r.sae for r in grp if len({x.layer for x in grp if x.sae == r.sae}) > 1})
        for sae in multi_layer[:3]:
            figs[f"layers_{sae}"] = plots.versus_layer(grp, sae, "PS-Eval vs layer")
        p.figures = {k: v for k, v in figs.items() if v}
        panels.append(p)
    return panels


def _cell_intervals(r: CellRow, n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """(low, high) of F1 and specificity: the record's own when it used the report's resamples, else recomputed."""
    rec = r.record
    if rec is not None and (rec.eval_config.bootstrap_resamples, rec.eval_config.bootstrap_seed) == (n_boot, seed):
        iv = rec.eval_result_metrics.ps_eval_intervals
        return {m: (getattr(iv, f"{m}_low"), getattr(iv, f"{m}_high")) for m in ("f1", "specificity")}
    ci = bootstrap_metrics(r.same_sense, r.same_feature, n_boot, seed)
    return {m: (ci[m].low, ci[m].high) for m in ("f1", "specificity")}


def _concentration(r: CellRow) -> str:
    """The most common top feature's share of contexts, flagged when one feature dominates."""
    if r.record is None:
        return "-"
    c = r.record.eval_result_metrics.concentration
    return f"{fmt(c.top_feature_share)} (#{c.top_feature})" + (" DOMINATED" if c.dominated else "")


def _cell_rows(panel: Panel, n_boot: int, seed: int) -> list[dict]:
    out = []
    for r in panel.rows:
        ci = _cell_intervals(r, n_boot, seed)
        # The top feature links to its Neuronpedia page (HTML only) when the SAE's Neuronpedia id is known.
        url = feature_url(neuronpedia_id(r.record), r.record.eval_result_metrics.concentration.top_feature) \
            if r.record is not None else None
        out.append({"_links": {"top feature share": url} if url else {},
                    "hook": r.hook, "sae": r.sae, "pairs": len(r.same_sense),
                    "F1 [95% CI]": f"{fmt(r.metrics['f1'])} [{fmt(ci['f1'][0])}, {fmt(ci['f1'][1])}]",
                    "specificity [95% CI]": f"{fmt(r.metrics['specificity'])} [{fmt(ci['specificity'][0])}, "
                                            f"{fmt(ci['specificity'][1])}]",
                    "MCC": r.metrics.get("mcc"), "MCC gain vs control": gain_cell(
                        r.record.eval_result_metrics.gain_over_control if r.record else None, "mcc"),
                    "share of ceiling": r.record.eval_result_metrics.ceiling.share_cosine if r.record else None,
                    "precision": r.metrics["precision"], "recall": r.metrics["recall"],
                    "accuracy": r.metrics["accuracy"], "top feature share": _concentration(r),
                    "MSE": r.recon.get("mse_per_token"), "FVU": r.recon.get("fvu"),
                    "L0": r.recon.get("l0"), "dead": r.recon.get("dead_fraction"),
                    "loss rec.": r.loss_recovered.get("loss_recovered_zero") if r.loss_recovered else None,
                    "converged": converged_mark(r)})
    return out


CELL_COLUMNS = ("hook", "sae", "pairs", "F1 [95% CI]", "specificity [95% CI]", "MCC", "MCC gain vs control",
                "share of ceiling", "precision", "recall", "accuracy",
                "top feature share", "MSE", "FVU", "L0", "dead", "loss rec.", "converged")
CONCENTRATION_NOTE = (f"top feature share = the share of contexts whose argmax is the most common feature (#id); "
                      f"DOMINATED above {DOMINANCE_THRESHOLD:g}: that cell's recall and F1 come largely from one "
                      "feature, not from separated senses")
def converged_mark(row: CellRow) -> str:
    """'yes', 'NO' (held-out FVU still falling at the end of training), or '-' (not measured / not trained)."""
    return "-" if row.converged is None else ("yes" if row.converged else "NO")


def convergence_note(panel: Panel) -> str:
    """Which cells rest on SAEs that had not converged, and the rule."""
    bad = sorted({f"{r.sae} at {r.hook}" for r in panel.rows if r.converged is False})
    rule = (f"converged = NO: the SAE's held-out FVU still fell by more than {CONVERGENCE_MAX_DROP:.0%} over its "
            "last fifth of training steps; '-': not measured")
    if bad:
        return f"{len(bad)} SAE(s) not converged ({', '.join(bad)}); {rule}."
    if all(r.converged is None for r in panel.rows):  # foreign SAEs: nothing says how long they trained
        return "Convergence not known for any SAE here: pseval did not train them ('-')."
    unknown = sum(r.converged is None for r in panel.rows)
    return (f"Every SAE pseval trained converged ({rule})" + (f"; {unknown} cell(s) not known." if unknown else "."))


@dataclass
class InspectLink:
    """A per-sense inspection page of one panel's best or worst SAE (or why it could not be written)."""

    role: str
    row: CellRow
    word: str
    path: Path | None = None
    error: str | None = None


def inspect_pages(panels: list[Panel], out_dir: Path,
                  log: Callable[[str], Any] = _log.info) -> dict[int, list[InspectLink]]:
    """Write `pseval inspect` pages for the best and worst SAE by F1 of each panel (identity left out), for the
    panel's most frequent target word in the best cell; a page that cannot be made says why instead."""
    from pseval.models.loading import load_model
    from pseval.ps_eval.settings import PSEvalSettings
    from pseval.saes.loading import load_sae
    from pseval.study.inspect import inspect_cell

    models: dict[str, Any] = {}
    out: dict[int, list[InspectLink]] = {}
    for n, p in enumerate(panels):
        cands = [r for r in p.rows if not r.is_identity and math.isfinite(r.metrics["f1"])]
        if not cands:
            continue
        best = max(cands, key=lambda r: r.metrics["f1"])
        worst = min(cands, key=lambda r: r.metrics["f1"])
        counts = Counter(best.targets)
        word = min(counts, key=lambda w: (-counts[w], w)) if counts else ""
        links = []
        for role, r in (("best F1", best), ("worst F1", worst))[: 1 if best is worst else 2]:
            link = InspectLink(role, r, word)
            folder = out_dir / "inspect" / p.stem
            try:
                if r.record is None:
                    raise KeyError("the row has no record")
                c, source = r.record.eval_config, r.record.sae_source
                if c.model_name not in models:
                    models[c.model_name] = load_model(c.model_name)
                cfg = PSEvalSettings(**c.model_dump(include={"protocol", "readout", "template", "multi_token",
                                                             "too_long", "balance"}))
                link.path, _ = inspect_cell(models[c.model_name], c.model_name, load_sae(source), r.sae, source,
                                            r.hook, p.dataset, cfg, word, folder, neuronpedia_id(r.record))
            except (PsevalError, OSError, KeyError, ValueError) as exc:
                link.error = f"{type(exc).__name__}: {exc}"
                log(f"[report] no inspection page for {r.sae} at {r.hook}: {link.error}")
            links.append(link)
        out[n] = links
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _inspect_lines(links: list[InspectLink], out_dir: Path) -> list[str]:
    """Markdown lines of a panel's inspection links."""
    md = []
    for link in links:
        r = link.row
        what = f"{link.role}: {r.sae} at {r.hook} (F1 {fmt(r.metrics['f1'])}), word '{link.word}'"
        if link.path is None:
            md.append(f"- {what}: not written ({link.error})")
        else:
            md.append(f"- [{what}]({link.path.relative_to(out_dir).as_posix()})")
    return md


def loss_note(panel: Panel) -> str:
    """What the 'loss rec.' column measured: the objectives (and why, when it is not the LM's own loss)."""
    seen = {(r.loss_recovered.get("objective"), r.loss_recovered.get("reason")) for r in panel.rows
            if r.loss_recovered}
    if not seen:
        return ""
    parts = [f"{obj}" + (f" ({why})" if why else "") for obj, why in sorted(seen, key=str)]
    return "loss rec. = (L_zero-ablation - L_SAE) / (L_zero-ablation - L_clean), objective: " + "; ".join(parts)


CLAIM_COLUMNS = ("claim", "on", "verdict", "test", "statistic", "p", "comparisons", "evidence")


def claims_table(claims: list[Claim]) -> list[dict]:
    """Rows of the claims table: the verdict (marked if it rests on unconverged SAEs), its one test, the evidence."""
    return [{"claim": c.statement, "on": c.scale, "verdict": c.verdict_label, "test": c.test or "-",
             "statistic": f"{c.statistic} = {c.value:+.3f}" if c.statistic else "-",
             "p": "-" if c.p_value is None else f"{c.p_value:.3g}", "comparisons": c.comparisons,
             "evidence": "; ".join(c.evidence[:4]) + (f"; ... ({len(c.evidence)} lines)"
                                                     if len(c.evidence) > 4 else "")} for c in claims]


def _pos_rows(panel: Panel) -> list[dict]:
    out = []
    for r in panel.rows:
        if r.is_identity or not r.pos:
            continue
        for pos, m in breakdown(r.same_sense, r.same_feature, list(r.pos)).items():
            out.append({"hook": r.hook, "sae": r.sae, "pos": pos, **m})
    return out[:40]


def _target_rows(panel: Panel, limit: int = 30) -> tuple[str, list[dict]]:
    """Per-target-word metrics of the panel's best-F1 SAE: the words with the most pairs."""
    cands = [r for r in panel.rows if not r.is_identity and len(r.targets) == len(r.same_sense)]
    if not cands:
        return "", []
    best = max(cands, key=lambda r: r.metrics["f1"])
    per_target = breakdown(best.same_sense, best.same_feature, best.targets)
    rows = [{"target": w, **m} for w, m in sorted(per_target.items(), key=lambda wm: (-wm[1]["pairs"], wm[0]))]
    return f"{best.sae} at {best.hook}", rows[:limit]


def write_target_csv(panels: list[Panel], path: Path) -> None:
    """Every cell's metrics per target word, one CSV row each."""
    cols = ("dataset", "readout", "hook", "sae", "target", "pairs", *METRIC_COLUMNS)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(cols)
    for p in panels:
        for r in p.rows:
            if len(r.targets) != len(r.same_sense):
                continue
            for word, m in breakdown(r.same_sense, r.same_feature, r.targets).items():
                w.writerow([p.dataset, p.readout, r.hook, r.sae, word, m["pairs"], *(m[c] for c in METRIC_COLUMNS)])
    write_text_atomic(buf.getvalue(), path)


@dataclass
class PanelView:
    """Everything one panel shows, rendered alike to Markdown and HTML."""

    panel: Panel
    figures: list[tuple[str, str, bytes]]  # (name, file name under figures/, PNG)
    cells: list[dict]
    notes: list[str]
    inspections: list[InspectLink]
    target_title: str
    target_rows: list[dict]
    pos_rows: list[dict]


TARGET_COLUMNS = ("target", "pairs", "accuracy", "f1", "specificity", "recall")
POS_COLUMNS = ("hook", "sae", "pos", "pairs", "f1", "specificity", "recall")
INSPECT_TITLE = "Per-sense inspection of the best and worst SAE"
def panel_view(p: Panel, n_boot: int, seed: int, inspections: list[InspectLink]) -> PanelView:
    """The tables, notes and figures of one panel."""
    stem = p.stem
    figures = [(name, f"{stem}_{_safe(name)}.png", png) for name, png in p.figures.items()]
    who, target_rows = _target_rows(p)
    title = (f"By target word ({who}, the highest F1; the {len(target_rows)} words with most pairs; every cell and "
             "word in by_target.csv)")
    return PanelView(p, figures, _cell_rows(p, n_boot, seed),
                     [chance_line([r.record for r in p.rows if r.record is not None]),
                      ". ".join(x for x in (loss_note(p), CONCENTRATION_NOTE) if x), convergence_note(p),
                      *(LEGEND[k] for k in ("headline", "gain", "share", "converged"))],
                     inspections, title, target_rows, _pos_rows(p))


def render_markdown(header: str, views: list[PanelView], out_dir: Path, title: str = "PS-Eval report") -> str:
    """report.md: figures referenced from figures/."""
    md = [f"# {title}", ""] + ([header, ""] if header else [])
    for v in views:
        md += [f"## {v.panel.title}", "", "### Claims", "", markdown_table(claims_table(v.panel.claims),
                                                                          CLAIM_COLUMNS), "", family_note(), "",
               "### Figures", ""]
        md += [line for name, fname, _ in v.figures for line in (f"![{name}](figures/{fname})", "")]
        md += ["### Every cell", "", markdown_table(v.cells, CELL_COLUMNS), ""]
        md += [line for note in v.notes for line in (note, "")]
        if v.inspections:
            md += [f"### {INSPECT_TITLE}", "", *_inspect_lines(v.inspections, out_dir), ""]
        if v.target_rows:
            md += [f"### {v.target_title}", "", markdown_table(v.target_rows, TARGET_COLUMNS), ""]
        if v.pos_rows:
            md += ["### By part of speech", "", markdown_table(v.pos_rows, POS_COLUMNS), ""]
    return "\n".join(md)


def render_html(header: str, views: list[PanelView], out_dir: Path, title: str = "PS-Eval report") -> str:
    """report.html from the report.html template: self-contained, figures embedded, every value escaped."""
    return render("report.html", title=title, header=header, views=views, out_dir=out_dir,
                  claim_rows=claim_rows, claim_columns=CLAIM_COLUMNS, cell_columns=CELL_COLUMNS,
                  target_columns=TARGET_COLUMNS, pos_columns=POS_COLUMNS, family_note=family_note(),
                  inspect_title=INSPECT_TITLE)


def claim_rows(claims: list[Claim]) -> list[tuple[Claim, dict]]:
    """Each claim with its row of the claims table."""
    return list(zip(claims, claims_table(claims), strict=True))


def _header(rs: RecordSet, panels: list[Panel], n_boot: int, seed: int) -> str:
    """The sweep's settings when the set is one sweep, else what the records themselves say; then the versions and
    the commits the cells were computed at, and the intervals."""
    # A resumed sweep (or a set gathered from several runs) can hold cells from several versions: name each.
    commits = ", ".join(sorted({r.git_commit for p in panels for r in p.rows}))
    versions = ", ".join(distinct(r.pseval_version for r in rs.records))
    intervals = f"Intervals: 95% percentile bootstrap over pairs ({n_boot} resamples, seed {seed})."
    cfg = rs.sweep_settings
    if cfg:
        own = sorted({g["train_tokens"] for g in cfg.get("grids", []) if g.get("train_tokens")})
        budget = f"{cfg.get('train_tokens'):,}" + (f" (grids of their own: {', '.join(f'{t:,}' for t in own)})"
                                                   if own else "")
        return (f"Sweep `{cfg.get('name')}` on model `{cfg.get('model')}`; SAEs trained on "
                f"{budget} tokens of `{cfg.get('corpus')}`; pseval "
                f"{rs.sweep_info.get('pseval_version')}, cells computed at commit(s) {commits}. {intervals}")
    cells = [r for p in panels for r in p.rows]
    saes = distinct((r.sae, r.hook) for r in cells)  # one name at several hooks is several SAEs
    return (f"{len(cells)} cell(s) of {len(saes)} SAE(s) at {len(distinct(r.hook for r in cells))} hook(s), "
            f"from {', '.join(f'`{s}`' for s in map(str, rs.sources))}; model(s) "
            f"{', '.join(f'`{m}`' for m in distinct(r.model for r in cells))}; data "
            f"{', '.join(f'`{d}`' for d in distinct(r.dataset for r in cells))}; pseval {versions}, cells computed "
            f"at commit(s) {commits}. {intervals}")


def write_report(results: str | Path | Sequence[str | Path], out: str | Path | None = None, n_boot: int = 1000,
                 seed: int = 0, inspect: bool = True, log: Callable[[str], Any] = _log.info) -> tuple[Path, Path]:
    """Write report.md (with figures/*.png), report.html (images embedded), claims.json, cells.csv (one row per cell)
    and by_target.csv for the records under `results` (a folder or file, or several: see record_sets); returns the
    two report paths. `out` defaults to RESULTS/report for one folder and is required otherwise.

    With `inspect`, per-sense inspection pages of each panel's best and worst SAE are written to inspect/ and
    linked (this loads the model)."""
    paths = [Path(results)] if isinstance(results, (str, Path)) else [Path(p) for p in results]
    if out is None:
        if len(paths) != 1 or not paths[0].is_dir():
            raise ConfigError("a report of several paths or of record files needs an output folder (--out)")
        out = paths[0] / "report"
    out_dir = Path(out)
    rs = load_record_set(paths)
    if rs.duplicates:
        log(f"[report] {rs.duplicates} record(s) found twice under the paths given, reported once")
    panels = build_panels(rs, n_boot, seed)
    inspections = inspect_pages(panels, out_dir, log) if inspect else {}
    views = [panel_view(p, n_boot, seed, inspections.get(n, [])) for n, p in enumerate(panels)]
    for v in views:
        for _, fname, png in v.figures:
            write_bytes_atomic(png, out_dir / "figures" / fname)
    header = _header(rs, panels, n_boot, seed)
    title = "PS-Eval sweep report" if rs.sweep_settings else "PS-Eval report"
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(render_markdown(header, views, out_dir, title), md_path)
    write_text_atomic(render_html(header, views, out_dir, title), html_path)
    write_target_csv(panels, out_dir / "by_target.csv")
    write_cells_csv(sorted_cells([r for p in panels for r in p.rows]), out_dir / "cells.csv")
    write_json_atomic({p.key: [c.to_dict() for c in p.claims] for p in panels},
                      out_dir / "claims.json")
    return md_path, html_path


# The name callers knew when only sweeps had a report.
write_sweep_report = write_report
