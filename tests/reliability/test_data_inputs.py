"""Bad data inputs (files, spans, specs) and the documented text rules: every error names its file/line/field and the
value; every rule that changes text is counted; data specs either parse to one canonical form or raise a pseval error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pseval.data.rows import load_table, pair_from_row
from pseval.data.sources import KINDS, load_pair_set, load_pairs, normalise_spec
from pseval.data.text import NOTE_KEYS, clean_text
from pseval.data.wic import load_wic
from pseval.errors import ConfigError, DataFormatError, MissingResourceError, PsevalError
from tests.data.builders import BAT, PEN, write_coarsewsd, write_wic

ROW = {"target_word": "bank", "context_1": "the bank of the river", "context_2": "a bank loan", "label": 1}
WIC_LINE = "board\tN\t2-2\tRoom and board .\tHe nailed boards across the windows .\n"


def _jsonl(t: Path, *rows: object, raw: bytes | None = None) -> Path:
    p = t / "pairs.jsonl"
    p.write_bytes(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows).encode())
    return p


def _json(t: Path, text: str) -> Path:
    p = t / "pairs.json"
    p.write_text(text)
    return p


def _csv(t: Path, text: str | bytes) -> Path:
    p = t / "pairs.csv"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _row(**kw: object) -> dict:
    return {**ROW, **kw}


_C20_FILES = {"classes_map": "classes_map.txt", "test_data": "test.data.txt", "test_gold": "test.gold.txt"}


def _c20(t: Path, **files: str | bytes | None) -> Path:
    """The hand-made bat/pen root with some of bat's files replaced (None: removed)."""
    root = write_coarsewsd(t / "c20", {"bat": BAT, "pen": PEN})
    for name, content in files.items():
        p = root / "bat" / _C20_FILES[name]
        if content is None:
            p.unlink()
        else:
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def _c20_spec(t: Path, **files: str | bytes | None) -> str:
    return "coarsewsd:" + str(_c20(t, **files))


def _two_splits(t: Path) -> Path:
    d = t / "mine"
    write_wic(t / "a", WIC_LINE)
    d.mkdir()
    for name in ("a", "b"):
        (d / f"{name}.data.txt").write_text(WIC_LINE)
    return d


