"""Run every benchmark in its own process, print the ratios side by side, write benchmarks/results/*.json.

    make bench        (or: .venv/bin/python benchmarks/run.py [B1 B2 ...])
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ALL = ["B1", "B2", "B3", "B4", "B5:1000", "B5:2000", "B5:4000", "B5:8000", "B6", "B7", "B8-load", "B8-eval", "B8-many"]


def machine() -> dict:
    """What the numbers were measured on."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def run_case(name: str) -> dict:
    """One case in a fresh process (so its peak memory is its own)."""
    proc = subprocess.run([sys.executable, str(HERE / "cases.py"), name], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"case": name, "error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(results: dict[str, dict]) -> list[str]:
    """Human-readable lines: each figure as a ratio measured in this run."""
    lines = []
    if "B1" in results and "speedup" in results["B1"]:
        r = results["B1"]
        lines.append(f"B1 PS-Eval vs reference loop ({r['pairs']} pairs x {r['saes']} SAEs): "
                     f"{r['speedup']:.1f}x faster ({r['reference_s']:.1f}s vs {r['pseval_s']:.2f}s), "
                     f"identical confusion: {r['identical_confusion']} [target >= 50x]; ceiling (a bare batched "
                     f"forward of the same prompts, {r['floor_s']:.2f}s): {r['ceiling_speedup']:.1f}x")
    if "B2" in results and "ratio" in results["B2"]:
        r = results["B2"]
        lines.append(f"B2 PS-Eval vs bare forward ({r['pairs']} pairs): {r['ratio']:.2f}x "
                     f"({r['pseval_s']:.1f}s vs {r['floor_s']:.1f}s) [target <= 1.15x]")
    if "B3" in results and "ratio" in results["B3"]:
        r = results["B3"]
        lines.append(f"B3 16 SAEs vs 1 SAE at one hook: {r['ratio']:.2f}x ({r['sixteen_saes_s']:.2f}s vs "
                     f"{r['one_sae_s']:.2f}s) [target <= 1.3x]; another SAE from the activation cache: "
                     f"{r['another_sae_from_cache_ms']:.0f} ms")
    if "B4" in results and "archs" in results["B4"]:
        for arch, r in results["B4"]["archs"].items():
            lines.append(f"B4 training {arch:9s}: pseval {r['pseval_tok_s']:,.0f} tok/s vs plain loop "
                         f"{r['plain_tok_s']:,.0f} tok/s = {r['ratio']:.2f}x [target >= 1.0x]")
    b5 = [results[k] for k in ALL if k.startswith("B5") and k in results and "seconds" in results[k]]
    if b5:
        base = b5[0]["seconds_per_1k_pairs"]
        for r in b5:
            lines.append(f"B5 {r['pairs']:5d} pairs: {r['seconds']:.1f}s ({r['seconds_per_1k_pairs'] / base:.2f}x the "
                         f"1k-pair time per pair), peak RSS {r['peak_rss_mib']:.0f} MiB")
    if "B7" in results and "models" in results["B7"]:
        for model, r in results["B7"]["models"].items():
            lines.append(f"B7 loss recovered, 8 SAEs vs 1 SAE at one hook, {model} ({r['objective']}): "
                         f"{r['ratio']:.2f}x ({r['eight_saes_s']:.1f}s vs {r['one_sae_s']:.1f}s; baseline "
                         f"{r['baseline_s']:.1f}s once per hook, {r['per_sae_s']:.2f}s per SAE) [target <= 1.5x]; "
                         f"before (a baseline per SAE): {r['before_ratio']:.2f}x, same values to "
                         f"{r['max_abs_diff_before_after']:.1e}")
    if "B8-load" in results and "loads" in results["B8-load"]:
        r = results["B8-load"]
        for key, x in r["loads"].items():
            if "error" in x:
                lines.append(f"B8-load {key} FAILED: {x['error'][-300:]}")
                continue
            lines.append(f"B8-load {r['d_in']}x{r['d_sae']} {key:28s}: peak RSS {x['peak_rss_mib']:,.0f} MiB = "
                         f"{x['peak_over_weights']:.2f}x the weights ({x['weights_mib']:,.0f} MiB; "
                         f"{x['load_added_over_weights']:.2f}x above the pre-load RSS), {x['seconds']:.1f}s "
                         "[target <= 1.2x]")
    if "B8-eval" in results and "saes" in results["B8-eval"]:
        r = results["B8-eval"]
        base = r["identity"].get("peak_rss_mib", float("nan"))
        lines.append(f"B8-eval identity run: peak RSS {base:,.0f} MiB")
        for m, x in r["saes"].items():
            if "error" in x:
                lines.append(f"B8-eval 384x{m} FAILED: {x['error'][-300:]}")
                continue
            lines.append(f"B8-eval 384x{m}: load + PS-Eval on WiC dev peak RSS {x['peak_rss_mib']:,.0f} MiB = "
                         f"{x['peak_over_weights']:.2f}x the weights ({x['weights_mib']:,.0f} MiB), "
                         f"{x['extra_over_identity_mib']:,.0f} MiB over the identity run, {x['seconds']:.1f}s "
                         f"[target <= 1.2x weights + 1 GiB = {x['budget_mib']:,.0f} MiB]")
    if "B8-many" in results and "runs" in results["B8-many"]:
        r = results["B8-many"]
        for n, x in r["runs"].items():
            if "error" in x:
                lines.append(f"B8-many {n} SAE(s) FAILED: {x['error'][-300:]}")
                continue
            lines.append(f"B8-many {n:>2} SAE(s) of {r['d_in']}x{r['d_sae']} ({r['weights_mib_per_sae']:.0f} MiB each) "
                         f"in one eval: peak RSS {x['peak_rss_mib']:,.0f} MiB = {x['over_one_sae']:.2f}x one SAE's "
                         f"eval, {x['seconds']:.1f}s [target <= 1.2x]")
    if "B6" in results and "ratio" in results["B6"]:
        r = results["B6"]
        lines.append(f"B6 {r['workers']} Ray workers vs serial, {r['hooks']} hooks: {r['ratio']:.2f}x "
                     f"({r['serial_s']:.1f}s serial on {r['serial_threads']} threads vs {r['ray_s']:.1f}s + "
                     f"{r['ray_start_s']:.1f}s cluster start); vs serial on 1 thread ({r['serial_1_thread_s']:.1f}s): "
                     f"{r['ratio_1_thread']:.2f}x; identical cells: {r['identical_cells']} [target >= 1.6x]")
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name} FAILED: {r['error'][-300:]}")
    return lines


def main() -> None:
    names = sys.argv[1:] or ALL
    t0 = time.time()
    results = {}
    for name in names:
        print(f"running {name} ...", flush=True)
        results[name] = run_case(name)
    record = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": time.time() - t0,
              "results": results}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = HERE / "results" / f"{device}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print("\n".join(summary(results)))
    print(f"total {time.time() - t0:.0f}s; wrote {out}")


if __name__ == "__main__":
    main()
