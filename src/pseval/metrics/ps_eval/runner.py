"""Collect readout activations once per (model, hook, pairs), then score any number of SAEs on them."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from pseval.data.balance import balance_pairs
from pseval.data.pairs import WordInContextPair
from pseval.errors import PsevalError, SAEFormatError
from pseval.metrics.confusion import Confusion
from pseval.metrics.ps_eval.config import PSEvalConfig
from pseval.models.extract import extract_positions
from pseval.models.loading import LoadedModel
from pseval.models.readout import plan_pairs
from pseval.saes.base import SAE, module_device
from pseval.saes.conventions import HF, to_sae_input


@dataclass
class PairActivations:
    """Activations at the readout of both contexts of every selected pair, for one hook."""

    hook: str
    acts_1: torch.Tensor  # [n, d]
    acts_2: torch.Tensor  # [n, d]
    same_sense: torch.Tensor  # [n] bool
    pair_index: list[int]  # index of each row into the input pairs
    counts: dict[str, object] = field(default_factory=dict)
    convention: str = HF  # the model's activation convention (tl_centered for a processed HookedTransformer)


@dataclass
class PSEvalResult:
    """Confusion, metrics, counts and the reference's feature-cosine statistics for one SAE."""

    confusion: Confusion
    counts: dict[str, object]
    features_1: torch.Tensor
    features_2: torch.Tensor
    cosine: dict[str, float]
    pair_cos_enc: torch.Tensor  # per pair: cosine of the W_enc columns of the two top features
    pair_cos_dec: torch.Tensor  # per pair: cosine of the W_dec rows of the two top features

    @property
    def metrics(self) -> dict[str, float | int]:
        """The nine PS-Eval numbers."""
        return self.confusion.metrics()


