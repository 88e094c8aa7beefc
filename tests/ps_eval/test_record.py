"""The record's typed categories cover every count the pipeline produces (one source of truth each)."""

from __future__ import annotations

from typing import get_args

from pseval.data.text import NOTE_KEYS
from pseval.models.readout import DropReason
from pseval.ps_eval.record import CountMetrics, DataNotes, PSEvalRecord


def test_every_drop_reason_and_data_note_has_a_field():
    assert {f"dropped_{r}" for r in get_args(DropReason)} <= set(CountMetrics.model_fields)
    assert set(DataNotes.model_fields) == set(NOTE_KEYS)


def test_every_field_is_titled_and_described():
    def models(m, seen):
        if m in seen:
            return
        seen.add(m)
        for f in m.model_fields.values():
            for a in (f.annotation, *get_args(f.annotation)):
                for b in (a, *get_args(a)):
                    if isinstance(b, type) and hasattr(b, "model_fields"):
                        models(b, seen)
    seen: set = set()
    models(PSEvalRecord, seen)
    assert len(seen) >= 10
    for m in seen:
        for name, f in m.model_fields.items():
            assert f.title, (m.__name__, name)
            assert f.description is not None, (m.__name__, name)
