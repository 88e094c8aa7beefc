"""The one typed PS-Eval result record: SAEBench's eval-output shape, every field titled and described.

One record per (SAE, hook, pair set, readout settings). No block repeats another: the settings live in
`eval_config`, the numbers in `eval_result_metrics` (flat categories, as SAEBench requires), the per-pair outcomes in
`eval_result_details`, and what fits none of those (examples of dropped pairs) in `eval_result_unstructured`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from pseval.errors import DataFormatError
from pseval.files import json_safe
from pseval.metrics.loss_recovered import LossRecovered
from pseval.metrics.reconstruction import ReconstructionMetrics
from pseval.ps_eval.concentration import DOMINANCE_THRESHOLD
from pseval.ps_eval.settings import SettingsFields
from pseval.training.trainer import TrainingMetrics

SCHEMA_VERSION: Final = 3  # Final: the checker reads Literal[3], as schema_version declares
EVAL_TYPE_ID: Final = "ps_eval"
# pseval is not SAEBench: the field SAEBench requires says so rather than inventing a commit.
NOT_SAE_BENCH = "none (written by pseval, not by SAEBench)"


class _Flat(BaseModel):
    """A metric category: one level of named numbers (SAEBench rejects nested dicts here)."""

    model_config = ConfigDict(extra="forbid")


class PSEvalMetrics(_Flat):
    """The paper's argmax PS-Eval: positive = same sense, predicted positive = same top feature in both contexts."""

    accuracy: float | None = Field(title="Accuracy", description="(TP + TN) / scored pairs")
    precision: float | None = Field(title="Precision", description="TP / (TP + FP); null when nothing is "
                                    "predicted same-sense")
    recall: float | None = Field(title="Recall", description="TP / (TP + FN): same-sense pairs given the same "
                                 "top feature")
    specificity: float | None = Field(title="Specificity", description="TN / (TN + FP): different-sense pairs "
                                      "given different top features")
    f1: float | None = Field(title="F1", description="2TP / (2TP + FP + FN)")
    tp: int = Field(title="True positives", description="same sense, same top feature")
    fp: int = Field(title="False positives", description="different sense, same top feature")
    tn: int = Field(title="True negatives", description="different sense, different top features")
    fn: int = Field(title="False negatives", description="same sense, different top features")
    # Optional so that records written before they existed still read.
    mcc: float | None = Field(None, title="Matthews correlation", description="(TP TN - FP FN) / sqrt((TP+FP)(TP+FN)"
                              "(TN+FP)(TN+FN)); 0 when a margin is 0: 0 for every trivial predictor (chance), 1 "
                              "for a perfect one, negative below chance")
    balanced_accuracy: float | None = Field(None, title="Balanced accuracy", description="(recall + specificity) / "
                                            "2; 0.5 is chance whatever the class balance")


class FeatureCosineMetrics(_Flat):
    """The reference's weight-cosine statistics of the two contexts' top features, averaged per label (over which
    pairs: see the field that holds them)."""

    enc_cos_same: float | None = Field(title="Encoder cosine, same sense",
                                       description="mean cosine of the two top features' W_enc columns over "
                                                   "same-sense pairs; null without W_enc")
    enc_cos_different: float | None = Field(title="Encoder cosine, different sense",
                                            description="the same over different-sense pairs")
    dec_cos_same: float | None = Field(title="Decoder cosine, same sense",
                                       description="mean cosine of the two top features' W_dec rows over "
                                                   "same-sense pairs; null without W_dec")
    dec_cos_different: float | None = Field(title="Decoder cosine, different sense",
                                            description="the same over different-sense pairs")


def _with_bounds(name: str, base: type[_Flat], fields: dict[str, str], doc: str) -> type[_Flat]:
    """`base` plus `<field>_low` and `<field>_high` for each field (name -> title): its 95% pair-bootstrap
    interval."""
    extra: dict[str, Any] = {}
    for f, title in fields.items():
        for end, word in (("low", "lower"), ("high", "upper")):
            extra[f"{f}_{end}"] = (float | None, Field(
                None, title=f"{title}, 95% CI {word} end", description=f"{word} end of the 95% percentile interval of "
                f"{f} over pairs resampled with replacement (eval_config: bootstrap_resamples, bootstrap_seed); null "
                "when undefined"))
    return create_model(name, __base__=base, __doc__=doc, **extra)


