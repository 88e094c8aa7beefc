"""The SAELens directory layout: cfg.json + sae_weights.safetensors (v6, and pre-6.0 flat configs)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from pseval.errors import SAEFormatError
from pseval.files import atomic_target, write_json_atomic
from pseval.saes.base import SAE
from pseval.saes.build import build_sae, expected_shapes
from pseval.saes.config import SAEConfig, check_scale
from pseval.saes.conventions import saelens_convention
from pseval.saes.formats.checks import check_head_layout
from pseval.saes.formats.common import read_json_object
from pseval.saes.formats.saelens_legacy import config_from_legacy
from pseval.saes.identity import is_identity_architecture
from pseval.saes.registry import get_sae_class
from pseval.saes.tensor_io import DEFAULT_DTYPE, read_safetensors, safetensors_index

__all__ = ["CFG_NAME", "SAELENS_LAYOUT_VERSION", "WEIGHTS_NAME", "build_sae", "config_from_legacy", "expected_shapes",
           "is_v6", "load_saelens", "load_saelens_v6", "read_cfg", "read_safetensors", "saelens_v6_metadata",
           "save_sae"]

CFG_NAME = "cfg.json"
WEIGHTS_NAME = "sae_weights.safetensors"
# Pre-6.0 names of the per-latent decoder-side scale (`finetuning_scaling_factor: true`).
_FINETUNING_SCALES = ("finetuning_scaling_factor", "scaling_factor")
# Tensors that training code saved beside the weights and that the library's encode/decode never read: ignored, and
# named in the record (metadata.ignored_tensors). Only in pre-6.0 flat configs, where they occur.
TRAINING_ONLY_TENSORS = {
    "qz_loga": "the SAELens 3.4.1 fork of gouki510/PS-Eval: log-alpha of an L0 (hard-concrete) gate, a Parameter of "
               "every SAE it builds, never used by SAE.encode or decode",
}


# The cfg.json layout pseval writes is SAELens 6's, and SAELens (handle_config_defaulting) reads `metadata` only when
# `sae_lens_version` says >= 6: with null it takes the file for a pre-6 flat layout and loses hook, model and
# prepend_bos. So a saved file names the first version of that layout unless it carries a 6.x version already.
SAELENS_LAYOUT_VERSION = "6.0.0"


def _major(version: object) -> int | None:
    """The major number of a version string ("6.54.12" -> 6); None when there is none."""
    head = version.split(".")[0].strip().lstrip("v") if isinstance(version, str) else ""
    return int(head) if head.isdigit() else None


def saelens_v6_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """`metadata` as SAELens 6 reads it: a 6.x `sae_lens_version` (an older one kept as `source_sae_lens_version`)."""
    out = dict(meta)
    version = out.get("sae_lens_version")
    if (_major(version) or 0) < 6:
        if version is not None:
            out.setdefault("source_sae_lens_version", version)
        out["sae_lens_version"] = SAELENS_LAYOUT_VERSION
    return out


def save_sae(sae: SAE, folder: str | Path) -> Path:
    """Write cfg.json and sae_weights.safetensors (atomically: temp files renamed into place) in SAELens 6's layout,
    which SAELens' `SAE.load_from_disk` reads with its metadata (hook, model, prepend_bos, context size)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {n: sae.get_weight(n).detach().to("cpu").contiguous() for n in sae.weight_names()}
    cfg = sae.cfg.to_dict()
    cfg["architecture"] = sae.export_architecture or sae.architecture
    cfg["dtype"] = str(sae.W_enc.dtype).removeprefix("torch.")  # what the file holds
    cfg["metadata"].setdefault("source_format", "pseval")
    cfg["metadata"] = saelens_v6_metadata(cfg["metadata"])
    with atomic_target(out / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(cfg, out / CFG_NAME)
    return out


def read_cfg(folder: Path) -> dict:
    """Parse cfg.json with a clear error on bad JSON."""
    return read_json_object(folder / CFG_NAME, f"an SAELens SAE folder holds {CFG_NAME} and {WEIGHTS_NAME}")


def is_v6(cfg: dict[str, Any]) -> bool:
    """SAELens 6 nests provenance under `metadata`; earlier versions keep everything flat."""
    return isinstance(cfg.get("metadata"), dict)


def _check_finetuning_scale(cfg: SAEConfig, weights: Path, stored: list[str]) -> None:
    """SAELens <6 `finetuning_scaling_factor`: accepted only where it is all ones (it then changes nothing)."""
    present = [n for n in _FINETUNING_SCALES if n in stored]
    if cfg.extra.get("finetuning_scaling_factor") and not present:
        raise SAEFormatError(f"{weights}: cfg.json sets finetuning_scaling_factor=true but the file has no "
                             f"{' or '.join(_FINETUNING_SCALES)} tensor")
    for name in present:
        t = read_safetensors(weights, torch.float32, names=[name])[name]
        if not bool((t == 1).all()):
            raise SAEFormatError(f"{weights}: tensor {name!r} (SAELens' per-latent finetuning scale before decoding) "
                                 "is not all ones; pseval does not apply it, so it refuses this SAE")


def _read_weights(cfg: SAEConfig, folder: Path, dtype: torch.dtype | str, device: str | torch.device
                  ) -> dict[str, torch.Tensor]:
    """The architecture's tensors from the weights file; tensors it does not know are an error (see below)."""
    weights = folder / WEIGHTS_NAME
    stored = list(safetensors_index(weights))
    with torch.device("meta"):
        wanted = list(get_sae_class(cfg.architecture)(cfg).weight_names())
    _check_finetuning_scale(cfg, weights, stored)
    training_only = set(TRAINING_ONLY_TENSORS) if cfg.metadata.extra.get("source_format") == "saelens_legacy" \
        else set()
    ignored = sorted(set(stored) & training_only)
    if ignored:
        cfg.metadata.extra["ignored_tensors"] = ignored
    # A tensor the architecture does not use means cfg.json and the weights disagree (a `threshold` beside a ReLU
    # config is a JumpReLU SAE described wrongly): computing without it would be silently wrong, so refuse.
    unexpected = sorted(set(stored) - set(wanted) - set(_FINETUNING_SCALES) - training_only)
    if unexpected:
        raise SAEFormatError(f"{weights}: tensor(s) {', '.join(unexpected)} are not weights of architecture "
                             f"{cfg.architecture!r} ({', '.join(wanted)}); cfg.json and the weights disagree: fix "
                             f"the architecture in {folder / CFG_NAME} or remove the tensor(s)")
    fixed = cfg.extra.get("fixed_threshold")
    if fixed is not None and "threshold" not in stored:  # the fork's jump-relu: one threshold its code fixes
        out = read_safetensors(weights, dtype, device, names=[n for n in wanted if n != "threshold"])
        out["threshold"] = torch.full((cfg.d_sae,), float(fixed), dtype=out["W_enc"].dtype, device=out["W_enc"].device)
        return out
    return read_safetensors(weights, dtype, device, names=wanted)


def _apply_norm_scaling(sae: SAE, raw: dict[str, Any], given: float | None, source: Path) -> None:
    """expected_average_only_in: scale inputs by norm_scaling_factor as SAELens folds it (W_enc * s, W_dec / s,
    b_dec / s); without a factor SAELens leaves inputs unscaled, and so does pseval, with a warning."""
    if sae.cfg.normalize_activations != "expected_average_only_in":
        return
    meta = m if isinstance(m := raw.get("metadata"), dict) else {}
    factor = check_scale("norm_scaling_factor", given)
    if factor is None:
        factor = check_scale("norm_scaling_factor", raw.get("norm_scaling_factor", meta.get("norm_scaling_factor")))
    if factor is None:
        warnings.warn(f"{source}: normalize_activations='expected_average_only_in' but no norm_scaling_factor is "
                      "given; inputs are not scaled (as SAELens does without one)", stacklevel=3)
        return
    sae.input_scale.fill_(factor)


def load_saelens(folder: str | Path, dtype: str | torch.dtype = DEFAULT_DTYPE, device: str | torch.device = "cpu",
                 norm_scaling_factor: float | None = None) -> SAE:
    """Load an SAE in the SAELens layout, v6 or earlier, in `dtype` on `device`; records its activation convention.

    norm_scaling_factor: for expected_average_only_in SAEs whose factor lives outside cfg.json (SAELens' release
    directory); cfg.json's own `norm_scaling_factor` is used otherwise.
    """
    p = Path(folder)
    raw = read_cfg(p)
    try:
        cfg = SAEConfig.from_dict(raw) if is_v6(raw) else config_from_legacy(raw)
    except SAEFormatError as exc:
        raise SAEFormatError(f"{p / CFG_NAME}: {exc}") from exc
    meta = cfg.metadata
    if is_identity_architecture(cfg.architecture):  # no weights to read: a file claiming some is not the identity
        raise SAEFormatError(f"{p / CFG_NAME}: field 'architecture' is 'identity', which holds no weights; use "
                             "the `identity` SAE spec, or fix the architecture of these weights")
    check_head_layout(meta.hook_head_index, cfg.reshape_activations, meta.hook_name, str(p / CFG_NAME))
    if meta.extra.get("source_format") != "pseval" or "activation_convention" in meta.extra:
        # Recorded, or decided by model_from_pretrained_kwargs / the runner's defaults; None (undecided) is refused
        # where the SAE is used unless an explicit option decides (conventions.set_convention).
        kwargs = meta.extra.get("model_from_pretrained_kwargs")
        meta.extra["activation_convention"], meta.extra["activation_convention_source"] = saelens_convention(
            meta.to_dict(), kwargs, raw)
    sae = build_sae(cfg, _read_weights(cfg, p, dtype, device), str(p / WEIGHTS_NAME))
    _apply_norm_scaling(sae, raw, norm_scaling_factor, p / CFG_NAME)
    return sae


def load_saelens_v6(folder: str | Path, dtype: str | torch.dtype = DEFAULT_DTYPE,
                    device: str | torch.device = "cpu") -> SAE:
    """Load an SAE saved in the SAELens v6 layout (pseval's own format)."""
    p = Path(folder)
    raw = read_cfg(p)
    if not is_v6(raw):
        raise SAEFormatError(f"{p / CFG_NAME}: a pre-6.0 SAELens config (no `metadata`); use load_saelens")
    return load_saelens(p, dtype, device)
