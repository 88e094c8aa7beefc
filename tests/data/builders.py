"""Small hand-made data folders in the official layouts, for tests."""

from __future__ import annotations

import json
from pathlib import Path

# word -> (class map, {split: [(token index, sentence, class)]})
Word = tuple[dict[str, str], dict[str, list[tuple[int, str, int]]]]


def write_coarsewsd(root: Path, words: dict[str, Word], newline: str = "\n") -> Path:
    """A CoarseWSD-20 root with one folder per word."""
    root.mkdir(parents=True, exist_ok=True)
    for word, (classes, splits) in words.items():
        d = root / word
        d.mkdir(exist_ok=True)
        (d / "classes_map.txt").write_text(json.dumps(classes))
        for split, rows in splits.items():
            (d / f"{split}.data.txt").write_bytes("".join(f"{i}\t{s}{newline}" for i, s, _ in rows).encode())
            (d / f"{split}.gold.txt").write_bytes("".join(f"{c}{newline}" for _, _, c in rows).encode())
    return root


BAT: Word = ({"0": "bat_animal", "1": "bat_club"}, {"test": [
    (2, "the brown bat flew .", 0),
    (1, "a bat for cricket", 1),
    (3, "he swung the bat hard", 1),
    (0, "bat  handles \u00a0 wear out", 1),  # double and non-breaking spaces: indices count whitespace-split tokens
]})
PEN: Word = ({"0": "pen_writing", "1": "pen_enclosure"}, {"test": [(1, "a pen leaked", 0), (2, "into the pen", 1)]})


def write_wic(folder: Path, data: str | bytes, gold: str | bytes = "F\n") -> Path:
    """A WiC split folder named after its split."""
    folder.mkdir(parents=True, exist_ok=True)
    split = folder.name
    (folder / f"{split}.data.txt").write_bytes(data if isinstance(data, bytes) else data.encode())
    (folder / f"{split}.gold.txt").write_bytes(gold if isinstance(gold, bytes) else gold.encode())
    return folder
