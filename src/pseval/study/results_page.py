"""A published results page (`pseval report RUN --page PAGE.md`): one Markdown page drawn from a sweep's records,
with its figures and the compact summaries its tables are drawn from (cells.csv, training.csv, claims.csv) in a folder
beside it, so the page can be committed and checked against its summaries (every table says which file and rows it
shows, in an HTML comment the checks read)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pseval.errors import ConfigError
from pseval.files import write_bytes_atomic, write_text_atomic
from pseval.logs import get_logger
from pseval.ps_eval.headline import chance_line
from pseval.ps_eval.rows import CellRow, short_dataset
from pseval.study import plots
from pseval.study.budget_check import (
    BUDGET_CELL_COLUMNS,
    BUDGET_CLAIM_COLUMNS,
    BUDGET_PANEL_COLUMNS,
    budget_cell_rows,
    budget_claim_rows,
    budget_panel_rows,
    read_summaries,
)
from pseval.study.cells_csv import cells_csv_text, sorted_cells
from pseval.study.claims import family_note
from pseval.study.curves import curve_rows_from_store
from pseval.study.record_sets import load_record_set
from pseval.study.report import Panel, build_panels
from pseval.training.run import METRICS_FILE
from pseval.training.trainer import CONVERGENCE_MAX_DROP, TrainConfig, fvu_decay_exponent, max_decay_exponent

_log = get_logger("results_page")  # messages; a notebook silences them on logging.getLogger("pseval")

TRAINING_COLUMNS = ("hook", "sae", "architecture", "expansion", "train_tokens", "fvu_first", "fvu_last_fifth_start",
                    "fvu_final", "last_fifth_drop", "fvu_decay_exponent", "converged", "dead_fraction")
CLAIM_CSV_COLUMNS = ("dataset", "readout", "key", "scale", "statement", "verdict", "statistic", "value", "p_value",
                     "p_family", "comparisons", "unconverged")
FRONTIER_COLUMNS = ("sae", "architecture", "expansion", "train_tokens", "l0", "mse_per_token", "fvu",
                    "dead_fraction", "loss_recovered", "converged")
ARCH_COLUMNS = ("sae", "architecture", "expansion", "train_tokens", "pairs", "f1", "f1_low", "f1_high", "specificity",
                "specificity_low", "specificity_high", "gain_f1", "gain_f1_low", "gain_f1_high", "gain_f1_verdict",
                "converged")
LAYER_COLUMNS = ("hook", "layer", "component", "sae", "pairs", "f1", "f1_low", "f1_high", "specificity",
                 "specificity_low", "specificity_high", "gain_f1", "gain_f1_low", "gain_f1_high", "gain_f1_verdict",
                 "converged")
CLAIM_COLUMNS = ("key", "scale", "statement", "verdict", "value", "p_value", "p_family", "comparisons", "unconverged")
# Before each table: {"file", "where": {column: value or [values]}, "key": [columns]} as JSON: the table shows exactly
# the file's rows that match `where`, one per key (tests/study/test_results_page.py checks it).
SOURCE_MARK = "<!-- source "


def page_value(value: Any) -> str:
    """How a summary value appears in a page table: numbers to 3 significant digits, integers and words as they
    are, blanks as '-' (the one rule the page's checks reproduce)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3g}"
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text.replace("|", "/")
    if text.lstrip("-").isdigit():
        return text
    return "-" if math.isnan(number) else f"{number:.3g}"


def _csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return buf.getvalue()


def _reread(text: str) -> list[dict[str, str]]:
    """Rows as a reader of the written CSV sees them (the page shows what the file holds, not the floats)."""
    return list(csv.DictReader(io.StringIO(text)))


def _table(rows: Sequence[Mapping[str, str]], columns: Sequence[str], file: str, where: Mapping[str, str | list[str]],
           key: Sequence[str]) -> list[str]:
    """A Markdown table of summary rows (values through page_value), preceded by its source mark."""
    mark = SOURCE_MARK + json.dumps({"file": file, "where": dict(where), "key": list(key)}) + " -->"
    lines = [mark, "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(page_value(r.get(c)) for c in columns) + " |" for r in rows]
    return lines + [""]


def training_rows(run: Path) -> list[dict[str, Any]]:
    """One row per SAE the sweep trained (TRAINING_COLUMNS), from each SAE's train_metrics.json."""
    rows = []
    for metrics in sorted((run / "saes").glob(f"*/*/{METRICS_FILE}")):
        info = json.loads(metrics.read_text(encoding="utf-8"))
        t, tc = info["training"], info["train_config"]
        rows.append({"hook": info["key"]["hook"], "sae": metrics.parent.name, "architecture": tc["architecture"],
                     "expansion": tc["expansion"], "train_tokens": t["tokens"], "fvu_first": t.get("fvu_first"),
                     "fvu_last_fifth_start": t.get("fvu_last_fifth_start"), "fvu_final": t.get("fvu_final"),
                     "last_fifth_drop": t.get("fvu_last_fifth_drop"),
                     "fvu_decay_exponent": fvu_decay_exponent(info.get("fvu_history", []), t["steps"]),
                     "converged": t.get("converged"),
                     "dead_fraction": t.get("dead_fraction")})
    return rows


def claim_rows(panels: Sequence[Panel]) -> list[dict[str, Any]]:
    """One row per (panel, claim) (CLAIM_CSV_COLUMNS)."""
    return [{"dataset": p.dataset, "readout": p.readout, "key": c.key, "scale": c.scale, "statement": c.statement,
             "verdict": c.verdict, "statistic": c.statistic, "value": None if math.isnan(c.value) else c.value,
             "p_value": c.p_value, "p_family": c.p_family, "comparisons": c.comparisons,
             "unconverged": len(c.unconverged)} for p in panels for c in p.claims]


def _hook_with_most_saes(rows: Sequence[CellRow]) -> str:
    counts: dict[str, set[str]] = {}
    for r in rows:
        if not r.is_identity:
            counts.setdefault(r.hook, set()).add(r.sae)
    return max(sorted(counts), key=lambda h: len(counts[h])) if counts else ""


def _sae_at_most_hooks(rows: Sequence[CellRow]) -> str:
    """The trained SAE label found at the most hooks (grid 1's: what the layer and component tables follow)."""
    hooks: dict[str, set[str]] = {}
    for r in rows:
        if not r.is_identity:
            hooks.setdefault(r.sae, set()).add(r.hook)
    return max(sorted(hooks), key=lambda s: len(hooks[s])) if hooks else ""


def _budgets(settings: Mapping[str, Any]) -> str:
    default = settings.get("train_tokens")
    parts = []
    for g in settings.get("grids", []):
        what = f"{'/'.join(g['architectures'])} x{'/'.join(map(str, g['expansions']))} at {', '.join(g['hooks'])}"
        parts.append(f"{what}: {g.get('train_tokens') or default:,} tokens")
    return "; ".join(parts)


def write_results_page(run: str | Path, page: str | Path, n_boot: int = 1000, seed: int = 0,
                       command: str | None = None, log: Callable[[str], Any] = _log.info,
                       budget_check: str | Path | None = None) -> Path:
    """Write PAGE (Markdown) and PAGE's folder (PAGE without .md: figures, cells.csv, training.csv, claims.csv,
    curves.csv) from a sweep folder's records and SAEs; returns the page's path. With `budget_check` (the summary
    folder of the same study at another budget), a section compares the two (pseval.study.budget_check)."""
    run, page = Path(run), Path(page)
    if page.suffix != ".md":
        raise ConfigError(f"--page {page}: expected a Markdown file name ending in .md")
    before = read_summaries(budget_check) if budget_check is not None else None  # a bad folder fails before work
    rs = load_record_set([run])
    settings = rs.sweep_settings
    if not settings:
        raise ConfigError(f"{run}: not a sweep folder (no sweep.json): a results page is drawn from one sweep")
    assets = page.with_suffix("")
    rel = assets.name
    panels = build_panels(rs, n_boot, seed)
    cells = sorted_cells([r for p in panels for r in p.rows])
    cells_text = cells_csv_text(cells)
    write_text_atomic(cells_text, assets / "cells.csv")
    cell_rows = _reread(cells_text)
    by_cell = {(r.dataset, r.readout, r.hook, r.sae): row for r, row in zip(cells, cell_rows, strict=True)}
    train_text = _csv_text(training_rows(run), TRAINING_COLUMNS)
    write_text_atomic(train_text, assets / "training.csv")
    training = _reread(train_text)
    claims_text = _csv_text(claim_rows(panels), CLAIM_CSV_COLUMNS)
    write_text_atomic(claims_text, assets / "claims.csv")
    claims = _reread(claims_text)
    curves = curve_rows_from_store(run)
    write_text_atomic(_csv_text(curves, ("hook", "sae", "architecture", "expansion", "step", "tokens", "fvu",
                                         "dead")), assets / "curves.csv")
    figures: dict[str, bytes | None] = {}
    main_hook, layer_sae = _hook_with_most_saes(cells), _sae_at_most_hooks(cells)
    figures["curves_architectures"] = plots.training_curves(
        [c for c in curves if c["hook"] == main_hook], "Held-out FVU and dead fraction during training")
    figures["curves_hooks"] = plots.training_curves(
        [c for c in curves if c["sae"] == layer_sae], f"{layer_sae} at every hook: held-out FVU and dead fraction")
    commits = sorted({r.git_commit for r in cells})
    name = settings.get("name")
    sweep_cmd = command or f"pseval sweep configs/{name}.toml --out {run}"
    model = settings.get("model")
    md = [f"# PS-Eval on {'MiniLM' if model == 'minilm' else f'`{model}`'}: the paper's study (`{name}`)", "",
          "Drawn by one command from the sweep's records; every number in a table below is the value in the CSV "
          f"file beside this page that its table names (`{rel}/cells.csv`, `training.csv`, `claims.csv`), and "
          "tests/study/test_results_page.py checks that they agree.", "",
          "```bash", sweep_cmd, f"pseval report {run} --page {page}"
          + (f" --sweep-command '{command}'" if command else "")
          + (f" --budget-check {budget_check}" if budget_check is not None else ""), "```", "",
          f"- model `{settings.get('model')}`, corpus `{settings.get('corpus')}` "
          f"({settings.get('heldout_tokens'):,} held-out tokens), batch {settings.get('batch_size')}, "
          f"lr {settings.get('lr')}, seed {settings.get('seed')}",
          f"- budgets: {_budgets(settings)}",
          f"- sweep started at commit `{rs.sweep_info.get('git_commit')}`; cells computed at commit(s) "
          f"{', '.join(f'`{c}`' for c in commits)}; pseval {rs.sweep_info.get('pseval_version')}, torch "
          f"{rs.sweep_info.get('torch_version')}",
          f"- intervals: 95% percentile bootstrap over pairs ({n_boot} resamples, seed {seed}); gain over control: "
          "the SAE's figure minus the mean of its seeded random-weight controls of the same architecture, shape and "
          "sparsity, with its 95% interval and verdict", ""]
    md += _training_section(training, figures, rel, str(settings.get("corpus")))
    md += _frontier_section(panels, by_cell, main_hook, figures)
    for p in panels:
        md += _panel_section(p, by_cell, main_hook, layer_sae, figures)
    md += _claims_section(panels, claims)
    if before is not None:
        md += _budget_section(before, cell_rows, claims, training, assets, main_hook, str(budget_check))
    if model == "minilm":  # what the embedded model can say about the paper's GPT-2 findings
        md += _minilm_section(claims, settings)
    for fname, png in figures.items():
        if png is not None:
            write_bytes_atomic(png, assets / f"{fname}.png")
    text = "\n".join(line.replace("](FIG:", f"]({rel}/") for line in md)
    write_text_atomic(text, page)
    log(f"[report] {page} and {assets}/ ({len(cells)} cells, {len(training)} SAEs trained)")
    return page


def _fig(figures: Mapping[str, bytes | None], name: str, alt: str) -> list[str]:
    return [f"![{alt}](FIG:{name}.png)", ""] if figures.get(name) else []


def _training_section(training: list[dict[str, str]], figures: dict[str, bytes | None], rel: str,
                      corpus: str) -> list[str]:
    bad = [f"{r['sae']} at {r['hook']}" for r in training if r["converged"] == "False"]
    md = ["## Training: curves and convergence", "",
          "Held-out FVU (the first 2,048 held-out activations, never trained on) and the fraction of dead latents, "
          "probed during training; an SAE is converged when its held-out FVU fell by at most "
          f"{CONVERGENCE_MAX_DROP:.0%} over its last fifth of steps (docs/training.md). A latent is dead when it "
          f"has not fired for the trainer's dead window ({TrainConfig().dead_window_tokens:,} tokens), so a run "
          f"shorter than that reports none. Every point is in `{rel}/curves.csv`.", ""]
    md += _fig(figures, "curves_architectures", "training curves, architectures x widths")
    md += _fig(figures, "curves_hooks", "training curves, TopK x8 at every hook")
    md += _table(training, TRAINING_COLUMNS, "training.csv", {}, ("hook", "sae"))
    if bad:
        md += [f"**Not converged ({len(bad)} of {len(training)} SAEs):** {', '.join(bad)}: at the budgets above "
               f"their held-out FVU was still falling by more than {CONVERGENCE_MAX_DROP:.0%} over the last fifth "
               "(the sweep config's comments say why the budgets are what they are). Every claim verdict that "
               "compares them says how many it rests on.", ""]
        md += _why_unconverged(training, corpus)
    else:
        md += ["Every SAE of the study converged.", ""]
    return md


def _why_unconverged(training: list[dict[str, str]], corpus: str) -> list[str]:
    """Why a longer run would or would not converge: each unconverged SAE's fitted power-law exponent."""
    limit = max_decay_exponent()
    fitted = [(r, float(r["fvu_decay_exponent"])) for r in training
              if r["converged"] == "False" and r["fvu_decay_exponent"] not in ("", None)]
    steep = [a for _, a in fitted if a > limit]
    flat = [f"{r['sae']} at {r['hook']} (a = {a:.3f})" for r, a in fitted if a <= limit]
    md = []
    if steep:
        lo, hi = min(steep), max(steep)
        md.append(f"**Why they cannot converge here.** While the learning rate is constant (from half to four fifths "
                  f"of the steps), the held-out FVU of {len(steep)} of these SAEs fell as FVU ~ tokens^-a with a from "
                  f"{lo:.2f} to {hi:.2f} (fitted on log-log axes: column fvu_decay_exponent). A curve of that shape "
                  f"falls by 1 - 0.8^a over any last fifth (a = {hi:.2f}: {1 - 0.8 ** hi:.1%}), whatever the budget, "
                  f"so it meets the {CONVERGENCE_MAX_DROP:.0%} rule only once it flattens to a <= {limit:.3f}, which "
                  "these runs had not begun to do and which a longer run on the same curve does not bring. The "
                  f"sweep's corpus (`{corpus}`) bounds how long a run can be without repeating its text, so these SAEs "
                  "are named here rather than trained on until the flag holds.")
    if flat:
        md.append(f"The other {len(flat)}, {', '.join(flat)}, were not on a falling power law (a <= {limit:.3f}; a "
                  "negative a: the FVU rose while the sparsity penalty pushed L0 down) and fell by more than "
                  f"{CONVERGENCE_MAX_DROP:.0%} in the last fifth, where the learning rate decays to zero: the decay "
                  "itself, or L0 still settling. A longer budget may let them pass.")
    return [line for m in md for line in (m, "")]


def _frontier_section(panels: Sequence[Panel], by_cell: Mapping[tuple, dict[str, str]], hook: str,
                      figures: dict[str, bytes | None]) -> list[str]:
    if not panels:
        return []
    p = panels[0]  # reconstruction is the SAE's, the same in every panel
    figures["frontier"] = p.figures.get("pareto")
    rows = [by_cell[(r.dataset, r.readout, r.hook, r.sae)] for r in p.rows if r.hook == hook]  # identity: the ends
    return (["## The MSE-L0 frontier", "",
             f"Reconstruction of the held-out tokens at `{hook}` (coloured by PS-Eval on "
             f"{short_dataset(p.dataset)}, {p.readout} readout).", ""]
            + _fig(figures, "frontier", "MSE vs L0")
            + _table(rows, FRONTIER_COLUMNS, "cells.csv", {"dataset": p.dataset, "readout": p.readout,
                                                           "hook": hook}, ("sae",)))


def _panel_section(p: Panel, by_cell: Mapping[tuple, dict[str, str]], hook: str, layer_sae: str,
                   figures: dict[str, bytes | None]) -> list[str]:
    stem = p.stem
    figures[f"{stem}_expansion"] = p.figures.get("expansion")
    figures[f"{stem}_layers"] = p.figures.get(f"layers_{layer_sae}")
    where = {"dataset": p.dataset, "readout": p.readout}
    arch = [by_cell[(r.dataset, r.readout, r.hook, r.sae)] for r in p.rows if r.hook == hook]
    arch.sort(key=lambda row: (row["architecture"], int(row["expansion"] or 0), row["sae"]))
    layered = [r for r in p.rows if r.sae in ("identity", layer_sae) and r.layer is not None]
    layers = [by_cell[(r.dataset, r.readout, r.hook, r.sae)] for r in layered]
    chance = chance_line([r.record for r in p.rows if r.record is not None])
    md = [f"## PS-Eval: {p.title}", "", *([chance, ""] if chance else []),
          f"### Architectures and widths at `{hook}`", ""]
    md += _fig(figures, f"{stem}_expansion", "PS-Eval vs dictionary size")
    md += _table(arch, ARCH_COLUMNS, "cells.csv", {**where, "hook": hook}, ("sae",))
    if layers:
        md += [f"### Layers and components ({layer_sae} and the identity baseline)", ""]
        md += _fig(figures, f"{stem}_layers", "PS-Eval vs layer")
        md += _table(layers, LAYER_COLUMNS, "cells.csv", {**where, "sae": ["identity", layer_sae]}, ("hook", "sae"))
    return md


def _claims_section(panels: Sequence[Panel], claims: list[dict[str, str]]) -> list[str]:
    md = ["## The paper's claims", "",
          "One test per claim and panel; `unconverged` counts the compared SAEs whose training was flagged "
          f"unconverged. {family_note()}", ""]
    for p in panels:
        rows = [c for c in claims if (c["dataset"], c["readout"]) == (p.dataset, p.readout)]
        md += [f"### {p.title}", ""]
        md += _table(rows, CLAIM_COLUMNS, "claims.csv", {"dataset": p.dataset, "readout": p.readout},
                     ("key", "scale"))
        for c in p.claims:
            if c.evidence:
                md.append(f"- **{c.key}** ({c.scale}): " + "; ".join(c.evidence[:3]).replace("|", "/"))
        md.append("")
    return md


def _budget_section(before: Mapping[str, list[dict[str, str]]], cells: list[dict[str, str]],
                    claims: list[dict[str, str]], training: list[dict[str, str]], assets: Path, hook: str,
                    folder: str) -> list[str]:
    """Does the budget change the answer: claims, panels and the main hook's SAEs against the shorter run."""
    cell_rows = budget_cell_rows(cells, before["cells.csv"], training, before["training.csv"])
    panel_rows = budget_panel_rows(cell_rows)
    claim_rows_ = budget_claim_rows(claims, before["claims.csv"])
    files = {"budget_cells.csv": (cell_rows, BUDGET_CELL_COLUMNS), "budget_panels.csv": (panel_rows,
                                                                                         BUDGET_PANEL_COLUMNS),
             "budget_claims.csv": (claim_rows_, BUDGET_CLAIM_COLUMNS)}
    shown: dict[str, list[dict[str, str]]] = {}
    for name, (rows, columns) in files.items():
        text = _csv_text(rows, columns)
        write_text_atomic(text, assets / name)
        shown[name] = _reread(text)
    tokens = sorted({r["tokens_before"] for r in shown["budget_cells.csv"] if r["tokens_before"]}, key=int)
    changed = [r for r in shown["budget_claims.csv"] if r["changed"] == "yes"]
    md = ["## Does the budget change the answer?", "",
          f"The same study trained on {', '.join(f'{int(t):,}' for t in tokens) or 'another budget'} tokens per SAE "
          f"(its summaries: `{folder}`), cell by cell and claim by claim. A change's interval combines the two runs' "
          "95% intervals as if they were independent; both score the same pairs, so the paired interval is "
          "narrower: a change outside it is real, one inside may still be (pseval.study.budget_check).", "",
          f"{len(changed)} of {sum(r['changed'] != '-' for r in shown['budget_claims.csv'])} claim verdicts tested in "
          "both runs changed with the budget.", ""]
    md += _table(shown["budget_claims.csv"], BUDGET_CLAIM_COLUMNS, "budget_claims.csv", {},
                 ("dataset", "readout", "key", "scale"))
    md += ["Per panel: cells whose specificity or F1 moved beyond the interval, up or down, the median absolute "
           "change, and the median relative change of the trained SAEs' held-out FVU.", ""]
    md += _table(shown["budget_panels.csv"], BUDGET_PANEL_COLUMNS, "budget_panels.csv", {}, ("dataset", "readout"))
    first = shown["budget_panels.csv"][0] if shown["budget_panels.csv"] else None
    if first is not None:
        where = {"dataset": first["dataset"], "readout": first["readout"], "hook": hook}
        rows = [r for r in shown["budget_cells.csv"] if all(r[k] == v for k, v in where.items())]
        md += [f"The SAEs at `{hook}` ({short_dataset(first['dataset'])}, {first['readout']} readout):", ""]
        md += _table(rows, ("sae", "tokens_before", "tokens_after", "fvu_before", "fvu_after", "l0_before",
                            "l0_after", "specificity_before",
                            "specificity_after", "d_specificity", "d_specificity_low", "d_specificity_high",
                            "f1_before", "f1_after", "d_f1", "converged_after"), "budget_cells.csv", where, ("sae",))
    return md


def _budget_note(settings: Mapping[str, Any]) -> str:
    """A line when the SAEs of one hook were trained on different budgets (what the width claim then compares)."""
    default = settings.get("train_tokens")
    budgets = {g.get("train_tokens") or default for g in settings.get("grids", [])}
    if len(budgets) < 2:
        return ""
    return ("- the grids were trained on different token budgets (above): where widths or architectures with "
            "different budgets are compared (the width claim), the comparison mixes size with training length;")


def _minilm_section(claims: list[dict[str, str]], settings: Mapping[str, Any]) -> list[str]:
    by_key: dict[str, list[str]] = {}
    statements: dict[str, str] = {}
    for c in claims:
        statements[c["key"]] = c["statement"]
        on = "" if c.get("scale", "raw") == "raw" else f" ({c['scale']})"
        by_key.setdefault(c["key"], []).append(f"{short_dataset(c['dataset'])}/{c['readout']}{on}: {c['verdict']}")
    md = ["## What MiniLM can and cannot say about the paper's GPT-2 findings", "",
          "MiniLM (all-MiniLM-L6-v2) is a 6-layer bidirectional sentence encoder with d_model 384, distilled for "
          "sentence similarity; the paper measured GPT-2 small (12 causal layers, d_model 768) with SAEs trained on "
          "far more tokens. So a verdict here says whether the paper's finding also appears in another, smaller "
          "transformer of another kind, under the same protocol; it cannot confirm or refute what the paper measured "
          "on GPT-2. In particular:", "",
          "- MiniLM reads every token with the whole text on both sides, GPT-2 only with what precedes it: the word "
          "read in place (context readout) carries its right context here and not in GPT-2, and the template "
          "slot also sees the words after it;",
          "- MiniLM has no language-model head, so loss recovered is measured on its mean-pooled sentence "
          "embedding, not on next-token loss: the frontier claim's reconstruction side is not the paper's;",
          "- with 6 layers, the depth claim compares six points, not twelve;",
          "- SAEs flagged unconverged (above) may rank differently once trained longer: a verdict resting on them "
          "is provisional, and the table says how many it rests on;", *([_budget_note(settings)] if
                                                                         _budget_note(settings) else []), "",
          "Per claim, as measured here (dataset/readout: verdict):", ""]
    for key, verdicts in by_key.items():
        md.append(f"- **{key}** ({statements[key]}): {'; '.join(verdicts)}")
    return md + [""]