CONFUSION_TITLES = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall",
                    "specificity": "Specificity", "f1": "F1", "mcc": "Matthews correlation",
                    "balanced_accuracy": "Balanced accuracy"}
if TYPE_CHECKING:  # create_model's fields are invisible to a type checker: it sees the base class
    # (the `_low`/`_high` bounds are only read by name); the runtime class is the one below.
    ConfusionIntervals = _Flat
else:
    ConfusionIntervals = _with_bounds("ConfusionIntervals", _Flat, CONFUSION_TITLES,
                                      "95% pair-bootstrap intervals of the five metrics of a confusion category.")
if TYPE_CHECKING:
    FeatureCosineIntervals = _Flat
else:
    FeatureCosineIntervals = _with_bounds(
        "FeatureCosineIntervals", _Flat, {f: FeatureCosineMetrics.model_fields[f].title or f
                                          for f in FeatureCosineMetrics.model_fields},
        "95% pair-bootstrap intervals of the top-feature weight-cosine means.")


class _ThresholdFree(_Flat):
    """ROC-AUC (same vs different sense) of per-pair similarities of the two contexts' SAE codes: no threshold, no
    argmax."""

    top_k: int = Field(title="k of the top-k sets", description="size of the top-k active sets (eval_config top_k)")
    auc_cosine: float | None = Field(title="AUC, code cosine", description="P(cos of a same-sense pair's codes > "
                                     "that of a different-sense pair), ties counted half; 0.5 is chance")
    auc_jaccard: float | None = Field(title="AUC, top-k Jaccard", description="the same for the Jaccard index of "
                                      "the two top-k active sets (k largest non-zero latents)")


if TYPE_CHECKING:
    ThresholdFreeMetrics = _ThresholdFree
else:
    ThresholdFreeMetrics = _with_bounds("ThresholdFreeMetrics", _ThresholdFree,
                                        {"auc_cosine": "AUC, code cosine", "auc_jaccard": "AUC, top-k Jaccard"},
                                        _ThresholdFree.__doc__ or "")


class _Ceiling(_Flat):
    """The same AUCs on the raw activations at the same readout and pairs (the representation's ceiling), and the
    SAE's share of it. The raw activations are the SAE's own input: in its activation convention and head slice."""

    auc_cosine: float | None = Field(title="Ceiling AUC, cosine", description="AUC of the cosine of the two "
                                     "contexts' raw activations")
    auc_jaccard: float | None = Field(title="Ceiling AUC, top-k Jaccard", description="AUC of the Jaccard index of "
                                      "the raw activations' top-k coordinate sets")
    share_cosine: float | None = Field(title="Share of the ceiling, cosine", description="(AUC_SAE - 0.5) / "
                                       "(AUC_raw - 0.5): the part of the raw activations' margin over chance the "
                                       "SAE's codes keep (1 = all, 0 = none; can exceed 1); null when the ceiling "
                                       "is at or below chance")
    share_jaccard: float | None = Field(title="Share of the ceiling, Jaccard", description="the same for the "
                                        "top-k Jaccard AUC")


if TYPE_CHECKING:
    CeilingMetrics = _Ceiling
else:
    CeilingMetrics = _with_bounds("CeilingMetrics", _Ceiling, {
        "auc_cosine": "Ceiling AUC, cosine", "auc_jaccard": "Ceiling AUC, top-k Jaccard",
        "share_cosine": "Share of the ceiling, cosine", "share_jaccard": "Share of the ceiling, Jaccard"},
        _Ceiling.__doc__ or "")


