"""Loss recovered and KL with an SAE spliced into the model, against zero and mean ablation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, reconstruct
from pseval.models.capture import hooked, model_inputs
from pseval.models.extract import pad_batch, pad_token_id
from pseval.models.loading import LoadedModel
from pseval.models.splice import spliced
from pseval.saes.base import SAE


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


def _batches(lm: LoadedModel, texts: Iterable[str], max_tokens: int, context_size: int, batch_texts: int
             ) -> list[tuple[list[list[int]], list[list[int]]]]:
    tok = lm.tokenizer
    bos = getattr(tok, "bos_token_id", None)
    out, buf, total = [], [], 0
    for text in texts:
        enc = tok(text, add_special_tokens=True, truncation=True, max_length=context_size,
                  return_special_tokens_mask=True)
        ids, sp = list(enc["input_ids"]), list(enc["special_tokens_mask"])
        if lm.is_causal and bos is not None and (not ids or ids[0] != bos):
            ids, sp = [bos, *ids][:context_size], [1, *sp][:context_size]
        if len(ids) < 3:
            continue
        buf.append((ids, sp))
        total += len(ids)
        if len(buf) == batch_texts:
            out.append(([b[0] for b in buf], [b[1] for b in buf]))
            buf = []
        if total >= max_tokens:
            break
    if buf:
        out.append(([b[0] for b in buf], [b[1] for b in buf]))
    return out


@torch.inference_mode()
def loss_recovered(lm: LoadedModel, sae: SAE, hook: str, texts: Iterable[str], max_tokens: int = 20_000,
                   context_size: int = 128, batch_texts: int = 32, mask_prob: float = 0.15,
                   seed: int = 0, budget: int = DEFAULT_MEMORY_BUDGET) -> LossRecovered:
    """Next-token CE (causal LMs) or masked-token CE (masked LMs) with the SAE, zero and mean ablation spliced in.

    An encoder that ships no masked-LM head (MiniLM) falls back to its own output: the loss is the cosine distance
    1 - cos(e_clean, e_spliced) of the mean-pooled sentence embedding, averaged over texts (clean loss 0, no KL).
    """
    objective = "next_token" if lm.is_causal else "masked_token"
    head, reason = lm_head_model(lm)
    if head is None and lm.is_causal:
        return LossRecovered(available=False, reason=reason, objective=objective, tokens=0)
    if head is None:
        objective, reason = "sentence_embedding", f"{reason}; measured on the mean-pooled sentence embedding instead"
    dev = lm.device
    batches = _batches(lm, texts, max_tokens, context_size, batch_texts)
    pad = pad_token_id(lm)
    gen = torch.Generator().manual_seed(seed)
    prepared = []
    for ids, special in batches:
        input_ids, attn = pad_batch(ids, pad, dev)
        sp, _ = pad_batch(special, 1, dev)
        content = attn.bool() & ~sp.bool()
        if objective == "sentence_embedding":
            labels, target_mask = input_ids, content
        elif lm.is_causal:
            labels = input_ids[:, 1:].clone()
            target_mask = attn[:, 1:].bool()
        else:
            chosen = (torch.rand(content.shape, generator=gen) < mask_prob).to(dev) & content
            labels = input_ids.clone()
            target_mask = chosen
            input_ids = input_ids.masked_fill(chosen, lm.tokenizer.mask_token_id)
        prepared.append((input_ids, attn, content, labels, target_mask))

    # Mean of the hook's activation over content tokens, for mean ablation.
    total = None
    count = 0
    state: dict[str, torch.Tensor] = {}

    def on_act(_name: str, h: torch.Tensor) -> None:
        nonlocal total, count
        s = h[state["m"]].double().sum(0)
        total = s if total is None else total + s
        count += int(state["m"].sum())

    model = head if head is not None else lm.model
    with hooked(model, [hook], on_act) as run:
        for input_ids, attn, content, _, _ in prepared:
            state["m"] = content
            run(**model_inputs(input_ids, attn, lm.is_causal))
    mean = (total / max(count, 1)).float() if total is not None else None

    def forward(input_ids: torch.Tensor, attn: torch.Tensor, replace: object | None) -> Any:
        if replace is None:
            return model(**model_inputs(input_ids, attn, lm.is_causal))
        with spliced(model, hook, replace, lambda: state["m"]):  # type: ignore[arg-type]
            return model(**model_inputs(input_ids, attn, lm.is_causal))

    if objective == "sentence_embedding":
        return _embedding_recovered(prepared, forward, state, mean, sae, reason, budget)

    def losses(replace: object | None) -> tuple[float, int, list[torch.Tensor]]:
        ce, n, logps = 0.0, 0, []
        for input_ids, attn, content, labels, target_mask in prepared:
            state["m"] = content
            logits = forward(input_ids, attn, replace).logits
            if lm.is_causal:
                logits = logits[:, :-1]
            lp = F.log_softmax(logits.float(), dim=-1)[target_mask]
            ce += float(-lp.gather(1, labels[target_mask][:, None]).sum())
            n += int(target_mask.sum())
            logps.append(lp)
        return ce / max(n, 1), n, logps

    clean, n, clean_lp = losses(None)
    if n == 0:
        return LossRecovered(available=False, reason="no target tokens in the texts", objective=objective, tokens=0)
    with_sae, _, sae_lp = losses(_sae_replace(sae, dev, budget))
    zero, _, zero_lp = losses(lambda h: torch.zeros_like(h))
    mean_abl, _, _ = losses(lambda h: mean.to(h.dtype).expand_as(h))  # type: ignore[union-attr]

    def kl(lps: list[torch.Tensor]) -> float:
        return float(sum(F.kl_div(q, p, log_target=True, reduction="sum") for p, q in zip(clean_lp, lps,
                                                                                            strict=True))) / n

    return LossRecovered(available=True, objective=objective, tokens=n, clean_loss=clean, sae_loss=with_sae,
                         zero_ablation_loss=zero, mean_ablation_loss=mean_abl,
                         loss_recovered_zero=_recovered(zero, with_sae, clean),
                         loss_recovered_mean=_recovered(mean_abl, with_sae, clean), kl_sae=kl(sae_lp),
                         kl_zero_ablation=kl(zero_lp))


def _recovered(ablated: float, with_sae: float, clean: float) -> float:
    """(L_ablated - L_sae) / (L_ablated - L_clean); NaN when ablation costs nothing."""
    return (ablated - with_sae) / (ablated - clean) if ablated != clean else math.nan


def _sae_replace(sae: SAE, dev: torch.device, budget: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The hook activation replaced by the SAE's reconstruction, in the model's activation convention and dtype,
    encoded in chunks of `budget` bytes."""
    sae_dev = sae.to(dev)
    return lambda h: reconstruct(sae_dev, h, budget)


