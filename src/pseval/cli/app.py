"""The `pseval` command line.

Every option is typed and range-checked where it enters (pseval.cli.types), before any model loads. Errors are one
line: bad input exits 2, a failure exits 1 (see EXIT_CODES); `--debug` adds the traceback.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from pseval.cli.options import click_type, settings_options, take_settings
from pseval.cli.types import (
    ARCHITECTURE,
    CORPUS,
    DATA_SPEC,
    DEVICE,
    DEVICE_OPTION_HELP,
    HOOK,
    MODEL,
    POSITIVE,
    SEED,
    Checked,
    Count,
    FiniteFloat,
    OutputPath,
)
from pseval.data.sources import DEFAULT_DATA
from pseval.errors import PsevalError
from pseval.files import WRITE_FAILURES, OutputError
from pseval.tables import fit_text, reset_table_width, set_table_width

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_CODES = """\b
Exit codes:
  0  success
  2  bad input: an invalid option or argument, data file, sweep config,
     SAE or model folder; the one-line message names it and what is allowed
  1  failure: results could not be written (disk full, no permission), out
     of memory, or a bug (one line; rerun with --debug for the traceback);
     finished results are kept and nothing half-written is left"""


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _exit(ctx: click.Context, exc: BaseException, code: int, message: str) -> NoReturn:
    if ctx.params.get("debug"):
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    click.echo(_one_line(message), err=True)
    sys.exit(code)


def _is_out_of_memory(exc: BaseException) -> bool:
    # torch.cuda's OutOfMemoryError (not imported here), and the CPU allocator's RuntimeError
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))




class _Group(click.Group):
    """The guard: pseval's own errors become one line with their exit code, anything else one line saying that it
    is a bug, naming the command and its input."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["pseval.argv"] = list(args)  # the input, for the one-line report of a bug
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors (exit 2), --help, Ctrl-C: click reports them
        except OutputError as exc:  # the input was fine; the output could not be written
            _exit(ctx, exc, EXIT_FAILURE, f"error: {exc}")
        except PsevalError as exc:
            _exit(ctx, exc, EXIT_BAD_INPUT, f"error: {exc}")
        except Exception as exc:
            # A write refused by the system is a failure of the environment, not a bug, wherever it happens.
            if isinstance(exc, OSError) and exc.errno in WRITE_FAILURES:
                _exit(ctx, exc, EXIT_FAILURE, f"error: {exc.filename or 'a write'}: {exc.strerror or exc}")
            if _is_out_of_memory(exc):
                _exit(ctx, exc, EXIT_FAILURE, f"error: out of memory ({_one_line(str(exc))[:200]}); use fewer "
                                              "pairs, tokens or SAEs per run, or a larger device")
            argv = shlex.join(["pseval", *ctx.meta.get("pseval.argv", [])])
            _exit(ctx, exc, EXIT_FAILURE, f"error: `{argv[:300]}` failed with {type(exc).__name__}: "
                                          f"{_one_line(str(exc))[:300]}. This is a bug; run with --debug for the "
                                          "traceback.")


@click.group(cls=_Group, epilog=EXIT_CODES)
@click.version_option(package_name="pseval")
@click.option("--debug", is_flag=True, envvar="PSEVAL_DEBUG",
              help="Show the traceback of any error (also PSEVAL_DEBUG=1).")
@click.option("--wide", is_flag=True, envvar="PSEVAL_WIDE",
              help="Tables one line per row however wide (default: fit the terminal, also PSEVAL_WIDE=1).")
@click.pass_context
def main(ctx: click.Context, debug: bool, wide: bool) -> None:
    """PS-Eval and standard metrics for sparse autoencoders on language-model activations."""
    from pseval.logs import install_cli_handler

    install_cli_handler()  # messages (INFO) to stderr, plainly; results stay on stdout
    token = set_table_width(None if wide else shutil.get_terminal_size((100, 24)).columns)
    ctx.call_on_close(lambda: reset_table_width(token))  # a test runner's next invocation starts afresh


