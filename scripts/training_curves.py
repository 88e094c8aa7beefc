"""Training curves for choosing token budgets: `python scripts/training_curves.py CONFIG --hook H [--hook H ...]
--tokens N --out DIR [--sae GLOB ...] [--probes P]`.

Trains each SAE the sweep config plans at the hooks (labels matching --sae) alone on N tokens of the config's corpus
with the sweep's trainer, probing the held-out FVU and dead fraction P times, and writes DIR/curves.csv (one row per
probe), DIR/summary.csv (per SAE: tokens/s, FVU first/at four fifths/final, the last fifth's drop and the
convergence flag at N tokens) and DIR/curves.png, updated after each SAE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pseval.study.curves import measure_curves
from pseval.study.sweep_config import load_sweep_config


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and measure."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--hook", action="append", required=True)
    ap.add_argument("--tokens", type=float, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sae", action="append", default=None, help="label glob (default: every SAE)")
    ap.add_argument("--probes", type=int, default=20)
    args = ap.parse_args(argv)
    cfg = load_sweep_config(args.config)
    measure_curves(cfg, args.hook, int(args.tokens), args.out, args.sae or ["*"], args.probes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
