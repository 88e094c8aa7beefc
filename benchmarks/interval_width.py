"""How many WordNet pairs a sweep needs for F1's 95% bootstrap interval to be under +-0.03.

For each `max_pairs`, the sweep's WordNet spec is selected exactly as a sweep selects it (pipeline.prepare_pairs),
scored through the one pipeline (template readout, the reference's balancing), and F1's 95% percentile pair-bootstrap
interval computed (1000 resamples, seed 0); its half-width is (high - low) / 2. Usage:

    python benchmarks/interval_width.py --sae runs/topk --sizes 500,1000,2000,4000,8000
"""

from __future__ import annotations

import argparse
import json

from pseval.metrics.statistics import bootstrap_metrics
from pseval.models.loading import load_model
from pseval.ps_eval import PSEvalSettings
from pseval.ps_eval.pipeline import SAEEntry, evaluate, prepare_pairs
from pseval.ps_eval.rows import row_from_record
from pseval.saes.identity import identity_sae
from pseval.saes.loading import load_sae

SPEC = "wordnet:max_per_lemma=2,equal_classes=1,seed=0"  # configs/paper-minilm.toml's WordNet set


def main() -> None:
    """Print one JSON line per (max_pairs, SAE): pairs scored, F1 and its interval's half-width."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sae", action="append", default=[], help="SAE folder(s) besides identity")
    ap.add_argument("--sizes", default="500,1000,2000,3000,4000,6000,8000")
    ap.add_argument("--hook", default="blocks.3.hook_resid_post")
    ap.add_argument("--spec", default=SPEC)
    ap.add_argument("--seeds", default="0", help="selection seeds (comma-separated)")
    args = ap.parse_args()
    lm = load_model("minilm")
    entries = [SAEEntry.of(identity_sae(lm.d_model, "minilm", args.hook), "identity", args.hook, "identity",
                           f"identity:{lm.d_model}")]
    entries += [SAEEntry.of(load_sae(s), s.rstrip("/").split("/")[-1], args.hook, s, s) for s in args.sae]
    for seed in (int(s) for s in args.seeds.split(",")):
        for n in (int(s) for s in args.sizes.split(",")):
            data = prepare_pairs(args.spec, n, seed)
            for rec in evaluate(lm, "minilm", entries, data, PSEvalSettings(seed=seed)):
                ci = bootstrap_metrics(*row_from_record(rec).pair, 1000, 0)["f1"]
                print(json.dumps({"max_pairs": n, "seed": seed, "sae": rec.sae_name,
                                  "available": data.selection.available,
                                  "scored": rec.eval_result_metrics.counts.pairs_scored, "f1": round(ci.value, 4),
                                  "low": round(ci.low, 4), "high": round(ci.high, 4),
                                  "half_width": round((ci.high - ci.low) / 2, 4)}), flush=True)


if __name__ == "__main__":
    main()