def echo(text: str) -> None:
    """A result on stdout, its prose wrapped to the console width (its tables fit already)."""
    click.echo(fit_text(text))


def _bad(param: str, message: str) -> NoReturn:
    raise click.BadParameter(message, param_hint=f"'{param}'")


def _remove_debris(folder: Path | None, depth: int = 0) -> None:
    """Remove the temp files of killed saves in a folder pseval writes, and in its sub-folders `depth` levels down
    (bounded: an output folder may be a large working directory)."""
    from pseval.files import remove_stale_temp_files

    if folder is None or not folder.is_dir():
        return
    remove_stale_temp_files(folder)
    if depth > 0:
        for sub in folder.iterdir():
            if sub.is_dir() and not sub.is_symlink():
                _remove_debris(sub, depth - 1)


@main.command("eval")
@click.option("--model", type=MODEL, default="minilm", show_default=True,
              help="HF model id, local folder, or `minilm`.")
@click.option("--hook", "hooks", type=HOOK, multiple=True,
              help="Hook point(s), e.g. blocks.3.hook_resid_post (repeatable).")
@click.option("--sae", "saes", multiple=True, default=("identity",), show_default=True,
              help="`identity`, an SAE folder or file, a glob over folders ('saes/**'), hf://REPO/PATH, "
                   "saelens:RELEASE/ID or saelens:RELEASE/REGEX, or @FILE listing specs (repeatable; all share one "
                   "forward pass, one SAE in memory at a time).")
@click.option("--data", "data_spec", type=DATA_SPEC, default=DEFAULT_DATA, show_default=True,
              help="wic:PATH, wordnet[:opts], coarsewsd:PATH[:opts], hf:NAME[:SPLIT], jsonl:PATH, csv:PATH "
              "(docs/data.md).")
@click.option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_OPTION_HELP)
@click.option("--out", type=OutputPath(file_suffixes=(".json",)), default=None,
              help="JSON file (a list when several SAE/hook cells) or a results folder (one record per cell under "
                   "cells/; a re-run skips the cells already there).")
@click.option("--force", is_flag=True,
              help="Discard the --out folder's results (of any settings) and score every cell again.")
@click.option("--saebench-dir", type=OutputPath(), default=None,
              help="Also write SAEBench-named files ({release}_{sae_id}_eval_results.json) into this folder.")
@click.option("--cache", type=OutputPath(), default=None,
              help="Cache readout activations here; scoring other SAEs on the same pairs then skips the model.")
@click.option("--sae-convention", type=click.Choice(("hf", "tl_centered")), default=None,
              help="Activations the SAEs were trained on: tl_centered (a TransformerLens-processed model) or hf "
                   "(raw). Needed for an SAE whose config does not say (SAELens without "
                   "model_from_pretrained_kwargs); the record names where each SAE's convention came from.")
@settings_options()
def eval_cmd(model: str, hooks: tuple[str, ...], saes: tuple[str, ...], data_spec: str, device: str,
             out: Path | None, force: bool, saebench_dir: Path | None, cache: Path | None,
             sae_convention: str | None, **settings: Any) -> None:
    """Score SAEs with PS-Eval on word-in-context pairs and print tables with 95% intervals."""
    from pseval.cli.eval import EvalRequest, run_eval

    cfg = take_settings(settings)
    _remove_debris(out.parent if out is not None and out.suffix == ".json" else out)
    _remove_debris(saebench_dir)
    _remove_debris(cache, depth=1)  # one folder per cached entry
    req = EvalRequest(model=model, hooks=list(dict.fromkeys(hooks)), saes=list(saes), data=data_spec, settings=cfg,
                      device=device, out=out, force=force, saebench_dir=saebench_dir, cache=cache,
                      sae_convention=sae_convention)
    run_eval(req, log=echo)


def _wic_folder(value: str) -> str:
    """A WiC split folder, read whole now (a bad label or line is found in seconds, not after the demo trains)."""
    from pseval.data.sources import normalise_spec
    from pseval.data.wic import load_wic

    normalise_spec(f"wic:{value}")
    load_wic(value)
    return value


