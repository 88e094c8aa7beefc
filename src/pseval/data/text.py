"""Text as pseval reads it: file decoding (BOM, CRLF) and the Unicode rules applied to every target and context.

The rules (documented in docs/data.md, "Text rules") are applied by every pair loader before a span is located or
checked, and each is counted per pair in the pair set's notes:

* a UTF-8 byte-order mark at the start of a file is removed (`bom_stripped`, files); a UTF-16/32 one is an error;
* CRLF and LF line ends are both accepted; lines are split on LF only, so U+2028 and friends inside a sentence stay;
* invisible format characters (Unicode category Cf: zero-width space/joiners, word joiner, soft hyphen, direction
  marks, a BOM inside the text) are removed (`zero_width_removed`): tokenizers treat them inconsistently and they
  hide a word from matching;
* fullwidth ASCII forms (U+FF01-U+FF5E) and the ideographic space become their ASCII twins (`fullwidth_folded`);
* the result is NFC-normalised (`nfc_normalised`); a span is carried through all three steps.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

from pseval.errors import DataFormatError, MissingResourceError

NFC = "nfc_normalised"
ZERO_WIDTH = "zero_width_removed"
FULLWIDTH = "fullwidth_folded"
BOM = "bom_stripped"
REPEATED = "target_repeated"
SPAN_NOT_TARGET = "span_not_target"
# Every note a pair set carries, in the order they are reported; all present (zero when nothing happened).
NOTE_KEYS = (BOM, NFC, ZERO_WIDTH, FULLWIDTH, REPEATED, SPAN_NOT_TARGET)

_FULLWIDTH_MAP = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
               (b"\xfe\xff", "UTF-16"))


def empty_notes() -> dict[str, int]:
    """A notes dict with every key at zero."""
    return dict.fromkeys(NOTE_KEYS, 0)


def count_flags(notes: dict[str, int] | None, flags: Iterable[str]) -> None:
    """Add one to each flag's note (a pair counts once per flag)."""
    if notes is not None:
        for f in set(flags):
            notes[f] = notes.get(f, 0) + 1


def read_text(path: str | Path, notes: dict[str, int] | None = None) -> str:
    """A UTF-8 file's text without its BOM; errors name the file and the line of a bad byte."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise MissingResourceError(f"{p}: file not found") from exc
    except OSError as exc:
        raise DataFormatError(f"cannot read the file ({exc.strerror or exc})", p) from exc
    for mark, name in _OTHER_BOMS:
        if raw.startswith(mark):
            raise DataFormatError(f"starts with a {name} byte-order mark; pseval reads UTF-8 (re-save the file as "
                                  "UTF-8, with or without a BOM)", p, 1)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        count_flags(notes, [BOM])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})", p,
                              line) from exc


def split_lines(text: str) -> list[str]:
    """Lines split on LF with a trailing CR removed (CRLF files), without the empty piece after a final newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _clean(s: str) -> tuple[str, set[str]]:
    if s.isascii():
        return s, set()
    flags = set()
    t = "".join(c for c in s if unicodedata.category(c) != "Cf")
    if t != s:
        flags.add(ZERO_WIDTH)
    f = t.translate(_FULLWIDTH_MAP)
    if f != t:
        flags.add(FULLWIDTH)
    n = unicodedata.normalize("NFC", f)
    if n != f:
        flags.add(NFC)
    return n, flags


def clean_text(text: str, span: tuple[int, int] | None = None) -> tuple[str, tuple[int, int] | None, set[str]]:
    """Apply the module's rules to `text`, moving `span` with it; returns (text, span, flags that fired).

    Raises ValueError when the span boundary splits a sequence that NFC composes, or the span holds only
    invisible characters (callers name the file, row and field).
    """
    if span is None:
        out, flags = _clean(text)
        return out, None, flags
    a, sa = _clean(text[: span[0]])
    b, sb = _clean(text[span[0]: span[1]])
    c, sc = _clean(text[span[1]:])
    out = a + b + c
    if out != _clean(text)[0]:
        raise ValueError(f"span {span} cuts through a character sequence that Unicode NFC composes")
    if not b:
        raise ValueError(f"span {span} holds only invisible characters {text[span[0]:span[1]]!r}")
    return out, (len(a), len(a) + len(b)), sa | sb | sc
