"""The one SAE resolver: an SAE spec, path or object at a hook becomes a scored entry (`SAEEntry`).

`pseval eval`, `pseval inspect`, `pseval.evaluate`, SAEBench's `run_eval`, sweeps and the demo all make their entries
here, so an SAE gets the same name, hook, fingerprint and SAELens ids whichever way it came in, and the identity
baseline (the model's own neurons) is resolved in one place.

SAE specs become lazy entries: the resolver reads each SAE's config and shapes (on the meta device, no weights), and
the pipeline loads each SAE when it scores it and frees it after. A `--sae` value may name many SAEs (a glob, a
SAELens regex, a list file: pseval.saes.selection).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pseval.errors import ConfigError
from pseval.models.loading import LoadedModel
from pseval.models.widths import hook_widths
from pseval.ps_eval.pipeline import SAEEntry
from pseval.run_keys import key_id
from pseval.saes.base import SAE
from pseval.saes.conventions import check_default_convention, set_convention
from pseval.saes.fingerprint import files_fingerprint, tensors_fingerprint, training_fingerprint
from pseval.saes.identity import identity_sae, is_identity_spec
from pseval.saes.loading import load_sae, peek_sae, sae_display_name
from pseval.saes.objects import adapt_sae
from pseval.saes.selection import expand_spec

# Where `pseval eval` reads the identity baseline when no --hook is given.
DEFAULT_HOOK = "blocks.3.hook_resid_post"


def identity_entry(d_model: int, model_name: str | None, hook: str, device: str | torch.device = "cpu") -> SAEEntry:
    """The identity baseline at a hook: the model's own neurons as latents."""
    sae = identity_sae(d_model, model_name, hook).to(device)
    return SAEEntry.of(sae, "identity", hook, "identity", f"identity:{d_model}")


def trained_entry(sae: SAE, label: str, hook: str, folder: str | Path, key: Mapping[str, Any],
                  **known: Any) -> SAEEntry:
    """An SAE pseval trained: named by its label, fingerprinted by its training key, with what training measured
    (`training`, `reconstruction`, `loss_recovered`)."""
    return SAEEntry.of(sae, label, hook, str(folder), training_fingerprint(key_id(key)), **known)


def _saelens_ids(spec: str) -> dict[str, str | None]:
    """The SAELens release and id of a `saelens:` spec (None, None otherwise), as the record keeps them."""
    release, sae_id = (spec.removeprefix("saelens:").split("/", 1) if spec.startswith("saelens:") else (None, None))
    return {"sae_lens_release_id": release, "sae_lens_id": sae_id}


def spec_loader(spec: str, convention: str | None, dtype: torch.dtype, device: str | torch.device
                ) -> Callable[[], SAE]:
    """What loads a spec's SAE when it is scored: its weights in `dtype` on `device`, its convention decided as the
    peek's was."""
    def load() -> SAE:
        sae = load_sae(spec, dtype=dtype, device=device)
        set_convention(sae, convention, spec)
        return sae
    return load


def spec_fingerprint(spec: str, load: Callable[[], SAE]) -> str:
    """A file SAE's fingerprint is its files' content (read in chunks); an SAE from elsewhere (hf://, saelens:) is
    loaded once to hash its tensors, and freed."""
    if Path(spec).exists():
        return files_fingerprint(spec)
    sae = load()
    fingerprint = tensors_fingerprint(sae)
    del sae
    gc.collect()
    return fingerprint


def spec_hooks(spec: str, recorded: str | None, hooks: Sequence[str], default_hook: str | None) -> list[str]:
    """The hooks an SAE is scored at: the given ones, else the hook it records, else `default_hook` for the identity;
    an SAE that records none is refused rather than scored at a guessed hook."""
    if hooks:
        return list(dict.fromkeys(hooks))
    if recorded:
        return [recorded]
    if is_identity_spec(spec) and default_hook is not None:
        return [default_hook]
    what = ("the identity SAE reads no hook of its own" if is_identity_spec(spec) else
            "the SAE records no hook point (neither in its config nor in its path)")
    raise ConfigError(f"--sae {spec}: {what}; pass --hook (hook= in Python), e.g. {DEFAULT_HOOK}")


