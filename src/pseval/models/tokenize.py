"""Text to token ids for a model: corpus text in length-sorted batches, and the one BOS rule (prompts use it too)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # readout imports this module without loading any model code
    from pseval.models.loading import LoadedModel

SORT_WINDOW = 16  # batches tokenised together and sorted by length, so padding stays small


def bos_to_prepend(tokenizer: Any, is_causal: bool, ids: Sequence[int]) -> int | None:
    """The BOS id to put in front of `ids`; None for encoders, tokenizers without one, or ids that start with it."""
    bos = getattr(tokenizer, "bos_token_id", None) if is_causal else None
    return bos if bos is not None and (not ids or ids[0] != bos) else None


def text_batches(lm: LoadedModel, texts: Iterable[str], context_size: int, batch_texts: int
                 ) -> Iterator[tuple[list[list[int]], list[list[int]]]]:
    """The one tokeniser of corpus text: (token ids, special-token mask) per batch of `batch_texts` texts, each cut
    to `context_size` tokens with BOS first for causal models. Texts are sorted by length within windows of
    SORT_WINDOW batches, so a token budget smaller than a window takes that window's shortest texts."""
    tok = lm.tokenizer

    def encode(window: list[str]) -> Iterator[tuple[list[list[int]], list[list[int]]]]:
        enc = tok(window, add_special_tokens=True, truncation=True, max_length=context_size,
                  return_special_tokens_mask=True)
        ids, special = [list(x) for x in enc["input_ids"]], [list(x) for x in enc["special_tokens_mask"]]
        for i in range(len(ids)):
            if (bos := bos_to_prepend(tok, lm.is_causal, ids[i])) is not None:
                ids[i] = [bos, *ids[i]][:context_size]
                special[i] = [1, *special[i]][:context_size]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_texts):
            chunk = order[start:start + batch_texts]
            yield [ids[i] for i in chunk], [special[i] for i in chunk]

    buf: list[str] = []
    for text in texts:
        buf.append(text)
        if len(buf) == batch_texts * SORT_WINDOW:
            yield from encode(buf)
            buf = []
    if buf:
        yield from encode(buf)