class _Concentration(_Flat):
    """Whether one feature wins the argmax almost everywhere (which lifts recall and F1 without separating senses)."""

    distinct_top_features: int = Field(title="Distinct top features", description="features that are the top "
                                       "feature of at least one scored context")
    top_feature: int | None = Field(title="Most common top feature", description="the feature that is the top "
                                    "feature of the most contexts (ties: lowest id); null without pairs")
    top_feature_share: float | None = Field(title="Share of the most common top feature",
                                            description="share of the 2 x pairs contexts whose top feature is the "
                                                        "most common one")
    effective_top_features: float | None = Field(title="Effective number of top features", description="exp of the "
                                                 "entropy (natural log) of the top-feature distribution over contexts;"
                                                 " no interval: resampling pairs biases it low")
    same_predictions: int = Field(title="Same predictions", description="pairs predicted same sense (equal top "
                                  "features)")
    same_predictions_top_feature: int = Field(title="Same predictions by the most common feature",
                                              description="of those, pairs whose shared top feature is the most "
                                                          "common one")
    same_by_top_share: float | None = Field(title="Share of same predictions by the most common feature",
                                            description="same_predictions_top_feature / same_predictions; null when "
                                                        "nothing is predicted same")
    dominated: bool = Field(title="Dominated by one feature", description=f"top_feature_share exceeds "
                            f"{DOMINANCE_THRESHOLD:g} (pseval.ps_eval.concentration.DOMINANCE_THRESHOLD): one "
                            "feature wins that share of all contexts, so recall and F1 say more about it than about "
                            "the senses")


# No interval for effective_top_features: the pair bootstrap biases it low (pseval.ps_eval.intervals).
if TYPE_CHECKING:
    ConcentrationMetrics = _Concentration
else:
    ConcentrationMetrics = _with_bounds("ConcentrationMetrics", _Concentration, {
        "top_feature_share": "Share of the most common top feature",
        "same_by_top_share": "Share of same predictions by the most common feature"}, _Concentration.__doc__ or "")


class RobustPSEvalMetrics(_Flat):
    """The dense-feature-robust variant: argmax over the latents non-zero on at most a fraction exclude_dense of the
    scored contexts; the paper's metric (ps_eval) is computed as always, next to it."""

    exclude_dense: float = Field(title="Density cut", description="latents non-zero on more than this fraction of "
                                 "the reference contexts are left out")
    reference_contexts: int = Field(title="Reference contexts", description="contexts the densities were measured "
                                    "on: both contexts of every scored pair, at the readout")
    excluded_latents: int = Field(title="Latents left out", description="latents above the density cut")
    all_zero_codes: int = Field(title="All-zero remaining codes", description="contexts whose code is all exactly 0 "
                                "on the remaining latents (top feature: the lowest remaining index)")
    accuracy: float | None = Field(None, title="Accuracy", description="(TP + TN) / scored pairs; null when every "
                                   "latent is left out")
    precision: float | None = Field(None, title="Precision", description="TP / (TP + FP)")
    recall: float | None = Field(None, title="Recall", description="TP / (TP + FN)")
    specificity: float | None = Field(None, title="Specificity", description="TN / (TN + FP)")
    f1: float | None = Field(None, title="F1", description="2TP / (2TP + FP + FN)")
    tp: int | None = Field(None, title="True positives", description="same sense, same robust top feature")
    fp: int | None = Field(None, title="False positives", description="different sense, same robust top feature")
    tn: int | None = Field(None, title="True negatives", description="different sense, different robust top "
                           "features")
    fn: int | None = Field(None, title="False negatives", description="same sense, different robust top features")
    mcc: float | None = Field(None, title="Matthews correlation", description="of the robust confusion; 0 is chance")
    balanced_accuracy: float | None = Field(None, title="Balanced accuracy", description="(recall + specificity) / 2"
                                            " of the robust confusion")


