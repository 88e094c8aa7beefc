"""Matplotlib figures of a report, returned as PNG bytes.

Drawn with matplotlib's object API (a Figure on its own Agg canvas): pyplot is never imported and the backend never
switched, so importing pseval leaves a notebook's matplotlib as it was."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pseval.errors import MissingResourceError
from pseval.metrics.statistics import Interval
from pseval.ps_eval.rows import CellRow, short_dataset

try:
    import matplotlib
    import matplotlib.ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError as exc:  # an optional extra: say which, rather than a bare ModuleNotFoundError
    raise MissingResourceError("figures (pseval report, the demo's report.html) need matplotlib: "
                               "pip install 'pseval[plots]'") from exc

MARKERS = {"standard": "o", "topk": "s", "batchtopk": "D", "jumprelu": "^", "gated": "v", "identity": "*"}


def _figure(**kwargs: Any) -> Figure:
    """A figure on its own Agg canvas (no pyplot: nothing global is registered or switched)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def pareto(rows: Sequence[CellRow], title: str) -> bytes | None:
    """MSE vs L0 of every trained SAE, coloured by F1 and by specificity."""
    trained = [r for r in rows if r.recon.get("l0") and not r.is_identity]
    if not trained:
        return None
    # MSE is only comparable within one hook: plot the hook with the most trained SAEs.
    counts: dict[str, int] = defaultdict(int)
    for r in trained:
        counts[r.hook] += 1
    hook = max(counts, key=lambda h: counts[h])
    pts = [r for r in trained if r.hook == hook]
    title = f"{title} at {hook}"
    fig = _figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("f1", "specificity"), strict=True):
        vals = [r.metrics[metric] for r in pts]
        for arch in sorted({r.architecture for r in pts}):
            sel = [i for i, r in enumerate(pts) if r.architecture == arch]
            sc = ax.scatter([pts[i].recon["l0"] for i in sel], [pts[i].recon["mse_per_token"] for i in sel],
                            c=[vals[i] for i in sel], cmap="viridis", vmin=min(vals), vmax=max(vals) + 1e-9,
                            marker=MARKERS.get(arch, "o"), s=60, edgecolors="k", label=arch)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("L0 (active latents per token)")
        ax.set_ylabel("MSE per token")
        ax.set_title(f"coloured by {metric}")
        fig.colorbar(sc, ax=ax, label=metric)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _png(fig)


def versus_expansion(rows: Sequence[CellRow], title: str) -> bytes | None:
    """F1 and specificity vs expansion ratio, one line per architecture (at the hook with most widths)."""
    by_hook: dict[str, list[CellRow]] = defaultdict(list)
    for r in rows:
        if not r.is_identity:
            by_hook[r.hook].append(r)
    if not by_hook:
        return None
    hook = max(by_hook, key=lambda h: len({r.expansion for r in by_hook[h]}) * 100 + len(by_hook[h]))
    sel = by_hook[hook]
    if len({r.expansion for r in sel}) < 2:
        return None
    return _lines(sel, ("f1", "specificity"), lambda r: r.architecture, lambda r: r.expansion,
                  "expansion ratio (d_sae / d_model)", f"{title} at {hook}", log2_x=True)


SIZE_AXES = {"l0": ("L0 (active latents per token)", lambda r: r.recon.get("l0")),
             "width": ("width (d_sae, latents)", lambda r: r.d_sae)}


def versus_size(rows: Sequence[CellRow], axis: str, title: str) -> bytes | None:
    """F1 and specificity against L0 (`axis="l0"`, the record's reconstruction L0) or width (`"width"`, the SAE
    config's d_sae), one series per hook; None when fewer than two SAEs have the value (identity left out)."""
    label, value = SIZE_AXES[axis]
    sel = [r for r in rows if not r.is_identity and _positive(value(r))]
    if len(sel) < 2:
        return None
    fig = _figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("f1", "specificity"), strict=True):
        for hook in sorted({r.hook for r in sel}):
            pts = sorted((float(value(r)), r.metrics[metric]) for r in sel if r.hook == hook)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=hook)
        ax.set_xscale("log", base=2 if axis == "width" else 10)
        xs = sorted({int(value(r)) for r in sel})
        if axis == "width" and len(xs) <= 8:  # a release's few widths: tick each one, in plain numbers
            ax.set_xticks(xs, [f"{x:,}" for x in xs])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(metric)
        ax.legend(fontsize=7, title="hook", title_fontsize=7)
    fig.suptitle(title)
    return _png(fig)


