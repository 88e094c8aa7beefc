"""The `pseval` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pseval.errors import PsevalError
from pseval.metrics.ps_eval.balance import BALANCE_RULES
from pseval.metrics.ps_eval.config import PROTOCOLS


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Turns pseval's own errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except PsevalError as exc:
            _fail(exc)


@click.group(cls=_Group)
@click.version_option(package_name="pseval")
def main() -> None:
    """PS-Eval and standard metrics for sparse autoencoders on language-model activations."""


@main.command("eval")
@click.option("--model", default="minilm", show_default=True, help="HF model id, local folder, or `minilm`.")
@click.option("--hook", "hooks", multiple=True, help="Hook point(s), e.g. blocks.3.hook_resid_post (repeatable).")
@click.option("--sae", "saes", multiple=True, default=("identity",), show_default=True,
              help="`identity` or an SAE folder (repeatable; all share one forward pass).")
@click.option("--data", "data_spec", default="wordnet:max_per_lemma=2,balance=1", show_default=True,
              help="wic:PATH, wordnet[:opts], hf:NAME[:SPLIT], jsonl:PATH, csv:PATH.")
@click.option("--readout", type=click.Choice(["template", "context"]), default="template", show_default=True)
@click.option("--multi-token", type=click.Choice(["first", "last", "mean", "drop"]), default="drop",
              show_default=True, help="Targets split into several tokens; `drop` is the reference's behaviour.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="pseval", show_default=True,
              help="`reference`: every choice of the reference code (template readout, its token matching, "
                   "multi-token targets dropped, its balancing); see the README.")
@click.option("--balance", type=click.Choice(BALANCE_RULES), default="reference", show_default=True,
              help="Class balancing; `reference` (alias `paper`) is the reference code's rule.")
@click.option("--too-long", type=click.Choice(["truncate", "skip"]), default="truncate", show_default=True)
@click.option("--max-pairs", type=int, default=None, help="Score a seeded random subset of this many pairs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="JSON file (a list when several SAE/hook cells) or a folder (one file per cell).")
@click.option("--saebench-dir", type=click.Path(path_type=Path), default=None,
              help="Also write SAEBench-named files ({release}_{sae_id}_eval_results.json) into this folder.")
@click.option("--corpus", default="wordnet-definitions", show_default=True,
              help="Text for the standard metrics (see `pseval train --help`).")
@click.option("--recon-tokens", type=int, default=0, show_default=True,
              help="Tokens of --corpus for MSE, FVU, L0 and dead fraction next to PS-Eval (0: skip).")
@click.option("--loss-tokens", type=int, default=0, show_default=True,
              help="Tokens of --corpus for loss recovered and KL with the SAE spliced in (0: skip).")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Cache readout activations here; scoring other SAEs on the same pairs then skips the model.")
def eval_cmd(model: str, hooks: tuple[str, ...], saes: tuple[str, ...], data_spec: str, readout: str,
             multi_token: str, protocol: str, balance: str, too_long: str, max_pairs: int | None, seed: int,
             device: str,
             out: Path | None, saebench_dir: Path | None, corpus: str, recon_tokens: int, loss_tokens: int,
             cache: Path | None) -> None:
    """Score SAEs with PS-Eval on word-in-context pairs and print a table."""
    from pseval.experiments.evaluate import EvalRequest, run_eval

    req = EvalRequest(model=model, hooks=list(hooks), saes=list(saes), data=data_spec, readout=readout,
                      multi_token=multi_token, protocol=protocol, balance=balance, too_long=too_long,
                      max_pairs=max_pairs, seed=seed,
                      device=device, out=out, saebench_dir=saebench_dir, corpus=corpus, recon_tokens=recon_tokens,
                      loss_tokens=loss_tokens, cache=cache)
    run_eval(req, log=click.echo)


@main.command()
@click.option("--wic", default=None, help="Also score on a WiC split folder (e.g. ../shared/data/wic/dev).")
@click.option("--out", default="demo-out", show_default=True)
@click.option("--train-tokens", type=int, default=200_000, show_default=True)
@click.option("--hook", default="blocks.3.hook_resid_post", show_default=True)
@click.option("--model", default="minilm", show_default=True)
@click.option("--max-wordnet-pairs", type=int, default=2000, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def demo(wic: str | None, out: str, train_tokens: int, hook: str, model: str, max_wordnet_pairs: int,
         device: str) -> None:
    """Train a TopK and a ReLU SAE on the embedded model and score them and the identity baseline."""
    from pseval.experiments.demo import DemoConfig, run_demo

    run_demo(DemoConfig(model=model, hook=hook, wic=wic, out=out, train_tokens=train_tokens, device=device,
                        heldout_tokens=min(20_000, max(1000, train_tokens // 10)),
                        max_wordnet_pairs=max_wordnet_pairs), log=click.echo)


@main.command()
@click.option("--model", default="minilm", show_default=True)
@click.option("--hook", default="blocks.3.hook_resid_post", show_default=True)
@click.option("--corpus", default="wordnet", show_default=True,
              help="wordnet, wordnet-definitions, file:PATH[,PATH], hf:NAME[:SPLIT[:COLUMN]].")
@click.option("--arch", "archs", multiple=True, default=("topk",), show_default=True,
              help="Architecture(s): standard, topk, batchtopk, jumprelu, gated (repeatable: one stream for all).")
@click.option("--expansion", "expansions", multiple=True, type=int, default=(8,), show_default=True)
@click.option("--k", "ks", multiple=True, type=int, default=(32,), show_default=True)
@click.option("--sparsity-coeff", "coeffs", multiple=True, type=float, default=(),
              help="L1/L0 coefficient(s) for standard, jumprelu, gated (default: the architecture's).")
@click.option("--tokens", type=float, default=1e6, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--batch-size", type=int, default=1024, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder of the SAE (or of one sub-folder per SAE when several).")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Activation cache folder (memory-mapped .npy): the same request again skips the model.")
@click.option("--checkpoint-every", type=int, default=200, show_default=True,
              help="Optimiser steps between checkpoints (a killed run resumes from the last one).")
@click.option("--overwrite", is_flag=True,
              help="Discard a finished SAE or checkpoint in --out made with other settings and start afresh "
                   "(without it, such work is kept and the run refuses, naming the differing settings).")
def train(model: str, hook: str, corpus: str, archs: tuple[str, ...], expansions: tuple[int, ...],
          ks: tuple[int, ...], coeffs: tuple[float, ...], tokens: float, lr: float, batch_size: int, seed: int,
          device: str, out: Path, cache: Path | None, checkpoint_every: int, overwrite: bool) -> None:
    """Train SAEs at one hook from one activation stream and save them in the SAELens layout.

    A killed run re-run with the same settings resumes from its last checkpoint; re-run with different settings
    it refuses and names each differing setting, unless --overwrite.
    """
    from pseval.training.run import TrainJob, TrainRequest, grid, run_training

    configs = grid(archs, expansions, ks, coeffs or (None,), lr=lr, batch_size=batch_size, seed=seed)
    held = min(20_000, max(500, int(tokens) // 10))  # held-out tokens for the summary metrics
    jobs = [TrainJob(hook, c, out if len(configs) == 1 else out / c.label) for c in configs]
    run_training(TrainRequest(model=model, corpus=corpus, tokens=int(tokens), heldout_tokens=held, jobs=jobs,
                              device=device, cache=cache, checkpoint_root=out / ".checkpoint", overwrite=overwrite,
                              checkpoint_every=checkpoint_every),
                 log=click.echo)


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Results store folder (default runs/<config name>).")
@click.option("--overwrite", is_flag=True,
              help="Discard the folder's results (cells, SAEs, caches) and start afresh; without it a folder made "
                   "by a different config is refused with the differing settings.")
def sweep(config: Path, out: Path | None, overwrite: bool) -> None:
    """Train what is missing and evaluate every cell of a sweep config; re-running resumes."""
    from pseval.experiments.sweep import run_sweep
    from pseval.experiments.sweep_config import load_sweep_config

    cfg = load_sweep_config(config)
    store = run_sweep(cfg, out or Path("runs") / cfg.name, overwrite=overwrite, log=click.echo)
    click.echo(f"results store: {store.root}")


@main.command()
@click.argument("results", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Report folder (default RESULTS/report).")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True)
def report(results: Path, out: Path | None, n_boot: int, seed: int) -> None:
    """Write a Markdown summary and a self-contained HTML report (plots, every cell, the paper's claims)."""
    from pseval.experiments.report import write_report

    md, page = write_report(results, out, n_boot, seed)
    click.echo(f"wrote {md} and {page}")
    click.echo(md.read_text(encoding="utf-8").split("### Figures")[0])


@main.command("inspect")
@click.option("--sae", required=True, help="`identity` or an SAE spec (folder, file, hf://, saelens:).")
@click.option("--word", required=True, help="The word whose senses to look at.")
@click.option("--data", "data_spec", default="wordnet", show_default=True,
              help="Where senses come from: coarsewsd:PATH (sense classes), wordnet[:opts] (synsets), or any pair "
                   "set (groups joined by same-sense pairs).")
@click.option("--model", default="minilm", show_default=True)
@click.option("--hook", default=None, help="Hook point (default: the SAE's recorded hook, else "
                                           "blocks.3.hook_resid_post).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("inspect-out"), show_default=True,
              help="Folder for the HTML page and the JSON.")
@click.option("--readout", type=click.Choice(["template", "context"]), default="template", show_default=True)
@click.option("--multi-token", type=click.Choice(["first", "last", "mean", "drop"]), default="drop",
              show_default=True)
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="pseval", show_default=True)
@click.option("--top", type=int, default=10, show_default=True, help="Top features listed per sense.")
@click.option("--examples", type=int, default=5, show_default=True, help="Example contexts per sense.")
@click.option("--max-per-sense", type=int, default=200, show_default=True,
              help="Contexts read per sense (the first in data order).")
