"""`pseval inspect`: a per-sense look at one word's SAE features (item 5 of issue 13).

For each sense of the word: the features most active at the PS-Eval readout (mean activation, firing rate, how
often each is the context's top feature), example contexts with the word highlighted and each feature's value, and
the features that several senses share; plus how concentrated the contexts' top features are (issue 18).

Where senses come from (`sense_contexts`):

* `coarsewsd:PATH[:opts]`: the word's sense classes (classes_map.txt) over every sentence of the split, paired or
  not (the pair options do not apply).
* `wordnet[:opts]`: the synsets of the word's usage examples, read from the pair ids
  (`wordnet:LEMMA.POS:SYNSET#k/SYNSET#k`) and described by each synset's definition. Only examples that occur in a
  pair of the spec are seen, so `wordnet` (uncapped, the default) shows every example of the word.
* any other pair set (`wic:`, tables, `hf:`): the word's contexts (a context = its text and span) joined by
  same-sense pairs; each connected component of that graph is one sense group. WiC never says that two pairs share
  a sense, so its groups are small and a word's sense may be split over several groups; a different-sense pair
  inside one group would contradict the labels and is counted as `conflicting_pairs`.

The readout, the prompt and the token read are PS-Eval's own (models/readout.py `plan_readouts`,
models/extract.py `extract_positions`, the same PSEvalSettings), so a context's top feature here is the feature the
PS-Eval pairs compare. Per sense at most `max_per_sense` contexts are read, the first in data order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from pseval.data.coarsewsd import coarsewsd_words, load_coarsewsd_instances
from pseval.data.pairs import WordInContextPair
from pseval.data.sources import load_pair_set, normalise_spec
from pseval.data.text import empty_notes
from pseval.data.wordnet import find_wordnet, iter_synsets
from pseval.errors import ConfigError
from pseval.files import write_atomic
from pseval.logs import get_logger
from pseval.models.extract import extract_positions
from pseval.models.loading import LoadedModel
from pseval.models.readout import plan_readouts, prompt_and_span
from pseval.provenance import provenance
from pseval.ps_eval.concentration import context_concentration
from pseval.ps_eval.scoring import check_sae_fits, sae_encoder, top_features
from pseval.ps_eval.settings import PSEvalSettings
from pseval.saes.base import SAE
from pseval.saes.conventions import to_sae_input
from pseval.templating import render

_log = get_logger("inspect")  # messages; a notebook silences them on logging.getLogger("pseval")

DEFAULT_DATA = "wordnet"
GROUPINGS = {
    "coarsewsd": "CoarseWSD-20 sense classes (classes_map.txt), every sentence of the split",
    "wordnet": "WordNet synsets of the word's usage examples (from the pair ids)",
    "components": "connected components of the same-sense pairs over the word's contexts",
}


@dataclass(frozen=True, slots=True)
class SenseContext:
    """One context of the word, with the sense it belongs to."""

    sense: str
    context: str
    span: tuple[int, int]
    source: str


@dataclass(frozen=True)
class SenseSet:
    """A word's contexts grouped by sense, and how the senses were found."""

    spec: str
    word: str
    grouping: str  # a key of GROUPINGS
    descriptions: dict[str, str]  # sense key -> readable description, in display order
    contexts: list[SenseContext]
    conflicting_pairs: int = 0


# ----------------------------------------------------------------------------------------------------------------
# Senses from the data


def sense_contexts(spec: str, word: str) -> SenseSet:
    """The word's contexts grouped by sense under the data spec (see the module docstring for the rules)."""
    canonical = normalise_spec(spec)
    kind = canonical.partition(":")[0]
    if kind == "coarsewsd":
        return _coarsewsd_senses(canonical, word)
    every = load_pair_set(canonical).pairs
    pairs = [p for p in every if p.target.lower() == word.lower()]
    if not pairs:
        common = ", ".join(w for w, _ in Counter(p.target for p in every).most_common(8))
        raise ConfigError(f"word {word!r} is the target of no pair in {canonical!r}; frequent targets: {common}")
    if kind == "wordnet":
        return _wordnet_senses(canonical, word, pairs)
    return _component_senses(canonical, word, pairs)