@main.command("compare")
@click.argument("records", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bootstrap-resamples", type=click_type("bootstrap_resamples"), default=None,
              help="Bootstrap resamples of the differences (default: the first record's).")
@click.option("--bootstrap-seed", type=click_type("bootstrap_seed"), default=None,
              help="Bootstrap seed (default: the first record's).")
@click.option("--out", type=OutputPath(), default=None,
              help="Also write every statistic and difference with its interval as JSON.")
def compare_cmd(records: tuple[Path, ...], bootstrap_resamples: int | None, bootstrap_seed: int | None,
                out: Path | None) -> None:
    """Saved PS-Eval results side by side, with paired differences against the first (same pairs required)."""
    from pseval.cli.compare import run_compare

    run_compare(list(records), bootstrap_resamples, bootstrap_seed, out, log=echo)


@main.command()
@click.option("--wic", type=Checked("folder", _wic_folder), default=None,
              help="Also score on a WiC split folder (e.g. ../shared/data/wic/dev).")
@click.option("--out", type=OutputPath(), default="demo-out", show_default=True)
@click.option("--train-tokens", type=Count(1), default=300_000, show_default=True)  # = demo.DEMO_TRAIN_TOKENS
@click.option("--hook", type=HOOK, default="blocks.3.hook_resid_post", show_default=True)
@click.option("--model", type=MODEL, default="minilm", show_default=True)
@click.option("--max-pairs", type=POSITIVE, default=2000, show_default=True,
              help="Pairs scored per dataset (a seeded subset where a dataset has more).")
@click.option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_OPTION_HELP)
def demo(wic: str | None, out: Path, train_tokens: int, hook: str, model: str, max_pairs: int,
         device: str) -> None:
    """Train a TopK and a ReLU SAE on the embedded model and score them and the identity baseline (a small sweep:
    `pseval sweep` and `pseval report` do the work)."""
    from pseval.cli.demo import demo_config, run_demo

    _remove_debris(out, depth=3)  # cells, saes/<hook>/<label>, saes/.checkpoints/<hook>
    run_demo(demo_config(model=model, hook=hook, train_tokens=train_tokens, max_pairs=max_pairs,
                         wic=wic, device=device), out, log=echo)


def _check_sparsity_settings(ctx: click.Context, archs: tuple[str, ...], ks: tuple[int, ...],
                             coeffs: tuple[float, ...], expansions: tuple[int, ...], model: str) -> None:
    """Refuse settings no requested architecture reads, and a k larger than its dictionary, before any work."""
    from pseval.models.loading import model_shape
    from pseval.study.sweep_config import K_ARCHITECTURES, GridSpec

    takes_k = [a for a in archs if a in K_ARCHITECTURES]
    if coeffs and len(takes_k) == len(archs):
        _bad("--sparsity-coeff", f"{', '.join(archs)} take(s) --k, not a sparsity coefficient; the coefficient is "
                                 f"for the other architectures")
    if ctx.get_parameter_source("ks") is not ParameterSource.DEFAULT and not takes_k:
        _bad("--k", f"no --arch given takes k ({', '.join(archs)}); k is for {' and '.join(K_ARCHITECTURES)}")
    if takes_k:
        d_model = model_shape(model).d_model
        oversized = GridSpec(hooks=[], architectures=list(archs), expansions=list(expansions), k=list(ks))
        for arch, e, k in oversized.oversized_k(d_model):
            _bad("--k", f"{k} is larger than the dictionary of {arch} x{e} ({e} x d_model {d_model} = "
                        f"{e * d_model} latents); expected k <= {e * d_model}")


@main.command()
@click.option("--model", type=MODEL, default="minilm", show_default=True)
@click.option("--hook", type=HOOK, default="blocks.3.hook_resid_post", show_default=True)
@click.option("--corpus", type=CORPUS, default="wordnet", show_default=True,
              help="wordnet, wordnet-definitions, file:PATH[,PATH], hf:NAME[:SPLIT[:COLUMN]].")
