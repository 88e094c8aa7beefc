"""Collect readout activations once per (model, hook, pairs), then score any number of SAEs on them."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from pseval.data.balance import balance_pairs
from pseval.data.pairs import WordInContextPair
from pseval.errors import ConfigError, PsevalError, SAEFormatError
from pseval.metrics.confusion import Confusion
from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, cast_sae, scoring_dtype
from pseval.metrics.statistics import Interval
from pseval.models.extract import extract_positions
from pseval.models.loading import LoadedModel, same_model
from pseval.models.readout import plan_pairs
from pseval.ps_eval.codes import Encoder, PairCodes, masked_argmax, pair_codes
from pseval.ps_eval.intervals import PairArrays, bootstrap_intervals, pair_statistics
from pseval.ps_eval.settings import PSEvalSettings
from pseval.saes.base import SAE, module_device
from pseval.saes.conventions import HF, head_slice, to_sae_input
from pseval.saes.formats.checks import check_head_layout
from pseval.saes.identity import is_identity_architecture


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
    # Protocol reference only: the valid pairs that balancing left out, read the same way. The reference averages
    # its W_enc/W_dec cosines over every valid pair of each label before balancing (wic_eval.py's first loop).
    unscored_1: torch.Tensor | None = None  # [m, d]
    unscored_2: torch.Tensor | None = None  # [m, d]
    unscored_same: torch.Tensor | None = None  # [m] bool
    unscored_index: list[int] = field(default_factory=list)


@dataclass
class RobustResult:
    """The dense-feature-robust variant: argmax over the latents that fire on at most `exclude_dense` of the
    scored contexts (the paper's metric is untouched); features are None when every latent is that dense."""

    exclude_dense: float
    excluded: int  # latents left out
    reference_contexts: int  # contexts the firing rates were measured on (both contexts of every scored pair)
    features_1: torch.Tensor | None
    features_2: torch.Tensor | None
    all_zero_codes: int  # contexts whose code was all exactly 0 on the remaining latents
    confusion: Confusion | None


@dataclass
class PSEvalResult:
    """Confusion, metrics, counts, the reference's feature-cosine statistics, and the per-pair readings the
    threshold-free, ceiling, concentration and robust statistics are computed from, for one SAE."""

    confusion: Confusion
    counts: dict[str, object]
    features_1: torch.Tensor
    features_2: torch.Tensor
    cosine: dict[str, float]
    pair_cos_enc: torch.Tensor  # per pair: cosine of the W_enc columns of the two top features
    pair_cos_dec: torch.Tensor  # per pair: cosine of the W_dec rows of the two top features
    codes: PairCodes | None = None  # per pair: cosine and top-k Jaccard of the codes; per latent: firing counts
    raw: PairCodes | None = None  # the same on the raw activations: the representation's ceiling
    robust: RobustResult | None = None
    top_k: int = 8
    same_sense: torch.Tensor | None = None
    # Protocol reference: the cosine means over every valid pair of each label (the reference's sets); None otherwise.
    cosine_reference: dict[str, float] | None = None

    @property
    def metrics(self) -> dict[str, float | int]:
        """The nine PS-Eval numbers."""
        return self.confusion.metrics()

    @property
    def confusion_at_k(self) -> Confusion:
        """PS-Eval@k: predicted "same" when the two contexts' top-k active sets share a latent."""
        assert self.codes is not None and self.same_sense is not None
        return Confusion.from_predictions(self.same_sense.tolist(), (self.codes.jaccard > 0).tolist())

    def arrays(self) -> PairArrays:
        """The per-pair arrays every statistic and interval is computed from."""
        assert self.codes is not None and self.raw is not None and self.same_sense is not None
        rb = self.robust
        robust_1 = robust_2 = None
        if rb is not None and rb.features_1 is not None and rb.features_2 is not None:
            robust_1, robust_2 = rb.features_1.numpy(), rb.features_2.numpy()
        return PairArrays(
            same_sense=self.same_sense.numpy().astype(bool), feature_1=self.features_1.numpy(),
            feature_2=self.features_2.numpy(), cosine=self.codes.cosine, jaccard=self.codes.jaccard,
            raw_cosine=self.raw.cosine, raw_jaccard=self.raw.jaccard,
            enc_cos=self.pair_cos_enc.double().numpy(), dec_cos=self.pair_cos_dec.double().numpy(),
            robust_1=robust_1, robust_2=robust_2)

    def statistics(self) -> dict[str, float]:
        """Every statistic's value (names `category.field`, see pseval.ps_eval.intervals)."""
        return {k: float(v[0]) for k, v in pair_statistics(self.arrays()).items()}

    def intervals(self, n_boot: int = 1000, seed: int = 0) -> dict[str, Interval]:
        """Every statistic with its seeded pair-bootstrap 95% interval."""
        return bootstrap_intervals(self.arrays(), n_boot, seed)


def collect_pair_activations(lm: LoadedModel, pairs: Sequence[WordInContextPair], hooks: Sequence[str],
                             cfg: PSEvalSettings | None = None, progress: bool = False) -> dict[str, PairActivations]:
    """One batched forward pass over both prompts of every valid pair, reading all hooks at once."""
    cfg = cfg or PSEvalSettings()
    plans = plan_pairs(lm.tokenizer, pairs, cfg.readout_config(), add_bos=lm.is_causal, max_len=lm.max_positions)
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
    if not selected:  # every metric would be NaN: say why before any forward pass, never exit 0 with no result
        same = sum(labels)
        raise ConfigError(f"no pair left to score: {len(pairs)} read, {len(valid)} valid ({same} same sense, "
                          f"{len(valid) - same} different), and balance {cfg.balance!r} keeps none; use more pairs "
                          "(--max-pairs), data with both labels, or --balance none")
    chosen = set(selected)
    unscored = [i for i in valid if i not in chosen] if cfg.protocol == "reference" else []
    read = selected + unscored  # one pass: the scored pairs, then (reference) the valid pairs balancing left out
    seqs = [plans[i][j].input_ids for i in read for j in (0, 1)]
    positions = [plans[i][j].positions for i in read for j in (0, 1)]
    acts = extract_positions(lm, seqs, positions, hooks, max_tokens=cfg.batch_tokens, progress=progress) if seqs \
        else {h: torch.zeros((0, lm.d_model)) for h in hooks}
    n_sel = 2 * len(selected)
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
        h_acts = acts[hook]
        bad = (~torch.isfinite(h_acts)).any(dim=1).nonzero().flatten().tolist()
        if bad:
            ids = sorted({pairs[read[r // 2]].source_id for r in bad})
            raise PsevalError(f"NaN/inf activations at {hook} for {len(ids)} pair(s): {', '.join(ids[:5])}"
                              + (" ..." if len(ids) > 5 else ""))
        scored, rest = h_acts[:n_sel], h_acts[n_sel:]
        out[hook] = PairActivations(hook=hook, acts_1=scored[0::2], acts_2=scored[1::2],
                                    same_sense=torch.tensor([pairs[i].same_sense for i in selected], dtype=torch.bool),
                                    pair_index=selected, counts=counts, convention=lm.activation_convention)
        if cfg.protocol == "reference":
            pa = out[hook]
            pa.unscored_1, pa.unscored_2, pa.unscored_index = rest[0::2], rest[1::2], unscored
            pa.unscored_same = torch.tensor([pairs[i].same_sense for i in unscored], dtype=torch.bool)
    return out


def check_sae_width(sae: SAE, d: int, hook: str) -> None:
    """Error when the SAE's d_in differs from the activation width, or its per-head settings do not fit the hook."""
    head = sae.cfg.metadata.hook_head_index
    check_head_layout(head, sae.cfg.reshape_activations, hook, "SAE")
    if sae.d_in != d and not (head is not None and d % sae.d_in == 0 and (head + 1) * sae.d_in <= d):
        raise SAEFormatError(f"SAE d_in={sae.d_in} does not match the width {d} of hook {hook!r}")


def check_sae_fits(sae: SAE, d: int, hook: str, model_name: str | None = None) -> None:
    """Error when the SAE's d_in differs from the activation width; warn when its recorded hook/model differ."""
    check_sae_width(sae, d, hook)
    meta = sae.cfg.metadata
    trained = not is_identity_architecture(sae.architecture)  # the identity reads any hook of any model
    if meta.hook_name and meta.hook_name != hook and trained:
        warnings.warn(f"SAE was trained on hook {meta.hook_name!r} but is applied at {hook!r}", stacklevel=2)
    if model_name and meta.model_name and not same_model(meta.model_name, model_name) and trained:
        warnings.warn(f"SAE was trained on model {meta.model_name!r} but is applied to {model_name!r}", stacklevel=2)


def sae_encoder(sae: SAE, convention: str = HF) -> Encoder:
    """Raw activations (in the model's `convention`) -> the SAE's codes: its input convention, device and dtype,
    then encode."""
    dev = module_device(sae)
    w_enc = getattr(sae, "W_enc", None)  # an object's own encode casts for itself when it has no W_enc
    return lambda x: sae.encode(to_sae_input(x.to(dev), sae, convention).to(w_enc.dtype if w_enc is not None
                                                                             else x.dtype))


def top_features(sae: SAE, acts: torch.Tensor, budget: int = DEFAULT_MEMORY_BUDGET,
                 convention: str = HF) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax latent per row over signed code values (ties and all-zero codes go to the lowest index) and whether the
    code was all exactly 0; encoded in chunks of `budget` bytes."""
    return masked_argmax(sae_encoder(sae, convention), acts, torch.zeros(sae.d_sae, dtype=torch.bool), sae.d_sae,
                         budget)


def _cosines(sae: SAE, f1: torch.Tensor, f2: torch.Tensor,
             same: torch.Tensor) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """Cosine of the W_enc columns and W_dec rows of the two top features: per-label means (as the reference)
    and per-pair values; NaN where the SAE has no such weight (a module with only `encode`)."""
    def pair_cos(rows: torch.Tensor | None, u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
        if rows is None:
            return torch.full((len(f1),), float("nan"))
        # contiguous: the same numbers whatever layout the weight came in (a transposed view or not)
        rows = torch.nn.functional.normalize(rows.float().cpu().contiguous(), dim=1)
        return (rows[u1] * rows[u2]).sum(-1)

    with torch.no_grad():
        # Only the columns/rows of the features that won somewhere: never a copy of the whole dictionary.
        used, inv = torch.unique(torch.cat([f1, f2]), return_inverse=True)
        u1, u2 = inv[:len(f1)], inv[len(f1):]
        w_enc, w_dec = getattr(sae, "W_enc", None), getattr(sae, "W_dec", None)
        cos_enc = pair_cos(None if w_enc is None else w_enc.detach()[:, used.to(w_enc.device)].T, u1, u2)
        cos_dec = pair_cos(None if w_dec is None else w_dec.detach()[used.to(w_dec.device)], u1, u2)
    out = {}
    for label, mask in (("same", same), ("different", ~same)):
        out[f"enc_cos_{label}"] = float(cos_enc[mask].mean()) if mask.any() else float("nan")
        out[f"dec_cos_{label}"] = float(cos_dec[mask].mean()) if mask.any() else float("nan")
    return out, cos_enc, cos_dec


def score_sae(pa: PairActivations, sae: SAE, cfg: PSEvalSettings | None = None,
              model_name: str | None = None) -> PSEvalResult:
    """PS-Eval of one SAE on collected activations: the paper's argmax confusion, counts and cosines, and from the
    same encode pass the code similarities (cosine, top-k Jaccard), the raw-activation ceiling and, when
    cfg.exclude_dense is set, the dense-feature-robust argmax (a second pass over the codes)."""
    cfg = cfg or PSEvalSettings()
    check_sae_fits(sae, pa.acts_1.shape[1], pa.hook, model_name)
    dtype = scoring_dtype(cfg.dtype)
    sae = cast_sae(sae, dtype)
    encode = sae_encoder(sae, pa.convention)
    codes = pair_codes(encode, pa.acts_1, pa.acts_2, sae.d_sae, cfg.top_k, cfg.memory_budget, cfg.encode_chunk)
    f1, f2 = codes.feature_1, codes.feature_2
    confusion = Confusion.from_predictions(pa.same_sense.tolist(), (f1 == f2).tolist())
    counts = dict(pa.counts)
    counts["all_zero_codes"] = int(codes.zero_1.sum() + codes.zero_2.sum())
    means, cos_enc, cos_dec = _cosines(sae, f1, f2, pa.same_sense)
    # The ceiling reads what the SAE reads (its convention, its head slice): the share then compares like with like,
    # and a model wrapped two ways (Hugging Face, processed HookedTransformer) gives one ceiling.
    d_in = head_slice(pa.acts_1[:1], sae).shape[1]
    raw = pair_codes(lambda x: to_sae_input(x, sae, pa.convention).to(dtype), pa.acts_1, pa.acts_2, d_in, cfg.top_k,
                     cfg.memory_budget, cfg.encode_chunk)
    robust = None if cfg.exclude_dense is None else _robust(encode, pa, codes, sae.d_sae, cfg)
    return PSEvalResult(confusion, counts, f1, f2, means, cos_enc, cos_dec, codes=codes, raw=raw, robust=robust,
                        top_k=cfg.top_k, same_sense=pa.same_sense,
                        cosine_reference=_reference_cosines(sae, pa, encode, f1, f2, cfg))


def _reference_cosines(sae: SAE, pa: PairActivations, encode: Encoder, f1: torch.Tensor, f2: torch.Tensor,
                       cfg: PSEvalSettings) -> dict[str, float] | None:
    """The cosine means over every valid pair of each label, scored or not (the reference's sets); None when the
    activations of the unscored valid pairs were not collected (protocol pseval)."""
    if pa.unscored_1 is None or pa.unscored_2 is None or pa.unscored_same is None:
        return None
    zeros = torch.zeros(sae.d_sae, dtype=torch.bool)
    u1, _ = masked_argmax(encode, pa.unscored_1, zeros, sae.d_sae, cfg.memory_budget, cfg.encode_chunk)
    u2, _ = masked_argmax(encode, pa.unscored_2, zeros, sae.d_sae, cfg.memory_budget, cfg.encode_chunk)
    means, _, _ = _cosines(sae, torch.cat([f1, u1.to(f1.dtype)]), torch.cat([f2, u2.to(f2.dtype)]),
                           torch.cat([pa.same_sense, pa.unscored_same]))
    return means


def _robust(encode: Encoder, pa: PairActivations, codes: PairCodes, d_sae: int, cfg: PSEvalSettings) -> RobustResult:
    """Leave out the latents non-zero on more than cfg.exclude_dense of the scored contexts; argmax over the rest."""
    assert cfg.exclude_dense is not None
    n_ctx = codes.contexts
    dense = codes.fires.double() > cfg.exclude_dense * n_ctx if n_ctx else torch.zeros(d_sae, dtype=torch.bool)
    excluded = int(dense.sum())
    if excluded == d_sae:
        return RobustResult(cfg.exclude_dense, excluded, n_ctx, None, None, 0, None)
    r1, z1 = masked_argmax(encode, pa.acts_1, dense, d_sae, cfg.memory_budget, cfg.encode_chunk)
    r2, z2 = masked_argmax(encode, pa.acts_2, dense, d_sae, cfg.memory_budget, cfg.encode_chunk)
    confusion = Confusion.from_predictions(pa.same_sense.tolist(), (r1 == r2).tolist())
    return RobustResult(cfg.exclude_dense, excluded, n_ctx, r1, r2, int(z1.sum() + z2.sum()), confusion)