def collect_pair_activations(lm: LoadedModel, pairs: Sequence[WordInContextPair], hooks: Sequence[str],
                             cfg: PSEvalConfig | None = None, progress: bool = False) -> dict[str, PairActivations]:
    """One batched forward pass over both prompts of every valid pair, reading all hooks at once."""
    cfg = cfg or PSEvalConfig()
    plans = plan_pairs(lm.tokenizer, pairs, cfg.readout, add_bos=lm.is_causal, max_len=lm.max_positions)
    dropped: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    valid: list[int] = []
    truncated = 0
    for i, (a, b) in enumerate(plans):
        reason = a.drop or b.drop
        if reason:
            dropped[reason] += 1
            ex = examples.setdefault(reason, [])
            if len(ex) < 5:  # name the culprits without bloating the result
                ex.append(pairs[i].source_id)
        else:
            valid.append(i)
            truncated += a.truncated + b.truncated
    labels = [pairs[i].same_sense for i in valid]
    selected = balance_pairs([p.same_sense for p in pairs], [a.drop is None and b.drop is None for a, b in plans],
                             cfg.balance, cfg.seed)
    seqs = [plans[i][j].input_ids for i in selected for j in (0, 1)]
    positions = [plans[i][j].positions for i in selected for j in (0, 1)]
    acts = extract_positions(lm, seqs, positions, hooks, max_tokens=cfg.max_tokens, progress=progress) if seqs \
        else {h: torch.zeros((0, lm.d_model)) for h in hooks}
    n_valid_same = sum(labels)
    counts: dict[str, object] = {
        "pairs_read": len(pairs),
        "pairs_valid": len(valid),
        "valid_same": n_valid_same,
        "valid_different": len(valid) - n_valid_same,
        "dropped": dict(sorted(dropped.items())),
        "dropped_examples": dict(sorted(examples.items())),
        "pairs_scored": len(selected),
        "scored_same": sum(pairs[i].same_sense for i in selected),
        "scored_different": sum(not pairs[i].same_sense for i in selected),
        "contexts_truncated": truncated,
    }
    out = {}
    for hook in hooks:
        a = acts[hook]
        bad = (~torch.isfinite(a)).any(dim=1).nonzero().flatten().tolist()
        if bad:
            ids = sorted({pairs[selected[r // 2]].source_id for r in bad})
            raise PsevalError(f"NaN/inf activations at {hook} for {len(ids)} pair(s): {', '.join(ids[:5])}"
                              + (" ..." if len(ids) > 5 else ""))
        out[hook] = PairActivations(hook=hook, acts_1=a[0::2], acts_2=a[1::2],
                                    same_sense=torch.tensor([pairs[i].same_sense for i in selected], dtype=torch.bool),
                                    pair_index=selected, counts=counts, convention=lm.activation_convention)
    return out


def check_sae_fits(sae: SAE, d: int, hook: str, model_name: str | None = None) -> None:
    """Error when the SAE's d_in differs from the activation width; warn when its recorded hook/model differ."""
    head = sae.cfg.metadata.hook_head_index
    if sae.d_in != d and not (head is not None and d % sae.d_in == 0 and (head + 1) * sae.d_in <= d):
        raise SAEFormatError(f"SAE d_in={sae.d_in} does not match the width {d} of hook {hook!r}")
    meta = sae.cfg.metadata
    if meta.hook_name and meta.hook_name != hook and sae.architecture != "identity":
        warnings.warn(f"SAE was trained on hook {meta.hook_name!r} but is applied at {hook!r}", stacklevel=2)
    if model_name and meta.model_name and meta.model_name != model_name and sae.architecture != "identity":
        warnings.warn(f"SAE was trained on model {meta.model_name!r} but is applied to {model_name!r}", stacklevel=2)


@torch.inference_mode()
def top_features(sae: SAE, acts: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax latent per row (ties and all-zero codes go to the lowest index) and whether the code was all zero."""
    feats, zero = [], []
    dev = module_device(sae)
    for start in range(0, acts.shape[0], chunk):
        z = sae.encode(acts[start:start + chunk].to(dev))
        feats.append(z.argmax(dim=-1).cpu())
        zero.append((z == 0).all(dim=-1).cpu())
    if not feats:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool)
    return torch.cat(feats), torch.cat(zero)


def _cosines(sae: SAE, f1: torch.Tensor, f2: torch.Tensor,
             same: torch.Tensor) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """Cosine of the W_enc columns and W_dec rows of the two top features: per-label means (as the reference)
    and per-pair values; NaN where the SAE has no such weight (a module with only `encode`)."""
    def pair_cos(rows: torch.Tensor | None) -> torch.Tensor:
        if rows is None:
            return torch.full((len(f1),), float("nan"))
        # contiguous: the same numbers whatever layout the weight came in (a transposed view or not)
        rows = torch.nn.functional.normalize(rows.detach().float().cpu().contiguous(), dim=1)
        return (rows[f1] * rows[f2]).sum(-1)

    with torch.no_grad():
        w_enc, w_dec = getattr(sae, "W_enc", None), getattr(sae, "W_dec", None)
        cos_enc = pair_cos(w_enc.T if w_enc is not None else None)
        cos_dec = pair_cos(w_dec)
    out = {}
    for label, mask in (("same", same), ("different", ~same)):
        out[f"enc_cos_{label}"] = float(cos_enc[mask].mean()) if mask.any() else float("nan")
        out[f"dec_cos_{label}"] = float(cos_dec[mask].mean()) if mask.any() else float("nan")
    return out, cos_enc, cos_dec


def score_sae(pa: PairActivations, sae: SAE, cfg: PSEvalConfig | None = None,
              model_name: str | None = None) -> PSEvalResult:
    """PS-Eval of one SAE on collected activations: confusion, metrics, counts, cosines."""
    cfg = cfg or PSEvalConfig()
    check_sae_fits(sae, pa.acts_1.shape[1], pa.hook, model_name)
    f1, z1 = top_features(sae, to_sae_input(pa.acts_1, sae, pa.convention), cfg.encode_chunk)
    f2, z2 = top_features(sae, to_sae_input(pa.acts_2, sae, pa.convention), cfg.encode_chunk)
    same_feature = (f1 == f2).tolist()
    confusion = Confusion.from_predictions(pa.same_sense.tolist(), same_feature)
    counts = dict(pa.counts)
    counts["all_zero_codes"] = int(z1.sum() + z2.sum())
    means, cos_enc, cos_dec = _cosines(sae, f1, f2, pa.same_sense)
    return PSEvalResult(confusion, counts, f1, f2, means, cos_enc, cos_dec)
