"""`pseval.evaluate`: PS-Eval of the model and SAEs a notebook already holds, through the one pipeline.

    import pseval
    res = pseval.evaluate("minilm", ["identity", my_saelens_sae], data="wic:../shared/data/wic/dev",
                          hook="blocks.3.hook_resid_post")
    res                        # a table in a notebook; res.records: the typed PSEvalRecord of each SAE

`model`: a name or path (`minilm`, a Hub id, a local folder), a `(transformers model, tokenizer)` pair (or the
model with `tokenizer=`), pseval's `LoadedModel`, or a TransformerLens `HookedTransformer` (its activation
convention, read from its weights, is recorded as `eval_config.model_convention`).
`saes`: one SAE or a list (or a {name: SAE} dict) of SAE specs or paths, pseval SAEs, SAELens SAEs, SAEBench custom
SAEs, dictionary_learning dictionaries, sparsify SparseCoders, or any module with `encode(x) -> codes`.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pseval.cli.eval import DEFAULT_DATA, record_row, spec_entry, table_columns
from pseval.errors import ConfigError, MissingResourceError
from pseval.metrics.encoding import DEFAULT_MEMORY_BUDGET, parse_bytes
from pseval.models.extract import extract_positions
from pseval.models.loading import LoadedModel, load_model, wrap_model
from pseval.models.transformer_lens import check_tl_hook, is_hooked_transformer, wrap_hooked_transformer
from pseval.ps_eval.headline import LEGEND, chance_line
from pseval.ps_eval.pipeline import CorpusMetrics, SAEEntry, prepare_pairs
from pseval.ps_eval.pipeline import evaluate as run_pipeline
from pseval.ps_eval.record import PSEvalRecord
from pseval.ps_eval.settings import PSEvalConfig
from pseval.saes.identity import identity_sae
from pseval.saes.loading import load_sae
from pseval.saes.objects import adapt_sae
from pseval.tables import html_table, text_table

# Under the table: what its headline columns mean.
LEGEND_NOTES = (LEGEND["headline"], LEGEND["gain"], LEGEND["share"])


@dataclass
class Evaluation:
    """The records of one `pseval.evaluate` call, shown as a table."""

    records: list[PSEvalRecord]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per record: SAE, hook, pairs scored and the PS-Eval numbers."""
        return [record_row(r) for r in self.records]

    def table(self) -> str:
        """Aligned plain-text table, then what chance scores on the pairs and the legend of its columns."""
        rows = self.rows()
        return "\n".join(p for p in (text_table(rows, table_columns(rows)), chance_line(self.records),
                                      *(f"  {n}" for n in LEGEND_NOTES)) if p)

    def _repr_html_(self) -> str:
        rows = self.rows()
        notes = [chance_line(self.records), *LEGEND_NOTES]
        return html_table(rows, table_columns(rows)) + "".join(
            f"<p style='font-size:smaller'>{html.escape(n)}</p>" for n in notes if n)

    def __repr__(self) -> str:
        return self.table()

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise MissingResourceError("to_pandas needs pandas: pip install pandas") from exc
        rows = self.rows()
        return pd.DataFrame(rows, columns=list(table_columns(rows)))

    def __iter__(self) -> Iterator[PSEvalRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> PSEvalRecord:
        return self.records[i]


def as_loaded_model(model: Any, tokenizer: Any = None, model_name: str | None = None,
                    device: str | torch.device | None = None) -> LoadedModel:
    """Whatever `model` is (name, path, (model, tokenizer), LoadedModel, HookedTransformer) as a LoadedModel."""
    if isinstance(model, tuple):
        if len(model) != 2 or tokenizer is not None:
            raise ConfigError("model=(model, tokenizer): a pair, and then no tokenizer= as well")
        model, tokenizer = model
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, (str, Path)):
        return load_model(str(model), device=device or "cpu")
    if is_hooked_transformer(model):
        if tokenizer is not None:
            raise ConfigError("a HookedTransformer brings its own tokenizer (model.tokenizer); pass no tokenizer")
        return wrap_hooked_transformer(model, model_name)
    if tokenizer is None:
        raise ConfigError(f"model: a {type(model).__name__} needs its tokenizer: evaluate((model, tokenizer), ...) "
                          "or evaluate(model, ..., tokenizer=tokenizer)")
    return wrap_model(model, tokenizer, model_name)