class CountMetrics(_Flat):
    """What happened to the pairs: read, valid, dropped by reason, scored per class (before and after balancing)."""

    pairs_read: int = Field(title="Pairs read", description="pairs in the selection handed to PS-Eval")
    pairs_valid: int = Field(title="Valid pairs", description="pairs whose target could be read in both contexts")
    valid_same: int = Field(title="Valid same-sense pairs", description="valid pairs labelled same sense")
    valid_different: int = Field(title="Valid different-sense pairs", description="valid pairs labelled "
                                 "different sense")
    pairs_scored: int = Field(title="Pairs scored", description="valid pairs kept by class balancing")
    scored_same: int = Field(title="Scored same-sense pairs", description="scored pairs labelled same sense")
    scored_different: int = Field(title="Scored different-sense pairs", description="scored pairs labelled "
                                  "different sense")
    contexts_truncated: int = Field(title="Contexts truncated", description="prompts longer than the model "
                                    "takes, cut to a window around the target")
    all_zero_codes: int = Field(title="All-zero codes", description="contexts whose SAE code has every entry "
                                "exactly 0 (their top feature is index 0, as in the reference); the argmax is over "
                                "signed values, so a code with negative entries is not counted")
    dropped_total: int = Field(title="Pairs dropped", description="pairs_read - pairs_valid")
    dropped_target_not_in_context: int = Field(0, title="Dropped: target not found",
                                               description="no span for the target word in a context")
    dropped_target_not_tokenized: int = Field(0, title="Dropped: target not tokenised",
                                              description="the target's span covers no token")
    dropped_multi_token: int = Field(0, title="Dropped: multi-token target",
                                     description="the target is several tokens and multi_token is drop")
    dropped_token_mismatch: int = Field(0, title="Dropped: token mismatch",
                                        description="template readout: the target's tokens differ between the "
                                                    "two prompts")
    dropped_too_long: int = Field(0, title="Dropped: too long", description="the prompt exceeds the model's "
                                  "length and too_long is skip (or head, and the target lies past the head)")
    dropped_reference_no_template_token: int = Field(0, title="Dropped (reference): no template token",
                                                     description="protocol reference: ' ' + target is not one of the "
                                                                 "prompt's token strings")
    dropped_reference_single_occurrence: int = Field(0, title="Dropped (reference): single occurrence",
                                                     description="protocol reference: the first token containing the "
                                                                 "target occurs only once in the prompt")


class DataNotes(_Flat):
    """What pseval's text rules did to the dataset when it was loaded (all pairs, before selection)."""

    bom_stripped: int = Field(title="BOMs stripped", description="files that began with a UTF-8 byte-order mark")
    nfc_normalised: int = Field(title="NFC-normalised pairs", description="pairs whose text changed under "
                                "Unicode NFC normalisation")
    zero_width_removed: int = Field(title="Zero-width characters removed", description="pairs from which invisible "
                                    "format characters (zero-width, soft hyphen, direction marks) were removed")
    fullwidth_folded: int = Field(title="Fullwidth folded", description="pairs whose fullwidth ASCII forms were "
                                  "folded to ASCII")
    target_repeated: int = Field(title="Target repeated", description="contexts where the target occurs more than "
                                 "once and no span was given: the first occurrence is read")
    span_not_target: int = Field(title="Span not the target", description="WiC pairs / CoarseWSD-20 sentences whose "
                                 "token index points at a token that does not look like the target word (a "
                                 "particle, a contraction): a note, never a drop; the index is read as given")

TRIVIAL_TITLES = {"always_same": 'always "same"', "always_different": 'always "different"',
                  "coin": "prevalence-matched coin (expected)"}
CHANCE_METRIC_TITLES = {"accuracy": "accuracy", "precision": "precision", "recall": "recall",
                        "specificity": "specificity", "f1": "F1", "mcc": "Matthews correlation",
                        "balanced_accuracy": "balanced accuracy"}


class _Chance(_Flat):
    """Chance on the scored pairs: three predictors that ignore the pair, exact (see pseval.metrics.chance)."""

    same_pairs: int = Field(title="Same-sense pairs", description="scored pairs with the same sense")
    different_pairs: int = Field(title="Different-sense pairs", description="scored pairs with different senses")
    prevalence: float | None = Field(title="Prevalence", description="share of same-sense pairs: the coin's "
                                     "probability of predicting same")


if TYPE_CHECKING:  # create_model's fields are invisible to a type checker: it sees the base class
    ChanceMetrics = _Chance
else:
    ChanceMetrics = create_model(
        "ChanceMetrics", __base__=_Chance, __doc__=_Chance.__doc__, **{
            f"{p}_{m}": (float | None, Field(
                None, title=f"{pt}, {mt}", description=f"{mt} of the predictor {pt} on the scored pairs"
                + (" (of its expected confusion)" if p == "coin" else "") + "; null when undefined"))
            for p, pt in TRIVIAL_TITLES.items() for m, mt in CHANCE_METRIC_TITLES.items()})

GAIN_TITLES = {"f1": "F1", "specificity": "specificity", "mcc": "Matthews correlation", "auc_cosine": "AUC cosine"}


