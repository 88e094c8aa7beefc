"""Official layouts never drop a row: every line of each WiC split and every CoarseWSD-20 sentence is read and kept,
in file order, so `--protocol reference` balancing scans the same raw rows as the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from pseval.data.balance import balance_pairs
from pseval.data.sources import load_pair_set
from tests.conftest import SHARED, WIC_DEV, WIC_TRAIN, require_shared


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("split", ["train", "dev"])
def test_every_wic_line_is_a_pair_in_file_order(split):
    folder = require_shared(WIC_TRAIN if split == "train" else WIC_DEV)
    ps = load_pair_set(f"wic:{folder}")
    n = _lines(folder / f"{split}.data.txt")
    assert n == _lines(folder / f"{split}.gold.txt")
    assert (ps.rows.unit, ps.rows.read, ps.rows.kept, ps.rows.dropped) == ("lines", n, n, {})
    assert [p.source_id for p in ps.pairs] == [f"wic:{split}:{i}" for i in range(1, n + 1)]
    gold = (folder / f"{split}.gold.txt").read_text().split()
    assert [p.same_sense for p in ps.pairs] == [g == "T" for g in gold]


def test_wic_train_particle_row_is_kept_and_noted():
    ps = load_pair_set(f"wic:{require_shared(WIC_TRAIN)}")
    p = ps.pairs[1556]  # train line 1557: the index points at the particle of "called round"
    assert p.source_id == "wic:train:1557" and p.target == "call"
    assert p.context_1[p.span_1[0]:p.span_1[1]] == "round"
    assert ps.notes["span_not_target"] == 1


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_coarsewsd_sentence_is_read_and_kept(split):
    root = require_shared(SHARED / "data" / "coarsewsd20")
    ps = load_pair_set(f"coarsewsd:{root}:split={split}")
    n = sum(_lines(d / f"{split}.data.txt") for d in root.iterdir() if (d / "classes_map.txt").is_file())
    assert (ps.rows.unit, ps.rows.read, ps.rows.kept, ps.rows.dropped) == ("sentences", n, n, {})


def test_reference_balancing_scans_the_raw_rows_of_the_file():
    # The reference looks at the first cnt_0 label-1 rows of the file: with no row lost at load, pseval's indices
    # are the file's rows, so the window is the file's window.
    ps = load_pair_set(f"wic:{require_shared(WIC_TRAIN)}")
    labels = [p.same_sense for p in ps.pairs]
    valid = [True] * len(labels)
    valid[1556] = False  # say the particle row fails to read: it still takes its place in the scan
    kept = balance_pairs(labels, valid, "reference")
    n0 = sum(1 for y, v in zip(labels, valid, strict=True) if v and not y)  # cnt_0: valid label-0 rows
    window = [i for i, y in enumerate(labels) if y][:n0]
    assert set(kept) == ({i for i, y in enumerate(labels) if not y} | set(window)) - {1556}
    assert len(labels) == 5428  # every line of train.data.txt, so `window` is the reference's
