"""Loss recovered and KL with an SAE spliced into the model, against zero and mean ablation.

Three parts, so that the SAEs at one hook share all the work that does not depend on the SAE:
1. `prepare_batches`: corpus texts tokenised and batched by the activation stream's `text_batches` (the one
   tokeniser of corpus text), with the objective's targets;
2. `loss_baseline`, once per hook, corpus, token budget and seed: the clean run (which also averages the hook's
   activation, for mean ablation) and the zero- and mean-ablation runs;
3. `score_loss`, once per SAE: one forward pass per batch with the SAE's reconstruction spliced in.
`loss_recovered` is the three in a row, for a single SAE.

Memory: KL(P_clean || P_sae) needs the clean distribution at every target token. The baseline keeps the clean
log-probs of the target tokens only (not of padding or other positions), in float32 on the model's device, batch by
batch while they fit in `keep_bytes`: targets x vocabulary x 4 bytes, e.g. 201 kB per target for GPT-2's 50,257
tokens, so the default 1 GiB holds about 5,300 targets. A batch beyond that has its clean log-probs recomputed when
an SAE is scored (a second forward pass for that batch; the same numbers). Sentence-embedding baselines keep the
clean embeddings ([texts, d_model] float64) of every batch.

Token budget: `max_tokens` counts content tokens (not special: the tokens the replacement is spliced at), as the
activation stream counts them; texts are taken batch by batch in the stream's order (sorted by length within each
window of batches) until the budget is reached, the last text whole. Texts of fewer than 3 tokens are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, reconstruct
from pseval.models.capture import hooked, model_inputs
from pseval.models.extract import pad_batch, pad_token_id
from pseval.models.loading import LoadedModel
from pseval.models.replay import output_tensors, recording, replay_block, replaying
from pseval.models.splice import Replace, spliced
from pseval.models.tokenize import text_batches
from pseval.saes.base import SAE

Objective = Literal["next_token", "masked_token", "sentence_embedding"]
KEEP_CLEAN_BYTES = 2**30  # clean log-probs kept per baseline; beyond it they are recomputed per SAE
MIN_TEXT_TOKENS = 3


class LossRecovered(BaseModel):
    """(L_ablated - L_sae) / (L_ablated - L_clean) for zero and mean ablation, raw losses, KL(P_clean || P_sae)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    available: bool = Field(title="Available", description="whether the loss could be measured on this model")
    reason: str | None = Field(None, title="Reason", description="why not, or why another objective was used")
    objective: str = Field(title="Objective", description="next_token, masked_token, or sentence_embedding "
                           "(encoders without an LM head: 1 - cos of the mean-pooled last hidden state)")
    tokens: int = Field(title="Tokens", description="target tokens (next/masked token); spliced content tokens "
                        "(sentence_embedding)")
    clean_loss: float | None = Field(math.nan, title="Clean loss", description="the model unchanged")
    sae_loss: float | None = Field(math.nan, title="SAE loss", description="the hook replaced by the SAE's "
                                   "reconstruction on content tokens")
    zero_ablation_loss: float | None = Field(math.nan, title="Zero-ablation loss", description="the hook set to 0")
    mean_ablation_loss: float | None = Field(math.nan, title="Mean-ablation loss",
                                             description="the hook set to its mean over content tokens")
    loss_recovered_zero: float | None = Field(math.nan, title="Loss recovered (zero ablation)",
                                              description="(L_zero - L_sae) / (L_zero - L_clean)")
    loss_recovered_mean: float | None = Field(math.nan, title="Loss recovered (mean ablation)",
                                              description="(L_mean - L_sae) / (L_mean - L_clean)")
    kl_sae: float | None = Field(math.nan, title="KL with the SAE", description="KL(P_clean || P_sae) per target "
                                 "token")
    kl_zero_ablation: float | None = Field(math.nan, title="KL with zero ablation",
                                           description="KL(P_clean || P_zero) per target token")

    def to_dict(self) -> dict:
        """Plain dict."""
        return self.model_dump()


