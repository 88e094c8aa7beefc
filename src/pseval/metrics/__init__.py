"""Metrics: PS-Eval and the standard SAE reconstruction and sparsity metrics."""
