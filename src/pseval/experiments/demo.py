"""The demo job: train a TopK and a ReLU SAE on MiniLM over WordNet text and score them with PS-Eval."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pseval.data.pairs import dataset_hash
from pseval.data.sources import load_pairs
from pseval.experiments.results_table import short_dataset
from pseval.experiments.table import markdown_table, text_table
from pseval.metrics.ps_eval import PSEvalConfig, collect_pair_activations, score_sae
from pseval.metrics.ps_eval.schema import result_record, write_json_atomic
from pseval.models.loading import load_model
from pseval.saes import identity_sae
from pseval.saes.base import SAE
from pseval.training.run import TrainRequest, run_training
from pseval.training.trainer import TrainConfig

TABLE_COLUMNS = ("sae", "dataset", "pairs", "accuracy", "precision", "recall", "specificity", "f1", "mse", "fvu",
                 "l0")


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


def _subsample(pairs: list, n: int, seed: int) -> list:
    if len(pairs) <= n:
        return pairs
    g = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(len(pairs), generator=g)[:n].tolist())
    return [pairs[i] for i in keep]


def run_demo(cfg: DemoConfig, progress: bool = True, log: Any = print) -> list[dict[str, Any]]:
    """Train, evaluate and report; returns one row per (SAE, dataset)."""
    t0 = time.time()
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    configs = [TrainConfig("topk", cfg.expansion, cfg.k, seed=cfg.seed, name=f"topk-x{cfg.expansion}-k{cfg.k}"),
               TrainConfig("standard", cfg.expansion, None, sparsity_coeff=cfg.l1_coeff, seed=cfg.seed,
                           name=f"relu-x{cfg.expansion}-l1_{cfg.l1_coeff:g}")]
    log(f"[demo] training {', '.join(c.label for c in configs)} at {cfg.hook} of {cfg.model} on {cfg.corpus}")
    req = TrainRequest(model=cfg.model, hook=cfg.hook, corpus=cfg.corpus, tokens=cfg.train_tokens,
                       heldout_tokens=cfg.heldout_tokens, configs=configs, out=out / "saes", device=cfg.device)
    lm = load_model(cfg.model, device=cfg.device)
    trained = run_training(req, log=log, progress=progress, lm=lm)
    saes: list[tuple[str, SAE]] = [("identity", identity_sae(lm.d_model, cfg.model, cfg.hook))]
    recon: dict[str, dict[str, Any]] = {}
    for tc, (_folder, sae, _log, metrics) in zip(configs, trained, strict=True):
        saes.append((tc.label, sae))
        recon[tc.label] = metrics
    log(f"[demo] trained in {time.time() - t0:.0f}s; scoring with PS-Eval")
    datasets = [(cfg.wordnet_pairs, _subsample(load_pairs(cfg.wordnet_pairs), cfg.max_wordnet_pairs, cfg.seed))]
    if cfg.wic:
        datasets.append((f"wic:{cfg.wic}", load_pairs(f"wic:{cfg.wic}")))
    ps_cfg = PSEvalConfig(seed=cfg.seed)
    rows = []
    for spec, pairs in datasets:
        pa = collect_pair_activations(lm, pairs, [cfg.hook], ps_cfg, progress)[cfg.hook]
        h = dataset_hash(pairs)
        for name, sae in saes:
            res = score_sae(pa, sae, ps_cfg, cfg.model)
            rec = recon.get(name, {})
            record = result_record(res, sae, name, cfg.model, cfg.hook, spec, h, ps_cfg,
                                   extra_metrics={"reconstruction": rec} if rec else None)
            tag = spec.split(":")[0]
            write_json_atomic(record, out / "results" / f"{name}__{tag}.json")
            rows.append({"sae": name, "dataset": short_dataset(spec),
                         "pairs": res.counts["pairs_scored"], **res.metrics, "mse": rec.get("mse_per_token"),
                         "fvu": rec.get("fvu"), "l0": rec.get("l0"), "dead": rec.get("dead_fraction")})
    write_report(out / "report.md", cfg, rows, time.time() - t0, [spec for spec, _ in datasets])
    log(text_table(rows, TABLE_COLUMNS))
    log(f"[demo] done in {time.time() - t0:.0f}s; report {out / 'report.md'}")
    return rows


def write_report(path: Path, cfg: DemoConfig, rows: list[dict[str, Any]], seconds: float,
                 datasets: list[str]) -> None:
    """Short Markdown report of the demo."""
    lines = [
        "# pseval demo",
        "",
        f"Model `{cfg.model}`, hook `{cfg.hook}`. SAEs trained on {cfg.train_tokens:,} tokens of `{cfg.corpus}` "
        f"(special tokens excluded); MSE, FVU and L0 on {cfg.heldout_tokens:,} held-out tokens.",
        f"Datasets: {', '.join(f'`{spec}`' for spec in datasets)}.",
        "PS-Eval: template readout (`{context} The {target_word} means`), multi-token targets dropped, "
        "paper balancing. Positive class = same sense; predicted positive = same argmax feature.",
        "",
        markdown_table(rows, (*TABLE_COLUMNS, "dead")),
        "",
        f"Finished in {seconds:.0f} s. Configuration:",
        "",
        "```",
        *(f"{k} = {v!r}" for k, v in asdict(cfg).items()),
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