def named(saes: Any) -> list[tuple[str | None, Any]]:
    """(name or None, SAE spec or object) for one SAE, a list of them or a {name: SAE} mapping."""
    if isinstance(saes, Mapping):
        return [(str(k), v) for k, v in saes.items()]
    if isinstance(saes, (str, Path)) or not isinstance(saes, Sequence):
        return [(None, saes)]
    return [(None, s) for s in saes]


def resolve_saes(saes: Any, lm: LoadedModel, hooks: Sequence[str] = (), *, convention: str | None = None,
                 dtype: torch.dtype = torch.float32, default_hook: str | None = None) -> list[SAEEntry]:
    """Entries for SAE specs, paths and objects (one, a list or a {name: SAE} mapping), each at the given hooks or
    at the hook it records; spec SAEs are lazy (loaded when scored, on the model's device in `dtype`), objects are
    used as given. A spec may name many SAEs (pseval.saes.selection). `convention` is the activation convention of
    SAEs whose config does not decide it (a file SAE, or a plain module). Names that collide at one hook are
    numbered."""
    entries: list[SAEEntry] = []
    seen: set[tuple[str, str]] = set()
    for name, s in named(saes):
        if isinstance(s, (str, Path)):
            for spec in expand_spec(str(s)):
                entries.extend(_spec_entries(spec, name, lm, hooks, convention, dtype, default_hook, seen))
        else:
            object_hooks: list[str | None] = [*hooks] or [None]  # None: the hook the object records
            for object_hook in object_hooks:
                a = adapt_sae(s, object_hook, name, convention, lm.activation_convention,
                              lambda h: hook_widths(lm, [h])[h])
                entries.append(SAEEntry.of(a.sae, a.name, a.hook, a.source, a.fingerprint))
    _number_collisions(entries)
    return entries


def _spec_entries(spec: str, name: str | None, lm: LoadedModel, hooks: Sequence[str], convention: str | None,
                  dtype: torch.dtype, default_hook: str | None, seen: set[tuple[str, str]]) -> list[SAEEntry]:
    """The entries of one SAE spec at its hooks: the identity in memory (it is the model's width), any other SAE
    lazy, its config checked now from a weightless peek."""
    peek = None if is_identity_spec(spec) else peek_sae(spec, dtype)
    if peek is not None:  # no guessed convention: the SAE's config or `convention` decides, or refuse
        set_convention(peek, convention, spec)
        check_default_convention(peek, lm.model, spec)
    load = spec_loader(spec, convention, dtype, lm.device)
    fingerprint: str | None = None
    out = []
    for hook in spec_hooks(spec, None if peek is None else peek.cfg.metadata.hook_name, hooks, default_hook):
        if (spec, hook) in seen:  # one SAE named twice at one hook is one cell
            continue
        seen.add((spec, hook))
        if peek is None:
            entry = identity_entry(hook_widths(lm, [hook])[hook], lm.name, hook, lm.device)
        else:
            fingerprint = fingerprint or spec_fingerprint(spec, load)
            entry = SAEEntry.lazy(peek, load, sae_display_name(spec), hook, spec, fingerprint, **_saelens_ids(spec))
        if name is not None:
            entry.name = name
        out.append(entry)
    return out


def _number_collisions(entries: list[SAEEntry]) -> None:
    """Two SAEs of one name at one hook (two objects of one class, two folders of one name) would share a row
    label: number them."""
    counts: dict[tuple[str, str], int] = {}
    for e in entries:
        counts[e.name, e.hook] = counts.get((e.name, e.hook), 0) + 1
    seen: dict[tuple[str, str], int] = {}
    for e in entries:
        if counts[e.name, e.hook] > 1:
            seen[e.name, e.hook] = seen.get((e.name, e.hook), 0) + 1
            e.name = f"{e.name}#{seen[e.name, e.hook]}"
