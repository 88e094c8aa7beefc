"""SAE folders laid out exactly as the SAELens 3.4.1 fork bundled with gouki510/PS-Eval saves them.

What its `SAETrainingRunner.save_checkpoint` writes (read from the fork's source, reproduced here as data):
- `sae_weights.safetensors`: `safetensors.torch.save_file(sae.state_dict(), ...)`; the state dict of its SAE holds, in
  registration order, b_enc, W_dec, W_enc, b_dec and `qz_loga` (an uninitialised [d_sae] Parameter of an L0 gate
  that encode/decode never read);
- `cfg.json`: `json.dump(trainer.cfg.to_dict(), f)` (no indent) of the whole training-runner config: every field of
  `LanguageModelSAERunnerConfig` in declaration order (`activation_fn`, a top-level `k` and `jump`,
  `model_from_pretrained_kwargs`, `sae_lens_version` "3.4.1", ...), then `tokens_per_buffer` set in __post_init__;
- `sparsity.safetensors`: `{"sparsity": log10 feature density [d_sae]}`.
The values are those the authors' train.py passes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file


def fork_runner_config(d_in: int, d_sae: int, activation_fn: str, k: int, hook_name: str, hook_layer: int,
                       model_name: str, **overrides: Any) -> dict[str, Any]:
    """The runner config's __dict__ as the fork's to_dict() returns it (field order kept)."""
    expansion = d_sae // d_in
    cfg: dict[str, Any] = {
        "model_name": model_name, "model_class_name": "HookedTransformer", "hook_name": hook_name,
        "hook_eval": "NOT_IN_USE", "hook_layer": hook_layer, "hook_head_index": None,
        "dataset_path": "NeelNanda/pile-10k", "datadir": None, "dataset_trust_remote_code": True, "streaming": True,
        "is_dataset_tokenized": True, "context_size": 256, "use_cached_activations": False,
        "cached_activations_path": None, "d_in": d_in, "d_sae": d_sae, "b_dec_init_method": "zeros",
        "expansion_factor": expansion, "activation_fn": activation_fn, "normalize_sae_decoder": False,
        "noise_scale": 0.0, "from_pretrained_path": None, "apply_b_dec_to_input": False,
        "decoder_orthogonal_init": False, "decoder_heuristic_init": False, "init_encoder_as_decoder_transpose": False,
        "n_batches_in_buffer": 64, "training_tokens": 1638400000, "finetuning_tokens": 0,
        "store_batch_size_prompts": 16, "train_batch_size_tokens": 8192, "normalize_activations": "none",
        "device": "cuda:0", "act_store_device": "cuda:0", "seed": 42, "dtype": "float32", "prepend_bos": True,
        "autocast": False, "autocast_lm": False, "compile_llm": False, "llm_compilation_mode": None,
        "compile_sae": False, "sae_compilation_mode": None, "adam_beta1": 0.9, "adam_beta2": 0.999,
        "mse_loss_normalization": None, "l1_coefficient": 5.0, "lp_norm": 1.0,
        "scale_sparsity_penalty_by_decoder_norm": False, "l1_warm_up_steps": 0, "lr": 0.0001,
        "lr_scheduler_name": "cosineannealingwarmrestarts", "lr_warm_up_steps": 0, "lr_end": 1e-05,
        "lr_decay_steps": 0, "n_restart_cycles": 1, "finetuning_method": None, "use_ghost_grads": False,
        "feature_sampling_window": 1000, "dead_feature_window": 1000, "dead_feature_threshold": 0.0001,
        "n_eval_batches": 10, "eval_batch_size_prompts": None, "log_to_wandb": True,
        "log_activations_store_to_wandb": False, "log_optimizer_state_to_wandb": False,
        "wandb_project": "wic_sae-ICLR2025-rebttal", "wandb_id": None,
        "run_name": f"{d_sae}-L1-5.0-LR-0.0001-Tokens-1.638e+09", "wandb_entity": None, "wandb_log_frequency": 30,
        "eval_every_n_wandb_logs": 20, "resume": False, "n_checkpoints": 10,
        "checkpoint_path": f"output/l1_5.0_expansion_{expansion}/x1y2z3w4", "verbose": True, "model_kwargs": {},
        "model_from_pretrained_kwargs": {}, "sae_lens_version": "3.4.1", "sae_lens_training_version": "3.4.1",
        "use_quadratic_activation": False, "use_latent_norm": False, "use_node_popup": False,
        "init_dec_orthogonal": False, "dec_orthogonal_coefficient": 0.0, "W_restart": False, "k": k, "jump": 0.001,
        "tokens_per_buffer": 8192 * 256 * 64,
    }
    cfg.update(overrides)
    return cfg


def write_fork_checkpoint(folder: Path, cfg: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """Write cfg.json, sae_weights.safetensors (with qz_loga) and sparsity.safetensors; returns the weights."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    state = {"b_enc": torch.randn(d_sae, generator=g) * 0.1, "W_dec": torch.randn(d_sae, d_in, generator=g) * 0.2,
             "W_enc": torch.randn(d_in, d_sae, generator=g) * 0.2, "b_dec": torch.randn(d_in, generator=g) * 0.1,
             "qz_loga": torch.randn(d_sae, generator=g)}
    save_file(state, str(folder / "sae_weights.safetensors"))
    with open(folder / "cfg.json", "w") as f:
        json.dump(cfg, f)
    save_file({"sparsity": torch.full((d_sae,), -3.0)}, str(folder / "sparsity.safetensors"))
    return state