class _Controls(_Flat):
    """The SAE's seeded random controls (pseval.ps_eval.random_control): how they were drawn and what they scored."""

    controls: int = Field(title="Controls", description="number of control seeds (eval_config controls)")
    kind: str = Field(title="Control kind", description="random_weights (a random dictionary of the SAE's "
                      "architecture and shape) or random_rotation (the identity's: a Haar-random rotation)")
    architecture: str = Field(title="Control architecture", description="the controls' architecture")
    architecture_assumed: bool = Field(title="Architecture assumed", description="true when the SAE's architecture "
                                       "is unknown to pseval (an object with only encode): TopK with k = its mean "
                                       "L0 rounded")
    k: int | None = Field(None, title="Control k", description="k of a TopK control; null otherwise")
    sae_l0: float = Field(title="SAE mean L0", description="the SAE's mean non-zero latents per scored context")
    control_l0: float = Field(title="Control mean L0", description="the controls' mean L0 on the scored contexts, "
                              "averaged over seeds (calibrated to sae_l0)")


if TYPE_CHECKING:  # create_model's fields are invisible to a type checker: it sees the base class
    ControlMetrics = _Controls
else:
    ControlMetrics = create_model(
        "ControlMetrics", __base__=_Controls, __doc__=_Controls.__doc__, **{
            f"{s}_{agg}": (float | None, Field(
                None, title=f"Controls' {t}, {agg}", description=f"{agg} over the control seeds of their {t}; null "
                "when undefined"))
            for s, t in GAIN_TITLES.items() for agg in ("mean", "min", "max")})


class _Gain(_Flat):
    """The SAE minus the mean of its random controls on the same pairs, with a 95% interval that covers pair
    resampling and the controls' seed-to-seed spread (pseval.ps_eval.controls), and a verdict."""


if TYPE_CHECKING:  # create_model's fields are invisible to a type checker: it sees the base class
    GainMetrics = _Gain
else:
    GainMetrics = create_model(
        "GainMetrics", __base__=_Gain, __doc__=_Gain.__doc__, **{
            name: spec for s, t in GAIN_TITLES.items() for name, spec in (
                (s, (float | None, Field(None, title=f"Gain in {t}", description=f"the SAE's {t} minus the mean of its "
                                         "controls'; null when undefined"))),
                (f"{s}_low", (float | None, Field(None, title=f"Gain in {t}, 95% CI lower end", description="lower "
                                                  "end of the 95% interval over pair resamples and control seeds"))),
                (f"{s}_high", (float | None, Field(None, title=f"Gain in {t}, 95% CI upper end", description="upper "
                                                   "end of the 95% interval over pair resamples and control seeds"))),
                (f"{s}_verdict", (str, Field(
                    "undefined", title=f"Verdict on {t}", description="better (interval above 0), worse (below 0), "
                    "not distinguishable (covers 0) or undefined"))))})