def lm_head_model(lm: LoadedModel) -> tuple[torch.nn.Module | None, str | None]:
    """A model that outputs vocabulary logits with the same blocks, or None and the reason."""
    if lm.is_causal:
        if hasattr(lm.model, "get_output_embeddings") and lm.model.get_output_embeddings() is not None:
            return lm.model, None
        return None, "the causal model was loaded without its LM head"
    if hasattr(lm.model, "cls") or "MaskedLM" in type(lm.model).__name__:
        return lm.model, None
    from transformers import AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report of a missing head is expected here; we explain it ourselves
    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(lm.source, output_loading_info=True, local_files_only=True)
    except (OSError, ValueError) as exc:
        return None, f"no masked-LM head can be loaded for {lm.name}: {exc}"
    finally:
        hf_logging.set_verbosity(level)
    missing_head = [k for k in info.get("missing_keys", []) if "cls." in k or "lm_head" in k or "predictions" in k]
    if missing_head:
        return None, (f"{lm.name} ships no masked-LM head weights (missing {missing_head[0]}, ...): a randomly "
                      "initialised head would give meaningless losses")
    return mlm.to(lm.device).eval(), None




@dataclass
class LossBatch:
    """One padded batch: its inputs, where the replacement is spliced, and what the loss is measured on."""

    input_ids: torch.Tensor  # [B, T] (masked-token objective: with the chosen tokens masked)
    attn: torch.Tensor  # [B, T]
    splice: torch.Tensor  # [B, T] bool: content tokens, where the hook's activation is replaced
    targets: torch.Tensor  # [B, T'] bool over the logits' positions (T' = T - 1 for next token); all False else
    labels: torch.Tensor  # [n_targets] the token id to predict at each target, in `targets` order
    clean: torch.Tensor | None = None  # kept clean log-probs [n_targets, vocab] float32, or embeddings [B, d] float64
    resume: Any = None  # kept clean output of the baseline's replay block: runs start after it


def prepare_batches(lm: LoadedModel, texts: Iterable[str], objective: Objective, max_tokens: int,
                    context_size: int = 128, batch_texts: int = 32, mask_prob: float = 0.15, seed: int = 0
                    ) -> list[LossBatch]:
    """Texts batched by the activation stream's tokeniser until `max_tokens` content tokens, with their targets."""
    dev = lm.device
    pad = pad_token_id(lm)
    gen = torch.Generator().manual_seed(seed)
    out: list[LossBatch] = []
    total = 0
    for ids, special in text_batches(lm, texts, context_size, batch_texts):
        rows = [r for r in range(len(ids)) if len(ids[r]) >= MIN_TEXT_TOKENS]
        counts = [len(special[r]) - sum(special[r]) for r in rows]
        keep = 0
        while keep < len(rows) and total < max_tokens:  # whole texts until the budget is reached
            total += counts[keep]
            keep += 1
        if keep == 0:
            if total >= max_tokens:
                break
            continue
        input_ids, attn = pad_batch([ids[r] for r in rows[:keep]], pad, dev)
        sp, _ = pad_batch([special[r] for r in rows[:keep]], 1, dev)
        content = attn.bool() & ~sp.bool()
        if objective == "next_token":
            targets = attn[:, 1:].bool()
            labels = input_ids[:, 1:][targets]
        elif objective == "masked_token":
            targets = (torch.rand(content.shape, generator=gen) < mask_prob).to(dev) & content
            labels = input_ids[targets]
            input_ids = input_ids.masked_fill(targets, lm.tokenizer.mask_token_id)
        else:
            targets = torch.zeros_like(content)
            labels = input_ids.new_zeros(0)
        out.append(LossBatch(input_ids, attn, content, targets, labels))
    return out


@dataclass
class LossBaseline:
    """What every SAE at one hook is scored against: the prepared batches, clean outputs and ablation losses."""

    hook: str
    objective: Objective
    model: nn.Module  # the model with its LM head (or the encoder, for sentence_embedding)
    is_causal: bool
    batches: list[LossBatch] = field(default_factory=list)
    replay: int | None = None  # the block whose clean output the runs resume from (models.replay), or None
    mean: torch.Tensor | None = None  # the hook's mean activation over content tokens [d] float32
    tokens: int = 0
    reason: str | None = None
    available: bool = True
    clean_loss: float = math.nan
    zero_ablation_loss: float = math.nan
    mean_ablation_loss: float = math.nan
    kl_zero_ablation: float = math.nan

    @property
    def count(self) -> int:
        """What the losses are averaged over: target tokens, or texts for sentence_embedding."""
        if self.objective == "sentence_embedding":
            return sum(b.input_ids.shape[0] for b in self.batches)
        return sum(b.labels.numel() for b in self.batches)


