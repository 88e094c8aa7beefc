"""A faithful port of the reference PS-Eval loop (gouki510/PS-Eval `wic_eval.py`), used only as a baseline.

Per pair and per SAE: one full forward of each prompt, the reference's string token matching (`" " + word` must be
one of the prompt's token strings; the first token after BOS whose string contains the word is found and its LAST
occurrence read, the pair dropped when it occurs once), the argmax read from a per-token table, and the reference's
balancing (label-0 rows, then only the first cnt_0 label-1 rows of the file). pseval's `PSEvalSettings(protocol=
"reference")` must give the same confusion counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pseval.data.pairs import WordInContextPair
from pseval.metrics.confusion import Confusion
from pseval.models.loading import LoadedModel
from pseval.saes.base import SAE


def _strings(lm: LoadedModel, ids: list[int]) -> list[str]:
    """TransformerLens' to_str_tokens: each token decoded on its own."""
    return [lm.tokenizer.decode([i], clean_up_tokenization_spaces=False) for i in ids]


def _template_token(lm: LoadedModel, word: str) -> tuple[str, str] | None:
    """The token string the reference requires and the substring it walks for."""
    if lm.model_type != "bert":
        return " " + word, word
    # WordPiece has no leading-space tokens: the template token is the word's single token (lower-cased by MiniLM).
    ids = lm.tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        return None
    s = _strings(lm, ids)[0]
    return s, s


def _ids(lm: LoadedModel, prompt: str) -> list[int]:
    ids = lm.tokenizer(prompt)["input_ids"]
    bos = lm.tokenizer.bos_token_id
    return [bos, *ids] if lm.is_causal and bos is not None and ids[:1] != [bos] else ids


@torch.inference_mode()
def _feature(lm: LoadedModel, sae: SAE, layer: int, ids: list[int], word: str) -> int | None:
    out = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True)  # full forward, every layer cached
    latents = sae.encode(out.hidden_states[layer + 1][0])
    strs = _strings(lm, ids)
    # The per-token table: one column per token, named by its string (the reference builds a DataFrame here).
    table = [{"name": s, "acts": row} for s, row in zip(strs, latents.tolist(), strict=True)]
    first = next((s for s in strs[1:] if word in s), None)
    cols = [c for c in table if c["name"] == first]
    if len(cols) < 2:  # a single column: the reference's `.iloc[:, -1]` raises and its bare except drops the pair
        return None
    row = cols[-1]["acts"]
    return max(range(len(row)), key=lambda j: (row[j], -j))  # argmax, ties to the lowest index


def _same_feature(lm: LoadedModel, sae: SAE, layer: int, p: WordInContextPair) -> bool | None:
    """The reference's calc_f_value for one SAE: None when it drops the pair."""
    tt = _template_token(lm, p.target)
    if tt is None:
        return None
    template, word = tt
    prompts = [_ids(lm, f"{c} The {p.target} means") for c in (p.context_1, p.context_2)]
    found = [[i for i, s in zip(ids, _strings(lm, ids), strict=True) if s == template] for ids in prompts]
    if not found[0] or not found[1] or found[0][-1] != found[1][-1]:
        return None
    f1 = _feature(lm, sae, layer, prompts[0], word)
    f2 = _feature(lm, sae, layer, prompts[1], word) if f1 is not None else None
    return None if f1 is None or f2 is None else f1 == f2


def reference_ps_eval(lm: LoadedModel, pairs: Sequence[WordInContextPair], saes: Sequence[SAE],
                      layer: int) -> list[Confusion]:
    """Confusion per SAE at resid_post of `layer`: the reference's readout and balancing."""
    out = []
    for sae in saes:
        labels, same = [], []
        different = [p for p in pairs if not p.same_sense]
        for p in different:
            s = _same_feature(lm, sae, layer, p)
            if s is not None:
                labels.append(False)
                same.append(s)
        cnt_0 = len(labels)
        for p in [p for p in pairs if p.same_sense][:cnt_0]:  # range(len(df))[:cnt_0]: valid or not
            s = _same_feature(lm, sae, layer, p)
            if s is not None:
                labels.append(True)
                same.append(s)
        out.append(Confusion.from_predictions(labels, same))
    return out
