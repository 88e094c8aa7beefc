"""The GPU path end to end, against the CPU: `python scripts/gpu_check.py OUT_DIR [PAIRS_JSONL]`.

Builds a tiny random GPT-2 with an in-process BPE tokenizer and a text corpus (no download), trains a TopK SAE on the
GPU and on the CPU through `pseval train`, scores both with `pseval eval` on the GPU and on the CPU, and prints
whether the GPU's numbers are the CPU's: the same SAE scored on both devices must give the same confusion (up to
argmax near-ties, which it counts), and SAEs trained on both devices must reach a similar held-out FVU. Exits 1 when
the GPU path disagrees. Needs a CUDA device; CI never runs it (no GPU there).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

WORDS = ("bank river money loan water shore deposit account current stream light bright heavy lamp weight paper "
         "plant factory leaf tree green power seed grow run race motor engine spring coil season jump rock stone "
         "music band ring finger circle sound bass fish guitar low crane bird lift tower").split()


def _corpus(path: Path, n: int = 4000) -> None:
    rng = random.Random(0)
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))) + " ."
                              for _ in range(n)), encoding="utf-8")


def _pairs(path: Path, n: int = 300) -> None:
    rng = random.Random(1)
    rows = []
    for i in range(n):
        w = rng.choice(WORDS)
        c1 = " ".join(rng.choice(WORDS) for _ in range(5)) + f" {w} " + " ".join(rng.choice(WORDS) for _ in range(5))
        c2 = " ".join(rng.choice(WORDS) for _ in range(4)) + f" {w} " + " ".join(rng.choice(WORDS) for _ in range(6))
        rows.append({"id": f"g{i}", "target_word": w, "context_1": c1, "context_2": c2, "label": int(i % 2 == 0)})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


def _model(folder: Path, corpus: Path) -> None:
    import torch
    import transformers as tf
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train([str(corpus)], trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<unk>"]))
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                      pad_token="<|endoftext|>", unk_token="<unk>")
    torch.manual_seed(0)
    cfg = tf.GPT2Config(n_layer=3, n_embd=64, n_head=4, n_positions=128, vocab_size=len(fast), bos_token_id=0,
                        eos_token_id=0, pad_token_id=0)
    tf.GPT2LMHeadModel(cfg).eval().save_pretrained(folder)
    fast.save_pretrained(folder)


def _pseval(*args: str) -> float:
    t = time.time()
    subprocess.run([sys.executable, "-m", "pseval.cli", *args], check=True)
    return time.time() - t


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    corpus, pairs, model = out / "corpus.txt", out / "pairs.jsonl", out / "model"
    _corpus(corpus)
    if len(sys.argv) > 2:
        pairs = Path(sys.argv[2])
    else:
        _pairs(pairs)
    _model(model, corpus)
    hook = "blocks.1.hook_resid_post"
    common = ["--model", str(model), "--hook", hook, "--corpus", f"file:{corpus}", "--tokens", "30000", "--arch",
              "topk", "--expansion", "8", "--k", "16"]
    times = {}
    for dev in ("cuda", "cpu"):
        times[f"train {dev}"] = _pseval("train", *common, "--device", dev, "--out", str(out / f"sae-{dev}"))
    records = {}
    for sae_dev in ("cuda", "cpu"):
        for dev in ("cuda", "cpu"):
            path = out / f"eval-{sae_dev}-on-{dev}.json"
            times[f"eval {sae_dev} SAE on {dev}"] = _pseval(
                "eval", "--model", str(model), "--hook", hook, "--sae", "identity", "--sae",
                str(out / f"sae-{sae_dev}"), "--data", f"jsonl:{pairs}", "--device", dev,
                "--reconstruction-tokens", "2000", "--corpus", f"file:{corpus}", "--out", str(path))
            records[sae_dev, dev] = json.loads(path.read_text())
    ok = True
    for sae_dev in ("cuda", "cpu"):
        gpu, cpu = records[sae_dev, "cuda"], records[sae_dev, "cpu"]
        for g, c in zip(gpu, cpu, strict=True):
            differ = sum(a["feature_1"] != b["feature_1"] or a["feature_2"] != b["feature_2"]
                         for a, b in zip(g["eval_result_details"], c["eval_result_details"], strict=True))
            n = len(g["eval_result_details"])
            gm, cm = g["eval_result_metrics"]["ps_eval"], c["eval_result_metrics"]["ps_eval"]
            print(f"{g['sae_name']} ({sae_dev}-trained): GPU F1 {gm['f1']:.4f} CPU F1 {cm['f1']:.4f}; "
                  f"{differ}/{n} pairs with another top feature")
            ok &= differ <= max(1, n // 50)  # near-ties only: TF32/cuBLAS sums differ in the last bits
    fvu = {d: records[d, "cpu"][1]["eval_result_metrics"]["reconstruction"]["fvu"] for d in ("cuda", "cpu")}
    print(f"held-out FVU of the SAE trained on cuda {fvu['cuda']:.4f}, on cpu {fvu['cpu']:.4f}")
    ok &= abs(fvu["cuda"] - fvu["cpu"]) <= 0.05 * max(fvu["cpu"], 1e-9) + 0.01
    for k, v in times.items():
        print(f"{k}: {v:.1f} s")
    print("GPU PATH OK" if ok else "GPU PATH DISAGREES")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