class PSEvalMetricCategories(BaseModel):
    """Every metric of one evaluation, by category; optional categories are null when not measured."""

    ps_eval: PSEvalMetrics = Field(title="PS-Eval", description="argmax PS-Eval confusion and metrics")
    ps_eval_intervals: ConfusionIntervals = Field(title="PS-Eval intervals",
                                                  description="95% pair-bootstrap intervals of ps_eval")
    threshold_free: ThresholdFreeMetrics = Field(title="Threshold-free PS-Eval",
                                                 description="ROC-AUCs of per-pair code similarities")
    ps_eval_at_k: PSEvalMetrics = Field(title="PS-Eval@k", description="predicted same sense when the two "
                                        "contexts' top-k active sets share at least one latent")
    ps_eval_at_k_intervals: ConfusionIntervals = Field(title="PS-Eval@k intervals",
                                                       description="95% pair-bootstrap intervals of ps_eval_at_k")
    ceiling: CeilingMetrics = Field(title="Representation ceiling",
                                    description="the AUCs on the raw activations and the SAE's share of them")
    concentration: ConcentrationMetrics = Field(title="Top-feature concentration",
                                                description="how much one feature drives the argmax predictions")
    ps_eval_robust: RobustPSEvalMetrics | None = Field(None, title="PS-Eval, dense latents left out",
                                                       description="the robust variant; null unless exclude_dense "
                                                                   "is set")
    ps_eval_robust_intervals: ConfusionIntervals | None = Field(
        None, title="Robust PS-Eval intervals", description="95% pair-bootstrap intervals of ps_eval_robust; null "
        "when it is null or undefined")
    feature_cosine: FeatureCosineMetrics | None = Field(None, title="Top-feature weight cosines",
                                                        description="pseval's: the reference's encoder/decoder "
                                                                    "cosine statistics over the scored (balanced) "
                                                                    "pairs (the reference's own sets: "
                                                                    "eval_result_unstructured.feature_cosine_reference)"
                                                                    "; null for an SAE with neither W_enc nor W_dec (a "
                                                                    "module with only `encode`)")
    feature_cosine_intervals: FeatureCosineIntervals | None = Field(
        None, title="Top-feature weight cosine intervals", description="95% pair-bootstrap intervals of "
        "feature_cosine; null when it is null")
    chance: ChanceMetrics | None = Field(None, title="Chance",
                                         description="trivial predictors (always same, always different, a "
                                         "prevalence-matched coin) on the scored pairs; null in older records")
    controls: ControlMetrics | None = Field(None, title="Random controls",
                                            description="the SAE's seeded random controls; null when controls = 0")
    gain_over_control: GainMetrics | None = Field(None, title="Gain over random control",
                                                  description="the SAE minus its random controls, with intervals "
                                                  "and verdicts; null when controls = 0")
    counts: CountMetrics = Field(title="Pair counts", description="pairs read, valid, dropped by reason, scored")
    data: DataNotes = Field(title="Data notes", description="what the text rules changed or dropped at load")
    reconstruction: ReconstructionMetrics | None = Field(None, title="Reconstruction",
                                                         description="MSE, FVU, L0, dead fraction on held-out or "
                                                                     "corpus tokens; null when not measured")
    loss_recovered: LossRecovered | None = Field(None, title="Loss recovered",
                                                 description="downstream loss with the SAE spliced in; null when not "
                                                             "measured")
    training: TrainingMetrics | None = Field(None, title="Training", description="training summary of a "
                                             "pseval-trained SAE")


Outcome = Literal["TP", "FP", "TN", "FN"]


class PairOutcome(BaseModel):
    """One scored pair: its id, label, the two contexts' top features and the outcome."""

    model_config = ConfigDict(extra="forbid")

    pair_id: str = Field(title="Pair id", description="the pair's source id (file:line or dataset:row)")
    target: str = Field(title="Target word", description="the word shared by both contexts")
    pos: str = Field(title="Part of speech", description="n, v, a, r or empty when unknown")
    same_sense: bool = Field(title="Same sense", description="the gold label")
    feature_1: int = Field(title="Top feature, context 1", description="argmax latent at the readout of context 1",
                           ge=0)
    feature_2: int = Field(title="Top feature, context 2", description="argmax latent at the readout of context 2",
                           ge=0)
    outcome: Outcome = Field(title="Outcome", description="TP, FP, TN or FN")
    enc_cos: float | None = Field(None, title="Encoder cosine", description="cosine of the two top features' W_enc "
                                  "columns; null without W_enc")
    dec_cos: float | None = Field(None, title="Decoder cosine", description="cosine of the two top features' W_dec "
                                  "rows; null without W_dec")
    code_cosine: float | None = Field(None, title="Code cosine", description="cosine of the two contexts' SAE codes "
                                      "(0 when either is all zero), 6 decimals")
    code_jaccard: float | None = Field(None, title="Top-k Jaccard", description="Jaccard index of the two codes' top-k"
                                       " active sets (J of two empty sets = 0), 6 decimals; > 0 is PS-Eval@k's same")
    raw_cosine: float | None = Field(None, title="Raw cosine", description="cosine of the two contexts' raw "
                                     "activations (the ceiling), 6 decimals")
    raw_jaccard: float | None = Field(None, title="Raw top-k Jaccard", description="Jaccard index of the raw "
                                      "activations' top-k coordinate sets, 6 decimals")
    feature_1_robust: int | None = Field(None, title="Robust top feature, context 1", description="argmax over the "
                                         "latents left after exclude_dense; null without it", ge=0)
    feature_2_robust: int | None = Field(None, title="Robust top feature, context 2", description="the same for "
                                         "context 2", ge=0)


