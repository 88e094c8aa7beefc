"""B9: pseval's SAE trainer against SAELens 6's, sparsify's and dictionary_learning's, on the same saved activations.

    .venv/bin/python benchmarks/b9_trainers.py                 # prepare the activations once, then every run
    .venv/bin/python benchmarks/b9_trainers.py prepare         # only save the activations
    PYTHON benchmarks/b9_trainers.py train TRAINER ARCH        # one run; prints one JSON line

Each run is its own process: pseval in this venv, the peers with .venv-int's python (the real libraries; a peer whose
library is missing is skipped with a message). Every run sees the same activations (MiniLM blocks.3.hook_resid_post
over the WordNet definitions, the first HELDOUT tokens held out as pseval's trainer holds them out), the same batch
size, token budget, learning rate, Adam betas, warm-up and thread count. The peers get the activations already
normalised by pseval's input scale (their own estimators would give the same factor; FVU is scale-free); pseval
scales them itself. tokens/s counts training only (the activations are in memory before the clock starts); the
held-out FVU is pseval's formula (metrics.reconstruction.fvu_of) on every SAE's own encode/decode.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The peers' venv imports pseval's metrics from this checkout. B9_BEFORE_SRC (another checkout's src/, e.g. from
# `git archive COMMIT src`) adds a trainer "pseval-before" that runs that pseval: before/after in one run.
BEFORE_SRC = os.environ.get("B9_BEFORE_SRC")
sys.path.insert(0, str(ROOT / "src"))
if BEFORE_SRC and sys.argv[2:3] == ["pseval-before"]:
    sys.path.insert(0, BEFORE_SRC)

HOOK = "blocks.3.hook_resid_post"
TRAIN_TOKENS = 300_000  # saved once; B9_TOKENS trains on its first part (the same for every trainer)
TOKENS = min(TRAIN_TOKENS, int(os.environ.get("B9_TOKENS", TRAIN_TOKENS)))
HELDOUT = 20_000
BATCH = 1024
EXPANSION = 8
K = 32
L1 = 2.0  # pseval's standard default, in the units all four share: squared error summed over d plus L1 of z*|W_dec|
LR = 1e-3
WARMUP_FRAC = 0.05  # lr and L1 warm-up, as pseval's TrainConfig defaults
DECAY_FRAC = 0.2  # linear lr decay to zero over the last fifth
DEAD_WINDOW_TOKENS = 100_000
THREADS = int(os.environ.get("B9_THREADS", "2"))
TRAINERS = ("pseval", "saelens", "sparsify", "dictionary_learning") + (("pseval-before",) if BEFORE_SRC else ())
ARCHS = ("topk", "standard")
# The optional-libraries venv (Makefile VENV_INT; `make bench` passes it as B9_PEER_PYTHON).
PEER_PYTHON = Path(os.environ.get("B9_PEER_PYTHON", ROOT / ".venv-int" / "bin" / "python"))
REPEATS = int(os.environ.get("B9_REPEATS", "1"))
CACHE = Path(os.environ.get("B9_CACHE", Path.home() / ".cache" / "pseval" / "bench-b9"))


def steps(tokens: int = TOKENS) -> int:
    """Optimiser steps of every run."""
    return tokens // BATCH


def prepare(cache: Path = CACHE) -> Path:
    """Save MiniLM's activations (held-out first, then train) as .npy once, with pseval's own collection."""
    if (cache / "meta.json").is_file():
        return cache
    from pseval.data.corpus import wordnet_texts
    from pseval.models.loading import load_model
    from pseval.training.activations import StreamConfig, collect_activations
    from pseval.training.trainer import input_scale_for

    lm = load_model("minilm")
    acts = collect_activations(lm, wordnet_texts(include_examples=False), [HOOK],
                               StreamConfig(max_tokens=TRAIN_TOKENS + HELDOUT))[HOOK]
    if acts.shape[0] < TRAIN_TOKENS + HELDOUT:
        raise SystemExit(f"the corpus gave {acts.shape[0]} tokens, B9 needs {TRAIN_TOKENS + HELDOUT}")
    cache.mkdir(parents=True, exist_ok=True)
    # Whole batches: pseval's own shuffle of them is then `shuffled`'s.
    train = acts[HELDOUT:HELDOUT + steps(TRAIN_TOKENS) * BATCH]
    np.save(cache / "heldout.npy", acts[:HELDOUT].numpy())
    np.save(cache / "train.npy", train.numpy())
    meta = {"model": "minilm", "hook": HOOK, "train_tokens": int(train.shape[0]), "heldout_tokens": HELDOUT,
            "d_in": int(acts.shape[1]), "input_scale": input_scale_for(train)}
    (cache / "meta.json").write_text(json.dumps(meta, indent=2))
    return cache


def load(cache: Path = CACHE) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The saved train activations this run trains on (whole batches), the held-out ones and their description."""
    meta = json.loads((cache / "meta.json").read_text())
    train = torch.from_numpy(np.load(cache / "train.npy"))[:steps() * BATCH].contiguous()
    return train, torch.from_numpy(np.load(cache / "heldout.npy")), meta