@contextmanager
def _eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for the duration, then the caller's mode back."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def hook_width(lm: LoadedModel, hook: str) -> int:
    """The width of a hook's activations, from one forward of a single token."""
    tok = lm.tokenizer
    ids = [tok.bos_token_id if tok.bos_token_id is not None else (tok.cls_token_id or 0)]
    return int(extract_positions(lm, [ids], [[0]], [hook])[hook].shape[-1])


def _named(saes: Any) -> list[tuple[str | None, Any]]:
    if isinstance(saes, Mapping):
        return [(str(k), v) for k, v in saes.items()]
    if isinstance(saes, (str, Path)) or not isinstance(saes, Sequence):
        return [(None, saes)]
    return [(None, s) for s in saes]


def sae_entries(saes: Any, lm: LoadedModel, hook: str | None, convention: str | None = None) -> list[SAEEntry]:
    """Pipeline entries for SAE specs, paths and objects, each at its recorded hook or at `hook`."""
    entries = []
    for name, s in _named(saes):
        if isinstance(s, (str, Path)):
            spec = str(s)
            if spec == "identity":
                if hook is None:
                    raise ConfigError("hook: the identity SAE needs hook=, e.g. hook='blocks.3.hook_resid_post'")
                sae = identity_sae(hook_width(lm, hook), lm.name, hook).to(lm.device)
            else:
                sae = load_sae(spec).to(lm.device)
            at = hook or sae.cfg.metadata.hook_name
            if at is None:
                raise ConfigError(f"hook: {spec} records no hook point; pass hook=")
            entry = spec_entry(spec, sae, at)
            if name is not None:
                entry.name = name
        else:
            a = adapt_sae(s, hook, name, convention, lm.activation_convention, lambda h: hook_width(lm, h))
            entry = SAEEntry.of(a.sae, a.name, a.hook, a.source, a.fingerprint)
        entries.append(entry)
    names = [e.name for e in entries]
    seen: dict[str, int] = {}
    for e in entries:  # two objects of one class would share a row label: number them
        if names.count(e.name) > 1:
            seen[e.name] = seen.get(e.name, 0) + 1
            e.name = f"{e.name}#{seen[e.name]}"
    return entries


def evaluate(model: Any, saes: Any, data: str = DEFAULT_DATA, hook: str | None = None, *, tokenizer: Any = None,
             model_name: str | None = None, convention: str | None = None, max_pairs: int | None = None,
             seed: int = 0, protocol: str = "pseval", balance: str = "reference", readout: str = "template",
             multi_token: str = "drop", too_long: str = "truncate", device: str | torch.device | None = None,
             corpus: str = "wordnet-definitions", recon_tokens: int = 0, loss_tokens: int = 0, top_k: int = 8,
             exclude_dense: float | None = None, dtype: str = "float32", n_boot: int = 1000,
             bootstrap_seed: int = 0, memory_budget: int | str = DEFAULT_MEMORY_BUDGET, controls: int = 5,
             progress: bool = False) -> Evaluation:
    """PS-Eval of each SAE (spec, path or object) on `data` with `model`; returns the records and a table.

    `hook` applies to every SAE (required for SAEs that record none: identity, dictionary_learning, sparsify, plain
    modules); `convention` is the activation convention a plain module expects (default: the model's). The other
    settings are `pseval eval`'s (`controls`: random controls per SAE, 0 for none). The model runs in eval mode
    and gets its own mode back.
    """
    lm = as_loaded_model(model, tokenizer, model_name, device)
    cfg = PSEvalConfig.from_options(readout=readout, multi_token=multi_token, too_long=too_long, balance=balance,
                                    seed=seed, protocol=protocol, top_k=top_k, exclude_dense=exclude_dense,
                                    dtype=dtype, n_boot=n_boot, bootstrap_seed=bootstrap_seed,
                                    memory_budget=parse_bytes(memory_budget), controls=controls)
    if lm.activation_convention != "hf" and (recon_tokens or loss_tokens):
        raise ConfigError("recon_tokens/loss_tokens: measured on Hugging Face models only; this model gives "
                          f"{lm.activation_convention!r} activations")
    prepared = prepare_pairs(data, max_pairs, seed)
    is_tl = lm.model.config.model_type == "transformer_lens"
    if is_tl and hook is not None:
        check_tl_hook(hook)
    with _eval_mode(lm.model):
        entries = sae_entries(saes, lm, hook, convention)
        if not entries:
            raise ConfigError("saes: nothing to evaluate")
        for e in entries if is_tl else ():
            check_tl_hook(e.hook)
        records = run_pipeline(lm, model_name or lm.name, entries, prepared, cfg,
                               CorpusMetrics(corpus, recon_tokens, loss_tokens), progress=progress)
    return Evaluation(records)