@click.option("--arch", "archs", type=ARCHITECTURE, multiple=True, default=("topk",), show_default=True,
              help="Architecture(s): standard, topk, batchtopk, jumprelu, gated (repeatable: one stream for all).")
@click.option("--expansion", "expansions", multiple=True, type=POSITIVE, default=(8,), show_default=True)
@click.option("--k", "ks", multiple=True, type=POSITIVE, default=(32,), show_default=True,
              help="Active latents of topk / batchtopk, at most expansion x d_model.")
@click.option("--sparsity-coeff", "coeffs", multiple=True, type=FiniteFloat(min=0), default=(),
              help="L1/L0 coefficient(s) for standard, jumprelu, gated (default: the architecture's).")
@click.option("--tokens", type=Count(1), default=1_000_000, show_default=True,
              help="Training tokens (1e6 and 1_000_000 are accepted).")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=1024, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_OPTION_HELP)
@click.option("--out", type=OutputPath(), required=True,
              help="Folder of the SAE (or of one sub-folder per SAE when several).")
@click.option("--cache", type=OutputPath(), default=None,
              help="Activation cache folder (memory-mapped .npy): the same request again skips the model.")
@click.option("--checkpoint-every", type=POSITIVE, default=200, show_default=True,
              help="Optimiser steps between checkpoints (a killed run resumes from the last one).")
@click.option("--overwrite", is_flag=True,
              help="Discard a finished SAE or checkpoint in --out made with other settings and start afresh "
                   "(without it, such work is kept and the run refuses, naming the differing settings).")
@click.pass_context
def train(ctx: click.Context, model: str, hook: str, corpus: str, archs: tuple[str, ...],
          expansions: tuple[int, ...], ks: tuple[int, ...], coeffs: tuple[float, ...], tokens: int, lr: float,
          batch_size: int, seed: int, device: str, out: Path, cache: Path | None, checkpoint_every: int,
          overwrite: bool) -> None:
    """Train SAEs at one hook from one activation stream and save them in the SAELens layout.

    A killed run re-run with the same settings resumes from its last checkpoint; re-run with different settings
    it refuses and names each differing setting, unless --overwrite.
    """
    from pseval.training.run import TrainJob, TrainRequest, grid, run_training

    # A setting given twice is one SAE, not two writers of one folder.
    archs, expansions, ks, coeffs = (tuple(dict.fromkeys(archs)), tuple(dict.fromkeys(expansions)),
                                     tuple(dict.fromkeys(ks)), tuple(dict.fromkeys(coeffs)))
    _check_sparsity_settings(ctx, archs, ks, coeffs, expansions, model)
    configs = grid(archs, expansions, ks, coeffs or (None,), lr=lr, batch_size=batch_size, seed=seed)
    held = min(20_000, max(500, tokens // 10))  # held-out tokens for the summary metrics
    jobs = [TrainJob(hook, c, out if len(configs) == 1 else out / c.label) for c in configs]
    req = TrainRequest(model=model, corpus=corpus, tokens=tokens, heldout_tokens=held, jobs=jobs, device=device,
                       cache=cache, checkpoint_root=out / ".checkpoint", overwrite=overwrite,
                       checkpoint_every=checkpoint_every)
    _remove_debris(out, depth=2)  # the SAE folder(s) and .checkpoint/<hook>
    _remove_debris(cache, depth=1)
    run_training(req, log=echo)


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=OutputPath(), default=None, help="Results store folder (default runs/<config name>).")
@click.option("--overwrite", is_flag=True,
              help="Discard the folder's results (cells, SAEs, caches) and start afresh; without it a folder made "
                   "by a different config is refused with the differing settings.")
@click.option("--executor", type=click.Choice(["serial", "ray"]), default=None,
              help="Where the work runs: serial (this process) or ray (one task per hook, one GPU each when the "
                   "cluster has GPUs; needs pseval[ray]). Default: the config's `executor`, else serial.")
@click.option("--address", default=None,
              help="Ray cluster to use with --executor ray (e.g. `auto` or host:6379); default: the config's "
                   "`ray_address`, else a local cluster on this machine's CPUs and GPUs.")
@click.option("--shard", default=None, metavar="I/N",
              help="Run only shard I of N (0-based, I = 0..N-1): a deterministic share of the hooks, so N jobs "
                   "(e.g. a SLURM array --array=0-(N-1) with --shard $SLURM_ARRAY_TASK_ID/N) together run the sweep.")
def sweep(config: Path, out: Path | None, overwrite: bool, executor: str | None, address: str | None,
          shard: str | None) -> None:
    """Train what is missing and evaluate every cell of a sweep config; re-running resumes."""
    from pseval.devices import require_device
    from pseval.errors import ConfigError
    from pseval.files import check_writable
    from pseval.models.loading import model_shape
    from pseval.study.sweep import run_sweep
    from pseval.study.sweep_config import load_sweep_config
    from pseval.study.units import parse_shard

    cfg = load_sweep_config(config)
    chosen = executor or cfg.executor
    if chosen == "serial":  # Ray workers choose their own devices; the driver may have none of them
        try:
            # Resolved once here (`auto` says which in one line); the device is no result setting, so a sweep
            # folder resumes whichever device a run took.
            cfg = dataclasses.replace(cfg, device=require_device(cfg.device))
        except ConfigError as exc:
            raise ConfigError(f"{config}: device = {cfg.device!r}: {exc}") from exc
    cfg.check_model(*model_shape(cfg.model))
    root = out or Path("runs") / cfg.name
    try:
        check_writable(root, is_dir=True)
    except OutputError as exc:
        raise click.UsageError(f"the default --out {root}: {exc}") from exc
    store = run_sweep(cfg, root, overwrite=overwrite, shard=parse_shard(shard) if shard else None,
                      executor=executor, address=address)
    click.echo(f"results store: {store.root}")


@main.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=OutputPath(), default=None,
              help="Report folder (default RESULTS/report for one folder; required for files or several paths).")