def batches(x: torch.Tensor, n: int) -> Iterator[torch.Tensor]:
    """The first n batches of x in order (x is shuffled once, the same way, for every trainer)."""
    for i in range(n):
        yield x[i * BATCH:(i + 1) * BATCH]


def shuffled(x: torch.Tensor) -> torch.Tensor:
    """x in one fixed random order (pseval's trainer draws its own order from the same seed)."""
    return x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))].contiguous()


# --- one run per trainer: each returns (training seconds, reconstruct(x) -> x_hat in x's units, L0 on held-out) ---

Run = tuple[float, Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def run_pseval(arch: str, train: torch.Tensor, scale: float) -> Run:
    """pseval's train_saes on the raw activations (it computes the input scale and folds it into the weights)."""
    from pseval.saes import SAEMetadata
    from pseval.training.trainer import TrainConfig, train_saes

    tc = TrainConfig(arch, EXPANSION, k=K if arch == "topk" else None, sparsity_coeff=None if arch == "topk" else L1,
                     lr=LR, batch_size=BATCH, lr_warmup_frac=WARMUP_FRAC, lr_decay_frac=DECAY_FRAC,
                     sparsity_warmup_frac=WARMUP_FRAC, dead_window_tokens=DEAD_WINDOW_TOKENS)
    t = time.perf_counter()
    [(sae, _)] = train_saes(train, [tc], SAEMetadata())
    seconds = time.perf_counter() - t
    # train_saes folds the input scale into the weights: the SAE it returns takes raw activations.
    return seconds, lambda h: sae.encode_decode(h)[1], sae.encode


def run_saelens(arch: str, train: torch.Tensor, scale: float) -> Run:
    """SAELens 6's SAETrainer.fit on its TrainingSAE, fed through its data-provider iterator."""
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    d = train.shape[1]
    n = steps()
    warm = max(1, int(WARMUP_FRAC * n))
    torch.manual_seed(0)
    if arch == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=d * EXPANSION, k=K, aux_loss_coefficient=1.0))
    else:
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d, d_sae=d * EXPANSION, l1_coefficient=L1,
                                                            l1_warm_up_steps=warm))
    cfg = SAETrainerConfig(total_training_samples=n * BATCH, train_batch_size_samples=BATCH, lr=LR, lr_end=0.0,
                           lr_warm_up_steps=warm, lr_decay_steps=int(DECAY_FRAC * n),
                           dead_feature_window=DEAD_WINDOW_TOKENS // BATCH, feature_sampling_window=10 ** 9,
                           logger=LoggingConfig(log_to_wandb=False))
    trainer = SAETrainer(cfg, sae, batches(shuffled(train) * scale, n))
    t = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t
    sae.eval()
    return seconds, lambda h: sae.decode(sae.encode(h * scale)) / scale, lambda h: sae.encode(h * scale)