@torch.inference_mode()
def loss_baseline(lm: LoadedModel, hook: str, texts: Iterable[str], max_tokens: int = 20_000,
                  context_size: int = 128, batch_texts: int = 32, mask_prob: float = 0.15, seed: int = 0,
                  keep_bytes: int = KEEP_CLEAN_BYTES, replay: bool = True) -> LossBaseline:
    """Clean, zero- and mean-ablation losses at `hook`: next-token CE (causal LMs), masked-token CE (masked LMs).

    An encoder that ships no masked-LM head (MiniLM) falls back to its own output: the loss is the cosine distance
    1 - cos(e_clean, e_spliced) of the mean-pooled sentence embedding, averaged over texts (clean loss 0, no KL).
    With `replay`, every later run of a batch starts after the hook's block (the blocks before it return their
    clean output, kept within `keep_bytes`), once the first batch showed this gives the clean output unchanged.
    """
    objective: Objective = "next_token" if lm.is_causal else "masked_token"
    head, reason = lm_head_model(lm)
    if head is None and lm.is_causal:
        return LossBaseline(hook, objective, lm.model, True, reason=reason, available=False)
    if head is None:
        objective, reason = "sentence_embedding", f"{reason}; measured on the mean-pooled sentence embedding instead"
    batches = prepare_batches(lm, texts, objective, max_tokens, context_size, batch_texts, mask_prob, seed)
    model = head if head is not None else lm.model
    base = LossBaseline(hook, objective, model, lm.is_causal, batches, replay_block(model, hook) if replay else None,
                        reason=reason)
    base.tokens = (sum(int(b.splice.sum()) for b in batches) if objective == "sentence_embedding"
                   else base.count)
    if base.count == 0:
        base.available, base.reason = False, "no target tokens in the texts"
        return base
    # One clean pass: the outputs every SAE is compared with, the hook's mean, and zero ablation on the same batch.
    state = {"total": torch.zeros((), dtype=torch.float64)}

    def add_to_mean(_name: str, h: torch.Tensor) -> None:
        state["total"] = state["total"] + h[state["mask"]].double().sum(0)

    n_content, kept, checked = 0, 0, False
    clean_sum = zero_sum = kl_zero = 0.0
    for b in batches:
        state["mask"] = b.splice
        with ExitStack() as stack:  # not around the ablated runs
            run = stack.enter_context(hooked(model, [hook], add_to_mean, stop_early=False))
            recorded = stack.enter_context(recording(model, base.replay)) if base.replay is not None else []
            clean = _outputs(base, b, run(**model_inputs(b.input_ids, b.attn, base.is_causal)))
        n_content += int(b.splice.sum())
        if recorded and kept + _nbytes(recorded[0]) <= keep_bytes:
            b.resume, kept = recorded[0], kept + _nbytes(recorded[0])
            if not checked and not _replay_matches(base, b, clean):  # blocks that do more than pass it on
                base.replay, b.resume, kept = None, None, 0
            checked = True
        if objective != "sentence_embedding":
            clean_sum += _loss_sums(base, b, clean, clean)[0]
        z, kl = _loss_sums(base, b, _run(base, b, lambda h: torch.zeros_like(h)), clean)
        zero_sum += z
        kl_zero += kl
        if objective == "sentence_embedding" or kept + clean.nbytes <= keep_bytes:
            b.clean, kept = clean, kept + clean.nbytes
    base.mean = mean = (state["total"] / max(n_content, 1)).float()
    base.clean_loss = 0.0 if objective == "sentence_embedding" else clean_sum / base.count
    base.zero_ablation_loss = zero_sum / base.count
    base.kl_zero_ablation = kl_zero / base.count
    base.mean_ablation_loss = _average(base, lambda h: mean.to(h.dtype).expand_as(h), with_kl=False)[0]
    return base


@torch.inference_mode()
def score_loss(base: LossBaseline, sae: SAE, budget: int = DEFAULT_MEMORY_BUDGET) -> LossRecovered:
    """Loss recovered and KL of one SAE against a hook's baseline: one forward pass per batch with the SAE's
    reconstruction (encoded in chunks of `budget` bytes) spliced in at the content tokens."""
    if not base.available:
        return LossRecovered(available=False, reason=base.reason, objective=base.objective, tokens=0)
    dev = base.batches[0].input_ids.device
    with_sae, kl = _average(base, _sae_replace(sae, dev, budget), with_kl=True)
    return LossRecovered(available=True, reason=base.reason, objective=base.objective, tokens=base.tokens,
                         clean_loss=base.clean_loss, sae_loss=with_sae, zero_ablation_loss=base.zero_ablation_loss,
                         mean_ablation_loss=base.mean_ablation_loss,
                         loss_recovered_zero=_recovered(base.zero_ablation_loss, with_sae, base.clean_loss),
                         loss_recovered_mean=_recovered(base.mean_ablation_loss, with_sae, base.clean_loss),
                         kl_sae=kl, kl_zero_ablation=base.kl_zero_ablation)


