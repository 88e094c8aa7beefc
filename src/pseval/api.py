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

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from pseval.cli.as_cli import check_as_cli
from pseval.data.sources import DEFAULT_DATA
from pseval.errors import ConfigError, MissingResourceError
from pseval.metrics.encoding import scoring_dtype
from pseval.models.any_model import as_loaded_model
from pseval.models.model_dtype import model_torch_dtype, recorded_model_dtype
from pseval.models.transformer_lens import check_tl_hook
from pseval.ps_eval.headline import LEGEND, chance_line
from pseval.ps_eval.pipeline import evaluate as run_pipeline
from pseval.ps_eval.pipeline import prepare_pairs
from pseval.ps_eval.record import PSEvalRecord
from pseval.ps_eval.resolver import resolve_saes
from pseval.ps_eval.rows import record_row, table_columns
from pseval.ps_eval.settings import PSEvalSettings, SettingsFields
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
        return html_table(rows, table_columns(rows), notes)

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


@contextmanager
def _eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for the duration, then the caller's mode back."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def evaluate(model: Any, saes: Any, data: str = DEFAULT_DATA, hook: str | None = None, *, tokenizer: Any = None,
             model_name: str | None = None, convention: str | None = None, device: str | torch.device | None = None,
             settings: PSEvalSettings | None = None, progress: bool = False, **overrides: Any) -> Evaluation:
    """PS-Eval of each SAE (spec, path or object) on `data` with `model`; returns the records and a table.

    `hook` applies to every SAE (required for SAEs that record none: identity, dictionary_learning, sparsify, plain
    modules); `convention` is the activation convention a plain module expects (default: the model's). The PS-Eval
    settings are `settings` (a `PSEvalSettings`) with any of its fields given as keywords on top (`seed=1`,
    `protocol="reference"`, ...): the same settings, names and checks as `pseval eval`'s options. The model runs in
    eval mode and gets its own mode back.
    """
    # The command line's checks, before anything loads: the same values are refused with the same reasons.
    checked = check_as_cli("eval", {"hook": ("hooks", hook), "device": ("device", device),
                                    **{name: (name, value) for name, value in overrides.items()
                                       if name in SettingsFields.model_fields},
                                    "data": ("data_spec", data)})
    hook, device = checked.pop("hook"), checked.pop("device")
    unknown = sorted(set(overrides) - set(SettingsFields.model_fields))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a PS-Eval setting; the settings are "
                          f"{', '.join(SettingsFields.model_fields)}")
    base = settings.settings() if settings is not None else PSEvalSettings()
    given = {k: v for k, v in checked.items() if k != "data" and v is not None}  # None: the setting's default
    cfg = base.replace(**given) if given else base
    lm = as_loaded_model(model, tokenizer, model_name, device, model_torch_dtype(cfg.model_dtype))
    # A model handed over in memory keeps its own dtype; the record says which.
    have = recorded_model_dtype(next(lm.model.parameters()).dtype, given.get("model_dtype"))
    cfg = cfg.replace(model_dtype=have) if have != cfg.model_dtype else cfg
    if lm.activation_convention != "hf" and (cfg.reconstruction_tokens or cfg.loss_recovered_tokens):
        raise ConfigError("reconstruction_tokens/loss_recovered_tokens: measured on Hugging Face models only; this "
                          f"model gives {lm.activation_convention!r} activations")
    prepared = prepare_pairs(data, cfg.max_pairs, cfg.seed)
    is_tl = lm.model.config.model_type == "transformer_lens"
    if is_tl and hook is not None:
        check_tl_hook(hook)
    with _eval_mode(lm.model):
        entries = resolve_saes(saes, lm, [hook] if hook is not None else [], convention=convention,
                               dtype=scoring_dtype(cfg.dtype))
        if not entries:
            raise ConfigError("saes: nothing to evaluate")
        for e in entries if is_tl else ():
            check_tl_hook(e.hook)
        records = run_pipeline(lm, model_name or lm.name, entries, prepared, cfg, progress=progress)
    return Evaluation(records)