def run_sparsify(arch: str, train: torch.Tensor, scale: float) -> Run:
    """sparsify's SparseCoder and its FVU + AuxK loss, stepped as its Trainer steps it (Trainer itself needs a Hugging
    Face model to hook: the loop below is its 'fvu' branch for one SAE without the model)."""
    if arch != "topk":
        raise NotImplementedError("sparsify trains TopK (and GroupMax) sparse coders only, no ReLU + L1")
    from sparsify import SparseCoder, SparseCoderConfig
    from transformers import get_linear_schedule_with_warmup

    d, n = train.shape[1], steps()
    torch.manual_seed(0)
    sae = SparseCoder(d, SparseCoderConfig(expansion_factor=EXPANSION, k=K), device="cpu", dtype=torch.float32)
    opt = torch.optim.Adam(sae.parameters(), lr=LR)  # its 'adam' optimizer (without bitsandbytes)
    sched = get_linear_schedule_with_warmup(opt, max(1, int(WARMUP_FRAC * n)), n)
    since_fired = torch.zeros(sae.num_latents, dtype=torch.long)
    data = shuffled(train) * scale
    t = time.perf_counter()
    for step, x in enumerate(batches(data, n)):
        if step == 0:
            sae.b_dec.data = x.mean(0)  # its first-step initialisation
        sae.set_decoder_norm_to_unit_norm()
        out = sae(x, dead_mask=since_fired > DEAD_WINDOW_TOKENS)
        (out.fvu + out.auxk_loss / 32).backward()  # auxk_alpha 1/32, as pseval's and dictionary_learning's
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        sched.step()
        with torch.no_grad():
            since_fired += x.shape[0]
            since_fired[out.latent_indices.flatten()] = 0
    seconds = time.perf_counter() - t
    sae.set_decoder_norm_to_unit_norm()  # as its trainer leaves it at the next step and at save time

    def latents(h: torch.Tensor) -> torch.Tensor:
        enc = sae.encode(h * scale)
        return torch.zeros(h.shape[0], sae.num_latents).scatter_(-1, enc.top_indices, enc.top_acts)

    return seconds, lambda h: sae(h * scale).sae_out / scale, latents