def _embedding_recovered(prepared: list, forward: Callable[..., Any], state: dict[str, torch.Tensor],
                         mean: torch.Tensor | None, sae: SAE, reason: str | None, budget: int) -> LossRecovered:
    """Loss recovered with loss = 1 - cos(clean, spliced) of the attention-masked mean of the last hidden state."""
    clean_emb = []
    for input_ids, attn, content, _, _ in prepared:
        state["m"] = content
        clean_emb.append(_mean_pool(forward(input_ids, attn, None).last_hidden_state, attn))
    tokens = sum(int(p[2].sum()) for p in prepared)
    n_texts = sum(e.shape[0] for e in clean_emb)

    def distance(replace: Callable[[torch.Tensor], torch.Tensor]) -> float:
        total = 0.0
        for (input_ids, attn, content, _, _), clean in zip(prepared, clean_emb, strict=True):
            state["m"] = content
            emb = _mean_pool(forward(input_ids, attn, replace).last_hidden_state, attn)
            total += float((1 - F.cosine_similarity(emb, clean, dim=-1)).sum())
        return total / max(n_texts, 1)

    dev = prepared[0][0].device if prepared else torch.device("cpu")
    with_sae = distance(_sae_replace(sae, dev, budget))
    zero = distance(lambda h: torch.zeros_like(h))
    mean_abl = distance(lambda h: mean.to(h.dtype).expand_as(h))  # type: ignore[union-attr]
    return LossRecovered(available=True, reason=reason, objective="sentence_embedding", tokens=tokens, clean_loss=0.0,
                         sae_loss=with_sae, zero_ablation_loss=zero, mean_ablation_loss=mean_abl,
                         loss_recovered_zero=_recovered(zero, with_sae, 0.0),
                         loss_recovered_mean=_recovered(mean_abl, with_sae, 0.0))


def _mean_pool(hidden: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Sentence embedding as sentence-transformers computes it: mean of the last hidden state over real tokens."""
    m = attn[..., None].to(torch.float64)
    return (hidden.to(torch.float64) * m).sum(1) / m.sum(1)
