"""Pre-6.0 SAELens configs (flat cfg.json): translated field by field into an SAEConfig, or refused.

What SAELens 0.x-5.x computed from these fields (sae.py / get_activation_fn, read from its history):
- `activation_fn_str` (older files: `activation_fn`) is one of relu, tanh-relu (tanh of the ReLU) or topk (top k of
  the pre-activations, then ReLU; k from `activation_fn_kwargs.k`); any other name made SAELens raise.
- `architecture` (default standard) chooses the encoder around it: standard and topk apply the activation to the
  pre-activations; jumprelu multiplies it by 1[pre > threshold]; gated applies it to the magnitude path.
- `normalize_activations` is a string (none, expected_average_only_in, constant_norm_rescale, layer_norm) or, before
  SAELens 3.4, a boolean: true meant expected_average_only_in (SAELens' own translation), false none.
- `finetuning_scaling_factor: true` multiplies the latents by a per-latent vector before decoding.
The SAELens 3.4.1 fork bundled with the PS-Eval authors' code (gouki510/PS-Eval) saves its training-runner config:
`activation_fn` (relu, tanh-relu, topk, jump-relu, softmax), a top-level `k` (read by its TopK, always written) and
`jump` (always written, never read: its SAE builds JumpReLU with the default threshold 0.001), beside an unused
`qz_loga` tensor in the weights (see saelens.TRAINING_ONLY_TENSORS).
pseval maps the combinations that occur onto its architectures (relu -> standard / jumprelu / gated, topk -> topk,
tanh-relu -> tanh_relu) and refuses the rest with the fields and values named.
"""

from __future__ import annotations

from typing import Any

from pseval.saes.config import (
    NORMALISATIONS,
    SAEConfig,
    SAEMetadata,
    check_bool,
    check_dict,
    check_int,
    check_str,
    field_error,
)

ACTIVATIONS = ("relu", "tanh-relu", "topk", "jump-relu")
# The fork's JumpReLU threshold: `get_activation_fn(cfg.activation_fn_str, cfg.k)` never passes cfg.jump, so its
# default applies whatever cfg.json says.
FORK_JUMP_THRESHOLD = 0.001
ARCHITECTURES = ("standard", "gated", "jumprelu", "topk")
# (architecture, activation) -> pseval architecture; every other pair is refused.
_COMBINATIONS = {("standard", "relu"): "standard", ("jumprelu", "relu"): "jumprelu", ("gated", "relu"): "gated",
                 ("standard", "topk"): "topk", ("topk", "topk"): "topk", ("standard", "tanh-relu"): "tanh_relu",
                 ("standard", "jump-relu"): "jumprelu"}


def _activation(d: dict[str, Any]) -> tuple[str, str]:
    """(field name, value) of the activation; both spellings present and different is refused."""
    if "activation_fn_str" in d and "activation_fn" in d and d["activation_fn_str"] != d["activation_fn"]:
        raise field_error("activation_fn_str", d["activation_fn_str"],
                      f"equal to activation_fn={d['activation_fn']!r} when both are given")
    name = "activation_fn_str" if "activation_fn_str" in d else "activation_fn"
    return name, str(check_str(name, d.get(name, "relu"), ACTIVATIONS))


def _normalisation(value: Any) -> str:
    """Legacy booleans and null mapped as SAELens maps them; strings checked against the four values."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "expected_average_only_in"
    return str(check_str("normalize_activations", value, NORMALISATIONS))


def _first(d: dict[str, Any], *names: str) -> Any:
    """The value of the first of `names` present in d (SAELens renamed hook_point -> hook_name etc.)."""
    return next((d[n] for n in names if n in d), None)


def config_from_legacy(d: dict[str, Any]) -> SAEConfig:
    """SAEConfig from a pre-6.0 flat cfg; SAEFormatError names any field whose value SAELens did not define."""
    d_in, d_sae = check_int("d_in", d.get("d_in")), check_int("d_sae", d.get("d_sae"))
    act_field, act = _activation(d)
    arch = str(check_str("architecture", d.get("architecture", "standard"), ARCHITECTURES))
    kwargs = check_dict("activation_fn_kwargs", d.get("activation_fn_kwargs"))
    pseval_arch = _COMBINATIONS.get((arch, act))
    if pseval_arch is None:
        why = ("SAELens 5 computed a plain ReLU here and SAELens 6 a TopK with k=100" if (arch, act) == ("topk", "relu")
               else "SAELens never saved this combination")
        raise field_error("architecture", arch, f"one that goes with {act_field}={act!r} ({why}); supported pairs: "
                      + ", ".join(f"{a}+{f}" for a, f in _COMBINATIONS))
    k = None
    extra: dict[str, Any] = {}
    if act == "topk":
        unknown = sorted(set(kwargs) - {"k"})
        if unknown:
            raise field_error("activation_fn_kwargs", kwargs, f"only 'k' for topk (pseval cannot apply {unknown})")
        # SAELens reads activation_fn_kwargs.k; the authors' fork reads a top-level k. Either is accepted, both only
        # when they agree.
        if "k" in kwargs and "k" in d and kwargs["k"] != d["k"]:
            raise field_error("k", d["k"], f"equal to activation_fn_kwargs.k={kwargs['k']!r} when both are given")
        k = check_int("k" if "k" in d and "k" not in kwargs else "activation_fn_kwargs.k",
                      kwargs.get("k", d.get("k")), maximum=d_sae)
    if act == "jump-relu":
        extra["fixed_threshold"] = FORK_JUMP_THRESHOLD
    if check_bool("finetuning_scaling_factor", d.get("finetuning_scaling_factor", False)):
        extra["finetuning_scaling_factor"] = True
    if "norm_scaling_factor" in d:
        extra["norm_scaling_factor"] = d["norm_scaling_factor"]
    for name in ("dataset_trust_remote_code",):
        if name in d:
            check_bool(name, d[name])
    hook = check_str("hook_name", _first(d, "hook_name", "hook_point"), optional=True)
    layer = check_int("hook_layer", _first(d, "hook_layer", "hook_point_layer"), minimum=0, optional=True)
    meta_extra: dict[str, Any] = {"source_format": "saelens_legacy"}
    if layer is not None:
        meta_extra["hook_layer"] = layer
    if d.get("model_from_pretrained_kwargs") is not None:
        meta_extra["model_from_pretrained_kwargs"] = d["model_from_pretrained_kwargs"]
    meta = SAEMetadata(model_name=d.get("model_name"), hook_name=hook,
                       hook_head_index=_first(d, "hook_head_index", "hook_point_head_index"),
                       prepend_bos=d.get("prepend_bos", True),
                       exclude_special_tokens=d.get("exclude_special_tokens", False),
                       context_size=d.get("context_size"), dataset_path=d.get("dataset_path"),
                       sae_lens_version=_first(d, "sae_lens_version", "sae_lens_training_version"),
                       neuronpedia_id=d.get("neuronpedia_id"), extra=meta_extra)
    return SAEConfig(architecture=pseval_arch, d_in=d_in, d_sae=d_sae,
                     dtype=d.get("dtype", "float32"), device=d.get("device", "cpu"),
                     apply_b_dec_to_input=d.get("apply_b_dec_to_input", True),
                     normalize_activations=_normalisation(d.get("normalize_activations")),
                     reshape_activations="hook_z" if hook and hook.endswith("hook_z") else "none",
                     k=k, metadata=meta, extra=extra)