def loss_recovered(lm: LoadedModel, sae: SAE, hook: str, texts: Iterable[str], max_tokens: int = 20_000,
                   context_size: int = 128, batch_texts: int = 32, mask_prob: float = 0.15,
                   seed: int = 0, budget: int = DEFAULT_MEMORY_BUDGET) -> LossRecovered:
    """Loss recovered of a single SAE: its hook's baseline, then the SAE scored against it."""
    base = loss_baseline(lm, hook, texts, max_tokens, context_size, batch_texts, mask_prob, seed)
    return score_loss(base, sae, budget)


def _forward(base: LossBaseline, b: LossBatch, replace: Replace | None) -> Any:
    with ExitStack() as stack:
        if b.resume is not None and base.replay is not None:
            stack.enter_context(replaying(base.model, base.replay, b.resume))
        if replace is not None:
            stack.enter_context(spliced(base.model, base.hook, replace, lambda: b.splice))
        return base.model(**model_inputs(b.input_ids, b.attn, base.is_causal))


def _nbytes(output: Any) -> int:
    return sum(t.nbytes for t in output_tensors(output))


def _replay_matches(base: LossBaseline, b: LossBatch, clean: torch.Tensor) -> bool:
    """Whether a run resumed from the recorded block output gives the clean output, leaving the record intact."""
    before = [t.clone() for t in output_tensors(b.resume)]
    again = _run(base, b, None)
    return (torch.allclose(again, clean, rtol=1e-5, atol=1e-6)
            and all(torch.equal(x, y) for x, y in zip(before, output_tensors(b.resume), strict=True)))


def _outputs(base: LossBaseline, b: LossBatch, out: Any) -> torch.Tensor:
    """What the loss compares: log-probs at the target tokens [n, vocab] float32, or the sentence embedding."""
    if base.objective == "sentence_embedding":
        return _mean_pool(out.last_hidden_state, b.attn)
    logits = out.logits[:, :-1] if base.is_causal else out.logits
    return F.log_softmax(logits[b.targets].float(), dim=-1)


def _run(base: LossBaseline, b: LossBatch, replace: Replace | None) -> torch.Tensor:
    return _outputs(base, b, _forward(base, b, replace))


def _loss_sums(base: LossBaseline, b: LossBatch, out: torch.Tensor, clean: torch.Tensor | None
               ) -> tuple[float, float]:
    """The batch's summed loss and summed KL(P_clean || P) (NaN for sentence_embedding, or without `clean`)."""
    if base.objective == "sentence_embedding":
        assert clean is not None  # callers always pass the clean embeddings: the loss is the distance to them
        return float((1 - F.cosine_similarity(out, clean, dim=-1)).sum()), math.nan
    ce = float(-out.gather(1, b.labels[:, None]).double().sum())
    if clean is None:
        return ce, math.nan
    # Each target's KL summed over the vocabulary in float32, the targets in float64: no float32 sum of the batch
    # whose rounding would depend on the order of its rows.
    return ce, float(F.kl_div(out, clean, log_target=True, reduction="none").sum(-1).double().sum())


def _average(base: LossBaseline, replace: Replace, with_kl: bool) -> tuple[float, float]:
    """Mean loss and mean KL over the baseline's batches with `replace` spliced in."""
    loss = kl = 0.0
    for b in base.batches:
        needs_clean = with_kl or base.objective == "sentence_embedding"
        clean = (b.clean if b.clean is not None else _run(base, b, None)) if needs_clean else None
        batch_loss, batch_kl = _loss_sums(base, b, _run(base, b, replace), clean)
        loss += batch_loss
        kl += batch_kl
    return loss / base.count, kl / base.count


def _recovered(ablated: float, with_sae: float, clean: float) -> float:
    """(L_ablated - L_sae) / (L_ablated - L_clean); NaN when ablation costs nothing."""
    return (ablated - with_sae) / (ablated - clean) if ablated != clean else math.nan


def _sae_replace(sae: SAE, dev: torch.device, budget: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The hook activation replaced by the SAE's reconstruction, in the model's activation convention and dtype,
    encoded in chunks of `budget` bytes."""
    sae_dev = sae.to(dev)
    return lambda h: reconstruct(sae_dev, h, budget)


def _mean_pool(hidden: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Sentence embedding as sentence-transformers computes it: mean of the last hidden state over real tokens."""
    m = attn[..., None].to(torch.float64)
    return (hidden.to(torch.float64) * m).sum(1) / m.sum(1)
