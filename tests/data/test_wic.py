"""The WiC loader on the real dev split and on malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pseval.data.wic import load_wic
from pseval.errors import DataFormatError, MissingResourceError

GOOD = "board\tN\t2-2\tRoom and board .\tHe nailed boards across the windows .\n"


def _write(tmp: Path, data: str | bytes, gold: str | None = "F\n", split: str = "dev") -> Path:
    d = tmp / split
    d.mkdir()
    (d / f"{split}.data.txt").write_bytes(data if isinstance(data, bytes) else data.encode())
    if gold is not None:
        (d / f"{split}.gold.txt").write_text(gold)
    return d


def test_real_dev_split(wic_dev):
    pairs = load_wic(wic_dev)
    assert len(pairs) == 638
    assert sum(p.same_sense for p in pairs) == 319
    for p in pairs:
        assert p.context_1.split() == p.context_1.split(" ")  # single spaces
    # Every span covers exactly the token named by the index column.
    lines = (wic_dev / "dev.data.txt").read_text().splitlines()
    for p, line in zip(pairs, lines, strict=True):
        _, _, idx, s1, s2 = line.split("\t")
        i1, i2 = map(int, idx.split("-"))
        assert p.context_1[p.span_1[0]:p.span_1[1]] == s1.split()[i1]
        assert p.context_2[p.span_2[0]:p.span_2[1]] == s2.split()[i2]
    inflected = [p for p in pairs if p.context_2[p.span_2[0]:p.span_2[1]].lower() != p.target]
    assert inflected, "WiC dev has inflected targets"
    assert pairs[0].source_id == "wic:dev:1" and pairs[0].pos == "n"


def test_good_file(tmp_path):
    (p,) = load_wic(_write(tmp_path, GOOD))
    assert p.context_2[p.span_2[0]:p.span_2[1]] == "boards"
    assert not p.same_sense


@pytest.mark.parametrize(("data", "gold", "match"), [
    ("board\tN\t2-2\tRoom and board .\n", "F\n", "line 1.*5 tab-separated"),
    ("board\tN\t9-2\tRoom and board .\tHe nailed boards .\n", "F\n", "line 1.*sentence_1.*out of range"),
    ("board\tN\tx-2\tRoom and board .\tHe nailed boards .\n", "F\n", "line 1.*index"),
    ("board\tQ\t2-2\tRoom and board .\tHe nailed boards .\n", "F\n", "line 1.*PoS"),
    (GOOD + "\n" + GOOD, "F\nT\nT\n", "line 2.*empty"),
    (GOOD, "X\n", "gold.txt, line 1.*'X'"),
    (GOOD + GOOD, "F\n", "1 gold labels for 2 data lines"),
])
def test_malformed_names_file_and_line(tmp_path, data, gold, match):
    with pytest.raises(DataFormatError, match=match):
        load_wic(_write(tmp_path, data, gold))


def test_non_utf8(tmp_path):
    with pytest.raises(DataFormatError, match=r"dev.data.txt, line 2: not valid UTF-8"):
        load_wic(_write(tmp_path, GOOD.encode() + b"caf\xe9\tN\t0-0\tx\ty\n", "F\nF\n"))


def test_missing_gold_and_folder(tmp_path):
    with pytest.raises(MissingResourceError, match="gold"):
        load_wic(_write(tmp_path, GOOD, gold=None))
    (p,) = load_wic(tmp_path / "dev", require_gold=False)
    assert p.same_sense  # unlabelled
    with pytest.raises(MissingResourceError, match="not found"):
        load_wic(tmp_path / "nope")