@click.option("--device", default="cpu", show_default=True)
def inspect_cmd(sae: str, word: str, data_spec: str, model: str, hook: str | None, out: Path, readout: str,
                multi_token: str, protocol: str, top: int, examples: int, max_per_sense: int, device: str) -> None:
    """Per sense of a word: the SAE's most active features, example contexts, shared features (HTML + JSON)."""
    from pseval.experiments.inspect import InspectRequest, run_inspect

    run_inspect(InspectRequest(sae=sae, word=word, data=data_spec, model=model, hook=hook, out=out, readout=readout,
                               multi_token=multi_token, protocol=protocol, top=top, examples=examples,
                               max_per_sense=max_per_sense, device=device), log=click.echo)


@main.command("sae-info")
@click.argument("spec")
def sae_info(spec: str) -> None:
    """Print what an SAE file is, where it belongs, and its shapes."""
    from pathlib import Path as _Path

    from pseval.saes.conventions import convention_of
    from pseval.saes.formats.detect import detect_format
    from pseval.saes.loading import load_sae

    sae = load_sae(spec)
    cfg, meta = sae.cfg, sae.cfg.metadata
    fmt = detect_format(spec) if _Path(spec).exists() else meta.extra.get("source_format", "?")
    lines = [("format", fmt), ("architecture", sae.architecture), ("d_in", cfg.d_in), ("d_sae", cfg.d_sae),
             ("k", cfg.k), ("model", meta.model_name), ("hook", meta.hook_name), ("head", meta.hook_head_index),
             ("activation convention", convention_of(sae)), ("apply_b_dec_to_input", cfg.apply_b_dec_to_input),
             ("normalize_activations", cfg.normalize_activations), ("reshape_activations", cfg.reshape_activations)]
    for key, value in lines:
        if value is not None:
            click.echo(f"{key:24s} {value}")
    for name in sae.weight_names():
        w = sae.get_weight(name)
        click.echo(f"{'weight ' + name:24s} {tuple(w.shape)} {str(w.dtype).removeprefix('torch.')}")


@main.command("hooks")
@click.option("--model", default="minilm", show_default=True)
def hooks_cmd(model: str) -> None:
    """List the canonical hook points of a model."""
    from pseval.models.hooks import valid_hook_names
    from pseval.models.loading import load_model

    lm = load_model(model)
    for name in valid_hook_names(lm.model):
        click.echo(name)


if __name__ == "__main__":
    main()