def _coarsewsd_senses(canonical: str, word: str) -> SenseSet:
    # The canonical spec always reads coarsewsd:ROOT:split=...[,options]
    root, _, opts = canonical.removeprefix("coarsewsd:").rpartition(":")
    split = dict(o.split("=", 1) for o in opts.split(",") if "=" in o).get("split", "test")
    words = coarsewsd_words(root)
    if word.lower() not in words:
        raise ConfigError(f"word {word!r} is not a CoarseWSD-20 word in {root}; known: {', '.join(words)}")
    instances = load_coarsewsd_instances(root, word.lower(), split, empty_notes())
    names = {i.sense: i.sense_name for i in instances}
    descriptions = {names[k]: f"class {k}: {names[k]}" for k in sorted(names)}
    contexts = [SenseContext(i.sense_name, i.context, i.span, f"{root}/{i.word}/{split}.data.txt:{i.line}")
                for i in instances]
    return SenseSet(canonical, word.lower(), "coarsewsd", descriptions, contexts)


_WORDNET_ID = re.compile(r"wordnet:[^:]+:(\d{8}-[nvar])#(\d+)/(\d{8}-[nvar])#(\d+)$")


def _wordnet_senses(canonical: str, word: str, pairs: Sequence[WordInContextPair]) -> SenseSet:
    seen: dict[tuple[str, int], tuple[str, tuple[int, int]]] = {}
    for p in pairs:
        m = _WORDNET_ID.match(p.source_id)
        if m is None or p.span_1 is None or p.span_2 is None:
            raise ConfigError(f"pair id {p.source_id!r} does not name two WordNet synsets; cannot group senses")
        seen.setdefault((m.group(1), int(m.group(2))), (p.context_1, p.span_1))
        seen.setdefault((m.group(3), int(m.group(4))), (p.context_2, p.span_2))
    per_synset = Counter(s for s, _ in seen)
    order = sorted(per_synset, key=lambda s: (-per_synset[s], s))  # the most examples first
    rank = {s: i for i, s in enumerate(order)}
    defs = _definitions(canonical, set(order))
    descriptions = {s: f"{s}: {defs[s]}" if defs.get(s) else s for s in order}
    contexts = [SenseContext(s, text, span, f"wordnet:{s}#{k}")
                for (s, k), (text, span) in sorted(seen.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1]))]
    return SenseSet(canonical, word.lower(), "wordnet", descriptions, contexts)


def _definitions(canonical: str, synsets: set[str]) -> dict[str, str]:
    """WordNet definitions of the given synset ids (`00169305-n`)."""
    opts = dict(o.split("=", 1) for o in canonical.partition(":")[2].split(",") if "=" in o)
    source = find_wordnet(opts.get("dir"))
    out = {}
    for pos in sorted({s[-1] for s in synsets}):
        for syn in iter_synsets(source, pos):
            if syn.id in synsets:
                out[syn.id] = syn.definition
    return out


def _component_senses(canonical: str, word: str, pairs: Sequence[WordInContextPair]) -> SenseSet:
    nodes: dict[tuple[str, tuple[int, int] | None], int] = {}
    sources: list[str] = []
    parent: list[int] = []

    def node(text: str, span: tuple[int, int] | None, source: str) -> int:
        key = (text, span)
        if key not in nodes:
            nodes[key] = len(parent)
            parent.append(len(parent))
            sources.append(source)
        return nodes[key]

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links = []
    for p in pairs:
        a, b = node(p.context_1, p.span_1, f"{p.source_id} (1)"), node(p.context_2, p.span_2, f"{p.source_id} (2)")
        links.append((a, b, p.same_sense))
        if p.same_sense:
            ra, rb = find(a), find(b)
            parent[max(ra, rb)] = min(ra, rb)
    conflicts = sum(1 for a, b, same in links if not same and find(a) == find(b))
    members: dict[int, list[int]] = {}
    for i in range(len(parent)):
        members.setdefault(find(i), []).append(i)
    groups = sorted(members.values(), key=lambda g: (-len(g), g[0]))
    keys = {}
    descriptions = {}
    for n, g in enumerate(groups, 1):
        key = f"group {n}"
        descriptions[key] = f"group {n}: {len(g)} context(s) joined by same-sense pairs"
        for i in g:
            keys[i] = key
    inverse = {i: k for k, i in nodes.items()}
    contexts = []
    for g in groups:
        for i in g:
            text, span = inverse[i]
            if span is not None:  # a context whose target was not found cannot be read
                contexts.append(SenseContext(keys[i], text, span, sources[i]))
    return SenseSet(canonical, word.lower(), "components", descriptions, contexts, conflicts)