class PSEvalConfigRecord(SettingsFields):
    """Everything that decides which pairs were scored and how: every PS-Eval setting as it was (the fields of
    `pseval.ps_eval.settings`, declared there once; `too_long` as the protocol made it), and the cell's model, hook and
    pairs."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(title="Model", description="model name, Hub id or local path as given")
    model_convention: str = Field("hf", title="Model activation convention",
                                  description="what the model's hooks give: hf (Hugging Face modules, or a "
                                              "HookedTransformer loaded without processing) or tl_centered (a "
                                              "HookedTransformer whose writing weights TransformerLens centred)")
    hook_name: str = Field(title="Hook", description="hook point the activations were read at")
    dataset: str = Field(title="Dataset", description="the pair-set spec")
    dataset_hash: str = Field(title="Dataset hash", description="SHA-256 of every pair of the dataset, before "
                              "selection")
    pairs_available: int = Field(title="Pairs available", description="pairs in the dataset before selection")
    pairs_selected: int = Field(title="Pairs selected", description="pairs in the subset handed to PS-Eval")
    selection_hash: str = Field(title="Selection hash", description="SHA-256 of the selected pairs' ids in order")


class TopFeatureRecord(BaseModel):
    """One of the most common top features over the scored contexts."""

    feature: int = Field(title="Feature", description="latent index")
    contexts: int = Field(title="Contexts", description="contexts (two per pair) whose top feature it is")
    share: float = Field(title="Share", description="contexts / all scored contexts")
    same_predictions: int = Field(title="Same predictions", description="pairs predicted same sense with it as "
                                  "both contexts' top feature")


class DataRows(BaseModel):
    """Rows of the dataset's files: read, kept, and every drop by reason (official layouts drop none)."""

    unit: str = Field(title="Row unit", description="lines (WiC), sentences (CoarseWSD-20), rows (tables) or pairs "
                      "built (wordnet)")
    read: int = Field(title="Rows read", description="rows in the files read (the selected words' for CoarseWSD-20)")
    kept: int = Field(title="Rows kept", description="rows that became (part of) a pair")
    dropped: dict[str, int] = Field(default_factory=dict, title="Rows dropped", description="read - kept, by reason")


