"""The CoarseWSD-20 loader: exact pairs on a hand-made folder, and counts, balance, cap and spans on the real data."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from pseval.data.coarsewsd import DEFAULT_MAX_PER_WORD, CoarseWSDOptions, coarsewsd_pairs, load_coarsewsd_instances
from pseval.data.pairs import label_counts
from pseval.data.row_counts import RowCounts
from pseval.data.sources import load_pair_set, normalise_spec
from pseval.data.text import clean_text
from tests.conftest import SHARED, require_shared
from tests.data.builders import BAT, PEN, write_coarsewsd


@pytest.fixture(scope="module")
def coarsewsd_root() -> Path:
    return require_shared(SHARED / "data" / "coarsewsd20")


def _by_id(pairs):
    return {p.source_id: p for p in pairs}


def test_hand_made_folder_gives_exactly_the_pairs_worked_out_by_hand(tmp_path):
    root = write_coarsewsd(tmp_path / "c20", {"bat": BAT, "pen": PEN})
    ps = load_pair_set(f"coarsewsd:{root}:max_per_word=10")
    # bat: class 0 = {line 1}, class 1 = {lines 2, 3, 4}: 3 same-sense pairs (2-3, 2-4, 3-4) and 3 different-sense
    # pairs (1-2, 1-3, 1-4); the cap (10) keeps all 3 of each. pen: one sentence per class, so no same-sense pair
    # and, balanced, no pair at all.
    expected = {"coarsewsd:test:bat:1-2": False, "coarsewsd:test:bat:1-3": False, "coarsewsd:test:bat:1-4": False,
                "coarsewsd:test:bat:2-3": True, "coarsewsd:test:bat:2-4": True, "coarsewsd:test:bat:3-4": True}
    assert [p.source_id for p in ps.pairs] == list(expected)  # sorted by (i, j)
    assert {p.source_id: p.same_sense for p in ps.pairs} == expected
    got = _by_id(ps.pairs)
    p14 = got["coarsewsd:test:bat:1-4"]
    assert p14.context_1 == "the brown bat flew ." and p14.span_1 == (10, 13)
    assert p14.context_2 == "bat handles wear out" and p14.span_2 == (0, 3)
    p23 = got["coarsewsd:test:bat:2-3"]
    assert (p23.context_1, p23.span_1) == ("a bat for cricket", (2, 5))
    assert (p23.context_2, p23.span_2) == ("he swung the bat hard", (13, 16))
    assert all(p.target == "bat" and p.pos == "n" for p in ps.pairs)
    assert ps.spec == f"coarsewsd:{root}:split=test,max_per_word=10"


def test_cap_is_per_label_and_seeded(tmp_path):
    root = write_coarsewsd(tmp_path / "c20", {"bat": BAT, "pen": PEN})
    same_all = {"coarsewsd:test:bat:2-3", "coarsewsd:test:bat:2-4", "coarsewsd:test:bat:3-4"}
    diff_all = {"coarsewsd:test:bat:1-2", "coarsewsd:test:bat:1-3", "coarsewsd:test:bat:1-4"}
    picks = set()
    for seed in range(12):
        pairs = coarsewsd_pairs(root, CoarseWSDOptions(max_per_word=2, seed=seed))
        assert pairs == coarsewsd_pairs(root, CoarseWSDOptions(max_per_word=2, seed=seed))  # deterministic
        same = {p.source_id for p in pairs if p.same_sense}
        diff = {p.source_id for p in pairs if not p.same_sense}
        assert len(same) == len(diff) == 2 and same <= same_all and diff <= diff_all
        picks.add(frozenset(same | diff))
    assert len(picks) > 1  # the seed changes the sample


def test_text_rules_are_counted_per_pair(tmp_path):
    ring = ({"0": "ring_jewellery", "1": "ring_boxing"}, {"test": [
        (1, "the \uff52\uff49\uff4e\uff47 was gold", 0),  # fullwidth "ring"
        (1, "a ring cafe\u0301", 1),  # NFD e + combining acute
        (2, "into the r\u200bing", 1),  # zero-width space inside the word
        (0, "ring bells", 1),
    ]})
    root = write_coarsewsd(tmp_path / "c20", {"ring": ring}, newline="\r\n")
    ps = load_pair_set(f"coarsewsd:{root}")
    assert len(ps.pairs) == 6
    for p in ps.pairs:
        assert p.context_1[p.span_1[0]:p.span_1[1]] == "ring" == p.context_2[p.span_2[0]:p.span_2[1]]
    assert ps.notes["fullwidth_folded"] == 3  # the pairs holding line 1
    assert ps.notes["nfc_normalised"] == 3  # ... line 2
    assert ps.notes["zero_width_removed"] == 3  # ... line 3
    assert "a ring café" in {p.context_2 for p in ps.pairs}


def test_a_sentence_whose_index_misses_the_word_is_kept_and_noted(tmp_path):
    bat = (BAT[0], {"test": [*BAT[1]["test"], (0, "the bat again", 0)]})  # index 0 points at "the"
    root = write_coarsewsd(tmp_path / "c20", {"bat": bat})
    notes: dict[str, int] = {}
    rows = RowCounts()
    inst = load_coarsewsd_instances(root, "bat", "test", notes, rows)
    assert [i.line for i in inst] == [1, 2, 3, 4, 5] and notes == {"span_not_target": 1}
    assert inst[-1].context[inst[-1].span[0]:inst[-1].span[1]] == "the"  # read where the index points
    assert (rows.read, rows.kept, rows.dropped) == (5, 5, {})


def test_words_option_selects_without_changing_a_words_pairs(coarsewsd_root):
    full = load_pair_set(f"coarsewsd:{coarsewsd_root}:max_per_word=7")
    two = load_pair_set(f"coarsewsd:{coarsewsd_root}:max_per_word=7,words=yard+bank")
    assert two.spec.endswith("words=bank+yard")
    assert two.pairs == [p for p in full.pairs if p.target in ("bank", "yard")]


def _gold(root: Path, word: str, split: str) -> list[str]:
    return (root / word / f"{split}.gold.txt").read_text().split()


def _sentences(root: Path, word: str, split: str) -> list[str]:
    return [clean_text(" ".join(line.split("\t", 1)[1].split()))[0]
            for line in (root / word / f"{split}.data.txt").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("split", ["test", "train"])
def test_real_data_counts_balance_labels_and_spans(coarsewsd_root, split):
    ps = load_pair_set(f"coarsewsd:{coarsewsd_root}:split={split}")
    words = sorted(d.name for d in coarsewsd_root.iterdir() if (d / "classes_map.txt").is_file())
    assert len(words) == 20
    per_word = Counter((p.target, p.same_sense) for p in ps.pairs)
    for w in words:
        sizes = Counter(_gold(coarsewsd_root, w, split)).values()
        n_same = sum(math.comb(n, 2) for n in sizes)
        n_diff = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
        n = min(DEFAULT_MAX_PER_WORD, n_same, n_diff)
        assert per_word[(w, True)] == per_word[(w, False)] == n, w
    assert label_counts(ps.pairs)["same"] == label_counts(ps.pairs)["different"]
    assert len({p.source_id for p in ps.pairs}) == len(ps.pairs)
    gold = {w: _gold(coarsewsd_root, w, split) for w in words}
    sents = {w: _sentences(coarsewsd_root, w, split) for w in words}
    for p in ps.pairs:
        kind, sp, w, lines = p.source_id.split(":")
        i, j = map(int, lines.split("-"))
        assert (kind, sp, w) == ("coarsewsd", split, p.target) and i < j
        assert p.same_sense == (gold[w][i - 1] == gold[w][j - 1])  # same class = same sense
        assert p.context_1[p.span_1[0]:p.span_1[1]] == w == p.context_2[p.span_2[0]:p.span_2[1]]
        # the contexts are the file's sentences (re-spaced; the few fullwidth characters folded)
        assert (p.context_1, p.context_2) == (sents[w][i - 1], sents[w][j - 1])


def test_real_data_cap_and_determinism(coarsewsd_root):
    a = load_pair_set(f"coarsewsd:{coarsewsd_root}:max_per_word=5,seed=3")
    b = load_pair_set(f"coarsewsd:{coarsewsd_root}/:seed=3,max_per_word=5,split=test")
    c = load_pair_set(f"coarsewsd:{coarsewsd_root}:max_per_word=5,seed=4")
    assert a.spec == b.spec and a.pairs == b.pairs
    assert [p.source_id for p in a.pairs] != [p.source_id for p in c.pairs]
    assert Counter(p.target for p in a.pairs) == Counter(p.target for p in c.pairs)
    assert set(Counter(p.target for p in a.pairs).values()) == {10}


def test_real_classes_map_names_the_senses(coarsewsd_root):
    inst = load_coarsewsd_instances(coarsewsd_root, "apple", "test")
    names = json.loads((coarsewsd_root / "apple" / "classes_map.txt").read_text())
    assert {i.sense_name for i in inst} == set(names.values())
    assert len(inst) == len(_gold(coarsewsd_root, "apple", "test"))
    assert normalise_spec(f"coarsewsd:{coarsewsd_root}") == f"coarsewsd:{coarsewsd_root.resolve()}:split=test"