# ----------------------------------------------------------------------------------------------------------------
# The inspection record


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureStat(_Model):
    """One feature over one sense's contexts."""

    feature: int = Field(title="Feature", description="latent index in the SAE")
    mean_activation: float = Field(title="Mean activation", description="mean of the latent over the sense's "
                                   "read contexts (float64)")
    firing_rate: float = Field(title="Firing rate", description="share of the sense's read contexts where the "
                               "latent is > 0")
    top_share: float = Field(title="Top-feature share", description="share of the sense's read contexts whose "
                             "argmax (PS-Eval's top feature) is this latent")


class FeatureValue(_Model):
    """A feature's value in one context."""

    feature: int = Field(title="Feature", description="latent index")
    value: float = Field(title="Value", description="the latent's activation at the readout of the context")


class ContextExample(_Model):
    """One example context of a sense."""

    source: str = Field(title="Source", description="file and line, or pair id, the context comes from")
    context: str = Field(title="Context", description="the context text as the loader gives it")
    span: tuple[int, int] = Field(title="Word span", description="character span of the word in the context")
    top_feature: int = Field(title="Top feature", description="argmax latent at the readout (ties and all-zero codes "
                             "go to the lowest index, as in PS-Eval)")
    top_value: float = Field(title="Top value", description="the top feature's activation")
    values: list[FeatureValue] = Field(title="Feature values", description="the activation of each of the sense's "
                                       "listed top features in this context")


class Concentration(_Model):
    """How concentrated the contexts' top features are (issue 18)."""

    contexts: int = Field(title="Contexts", description="contexts read")
    distinct_top_features: int = Field(title="Distinct top features", description="different argmax latents among "
                                       "the contexts")
    most_common_feature: int | None = Field(title="Most common top feature", description="the argmax latent of the "
                                            "most contexts (ties: lowest index); null without contexts")
    most_common_share: float | None = Field(title="Share of the most common top feature",
                                            description="share of the contexts whose top feature is the most "
                                                        "common one")
    effective_top_features: float | None = Field(title="Effective number of top features",
                                                 description="exp of the entropy (nats) of the top-feature "
                                                             "distribution: 1 when one feature wins every context")


class SenseView(_Model):
    """One sense of the word."""

    sense: str = Field(title="Sense", description="the sense key (class name, synset id or group)")
    description: str = Field(title="Description", description="what the sense is, as the data says")
    contexts: int = Field(title="Contexts", description="contexts of the sense in the data")
    contexts_read: int = Field(title="Contexts read", description="contexts whose readout could be read (at most "
                               "max_per_sense, the first in data order)")
    top_features: list[FeatureStat] = Field(title="Top features", description="the latents with the highest mean "
                                            "activation over the sense's read contexts")
    concentration: Concentration = Field(title="Top-feature concentration", description="over the sense's read "
                                         "contexts")
    examples: list[ContextExample] = Field(title="Examples", description="the first read contexts of the sense")


class SharedFeature(_Model):
    """A feature among the top features of several senses."""

    feature: int = Field(title="Feature", description="latent index")
    senses: list[str] = Field(title="Top in senses", description="the senses that list it among their top features")
    mean_activation: list[float] = Field(title="Mean activation per sense", description="in the order of `senses` "
                                         "of the inspection")
    firing_rate: list[float] = Field(title="Firing rate per sense", description="in the order of `senses` of the "
                                     "inspection")