@click.option("--page", type=OutputPath(file_suffixes=(".md",)), default=None,
              help="Instead of the report folder, write one publishable Markdown page (PAGE.md) of a sweep folder, "
                   "its figures and the CSV summaries its tables show in PAGE's folder (PAGE without .md).")
@click.option("--sweep-command", default=None,
              help="With --page: the command that ran the sweep, as the page prints it (default: pseval sweep "
                   "configs/NAME.toml --out RESULTS).")
@click.option("--budget-check", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="With --page: the summary folder (cells.csv, claims.csv, training.csv) of the same study at "
                   "another token budget; the page compares the two, cell by cell and claim by claim.")
@settings_options(["bootstrap_resamples", "bootstrap_seed"])
def report(results: tuple[Path, ...], out: Path | None, page: Path | None, sweep_command: str | None,
           budget_check: Path | None, bootstrap_resamples: int, bootstrap_seed: int) -> None:
    """Write a Markdown summary and a self-contained HTML report (plots, every cell, cells.csv, the paper's claims)
    of any set of records: sweep or `eval --out` folders, SAEBench-style result folders, record files."""
    from pseval.study.report import write_report

    if page is not None:
        from pseval.study.results_page import write_results_page

        if len(results) != 1 or out is not None:
            raise click.UsageError("--page draws one sweep folder's page: give one RESULTS folder and no --out")
        write_results_page(results[0], page, bootstrap_resamples, bootstrap_seed, sweep_command, log=click.echo,
                           budget_check=budget_check)
        return
    if sweep_command is not None or budget_check is not None:
        raise click.UsageError("--sweep-command and --budget-check belong to a --page; give --page too")
    if out is None:
        if len(results) != 1 or not results[0].is_dir():
            raise click.UsageError("a report of several paths or of record files needs --out")
        # The default folder is checked like a given --out: an unwritable one is refused before any work.
        out = OutputPath().convert(str(results[0] / "report"), None, None)
    from pseval.logs import get_logger

    md, page = write_report(list(results), out, bootstrap_resamples, bootstrap_seed)
    get_logger("report").info(f"wrote {md} and {page}")
    echo(md.read_text(encoding="utf-8").split("### Figures")[0])