def _cases():
    """(id, action(tmp), error type, regex naming the file/line/field and the value)."""
    return [
        # --- encodings and file shapes ---
        ("utf16-bom-table", lambda t: load_table(_jsonl(t, raw=b"\xff\xfe" + json.dumps(ROW).encode("utf-16-le"))),
         DataFormatError, r"pairs\.jsonl, line 1: starts with a UTF-16 byte-order mark"),
        ("utf16-bom-wic", lambda t: load_wic(write_wic(t / "dev", b"\xff\xfe" + WIC_LINE.encode("utf-16-le"))),
         DataFormatError, r"dev\.data\.txt, line 1: starts with a UTF-16 byte-order mark"),
        ("bad-utf8-csv", lambda t: load_table(_csv(t, b"target_word,context_1,context_2,label\nbank,a,b,1\n"
                                                      b"caf\xe9,c,d,0\n")),
         DataFormatError, r"pairs\.csv, line 3: not valid UTF-8 \(byte \d+: b'\\xe9'\)"),
        ("bad-utf8-coarsewsd", lambda t: load_pairs(_c20_spec(t, test_data=b'2' + bytes([9]) + b'a b\xff c')),
         DataFormatError, r"bat/test\.data\.txt, line 1: not valid UTF-8"),
        ("json-scalar", lambda t: load_table(_json(t, "42")), DataFormatError,
         r"pairs\.json: the file holds a int \('42'\); expected a list of row objects"),
        ("json-string", lambda t: load_pairs(f"json:{_json(t, json.dumps('bank'))}"), DataFormatError,
         r"pairs\.json: the file holds a str \('bank'\)"),
        ("json-object", lambda t: load_table(_json(t, json.dumps({"rows": [ROW]}))), DataFormatError,
         r"pairs\.json: the file holds an object with keys \['rows'\]"),
        ("json-invalid", lambda t: load_table(_json(t, '[\n{"a": }\n]')), DataFormatError,
         r"pairs\.json, line 2: not valid JSON \(Expecting value, column 7\)"),
        ("json-row-scalar", lambda t: load_table(_json(t, json.dumps([ROW, 7]))), DataFormatError,
         r"pairs\.json, line 2: row is a int \('7'\), expected an object"),
        ("jsonl-row-list", lambda t: load_table(_jsonl(t, ROW, ["bank", "x"])), DataFormatError,
         r"pairs\.jsonl, line 2: row is a list \(\"\['bank', 'x'\]\"\)"),
        ("json-empty-list", lambda t: load_table(_json(t, "[]")), DataFormatError,
         r"pairs\.json: no pairs: the file holds no rows"),
        ("jsonl-blank", lambda t: load_table(_jsonl(t, raw=b"\n  \n")), DataFormatError,
         r"pairs\.jsonl: no pairs"),
        ("csv-header-only", lambda t: load_table(_csv(t, "target_word,context_1,context_2,label\r\n")),
         DataFormatError, r"pairs\.csv: no pairs"),
        ("csv-extra-field", lambda t: load_table(_csv(t, "target_word,context_1,context_2,label\n"
                                                         "bank,the bank,a bank,1,surplus\n")),
         DataFormatError, r"pairs\.csv, line 2: 1 more field\(s\) than the header's 4"),
        ("bom-csv-missing-value", lambda t: load_table(_csv(t, "\ufefftarget_word,context_1,context_2,label\n"
                                                               "bank,the bank,,1\n")),
         DataFormatError, r"pairs\.csv, line 2, field 'context_2': missing value"),
        ("target-not-text", lambda t: load_table(_jsonl(t, _row(target_word=5))), DataFormatError,
         r"pairs\.jsonl, line 1, field 'target_word': value 5 is a int, expected text"),
        ("jsonl-line-after-blank", lambda t: load_table(_jsonl(t, raw=(json.dumps(ROW) + "\n\n{oops\n").encode())),
         DataFormatError, r"pairs\.jsonl, line 3: not valid JSON"),
        # --- WiC files ---
        ("wic-empty-files", lambda t: load_wic(write_wic(t / "dev", "", "")), DataFormatError,
         r"dev\.data\.txt: no pairs: the file is empty"),
        ("wic-empty-spec", lambda t: load_pair_set(f"wic:{write_wic(t / 'dev', '', '')}"), DataFormatError,
         r"dev\.data\.txt: no pairs: the file is empty"),
        ("wic-empty-gold", lambda t: load_wic(write_wic(t / "dev", WIC_LINE, "")), DataFormatError,
         r"dev\.gold\.txt: 0 gold labels for 1 data lines"),
        ("wic-blank-word", lambda t: load_wic(write_wic(t / "dev", " " + WIC_LINE[5:])), DataFormatError,
         r"dev\.data\.txt, line 1, field 'word': missing value"),
        ("wic-several-splits", lambda t: normalise_spec(f"wic:{_two_splits(t)}"), DataFormatError,
         r"mine: several \*\.data\.txt files \(a\.data\.txt, b\.data\.txt\); name one"),
        # --- explicit spans ---
        ("span-not-target", lambda t: load_table(_jsonl(t, _row(target_word_location_1={"char_start": 0,
                                                                                        "char_end": 3}))),
         DataFormatError, r"pairs\.jsonl, line 1, field 'location_1': character span \(0, 3\) covers 'the', which "
                          r"is not the target 'bank'"),
        ("span-part-of-word", lambda t: load_table(_jsonl(t, _row(target_word_location_2={"char_start": 2,
                                                                                          "char_end": 5}))),
         DataFormatError, r"line 1, field 'location_2': character span \(2, 5\) covers 'ban'"),
        ("span-start-end-columns", lambda t: load_table(_csv(t, "target_word,context_1,context_2,label,start1,end1\n"
                                                                "bank,the bank of,a bank,1,9,11\n")),
         DataFormatError, r"pairs\.csv, line 2, field 'location_1': character span \(9, 11\) covers 'of'"),
        ("span-not-integer", lambda t: load_table(_jsonl(t, _row(target_word_location_1={"char_start": "five",
                                                                                         "char_end": 8}))),
         DataFormatError, r"line 1, field 'location_1': bad character offsets \(char_start='five' is not an "
                          r"integer\)"),
        ("span-float", lambda t: load_table(_jsonl(t, _row(target_word_location_1={"char_start": 4.5,
                                                                                  "char_end": 8}))),
         DataFormatError, r"field 'location_1': bad character offsets \(char_start=4\.5 is not an integer\)"),
        ("span-missing-end", lambda t: load_table(_jsonl(t, _row(target_word_location_1={"char_start": 4}))),
         DataFormatError, r"field 'location_1': bad character offsets \(char_end=None is not an integer\)"),
        ("span-bool", lambda t: load_table(_jsonl(t, _row(target_word_location_2={"char_start": True,
                                                                                  "char_end": 6}))),
         DataFormatError, r"field 'location_2': bad character offsets \(char_start=True is not an integer\)"),
        ("span-bad-json", lambda t: load_table(_csv(t, 'target_word,context_1,context_2,label,'
                                                       'target_word_location_1\nbank,the bank,a bank,1,"{oops"\n')),
         DataFormatError, r"pairs\.csv, line 2, field 'location_1': bad character offsets"),
        ("span-invisible-only", lambda t: load_table(_jsonl(t, _row(context_1="a \u200b bank",
                                                                    target_word_location_1={"char_start": 2,
                                                                                            "char_end": 3}))),
         DataFormatError, r"field 'location_1': span \(2, 3\) holds only invisible characters '\\u200b'"),
        ("span-splits-nfc", lambda t: load_table(_jsonl(t, _row(context_1="bank\u0301 x",
                                                                target_word_location_1={"char_start": 0,
                                                                                        "char_end": 4}))),
         DataFormatError, r"field 'location_1': span \(0, 4\) cuts through a character sequence that Unicode NFC "
                          r"composes"),
        # --- data specs ---
        ("spec-unknown-kind", lambda t: normalise_spec("wick:/x"), ConfigError,
         r"unknown data spec 'wick:/x' \(kind 'wick'\); expected one of: wic:PATH"),
        ("spec-empty", lambda t: normalise_spec("  "), ConfigError, r"empty data spec '  '"),
        ("spec-wic-no-path", lambda t: normalise_spec("wic:"), ConfigError,
         r"data spec 'wic:': wic needs a PATH"),
        ("spec-wic-bare", lambda t: normalise_spec("wic"), ConfigError,
         r"data spec 'wic': wic needs a PATH after the colon"),
        ("spec-wic-missing", lambda t: normalise_spec(f"wic:{t / 'nowhere'}"), MissingResourceError,
         r"nowhere: WiC split folder not found"),
        ("spec-wordnet-unknown-option", lambda t: normalise_spec("wordnet:lemma=3"), ConfigError,
         r"data spec 'wordnet:lemma=3': unknown wordnet option 'lemma'; known: pos, max_per_lemma"),
        ("spec-wordnet-not-kv", lambda t: normalise_spec("wordnet:balance"), ConfigError,
         r"wordnet option 'balance' is not key=value"),
        ("spec-wordnet-twice", lambda t: normalise_spec("wordnet:seed=1,seed=2"), ConfigError,
         r"wordnet option 'seed' is given twice"),
        ("spec-wordnet-zero-cap", lambda t: normalise_spec("wordnet:max_per_lemma=0"), ConfigError,
         r"wordnet option max_per_lemma=0 must be at least 1"),
        ("spec-wordnet-negative-cap", lambda t: load_pairs("wordnet:max_per_lemma=-1"), ConfigError,
         r"max_per_lemma=-1 must be at least 1"),
        ("spec-wordnet-not-integer", lambda t: normalise_spec("wordnet:max_per_lemma=lots"), ConfigError,
         r"max_per_lemma='lots' is not an integer"),
        ("spec-wordnet-bool", lambda t: normalise_spec("wordnet:equal_classes=maybe"), ConfigError,
         r"wordnet option equal_classes='maybe' is not a boolean"),
        ("spec-wordnet-pos", lambda t: normalise_spec("wordnet:pos=nxz"), ConfigError,
         r"wordnet option pos has unknown tag\(s\) \['x', 'z'\]"),
        ("spec-wordnet-empty-value", lambda t: normalise_spec("wordnet:pos="), ConfigError,
         r"wordnet option 'pos' has no value"),
        ("spec-wordnet-dir", lambda t: normalise_spec(f"wordnet:dir={t / 'nown'}"), MissingResourceError,
         r"wordnet dir .*nown not found"),
        ("spec-coarsewsd-split", lambda t: normalise_spec(f"coarsewsd:{_c20(t)}:split=dev"), ConfigError,
         r"coarsewsd option split='dev' is not one of train, test"),
        ("spec-coarsewsd-word", lambda t: normalise_spec(f"coarsewsd:{_c20(t)}:words=bat+kiwi"), ConfigError,
         r"coarsewsd option words='bat\+kiwi': unknown word\(s\) \['kiwi'\]; known: bat\+pen"),
        ("spec-coarsewsd-cap", lambda t: normalise_spec(f"coarsewsd:{_c20(t)}:max_per_word=0"), ConfigError,
         r"coarsewsd option max_per_word=0 must be at least 1"),
        ("spec-coarsewsd-option", lambda t: normalise_spec(f"coarsewsd:{_c20(t)}:per_word=3"), ConfigError,
         r"unknown coarsewsd option 'per_word'; known: split, max_per_word, words, seed"),
        ("spec-coarsewsd-missing", lambda t: normalise_spec(f"coarsewsd:{t / 'c21'}"), MissingResourceError,
         r"c21: CoarseWSD-20 folder not found"),
        ("spec-coarsewsd-not-root", lambda t: normalise_spec(f"coarsewsd:{t}"), MissingResourceError,
         r"no word folders with classes_map\.txt"),
        ("spec-no-pairs", lambda t: load_pair_set(f"coarsewsd:{_c20(t)}:words=pen"), ConfigError,
         r"data spec 'coarsewsd:.*:split=test,words=pen' yields no pairs"),
        ("spec-hf-name", lambda t: normalise_spec("hf: my data"), ConfigError,
         r"hf dataset name 'my data' is not OWNER/NAME"),
        ("spec-table-missing", lambda t: normalise_spec(f"jsonl:{t / 'p.jsonl'}"), MissingResourceError,
         r"p\.jsonl: file not found"),
        ("spec-table-dir", lambda t: normalise_spec(f"csv:{t}"), ConfigError, r"is not a file"),
        ("spec-nul", lambda t: normalise_spec("wic:a\x00b"), ConfigError, r"wic PATH .* holds a NUL character"),
        ("spec-name-too-long", lambda t: normalise_spec("jsonl:" + "x" * 5000), ConfigError,
         r"data spec 'jsonl:x+': cannot use it"),
        # --- CoarseWSD-20 files ---
        ("c20-classes-json", lambda t: load_pairs(_c20_spec(t, classes_map='{0: x}')), DataFormatError,
         r"bat/classes_map\.txt, line 1: not valid JSON"),
        ("c20-classes-list", lambda t: load_pairs(_c20_spec(t, classes_map='[1, 2]')), DataFormatError,
         r"bat/classes_map\.txt: expected a JSON object mapping class numbers to sense names, found \[1, 2\]"),
        ("c20-no-tab", lambda t: load_pairs(_c20_spec(t, test_data='2 the bat\n', test_gold='0\n')), DataFormatError,
         r"bat/test\.data\.txt, line 1: expected the token index, a tab"),
        ("c20-index", lambda t: load_pairs(_c20_spec(t, test_data='two\tthe bat\n', test_gold='0\n')), DataFormatError,
         r"bat/test\.data\.txt, line 1, field 'index': token index 'two' is not a non-negative integer"),
        ("c20-index-range", lambda t: load_pairs(_c20_spec(t, test_data='5\tthe bat\n', test_gold='0\n')),
         DataFormatError, r"bat/test\.data\.txt, line 1, field 'index': token index 5 out of range for a sentence "
                          r"of 2 tokens"),
        ("c20-class", lambda t: load_pairs(_c20_spec(t, test_data='1\tthe bat\n', test_gold='7\n')),
         DataFormatError, r"bat/test\.gold\.txt, line 1: class '7' is not one of \[0, 1\]"),
        ("c20-count", lambda t: load_pairs(_c20_spec(t, test_gold='0\n1\n')), DataFormatError,
         r"bat/test\.gold\.txt: 2 gold labels for 4 data lines"),
        ("c20-empty", lambda t: load_pairs(_c20_spec(t, test_data='', test_gold='')), DataFormatError,
         r"bat/test\.data\.txt: no sentences: the file is empty"),
        ("c20-missing-split", lambda t: load_pairs(f"coarsewsd:{_c20(t)}:split=train"), MissingResourceError,
         r"bat/train\.data\.txt: file not found"),
        ("c20-missing-gold", lambda t: load_pairs(_c20_spec(t, test_gold=None)), MissingResourceError,
         r"bat/test\.gold\.txt: file not found"),
    ]