class WordInspection(_Model):
    """Per-sense view of one word's SAE features at one hook."""

    word: str = Field(title="Word", description="the target word")
    model_name: str = Field(title="Model", description="model name, Hub id or local path")
    hook_name: str = Field(title="Hook", description="hook point read")
    sae_name: str = Field(title="SAE", description="display name of the SAE")
    sae_source: str = Field(title="SAE source", description="spec or path of the SAE")
    d_sae: int = Field(title="Latents", description="the SAE's width")
    neuronpedia_id: str | None = Field(None, title="Neuronpedia id", description="the SAE's Neuronpedia id "
                                       "(`model/sae`), which links its features; null when unknown")
    dataset: str = Field(title="Dataset", description="canonical data spec the senses come from")
    grouping: str = Field(title="Sense grouping", description="how the contexts were grouped into senses")
    conflicting_pairs: int = Field(title="Conflicting pairs", description="different-sense pairs inside one "
                                   "same-sense group (component grouping only)")
    protocol: str = Field(title="Protocol", description="PS-Eval protocol of the readout")
    readout: str = Field(title="Readout position", description="template or context")
    template: str = Field(title="Prompt template", description="the template readout's prompt")
    multi_token: str = Field(title="Multi-token words", description="first, last, mean or drop")
    max_per_sense: int = Field(title="Contexts per sense", description="at most this many contexts of each sense "
                               "were read")
    contexts: int = Field(title="Contexts", description="contexts of the word in the data")
    contexts_read: int = Field(title="Contexts read", description="contexts read over all senses shown")
    dropped: dict[str, int] = Field(title="Dropped contexts", description="contexts whose readout could not be "
                                    "read, by PS-Eval's drop reason")
    senses_omitted: int = Field(title="Senses not shown", description="smallest senses left out beyond max_senses")
    concentration: Concentration = Field(title="Top-feature concentration", description="over every read context "
                                         "of the word")
    senses: list[SenseView] = Field(title="Senses", description="one entry per sense, in the data's order")
    shared: list[SharedFeature] = Field(title="Shared features", description="latents among the top features of "
                                        "two or more senses")
    pseval_version: str = Field(title="pseval version", description="package version")
    git_commit: str | None = Field(title="pseval commit", description="git commit of the pseval source, if known")


# ----------------------------------------------------------------------------------------------------------------
# Computing it


def concentration(top: Sequence[int]) -> Concentration:
    """Share of the most common top feature and exp(entropy) of the top-feature distribution."""
    if not top:
        return Concentration(contexts=0, distinct_top_features=0, most_common_feature=None, most_common_share=None,
                             effective_top_features=None)
    feature, share, effective = context_concentration(np.asarray(top))
    return Concentration(contexts=len(top), distinct_top_features=len(set(top)), most_common_feature=feature,
                         most_common_share=share, effective_top_features=effective)


@torch.inference_mode()
def _codes(sae: SAE, acts: torch.Tensor, chunk: int) -> torch.Tensor:
    """The contexts' full codes (a word's few hundred contexts), encoded as PS-Eval encodes them."""
    encode = sae_encoder(sae)
    parts = [encode(acts[i:i + chunk]).float().cpu() for i in range(0, acts.shape[0], chunk)]
    return torch.cat(parts) if parts else torch.zeros((0, sae.d_sae))


