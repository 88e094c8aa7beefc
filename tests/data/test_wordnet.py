"""WordNet parsing, inflection-aware lemma matching and the pair builder, on the real WordNet and on made files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pseval.data.morphy import base_forms
from pseval.data.pairs import label_counts
from pseval.data.wordnet import find_wordnet, load_exceptions, parse_data_line
from pseval.data.wordnet_pairs import WordNetPairOptions, find_lemma_span, wordnet_pairs
from pseval.errors import DataFormatError, MissingResourceError

LINE = ('00169305 04 n 01 bank 0 003 @ 00170844 n 0000 + 02039431 v 0101 ~ 00169522 n 0000 | a flight maneuver; '
        'aircraft tips laterally about its longitudinal axis (especially in turning); "the plane went into a steep '
        'bank"  ')

# A minimal WordNet: 'bank' has two noun senses in different lexicographer files, and one verb sense.
MINI = {
    "data.noun": [
        "  1 This software and database is being provided",
        '09213565 17 n 01 bank 0 000 | sloping land; "they pulled the canoe up on the bank"; "he sat on the bank '
        'of the river"',
        '08420278 14 n 02 bank 0 depository_financial_institution 0 000 | a financial institution; "he cashed a '
        'check at the bank"; "that bank holds the mortgage on my home"; "banks are closed today"',
    ],
    "data.verb": ['02039431 38 v 01 bank 0 000 01 + 02 00 | tip laterally; "the pilot had to bank the aircraft"'],
    "data.adj": ['00001740 00 a 01 able(a) 0 000 | having ability; "able to swim"; "she was able to program"'],
    "data.adv": [],
    "verb.exc": ["banked bank"],
}


def _mini(tmp: Path) -> Path:
    d = tmp / "wn"
    d.mkdir()
    for name, lines in MINI.items():
        (d / name).write_text("\n".join(lines) + "\n")
    return d


def test_parse_data_line():
    syn = parse_data_line(LINE, "data.noun", 1)
    assert syn.offset == 169305 and syn.pos == "n" and syn.lex_filenum == 4
    assert syn.lemmas == ("bank",)
    assert syn.examples == ("the plane went into a steep bank",)
    assert syn.definition == "a flight maneuver"
    with pytest.raises(DataFormatError, match="data.noun, line 7"):
        parse_data_line("0001 xx n", "data.noun", 7)


def test_base_forms_rules_and_exceptions():
    assert "carry" in base_forms("carries", "v")
    assert "box" in base_forms("boxes", "n")
    assert "fisherman" in base_forms("fishermen", "n")
    assert "abet" in base_forms("abetted", "v", {"v": {"abetted": ("abet",)}})
    assert "abet" not in base_forms("abetted", "v")


def test_find_lemma_span_inflected():
    text = "Sound carries well"
    assert find_lemma_span("carry", "v", text) == (6, 13)
    assert find_lemma_span("carry", "r", text) is None  # adverbs have no detachment rules
    assert find_lemma_span("well", "r", text) == (14, 18)


def test_pairs_on_mini_wordnet(tmp_path):
    src = find_wordnet(_mini(tmp_path))
    pairs = wordnet_pairs(WordNetPairOptions(pos=("n",)), src)
    same = [p for p in pairs if p.same_sense]
    diff = [p for p in pairs if not p.same_sense]
    assert len(same) == 1 + 3  # C(2,2) + C(3,2)
    assert len(diff) == 2 * 3
    for p in pairs:
        assert p.context_1[p.span_1[0]:p.span_1[1]].lower().startswith("bank")
    assert any(p.context_2[p.span_2[0]:p.span_2[1]] == "banks" for p in pairs)  # inflection found
    # coarse: the two senses sit in different lexicographer files (17 vs 14), so all stay
    assert len(wordnet_pairs(WordNetPairOptions(pos=("n",), coarse=True), src)) == len(pairs)
    capped = wordnet_pairs(WordNetPairOptions(pos=("n",), max_pairs_per_lemma=2), src)
    assert label_counts(capped) == {"same": 2, "different": 2}
    adj = wordnet_pairs(WordNetPairOptions(pos=("a",)), src)
    assert adj and adj[0].target == "able"  # the (a) marker is stripped
    assert load_exceptions(src)["v"]["banked"] == ("bank",)


def test_nltk_zip_layout(tmp_path):
    d = _mini(tmp_path)
    z = tmp_path / "wordnet.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in d.iterdir():
            zf.write(f, f"wordnet/{f.name}")
    src = find_wordnet(z)
    assert len(wordnet_pairs(WordNetPairOptions(pos=("n",)), src)) == 10


def test_missing_and_incomplete(tmp_path, monkeypatch):
    with pytest.raises(MissingResourceError, match="apt-get install wordnet-base"):
        find_wordnet(tmp_path / "absent")
    d = _mini(tmp_path)
    (d / "data.verb").unlink()
    with pytest.raises(MissingResourceError, match="missing data.verb"):
        find_wordnet(d)


@pytest.mark.slow
def test_real_wordnet_pair_counts(wordnet_source):
    pairs = wordnet_pairs(source=wordnet_source)
    counts = label_counts(pairs)
    # About 11k same-sense and 80-90k different-sense pairs over all POS.
    assert 10_000 < counts["same"] < 13_000
    assert 75_000 < counts["different"] < 95_000
    coarse = label_counts(wordnet_pairs(WordNetPairOptions(coarse=True), wordnet_source))
    assert coarse["same"] == counts["same"] and coarse["different"] < counts["different"]
    a = wordnet_pairs(WordNetPairOptions(pos=("v",), max_pairs_per_lemma=3, equal_classes=True, seed=1), wordnet_source)
    b = wordnet_pairs(WordNetPairOptions(pos=("v",), max_pairs_per_lemma=3, equal_classes=True, seed=1), wordnet_source)
    assert a == b and label_counts(a)["same"] == label_counts(a)["different"]
    assert all(p.pos == "v" for p in a)



def test_definitions_corpus_leaves_out_definitions_that_are_usage_examples():
    """Revision 2 of wordnet-definitions: no text of it is a usage example (the WordNet pairs score those), and only
    those definitions go; the revision keys the stream, other corpora keep their keys."""
    from pseval.data.corpus import corpus_revision, wordnet_texts
    from pseval.data.pairs import POS_TAGS
    from pseval.data.wordnet import find_wordnet, iter_synsets

    def norm(t: str) -> str:
        return " ".join(t.lower().split())

    src = find_wordnet()
    synsets = [syn for pos in POS_TAGS for syn in iter_synsets(src, pos)]
    examples = {norm(e) for syn in synsets for e in syn.examples}
    definitions = [syn.definition for syn in synsets if syn.definition]
    corpus = list(wordnet_texts(include_examples=False))
    assert not {norm(t) for t in corpus} & examples
    leaked = [d for d in definitions if norm(d) in examples]
    assert "fly a kite" in {norm(d) for d in leaked}  # a definition ("fly a kite") that is also a usage example
    assert len(corpus) == len(definitions) - len(leaked) and 0 < len(leaked) < 100
    assert corpus_revision("wordnet-definitions") == {"corpus_revision": 2}
    assert corpus_revision("wordnet") == {} and corpus_revision("file:x.txt") == {}