def run_dictionary_learning(arch: str, train: torch.Tensor, scale: float) -> Run:
    """dictionary_learning's trainSAE with its TopKTrainer / StandardTrainer, fed a generator of tensors."""
    from dictionary_learning.dictionary import AutoEncoder
    from dictionary_learning.trainers.standard import StandardTrainer
    from dictionary_learning.trainers.top_k import AutoEncoderTopK, TopKTrainer
    from dictionary_learning.training import trainSAE

    d, n = train.shape[1], steps()
    warm = max(1, int(WARMUP_FRAC * n))
    common = {"steps": n, "activation_dim": d, "dict_size": d * EXPANSION, "layer": 3, "lm_name": "minilm",
              "lr": LR, "warmup_steps": warm, "decay_start": int((1 - DECAY_FRAC) * n), "seed": 0, "device": "cpu"}
    if arch == "topk":
        config = {"trainer": TopKTrainer, "k": K, **common}
        ae: torch.nn.Module = AutoEncoderTopK(d, d * EXPANSION, K)
    else:
        config = {"trainer": StandardTrainer, "l1_penalty": L1, "sparsity_warmup_steps": warm, **common}
        ae = AutoEncoder(d, d * EXPANSION)
    clock: dict[str, float] = {}

    def timed_batches() -> Iterator[torch.Tensor]:
        # The clock runs from the first batch asked for to the end of the data: trainSAE's final save is not counted.
        clock["start"] = time.perf_counter()
        yield from batches(shuffled(train) * scale, n)
        clock["end"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        trainSAE(timed_batches(), [config], steps=n, save_dir=tmp, device="cpu")
        ae.load_state_dict(torch.load(Path(tmp) / "trainer_0" / "ae.pt", weights_only=True))
    ae.eval()
    return (clock["end"] - clock["start"], lambda h: ae.decode(ae.encode(h * scale)) / scale,
            lambda h: ae.encode(h * scale))


RUNNERS = {"pseval": run_pseval, "pseval-before": run_pseval, "saelens": run_saelens, "sparsify": run_sparsify,
           "dictionary_learning": run_dictionary_learning}


def train_one(trainer: str, arch: str, cache: Path = CACHE) -> dict:
    """One trainer on one architecture: tokens/s (training only) and held-out FVU by pseval's formula."""
    from pseval.metrics.reconstruction import fvu_of

    torch.set_num_threads(THREADS)
    train, heldout, meta = load(cache)
    seconds, reconstruct, latents = RUNNERS[trainer](arch, train, meta["input_scale"])
    with torch.no_grad():
        x_hat = reconstruct(heldout)
        l0 = float((latents(heldout) > 0).float().sum(-1).mean())
    tokens = steps() * BATCH
    return {"trainer": trainer, "arch": arch, "tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
            "fvu_heldout": fvu_of(heldout, x_hat), "l0_heldout": l0, "threads": torch.get_num_threads()}


def subprocess_run(trainer: str, arch: str, cache: Path) -> dict:
    """One run in a fresh process: pseval's with this python, a peer's with .venv-int's."""
    python = sys.executable if trainer.startswith("pseval") else str(PEER_PYTHON)
    env = {**os.environ, "B9_CACHE": str(cache), "TQDM_DISABLE": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run([python, str(Path(__file__).resolve()), "train", trainer, arch], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        return {"trainer": trainer, "arch": arch, "error": proc.stderr.strip()[-800:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer_available(trainer: str) -> str | None:
    """None when the peer can run, else why not (the message the benchmark prints)."""
    if trainer.startswith("pseval"):
        return None
    if not PEER_PYTHON.exists():
        return f"skipped: no {PEER_PYTHON} (make .venv-int/.installed installs the real libraries)"
    module = {"saelens": "sae_lens", "sparsify": "sparsify", "dictionary_learning": "dictionary_learning"}[trainer]
    probe = subprocess.run([str(PEER_PYTHON), "-c", f"import {module}"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"skipped: {module} does not import in {PEER_PYTHON}"


def benchmark(repeats: int = REPEATS, cache: Path = CACHE) -> dict:
    """Every trainer x architecture, `repeats` interleaved rounds; medians of tokens/s and held-out FVU."""
    if not PEER_PYTHON.exists():  # pseval alone would compare with nothing
        return {"skipped": f"B9 skipped: no {PEER_PYTHON}, the optional libraries' venv with the peers' real trainers "
                           "(build it with `make .venv-int/.installed`, or pass VENV_INT=/path/to/it to make bench)"}
    prepare(cache)
    skipped = {t: why for t in TRAINERS if (why := peer_available(t))}
    runs: dict[str, list[dict]] = {}
    for _ in range(repeats):
        for arch in ARCHS:
            for trainer in TRAINERS:
                if trainer in skipped or (trainer == "sparsify" and arch != "topk"):
                    continue
                runs.setdefault(f"{arch}:{trainer}", []).append(subprocess_run(trainer, arch, cache))
    out: dict = {"tokens": steps() * BATCH, "batch_size": BATCH, "expansion": EXPANSION, "k": K, "l1": L1, "lr": LR,
                 "threads": THREADS, "repeats": repeats, "skipped": skipped, "load_average": os.getloadavg(),
                 "results": {}, "target": "pseval tok/s >= the fastest peer's; held-out FVU <= best peer's x 1.02"}
    for key, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            out["results"][key] = {"error": rs[-1]["error"]}
            continue
        out["results"][key] = {"tok_s": statistics.median(r["tok_s"] for r in ok),
                               "tok_s_runs": [r["tok_s"] for r in ok],
                               "fvu_heldout": statistics.median(r["fvu_heldout"] for r in ok),
                               "l0_heldout": statistics.median(r["l0_heldout"] for r in ok)}
    return out


def summary(r: dict) -> list[str]:
    """Lines for benchmarks/run.py: each peer beside pseval, per architecture."""
    if isinstance(r.get("skipped"), str):
        return [r["skipped"]]
    lines = [f"B9 {t}: {why}" for t, why in r.get("skipped", {}).items()]
    for arch in ARCHS:
        ours = r["results"].get(f"{arch}:pseval", {})
        for trainer in TRAINERS:
            x = r["results"].get(f"{arch}:{trainer}")
            if x is None:
                continue
            if "error" in x:
                lines.append(f"B9 {arch} {trainer} FAILED: {x['error'][-300:]}")
                continue
            vs = f" = pseval {ours['tok_s'] / x['tok_s']:.2f}x" if "tok_s" in ours and trainer != "pseval" else ""
            lines.append(f"B9 {arch:8s} {trainer:19s}: {x['tok_s']:,.0f} tok/s{vs}, held-out FVU "
                         f"{x['fvu_heldout']:.4f}, L0 {x['l0_heldout']:.1f} ({r['tokens']:,} tokens, batch "
                         f"{r['batch_size']}, {r['threads']} threads)")
    return lines


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["prepare"]:
        print(prepare())
    elif args[:1] == ["train"]:
        print(json.dumps(train_one(args[1], args[2])))
    else:
        r = benchmark(int(args[0]) if args else REPEATS)
        print("\n".join(summary(r)))
        print(json.dumps(r))


if __name__ == "__main__":
    main()
