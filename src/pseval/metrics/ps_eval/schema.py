"""The one typed PS-Eval result record: SAEBench's eval-output shape, every field titled and described.

One record per (SAE, hook, pair set, readout settings). No block repeats another: the settings live in
`eval_config`, the numbers in `eval_result_metrics` (flat categories, as SAEBench requires), the per-pair outcomes in
`eval_result_details`, and what fits none of those (examples of dropped pairs) in `eval_result_unstructured`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pseval.errors import DataFormatError
from pseval.metrics.loss_recovered import LossRecovered
from pseval.metrics.reconstruction import ReconstructionMetrics

SCHEMA_VERSION = 2
EVAL_TYPE_ID = "ps_eval"
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


class FeatureCosineMetrics(_Flat):
    """The reference's weight-cosine statistics of the two contexts' top features, averaged per label."""

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
    all_zero_codes: int = Field(title="All-zero codes", description="contexts whose SAE code was all zero (their "
                                "top feature is index 0, as in the reference)")
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
                                  "length and too_long is skip")
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
    span_not_target: int = Field(title="Span not the target", description="WiC / CoarseWSD-20 rows whose token index "
                                 "misses the target word: dropped at load")


class TrainingMetrics(_Flat):
    """How a pseval-trained SAE was trained (absent for SAEs from files pseval did not train)."""

    steps: int = Field(title="Steps", description="optimiser steps")
    tokens: int = Field(title="Training tokens", description="activations the SAE was trained on")
    dead_fraction: float | None = Field(title="Dead fraction at the end", description="latents that did not fire "
                                        "in the last dead-window tokens of training")
    converged: bool | None = Field(None, title="Converged", description="false when the held-out FVU still fell by "
                                   "more than 3% (relative) over the last fifth of the steps (pseval.training.trainer"
                                   ".CONVERGENCE_MAX_DROP); null when not measured (no held-out probe, fewer than 5 "
                                   "steps, or an SAE trained before pseval recorded it)")
    fvu_probe_tokens: int | None = Field(None, title="FVU probe tokens", description="held-out activations (the "
                                         "first of the held-out set) whose FVU was probed during training")
    fvu_first: float | None = Field(None, title="Held-out FVU, first probe", description="FVU on the probe after "
                                    "the first tenth of the steps")
    fvu_last_fifth_start: float | None = Field(None, title="Held-out FVU at four fifths",
                                               description="FVU on the probe when the last fifth of the steps began")
    fvu_final: float | None = Field(None, title="Held-out FVU, final", description="FVU on the probe after the last "
                                    "step")
    fvu_last_fifth_drop: float | None = Field(None, title="FVU drop over the last fifth",
                                              description="(fvu_last_fifth_start - fvu_final) / "
                                                          "fvu_last_fifth_start")


class PSEvalMetricCategories(BaseModel):
    """Every metric of one evaluation, by category; optional categories are null when not measured."""

    ps_eval: PSEvalMetrics = Field(title="PS-Eval", description="argmax PS-Eval confusion and metrics")
    feature_cosine: FeatureCosineMetrics = Field(title="Top-feature weight cosines",
                                                 description="the reference's encoder/decoder cosine statistics")
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
    feature_1: int = Field(title="Top feature, context 1", description="argmax latent at the readout of context 1")
    feature_2: int = Field(title="Top feature, context 2", description="argmax latent at the readout of context 2")
    outcome: Outcome = Field(title="Outcome", description="TP, FP, TN or FN")
    enc_cos: float | None = Field(None, title="Encoder cosine", description="cosine of the two top features' W_enc "
                                  "columns; null without W_enc")
    dec_cos: float | None = Field(None, title="Decoder cosine", description="cosine of the two top features' W_dec "
                                  "rows; null without W_dec")


class PSEvalConfigRecord(BaseModel):
    """Everything that decides which pairs were scored and how: the run's settings as written in the record."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(title="Model", description="model name, Hub id or local path as given")
    hook_name: str = Field(title="Hook", description="hook point the activations were read at")
    dataset: str = Field(title="Dataset", description="the pair-set spec")
    dataset_hash: str = Field(title="Dataset hash", description="SHA-256 of every pair of the dataset, before "
                              "selection")
    max_pairs: int | None = Field(title="Max pairs", description="size of the seeded random subset; null for all")
    seed: int = Field(title="Seed", description="seed of the pair subset and of exact balancing")
    pairs_available: int = Field(title="Pairs available", description="pairs in the dataset before selection")
    pairs_selected: int = Field(title="Pairs selected", description="pairs in the subset handed to PS-Eval")
    selection_hash: str = Field(title="Selection hash", description="SHA-256 of the selected pairs' ids in order")
    protocol: str = Field(title="Protocol", description="pseval (offset-located readout) or reference (every choice "
                          "of the reference code, its string token matching included)")
    readout: str = Field(title="Readout position", description="template (the paper's) or context")
    template: str = Field(title="Prompt template", description="the template readout's prompt")
    multi_token: str = Field(title="Multi-token targets", description="first, last, mean or drop")
    too_long: str = Field(title="Long prompts", description="truncate around the target or skip")
    balance: str = Field(title="Class balancing", description="rule that cuts the valid pairs to balanced classes "
                         "(reference: the reference code's rule)")


class Unstructured(BaseModel):
    """What fits no flat category."""

    dropped_examples: dict[str, list[str]] = Field(default_factory=dict, title="Dropped examples",
                                                   description="up to five pair ids per drop reason")


class PSEvalRecord(BaseModel):
    """One PS-Eval result, in SAEBench's eval-output shape with pseval's provenance beside it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[2] = Field(SCHEMA_VERSION, title="Schema version",
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
    torch_version: str = Field(title="torch version", description="")
    transformers_version: str = Field(title="transformers version", description="")
    python_version: str = Field(title="Python version", description="")

    def to_json(self) -> str:
        """JSON text: indented, with one line per pair so large pair sets stay compact and diffable."""
        data = self.model_dump(mode="json")
        details = data.pop("eval_result_details")
        head = json.dumps(data, indent=2)
        rows = ",\n".join("    " + json.dumps(d, separators=(",", ":")) for d in details)
        body = f'"eval_result_details": [\n{rows}\n  ]' if rows else '"eval_result_details": []'
        return head[:-2] + ",\n  " + body + "\n}"


def read_record(data: Any, source: str) -> PSEvalRecord:
    """Parse a stored record; records of an older layout are refused with what to do."""
    if not isinstance(data, dict):
        raise DataFormatError("expected a PS-Eval result object", source)
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DataFormatError(f"written in PS-Eval record layout {version or 1}; this pseval reads layout "
                              f"{SCHEMA_VERSION}. Re-run the evaluation (for a sweep: `pseval sweep CONFIG --overwrite`"
                              " or a new --out folder)", source)
    try:
        return PSEvalRecord.model_validate(data)
    except ValueError as exc:
        raise DataFormatError(f"not a valid PS-Eval record: {exc}", source) from exc