def inspect_word(lm: LoadedModel, model_name: str, sae: SAE, hook: str, senses: SenseSet, cfg: PSEvalSettings,
                 sae_name: str, sae_source: str, top: int = 10, examples: int = 5, max_per_sense: int = 200,
                 max_senses: int = 12, neuronpedia_id: str | None = None) -> WordInspection:
    """Read every sense's contexts at the PS-Eval readout, encode them with the SAE, and summarise per sense.
    `neuronpedia_id` (default: the SAE's own metadata) makes the page's feature ids links."""
    if top < 1 or examples < 0 or max_per_sense < 1 or max_senses < 1:
        raise ConfigError("inspect: top, max_per_sense and max_senses must be positive and examples >= 0")
    sizes = Counter(c.sense for c in senses.contexts)
    shown = [s for s in senses.descriptions if sizes[s]]
    omitted = len(shown) - max_senses if len(shown) > max_senses else 0
    if omitted:  # keep the largest senses, in the data's order
        keep = set(sorted(shown, key=lambda s: -sizes[s])[:max_senses])
        shown = [s for s in shown if s in keep]
    chosen: list[SenseContext] = []
    for s in shown:
        chosen += [c for c in senses.contexts if c.sense == s][:max_per_sense]
    readout = cfg.readout_config()
    items = [prompt_and_span(c.context, c.span, senses.word, readout) for c in chosen]
    plans = plan_readouts(lm.tokenizer, items, readout, add_bos=lm.is_causal, max_len=lm.max_positions)
    dropped = Counter(p.drop for p in plans if p.drop is not None)
    read = [i for i, p in enumerate(plans) if p.drop is None]
    if read:
        acts = extract_positions(lm, [plans[i].input_ids for i in read], [plans[i].positions for i in read], [hook],
                                 max_tokens=cfg.batch_tokens)[hook]
    else:
        acts = torch.zeros((0, lm.d_model))
    check_sae_fits(sae, acts.shape[1], hook, model_name)
    codes = _codes(sae, acts, cfg.encode_chunk)
    argmax = top_features(sae, to_sae_input(acts, sae), cfg.memory_budget)[0].tolist()
    rows_of: dict[str, list[int]] = {s: [] for s in shown}
    for row, i in enumerate(read):
        rows_of[chosen[i].sense].append(row)

    views, stats = [], {}
    for s in shown:
        rows = rows_of[s]
        z = codes[rows].double() if rows else torch.zeros((0, sae.d_sae), dtype=torch.float64)
        mean = z.mean(0) if rows else torch.zeros(sae.d_sae, dtype=torch.float64)
        rate = (z > 0).double().mean(0) if rows else torch.zeros(sae.d_sae, dtype=torch.float64)
        stats[s] = (mean, rate)
        wins = Counter(argmax[r] for r in rows)
        order = torch.argsort(-mean, stable=True)[:min(top, sae.d_sae)].tolist() if rows else []
        feats = [FeatureStat(feature=f, mean_activation=float(mean[f]), firing_rate=float(rate[f]),
                             top_share=wins.get(f, 0) / len(rows)) for f in order]
        listed = order[:8]
        exs = [ContextExample(source=chosen[read[r]].source, context=chosen[read[r]].context,
                              span=chosen[read[r]].span, top_feature=argmax[r],
                              top_value=float(codes[r, argmax[r]]),
                              values=[FeatureValue(feature=f, value=float(codes[r, f])) for f in listed])
               for r in rows[:examples]]
        views.append(SenseView(sense=s, description=senses.descriptions[s], contexts=sizes[s],
                               contexts_read=len(rows), top_features=feats,
                               concentration=concentration([argmax[r] for r in rows]), examples=exs))
    in_top: dict[int, list[str]] = {}
    for v in views:
        for f in v.top_features:
            in_top.setdefault(f.feature, []).append(v.sense)
    shared = [SharedFeature(feature=f, senses=ss, mean_activation=[float(stats[s][0][f]) for s in shown],
                            firing_rate=[float(stats[s][1][f]) for s in shown])
              for f, ss in in_top.items() if len(ss) > 1]
    shared.sort(key=lambda x: (-len(x.senses), -sum(x.mean_activation), x.feature))
    r, prov = cfg.readout_config(), provenance()
    return WordInspection(
        word=senses.word, model_name=model_name, hook_name=hook, sae_name=sae_name, sae_source=sae_source,
        d_sae=sae.d_sae, neuronpedia_id=neuronpedia_id or sae.cfg.metadata.neuronpedia_id, dataset=senses.spec,
        grouping=GROUPINGS[senses.grouping],
        conflicting_pairs=senses.conflicting_pairs, protocol=cfg.protocol, readout=r.position, template=r.template,
        multi_token=r.multi_token, max_per_sense=max_per_sense, contexts=len(senses.contexts),
        contexts_read=len(read), dropped=dict(sorted(dropped.items())), senses_omitted=omitted,
        concentration=concentration(argmax), senses=views, shared=shared,
        pseval_version=prov["pseval_version"], git_commit=prov["git_commit"])


