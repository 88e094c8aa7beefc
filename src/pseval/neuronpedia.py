"""Links from feature ids to Neuronpedia, when an SAE's Neuronpedia id is known."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pseval.ps_eval.record import PSEvalRecord

NEURONPEDIA = "https://www.neuronpedia.org"


def feature_url(neuronpedia_id: str | None, feature: int | None) -> str | None:
    """`https://www.neuronpedia.org/{neuronpedia_id}/{feature}`, or None when either is unknown."""
    if not neuronpedia_id or feature is None:
        return None
    return f"{NEURONPEDIA}/{neuronpedia_id.strip('/')}/{int(feature)}"


@lru_cache(maxsize=1)
def _saelens_directory() -> dict[str, Any] | None:
    """SAELens' release directory when sae_lens is installed (read once), else None."""
    try:
        from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    except ImportError:
        return None
    try:
        return dict(get_pretrained_saes_directory())
    except Exception:  # a broken or changed SAELens install costs the links, never the report
        return None


def release_neuronpedia_id(release: str | None, sae_id: str | None) -> str | None:
    """The Neuronpedia id SAELens' release directory gives an SAE of a release, when sae_lens is installed."""
    if not release or not sae_id:
        return None
    entry = (_saelens_directory() or {}).get(release)
    ids = getattr(entry, "neuronpedia_id", None) or {}
    found = ids.get(sae_id) if isinstance(ids, dict) else None
    return found if isinstance(found, str) and found else None


def neuronpedia_id(record: PSEvalRecord) -> str | None:
    """The record's SAE's Neuronpedia id: its SAELens metadata (sae_cfg_dict.metadata.neuronpedia_id), else the
    entry of its SAELens release; None when neither knows one."""
    meta = (record.sae_cfg_dict or {}).get("metadata") or {}
    own = meta.get("neuronpedia_id") if isinstance(meta, dict) else None
    if isinstance(own, str) and own:
        return own
    return release_neuronpedia_id(record.sae_lens_release_id, record.sae_lens_id)