def _positive(x: Any) -> bool:
    """A finite number > 0 (what a log axis can place)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and bool(np.isfinite(x)) and x > 0


def versus_layer(rows: Sequence[CellRow], sae: str, title: str) -> bytes | None:
    """Specificity and F1 vs layer, one line per component, for one SAE label."""
    sel = [r for r in rows if r.sae == sae and r.layer is not None]
    if len({r.layer for r in sel}) < 2:
        return None
    return _lines(sel, ("specificity", "f1"), lambda r: r.component, lambda r: r.layer, "layer", f"{title}: {sae}",
                  integer_x=True)


def _lines(sel: Sequence[CellRow], metrics: tuple[str, str], group: Callable[[CellRow], str],
           x: Callable[[CellRow], float | int | None], xlabel: str, title: str, log2_x: bool = False,
           integer_x: bool = False) -> bytes:
    """One panel per metric, one line per group (architecture markers where the group is one)."""
    fig = _figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, metrics, strict=True):
        for g in sorted({group(r) for r in sel}):
            pts = sorted((x(r), r.metrics[metric]) for r in sel if group(r) == g)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=MARKERS.get(g, "o"), label=g)
        if log2_x:
            ax.set_xscale("log", base=2)
        if integer_x:  # layers: no tick at 2.5
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return _png(fig)


def confusion_grid(rows: Sequence[CellRow], title: str, limit: int = 6) -> bytes | None:
    """Confusion matrices of up to `limit` cells."""
    sel = list(rows)[:limit]
    if not sel:
        return None
    fig = _figure(figsize=(2.6 * len(sel), 2.8))
    axes = fig.subplots(1, len(sel), squeeze=False)
    for ax, r in zip(axes[0], sel, strict=True):
        m = np.array([[r.metrics["tp"], r.metrics["fn"]], [r.metrics["fp"], r.metrics["tn"]]], dtype=float)
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{int(v)}", ha="center", va="center")
        ax.set_xticks([0, 1], ["same feat.", "diff. feat."], fontsize=7)
        ax.set_yticks([0, 1], ["same sense", "diff. sense"], fontsize=7)
        ax.set_title(f"{r.sae}\n{r.hook}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def cosine_histograms(rows: Sequence[CellRow], title: str, limit: int = 4) -> bytes | None:
    """Encoder and decoder cosine of the two top features, same-sense vs different-sense pairs."""
    # A module without weights (a plain encoder) has no cosines: left out rather than drawn as an empty panel.
    sel = [r for r in rows if not r.is_identity and np.isfinite(r.cos_enc).any()][:limit]
    if not sel:
        return None
    fig = _figure(figsize=(3.2 * len(sel), 5))
    axes = fig.subplots(2, len(sel), squeeze=False)
    for j, r in enumerate(sel):
        for i, (name, vals) in enumerate((("encoder", r.cos_enc), ("decoder", r.cos_dec))):
            ax = axes[i][j]
            bins = np.linspace(-1, 1, 41)
            ax.hist(vals[r.same_sense], bins=bins, alpha=0.6, label="same sense", density=True)
            ax.hist(vals[~r.same_sense], bins=bins, alpha=0.6, label="different sense", density=True)
            ax.set_title(f"{name} cos: {r.sae}\n{r.hook}", fontsize=7)
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def metrics_vs_reconstruction(rows: Sequence[CellRow], intervals: Sequence[Mapping[str, Interval]],
                              title: str) -> bytes | None:
    """F1 and specificity (with their 95% intervals) against MSE and L0, one colour per dataset; SAEs without
    reconstruction metrics (identity) as a horizontal line with their interval as a band."""
    if not rows:
        return None
    datasets = sorted({r.dataset for r in rows})
    colours = {d: matplotlib.colormaps["tab10"](i % 10) for i, d in enumerate(datasets)}
    fig = _figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2, squeeze=False)
    for i, metric in enumerate(("f1", "specificity")):
        for j, (x_key, x_label) in enumerate((("mse_per_token", "MSE per token"),
                                              ("l0", "L0 (active latents per token)"))):
            ax = axes[i][j]
            for r, iv in zip(rows, intervals, strict=True):
                ci, colour = iv[metric], colours[r.dataset]
                label = f"{r.sae} ({short_dataset(r.dataset)})"
                x = r.recon.get(x_key)
                if x is None or not np.isfinite(x):
                    ax.axhline(ci.value, color=colour, ls="--", lw=1, label=label)
                    if np.isfinite(ci.low) and np.isfinite(ci.high):
                        ax.axhspan(ci.low, ci.high, color=colour, alpha=0.12)
                    continue
                err = [[max(0.0, ci.value - ci.low)], [max(0.0, ci.high - ci.value)]] \
                    if np.isfinite(ci.low) and np.isfinite(ci.high) else None
                # Each dataset's points a little apart, so intervals of one SAE on two datasets do not overlap.
                x *= 1 + 0.015 * (datasets.index(r.dataset) - (len(datasets) - 1) / 2)
                ax.errorbar([x], [ci.value], yerr=err, fmt=MARKERS.get(r.architecture, "o"), color=colour,
                            ms=8, mec="k", capsize=4, label=label)
                ax.annotate(r.sae, (x, ci.value), textcoords="offset points", xytext=(6, 4), fontsize=7)
            if x_key == "l0":
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel(x_label)
            ax.set_ylabel(f"{metric} (95% CI)")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle(title)
    return _png(fig)


def training_curves(points: Sequence[Mapping[str, Any]], title: str) -> bytes | None:
    """Held-out FVU and dead fraction against training tokens, one line per (hook, SAE) (rows of
    pseval.study.curves.CURVE_COLUMNS); None when no row has a token count."""
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for p in points:
        if p.get("tokens") not in (None, ""):
            series[(str(p["hook"]), str(p["sae"]))].append(p)
    if not series:
        return None
    hooks = {h for h, _ in series}
    fig = _figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for (hook, sae), pts in sorted(series.items()):
        pts = sorted(pts, key=lambda p: float(p["tokens"]))
        label = sae if len(hooks) == 1 else f"{sae} @ {hook.removeprefix('blocks.')}"
        arch = str(pts[0].get("architecture", ""))
        for ax, key in zip(axes, ("fvu", "dead"), strict=True):
            ys = [float(p[key]) if p.get(key) not in (None, "") else np.nan for p in pts]
            ax.plot([float(p["tokens"]) for p in pts], ys, marker=MARKERS.get(arch, "o"), markersize=3,
                    linewidth=1, label=label)
    for ax, ylabel in zip(axes, ("held-out FVU", "dead fraction"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("training tokens")
        ax.set_ylabel(ylabel)
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=5, ncol=2 if len(series) > 12 else 1)
    fig.suptitle(title + (f" at {next(iter(hooks))}" if len(hooks) == 1 else ""), fontsize=9)
    return _png(fig)