# ----------------------------------------------------------------------------------------------------------------
# The page


def render_html(insp: WordInspection) -> str:
    """A self-contained page (inline CSS, no scripts, no external assets) from the inspect.html template; feature
    ids link to Neuronpedia when the SAE's Neuronpedia id is known."""
    return render("inspect.html", title=f"{insp.word}: {insp.sae_name} at {insp.hook_name}", insp=insp)


def output_stem(sae_name: str, hook: str, word: str) -> str:
    """File-name stem of an inspection: SAE, hook and word, with unsafe characters replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{sae_name}__{hook}__{word}")


def write_inspection(insp: WordInspection, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `<stem>.html` and `<stem>.json` (atomically); returns both paths."""
    d = Path(out_dir)
    stem = output_stem(insp.sae_name, insp.hook_name, insp.word)
    page, data = d / f"{stem}.html", d / f"{stem}.json"
    text = render_html(insp)
    write_atomic(page, lambda fh: fh.write(text))
    js = insp.model_dump_json(indent=2)
    write_atomic(data, lambda fh: fh.write(js))
    return page, data


# ----------------------------------------------------------------------------------------------------------------
# The command


@dataclass
class InspectRequest:
    """Everything `pseval inspect` was asked to do."""

    sae: str
    word: str
    data: str = DEFAULT_DATA
    model: str = "minilm"
    hook: str | None = None
    out: Path = Path("inspect-out")
    settings: PSEvalSettings = field(default_factory=PSEvalSettings)  # the readout, as PS-Eval would use it
    top: int = 10
    examples: int = 5
    max_per_sense: int = 200
    max_senses: int = 12
    device: str = "auto"  # CUDA when present


def run_inspect(req: InspectRequest, log: Callable[[str], Any] = _log.info,
                lm: LoadedModel | None = None) -> tuple[WordInspection, Path, Path]:
    """Load the senses, the SAE and the model, inspect the word, write HTML and JSON."""
    from pseval.files import check_writable
    from pseval.models.loading import load_model
    from pseval.models.model_dtype import model_torch_dtype
    from pseval.ps_eval.resolver import DEFAULT_HOOK, resolve_saes

    check_writable(req.out, is_dir=True)
    cfg = req.settings
    senses = sense_contexts(req.data, req.word)
    lm = lm or load_model(req.model, device=req.device, dtype=model_torch_dtype(cfg.model_dtype))
    (entry,) = resolve_saes(req.sae, lm, [req.hook] if req.hook else [], default_hook=DEFAULT_HOOK)
    log(f"{len(senses.contexts)} contexts of {senses.word!r} in {len(senses.descriptions)} sense(s) "
        f"({GROUPINGS[senses.grouping]})")
    insp = inspect_word(lm, req.model, entry.sae(), entry.hook, senses, cfg, entry.name, req.sae, req.top,
                        req.examples, req.max_per_sense, req.max_senses)
    page, data = write_inspection(insp, req.out)
    log(f"wrote {page} and {data}")
    return insp, page, data


def inspect_cell(lm: LoadedModel, model_name: str, sae: SAE, sae_name: str, sae_source: str, hook: str,
                 dataset: str, cfg: PSEvalSettings, word: str, out_dir: str | Path,
                 neuronpedia_id: str | None = None) -> tuple[Path, Path]:
    """The inspection page of one scored cell (an SAE at a hook on a dataset) for one of its target words."""
    insp = inspect_word(lm, model_name, sae, hook, sense_contexts(dataset, word), cfg, sae_name, sae_source,
                        neuronpedia_id=neuronpedia_id)
    return write_inspection(insp, out_dir)