CASES = _cases()


@pytest.mark.parametrize(("name", "action", "error", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_bad_data_input(tmp_path, name, action, error, pattern):
    assert issubclass(error, PsevalError)
    with pytest.raises(error, match=pattern):
        action(tmp_path)


# --- documented rules: accepted, applied and counted ---

def test_bom_and_crlf_are_accepted_and_give_the_same_pairs(tmp_path):
    header, row = "target_word,context_1,context_2,label", "bank,the bank of the river,a bank loan,1"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = load_pair_set("csv:" + str(_csv(tmp_path / "a", f"{header}\n{row}\n")))
    bom = load_pair_set("csv:" + str(_csv(tmp_path / "b", f"\ufeff{header}\r\n{row}\r\n")))
    assert [p.to_dict() | {"source_id": ""} for p in bom.pairs] == [p.to_dict() | {"source_id": ""}
                                                                    for p in plain.pairs]
    assert bom.notes["bom_stripped"] == 1 and plain.notes["bom_stripped"] == 0
    assert bom.pairs[0].span_1 == (4, 8)
    wic_lf = load_pair_set(f"wic:{write_wic(tmp_path / 'lf' / 'dev', WIC_LINE)}")
    crlf = write_wic(tmp_path / "crlf" / "dev", "\ufeff" + WIC_LINE.replace("\n", "\r\n"), "F\r\n")
    wic_crlf = load_pair_set(f"wic:{crlf}")
    assert wic_crlf.pairs == wic_lf.pairs and wic_crlf.notes["bom_stripped"] == 1
    jl = load_pair_set("jsonl:" + str(_jsonl(tmp_path, raw=b"\xef\xbb\xbf" + json.dumps(ROW).encode() + b"\r\n")))
    assert jl.pairs[0].context_2 == "a bank loan" and jl.notes["bom_stripped"] == 1


def test_training_text_files_drop_the_bom_and_crlf(tmp_path):
    from pseval.data.corpus import corpus_texts

    f = tmp_path / "corpus.txt"
    f.write_bytes(b"\xef\xbb\xbfFirst line.\r\n\r\nSecond line.\r\n")
    assert list(corpus_texts(f"file:{f}")) == ["First line.", "Second line."]


def test_nfc_rule_normalises_and_keeps_spans(tmp_path):
    nfd = "cafe\u0301"
    rows = [_row(target_word=nfd, context_1=f"the {nfd} by the river", context_2="a cafe\u0301 loan",
                 target_word_location_2={"char_start": 2, "char_end": 7}),
            _row(), _row(context_1="cafe\u0301 owners hold the bank")]
    ps = load_pair_set(f"jsonl:{_jsonl(tmp_path, *rows)}")
    p = ps.pairs[0]
    assert p.target == "café" and p.context_1 == "the café by the river"
    assert p.context_1[p.span_1[0]:p.span_1[1]] == "café" == p.context_2[p.span_2[0]:p.span_2[1]]
    assert ps.notes["nfc_normalised"] == 2  # pairs changed, not strings
    assert ps.pairs[2].context_1 == "café owners hold the bank" and ps.pairs[2].span_1 == (21, 25)


def test_zero_width_and_fullwidth_rules_are_counted(tmp_path):
    rows = [_row(context_1="the ba\u200bnk of the river"),  # invisible character inside the word
            _row(context_2="a \uff42\uff41\uff4e\uff4b loan"),  # fullwidth "bank"
            _row(context_1="the bank\u00ad of the\u200d river", target_word_location_1={"char_start": 4,
                                                                                       "char_end": 9}),
            _row()]
    ps = load_pair_set(f"jsonl:{_jsonl(tmp_path, *rows)}")
    assert ps.notes["zero_width_removed"] == 2 and ps.notes["fullwidth_folded"] == 1
    assert ps.pairs[0].context_1 == "the bank of the river" and ps.pairs[0].span_1 == (4, 8)
    assert ps.pairs[1].context_2 == "a bank loan" and ps.pairs[1].span_2 == (2, 6)
    assert ps.pairs[2].context_1 == "the bank of the river" and ps.pairs[2].span_1 == (4, 8)


def test_repeated_target_reads_the_first_and_is_counted(tmp_path):
    rows = [_row(context_1="the bank by the bank"),  # located: repeated, first used
            _row(context_2="banks and a bank"),  # exact match wins over the inflection: one exact occurrence
            _row(context_2="banks and more banks"),  # two inflected occurrences
            _row(context_1="bank to bank", target_word_location_1={"char_start": 8, "char_end": 12})]  # given
    ps = load_pair_set(f"jsonl:{_jsonl(tmp_path, *rows)}")
    assert ps.pairs[0].span_1 == (4, 8) and ps.pairs[1].span_2 == (12, 16) and ps.pairs[2].span_2 == (0, 5)
    assert ps.pairs[3].span_1 == (8, 12)
    assert ps.notes["target_repeated"] == 2


@pytest.mark.parametrize(("target", "context", "span"), [
    ("board", "nailed boards up", (7, 13)),  # regular inflection
    ("run", "she ran home", (4, 7)),  # irregular (WordNet's verb.exc)
    ("mouse", "two Mice ran", (4, 8)),  # irregular plural, any case
    ("bank", "the bank's loan", (4, 10)),  # possessive
    ("bank", "a “bank” here", (2, 8)),  # quotes around the word
    ("rise", "the rising tide", (4, 10)),  # a gerund, whatever the row's PoS says
])
def test_given_spans_may_cover_an_inflection(tmp_path, target, context, span):
    row = _row(target_word=target, context_1=context, pos="N",
               target_word_location_1={"char_start": span[0], "char_end": span[1]})
    assert pair_from_row(row, "mem", 1).span_1 == span


def test_wic_line_whose_index_misses_the_target_is_kept_and_noted(tmp_path):
    # The official index is authoritative: a particle ("called round") or a contraction ("'ve" for have) is read
    # where the index points, counted as a note, never dropped.
    bad = "call\tV\t3-0\tThe engineer called round whilst you were away .\tCall roll .\n"
    contraction = "have\tV\t1-0\tWe 've met .\tHave a seat .\n"
    ps = load_pair_set("wic:" + str(write_wic(tmp_path / "train", WIC_LINE + bad + contraction, "F\nT\nT\n")))
    assert [p.source_id for p in ps.pairs] == ["wic:train:1", "wic:train:2", "wic:train:3"]
    assert ps.notes["span_not_target"] == 2
    assert (ps.rows.read, ps.rows.kept, ps.rows.dropped) == (3, 3, {})
    p2, p3 = ps.pairs[1], ps.pairs[2]
    assert p2.context_1[p2.span_1[0]:p2.span_1[1]] == "round" and p2.target == "call"
    assert p3.context_1[p3.span_1[0]:p3.span_1[1]] == "'ve" and p3.same_sense


def test_wordnet_examples_go_through_the_same_rules(tmp_path):
    d = tmp_path / "wn"
    d.mkdir()
    (d / "data.noun").write_text('00000001 03 n 01 bank 0 000 | a slope; "the ba\u200bnk of the river"; '
                                 '"a grassy bank"\n00000002 04 n 01 bank 0 000 | an institution; "a bank loan"\n')
    for name in ("data.verb", "data.adj", "data.adv"):
        (d / name).write_text('00001740 03 n 01 entity 0 000 | a thing; "an entity"\n')
    ps = load_pair_set(f"wordnet:pos=n,dir={d}")
    # one same-sense pair (the slope's two examples) and two different-sense pairs; two hold the cleaned example
    assert sorted(p.same_sense for p in ps.pairs) == [False, False, True]
    assert ps.notes["zero_width_removed"] == 2
    assert sum("the bank of the river" in (p.context_1, p.context_2) for p in ps.pairs) == 2


def test_wic_dev_is_unchanged_by_the_rules(wic_dev):
    ps = load_pair_set(f"wic:{wic_dev}")
    assert len(ps.pairs) == 638 and ps.notes == dict.fromkeys(NOTE_KEYS, 0)


# --- one dataset, one identity ---

def test_spec_forms_of_one_dataset_share_one_canonical_string(tmp_path, monkeypatch):
    dev = write_wic(tmp_path / "wic" / "dev", WIC_LINE)
    monkeypatch.chdir(tmp_path)
    forms = ["wic:wic/dev", "wic:wic/dev/", f"wic:{dev}", f"wic:{dev}/", "WIC:./wic/../wic/dev",
             f"wic:{dev / 'dev.data.txt'}", " wic:wic/dev "]
    assert {normalise_spec(f) for f in forms} == {f"wic:{dev.resolve()}"}
    assert load_pair_set("wic:wic/dev/").spec == load_pair_set(f"wic:{dev}").spec
    wn = ["wordnet", "wordnet:", "wordnet:pos=nvar", "wordnet:pos=rvan,coarse=0,equal_classes=no",
          "wordnet:seed=7", "wordnet: pos = nvar , "]
    assert {normalise_spec(f) for f in wn} == {"wordnet"}
    assert normalise_spec("wordnet:equal_classes=true,pos=vn,max_per_lemma=3") == \
        normalise_spec("wordnet:max_per_lemma=3,pos=nv,equal_classes=1,seed=0") == \
        "wordnet:pos=nv,max_per_lemma=3,equal_classes=1"
    root = _c20(tmp_path)
    c20 = [f"coarsewsd:{root}", f"coarsewsd:{root}/", "coarsewsd:c20:split=test,seed=0",
           "coarsewsd:c20:words=pen+bat,max_per_word=50", "coarsewsd:./c20:"]
    assert {normalise_spec(f) for f in c20} == {f"coarsewsd:{root.resolve()}:split=test"}
    assert {normalise_spec(f) for f in ("hf:super_glue", "hf:super_glue/wic:test", "hf:super_glue/wic")} == \
        {"hf:super_glue/wic:test"}
    _jsonl(tmp_path, ROW)
    assert normalise_spec("jsonl:pairs.jsonl") == normalise_spec(f"jsonl:{tmp_path / 'pairs.jsonl'}")


def test_a_different_dataset_gets_a_different_string(tmp_path):
    root = _c20(tmp_path)
    specs = [f"coarsewsd:{root}", f"coarsewsd:{root}:seed=1", f"coarsewsd:{root}:max_per_word=2",
             f"coarsewsd:{root}:words=bat", "wordnet:max_per_lemma=3", "wordnet:max_per_lemma=3,seed=1",
             "wordnet:pos=n", "hf:super_glue/wic:train"]
    assert len({normalise_spec(s) for s in specs}) == len(specs)


def test_wordnet_pos_order_gives_the_same_pairs():
    a = load_pair_set("wordnet:pos=vr,max_per_lemma=1,equal_classes=1")
    b = load_pair_set("wordnet:pos=rv,equal_classes=1,max_per_lemma=1")
    assert a.spec == b.spec and a.pairs == b.pairs


# --- fuzzing ---

_KIND = st.sampled_from([*KINDS, "WordNet", "coarse", "x", ""])
_KEYS = {"wordnet": ["pos", "max_per_lemma", "coarse", "balance", "seed", "dir"],
         "coarsewsd": ["split", "max_per_word", "words", "seed"]}
_VALUES = st.one_of(st.integers(-3, 60).map(str), st.sampled_from(["nv", "x", "true", "maybe", "train", "test", "dev",
                                                                   "bat", "bat+pen", "kiwi", "", "+", "1.5"]),
                    st.text(max_size=6))


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("fuzz")
    write_coarsewsd(base / "c20", {"bat": BAT, "pen": PEN})
    write_wic(base / "wic" / "dev", WIC_LINE)
    _jsonl(base, ROW)
    (base / "pairs.csv").write_text("target_word,context_1,context_2,label\nbank,the bank,a bank,0\n")
    return base


@st.composite
def _specs(draw, base: Path) -> str:
    """Mostly well-formed specs (a kind with its own kind of path and options), some of them broken."""
    kind = draw(_KIND)
    own = {"wic": "wic/dev", "coarsewsd": "c20", "jsonl": "pairs.jsonl", "csv": "pairs.csv", "tsv": "pairs.csv",
           "json": "pairs.jsonl", "hf": "super_glue"}.get(kind, "nope")
    where = draw(st.sampled_from([own, own, own + "/", "nope", "", ".", "pairs.jsonl", "wic/dev/dev.data.txt"]))
    where = draw(st.sampled_from([str(base / where), where]))  # absolute or relative (to the fuzz folder)
    keys = _KEYS.get(kind.lower(), ["pos", "split", "zz", ""])
    opts = ",".join(f"{k}={v}" if draw(st.integers(0, 5)) else k
                    for k, v in draw(st.lists(st.tuples(st.sampled_from(keys), _VALUES), max_size=3)))
    shape = draw(st.integers(0, 5))
    return [f"{kind}:{where}", f"{kind}:{where}:{opts}", f"{kind}:{opts}", f"{kind}:{where}", kind,
            draw(st.text(max_size=30))][shape]


def _check(spec: str) -> str | None:
    try:
        canonical = normalise_spec(spec)
    except PsevalError:
        return None
    assert isinstance(canonical, str)
    assert normalise_spec(canonical) == canonical  # idempotent
    return canonical


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_specs_parse_or_raise_a_pseval_error(fuzz_root, data, monkeypatch):
    monkeypatch.chdir(fuzz_root)
    spec = data.draw(_specs(fuzz_root))
    canonical = _check(spec)
    if canonical is not None and not canonical.startswith(("wordnet", "hf:")):  # local, tiny: load it too
        try:
            ps = load_pair_set(spec)
        except PsevalError:
            return
        assert ps.spec == canonical and ps.pairs and set(ps.notes) >= set(NOTE_KEYS)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_any_text_as_spec(text):
    _check(text)


_JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-5, 40) | st.floats(allow_nan=True) |
                        st.text(max_size=12), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10),
                                                                                                  c, max_size=3),
                        max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["target_word", "context_1", "context_2", "label", "pos", "id", "start1",
                                        "end1", "target_word_location_1", "target_word_location_2", "word",
                                        "sentence1", "sentence2"]), _JSONISH, max_size=9),
       st.booleans())
def test_fuzz_rows_make_a_pair_or_a_data_format_error(row, complete):
    if complete:
        row = {**ROW, **row}
    try:
        pair = pair_from_row(row, "fuzz", 1)
    except DataFormatError as exc:
        assert str(exc).startswith("fuzz, line 1")
        return
    for ctx, span in ((pair.context_1, pair.span_1), (pair.context_2, pair.span_2)):
        if span is not None:
            assert 0 <= span[0] < span[1] <= len(ctx)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab c\u0301\u0327e\u200b\u00ad\uff41\u3000\ufeff\u1e31k")), max_size=14),
       st.integers(0, 14), st.integers(0, 14))
def test_fuzz_text_rules_keep_spans_consistent(text, i, j):
    span = (min(i, j, len(text)), min(max(i, j), len(text)))
    whole, _, _ = clean_text(text)
    assert clean_text(whole)[2] == set()  # idempotent: a cleaned text fires no rule
    if span[0] == span[1]:
        return
    try:
        out, new, _ = clean_text(text, span)
    except ValueError:
        return
    assert out == whole and new is not None
    assert out[new[0]:new[1]] == clean_text(text[span[0]:span[1]])[0]