@main.command("inspect")
@click.option("--sae", required=True, help="`identity` or an SAE spec (folder, file, hf://, saelens:).")
@click.option("--word", required=True, help="The word whose senses to look at.")
@click.option("--data", "data_spec", default="wordnet", show_default=True,
              help="Where senses come from: coarsewsd:PATH (sense classes), wordnet[:opts] (synsets), or any pair "
                   "set (groups joined by same-sense pairs).")
@click.option("--model", type=MODEL, default="minilm", show_default=True)
@click.option("--hook", type=HOOK, default=None, help="Hook point (default: the SAE's recorded hook, else "
                                           "blocks.3.hook_resid_post).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("inspect-out"), show_default=True,
              help="Folder for the HTML page and the JSON.")
@settings_options(["protocol", "readout", "template", "multi_token", "too_long"])
@click.option("--top", type=POSITIVE, default=10, show_default=True, help="Top features listed per sense.")
@click.option("--examples", type=click.IntRange(min=0), default=5, show_default=True,
              help="Example contexts per sense.")
@click.option("--max-per-sense", type=POSITIVE, default=200, show_default=True,
              help="Contexts read per sense (the first in data order).")
@click.option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_OPTION_HELP)
def inspect_cmd(sae: str, word: str, data_spec: str, model: str, hook: str | None, out: Path, top: int, examples: int,
                max_per_sense: int, device: str, **settings: Any) -> None:
    """Per sense of a word: the SAE's most active features, example contexts, shared features (HTML + JSON)."""
    from pseval.study.inspect import InspectRequest, run_inspect

    run_inspect(InspectRequest(sae=sae, word=word, data=data_spec, model=model, hook=hook, out=out,
                               settings=take_settings(settings), top=top, examples=examples,
                               max_per_sense=max_per_sense, device=device))


@main.command("sae-info")
@click.argument("spec")
def sae_info(spec: str) -> None:
    """Print what an SAE file is, where it belongs, and its shapes."""
    from pathlib import Path as _Path

    from pseval.saes.formats.detect import detect_format
    from pseval.saes.loading import load_sae

    sae = load_sae(spec)
    cfg, meta = sae.cfg, sae.cfg.metadata
    fmt = detect_format(spec) if _Path(spec).exists() else meta.extra.get("source_format", "?")
    lines = [("format", fmt), ("architecture", sae.architecture), ("d_in", cfg.d_in), ("d_sae", cfg.d_sae),
             ("k", cfg.k), ("model", meta.model_name), ("hook", meta.hook_name), ("head", meta.hook_head_index),
             ("activation convention", meta.extra.get("activation_convention", "hf") or
              "undecided (pass --sae-convention to pseval eval)"),
             ("convention from", meta.extra.get("activation_convention_source")),
             ("apply_b_dec_to_input", cfg.apply_b_dec_to_input),
             ("normalize_activations", cfg.normalize_activations), ("reshape_activations", cfg.reshape_activations)]
    for key, value in lines:
        if value is not None:
            click.echo(f"{key:24s} {value}")
    for name in sae.weight_names():
        w = sae.get_weight(name)
        click.echo(f"{'weight ' + name:24s} {tuple(w.shape)} {str(w.dtype).removeprefix('torch.')}")


@main.command("hooks")
@click.option("--model", type=MODEL, default="minilm", show_default=True)
def hooks_cmd(model: str) -> None:
    """List the canonical hook points of a model."""
    from pseval.models.hooks import valid_hook_names
    from pseval.models.loading import load_model

    lm = load_model(model)
    for name in valid_hook_names(lm.model):
        click.echo(name)


if __name__ == "__main__":
    main()
