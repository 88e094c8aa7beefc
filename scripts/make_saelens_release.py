"""Write a fake SAELens release for trying `pseval eval` over many SAEs: random-weight TopK SAEs of MiniLM saved with
SAELens 6's own `SAE.save_model`, one folder per hook and width (`HOOK/wWIDTH`).

    .venv-int/bin/python scripts/make_saelens_release.py OUT [--hooks 1,3,5] [--widths 768,...]

Needs the real sae_lens (the integration venv); the weights are random, so the scores are chance-level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from sae_lens import TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata

D_MODEL = 384  # MiniLM (sentence-transformers/all-MiniLM-L6-v2)
WIDTHS = (768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--hooks", default="1,3,5", help="MiniLM blocks: one blocks.N.hook_resid_post hook each")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    ap.add_argument("--k", type=int, default=32)
    args = ap.parse_args()
    torch.manual_seed(0)
    for layer in args.hooks.split(","):
        hook = f"blocks.{layer}.hook_resid_post"
        for width in map(int, args.widths.split(",")):
            cfg = TopKSAEConfig(d_in=D_MODEL, d_sae=width, k=args.k, metadata=SAEMetadata(
                model_name="sentence-transformers/all-MiniLM-L6-v2", hook_name=hook, prepend_bos=False,
                # MiniLM loaded by transformers, not TransformerLens: raw activations
                model_from_pretrained_kwargs={"center_writing_weights": False}))
            sae = TopKSAE(cfg)
            with torch.no_grad():
                for p in sae.parameters():
                    p.normal_(0, D_MODEL ** -0.5)
            sae.save_model(args.out / hook / f"w{width}")
    print(f"wrote {len(args.hooks.split(',')) * len(args.widths.split(','))} SAE folders under {args.out}")


if __name__ == "__main__":
    main()
