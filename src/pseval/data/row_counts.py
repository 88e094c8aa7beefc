"""How many rows a loader read from a dataset's files, how many it kept, and every drop by reason.

In the official layouts (WiC, CoarseWSD-20) a row is never dropped: the dataset's token index is authoritative, and a
span that does not look like the target is only noted (`span_not_target` in the pair set's notes). Tables (jsonl,
csv, ...) refuse a bad row with an error instead. So `dropped` stays empty today; it exists so that any future drop
is counted and shown, never hidden behind "N of N pairs".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RowCounts:
    """Rows read from the dataset's files, rows kept, and rows dropped by reason (what `read - kept` consists of)."""

    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    unit: str = "rows"  # what a row is: "lines" of a WiC file, "sentences" of CoarseWSD-20, "rows" of a table

    def add(self, kept: bool, reason: str | None = None) -> None:
        """Count one row read, kept or dropped for `reason`."""
        self.read += 1
        if kept:
            self.kept += 1
        else:
            key = reason or "unknown"
            self.dropped[key] = self.dropped.get(key, 0) + 1

    def summary(self) -> str:
        """One line for the eval log: read, kept and every drop by reason."""
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return f"{self.unit} read {self.read}, kept {self.kept}, dropped: {drops}"

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form (for the record)."""
        return {"unit": self.unit, "read": self.read, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}