class ControlRecord(BaseModel):
    """One random control of the SAE."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(title="Index", description="0 .. controls - 1")
    seed: int = Field(title="Seed", description="torch seed of its weights: SHA-256 of the SAE fingerprint, hook "
                      "and index (pseval.ps_eval.random_control.control_seed)")
    cut: float | None = Field(None, title="Calibration cut", description="pre-activation value above which a "
                              "latent fires (bias/threshold set from it); null for TopK and rotations")
    l0: float = Field(title="Mean L0", description="its mean non-zero latents per scored context")
    metrics: dict[str, float | None] = Field(title="Metrics", description="its PS-Eval metrics on the scored pairs "
                                             "(f1, specificity, mcc, auc_cosine, accuracy, ...; null undefined)")
    same_top_feature: str | None = Field(None, title="Same top feature", description="per scored pair in the "
                                         "order of eval_result_details, '1' when its two contexts share the "
                                         "control's top feature, else '0'; what the claims' gain over controls "
                                         "resamples (null in records written before it was kept)")


class Unstructured(BaseModel):
    """What fits no flat category."""

    dropped_examples: dict[str, list[str]] = Field(default_factory=dict, title="Dropped examples",
                                                   description="up to five pair ids per drop reason")
    top_features: list[TopFeatureRecord] = Field(default_factory=list, title="Most common top features",
                                                 description="the five features that are the top feature of the "
                                                             "most contexts, most common first")
    data_rows: DataRows | None = Field(None, title="Dataset rows", description="rows read from the dataset's files, "
                                       "kept, and dropped by reason; null for pairs handed in as objects")
    feature_cosine_reference: FeatureCosineMetrics | None = Field(
        None, title="Top-feature weight cosines, the reference's sets", description="protocol reference only: the "
        "W_enc / W_dec cosines averaged as the reference averages them, over every valid pair of each label before "
        "balancing (wic_eval.py's first loop); eval_result_metrics.feature_cosine is pseval's, over the scored "
        "(balanced) pairs")
    controls: list[ControlRecord] = Field(default_factory=list, title="Random controls",
                                          description="each control: index, seed, calibration and metrics")
    control_method: str | None = Field(None, title="How controls are drawn", description="the rule that drew them "
                                       "(see pseval.ps_eval.random_control); null without controls")


class PSEvalRecord(BaseModel):
    """One PS-Eval result, in SAEBench's eval-output shape with pseval's provenance beside it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[3] = Field(SCHEMA_VERSION, title="Schema version",
                                       description="version of this record's layout")
    eval_type_id: Literal["ps_eval"] = Field(EVAL_TYPE_ID, title="Eval type", description="always ps_eval")
    eval_id: str = Field(title="Eval id", description="a UUID of this evaluation run")
    datetime_epoch_millis: int = Field(title="Time (epoch ms)", description="when the record was made", ge=0)
    cell_id: str = Field(title="Cell id", description="key of the cell: a hash of every setting in eval_config "
                         "but the dataset spec string, and of the SAE fingerprint")
    eval_config: PSEvalConfigRecord = Field(title="Settings", description="everything that decides the numbers")
    eval_result_metrics: PSEvalMetricCategories = Field(title="Metrics", description="the numbers, by category")
    eval_result_details: list[PairOutcome] = Field(title="Per-pair outcomes", description="every scored pair")
    eval_result_unstructured: Unstructured = Field(default_factory=Unstructured, title="Unstructured",
                                                   description="what fits no flat category")
    sae_name: str = Field(title="SAE name", description="display name (folder name, or given)")
    sae_source: str = Field(title="SAE source", description="spec, path or object type the SAE came from")
    sae_fingerprint: str = Field(title="SAE fingerprint", description="its training key (pseval-trained), its "
                                 "files' SHA-256, or its tensors' SHA-256 (objects)")
    sae_cfg_dict: dict[str, Any] | None = Field(title="SAE config", description="SAELens-style cfg of the SAE")
    sae_lens_id: str | None = Field(None, title="SAELens SAE id", description="the SAE id in a SAELens release; "
                                    "null when the SAE is not from one")
    sae_lens_release_id: str | None = Field(None, title="SAELens release", description="null when the SAE is not "
                                            "from a SAELens release")
    sae_lens_version: str | None = Field(None, title="SAELens version", description="the SAELens version recorded "
                                         "by the SAE's files; null when unknown")
    sae_bench_commit_hash: str = Field(NOT_SAE_BENCH, title="SAEBench commit",
                                       description="SAEBench's required field; pseval says it is not SAEBench")
    pseval_version: str = Field(title="pseval version", description="package version")
    git_commit: str | None = Field(title="pseval commit", description="git commit of the pseval source, if known")
    device: str | None = Field(None, title="Device", description="where the model ran (cpu, cuda:0, ...), as `--device "
                               "auto` resolved it; null in records made before it was kept")
    torch_version: str = Field(title="torch version", description="")
    transformers_version: str = Field(title="transformers version", description="")
    python_version: str = Field(title="Python version", description="")

    def to_json(self) -> str:
        """JSON text: indented, with one line per pair so large pair sets stay compact and diffable."""
        data = json_safe(self.model_dump(mode="json"))  # NaN/inf as null: strict JSON parsers reject NaN literals
        details = data.pop("eval_result_details")
        head = json.dumps(data, indent=2, allow_nan=False)
        rows = ",\n".join("    " + json.dumps(d, separators=(",", ":"), allow_nan=False) for d in details)
        body = f'"eval_result_details": [\n{rows}\n  ]' if rows else '"eval_result_details": []'
        return head[:-2] + ",\n  " + body + "\n}"


def read_record(data: Any, source: str) -> PSEvalRecord:
    """Parse a stored record; records of an older layout are refused with what to do."""
    if not isinstance(data, dict):
        raise DataFormatError("expected a PS-Eval result object", source)
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise DataFormatError(f"written in PS-Eval record layout {version} by a newer pseval; this pseval reads "
                              f"layout {SCHEMA_VERSION}: upgrade pseval (pip install -U pseval) to read it", source)
    if version != SCHEMA_VERSION:
        raise DataFormatError(f"written in PS-Eval record layout {version or 1}; this pseval reads layout "
                              f"{SCHEMA_VERSION}. Re-run the evaluation (for a sweep: `pseval sweep CONFIG --overwrite`"
                              " or a new --out folder)", source)
    try:
        return PSEvalRecord.model_validate(data)
    except ValueError as exc:
        raise DataFormatError(f"not a valid PS-Eval record: {exc}", source) from exc
