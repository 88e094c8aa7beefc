"""A direct reader of WordNet 3.0 dict files (Debian's wordnet-base or NLTK's download), no NLTK needed."""

from __future__ import annotations

import os
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pseval.errors import DataFormatError, MissingResourceError

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
INSTALL_HINT = ("install it with `sudo apt-get install wordnet-base` (Debian/Ubuntu) or "
                "`python -m nltk.downloader wordnet`, or set PSEVAL_WORDNET_DIR to a folder holding data.noun")
_EXAMPLE_RE = re.compile(r'"([^"]+)"')
_ADJ_MARKER_RE = re.compile(r"\((?:a|p|ip)\)$")


@dataclass(frozen=True, slots=True)
class Synset:
    """One WordNet synset: its offset, POS, lexicographer file, lemmas, definition and usage examples."""

    offset: int
    pos: str
    lex_filenum: int
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]

    @property
    def id(self) -> str:
        """WordNet's sense key style id, e.g. `00169305-n`."""
        return f"{self.offset:08d}-{self.pos}"


class WordNetSource:
    """Access to the dict files of one WordNet installation (a folder or NLTK's wordnet.zip)."""

    def __init__(self, location: str | Path) -> None:
        self.location = Path(location)
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if self.location.suffix == ".zip":
            self._zip = zipfile.ZipFile(self.location)
            names = self._zip.namelist()
            data_noun = next((n for n in names if n.endswith("data.noun")), None)
            if data_noun is None:
                raise MissingResourceError(f"{self.location}: no data.noun inside; {INSTALL_HINT}")
            self._prefix = data_noun[: -len("data.noun")]
        missing = [f"data.{name}" for name in POS_FILES.values() if not self.has(f"data.{name}")]
        if missing:
            raise MissingResourceError(f"{self.location}: WordNet is incomplete, missing {', '.join(missing)}; "
                                       f"{INSTALL_HINT}")

    def has(self, name: str) -> bool:
        """Whether the installation has the dict file `name`."""
        if self._zip is not None:
            return self._prefix + name in self._zip.namelist()
        return (self.location / name).is_file()

    def lines(self, name: str) -> Iterator[str]:
        """Lines of one dict file, decoded as UTF-8."""
        if self._zip is not None:
            raw = self._zip.read(self._prefix + name)
        else:
            raw = (self.location / name).read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DataFormatError("not valid UTF-8", self.location / name, line) from exc
        yield from text.splitlines()

    def path_of(self, name: str) -> str:
        """A printable path of a dict file, for error messages."""
        return f"{self.location}:{name}" if self._zip is not None else str(self.location / name)


def _nltk_data_dirs() -> list[Path]:
    dirs: list[str] = []
    try:  # NLTK's own list when it is installed, so a user's custom nltk.data.path is honoured
        import nltk.data

        dirs.extend(str(p) for p in nltk.data.path)
    except Exception:
        pass
    if os.environ.get("NLTK_DATA"):
        dirs.extend(os.environ["NLTK_DATA"].split(os.pathsep))
    home = Path.home()
    dirs += [str(home / "nltk_data"), os.path.join(sys.prefix, "nltk_data"),
             os.path.join(sys.prefix, "share", "nltk_data"), os.path.join(sys.prefix, "lib", "nltk_data"),
             "/usr/share/nltk_data", "/usr/local/share/nltk_data", "/usr/lib/nltk_data", "/usr/local/lib/nltk_data"]
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(Path(d))
    return out


def wordnet_candidates() -> list[Path]:
    """Places searched for WordNet, in order."""
    cands: list[Path] = []
    if os.environ.get("PSEVAL_WORDNET_DIR"):
        cands.append(Path(os.environ["PSEVAL_WORDNET_DIR"]))
    cands += [Path("/usr/share/wordnet"), Path("/usr/local/share/wordnet")]
    for d in _nltk_data_dirs():
        cands += [d / "corpora" / "wordnet", d / "corpora" / "wordnet.zip"]
    return cands


def find_wordnet(location: str | Path | None = None) -> WordNetSource:
    """Open WordNet at `location`, or the first installation found on the search path."""
    if location is not None:
        p = Path(location)
        if not p.exists():
            raise MissingResourceError(f"{p}: WordNet folder not found; {INSTALL_HINT}")
        return WordNetSource(p)
    for cand in wordnet_candidates():
        if (cand.is_dir() and (cand / "data.noun").is_file()) or (cand.is_file() and cand.suffix == ".zip"):
            return WordNetSource(cand)
    searched = ", ".join(str(c) for c in wordnet_candidates()[:4])
    raise MissingResourceError(f"WordNet 3.0 not found (searched {searched} and NLTK's data path); {INSTALL_HINT}")


def parse_data_line(line: str, path: str, lineno: int) -> Synset:
    """Parse one synset line of a data.<pos> file."""
    head, sep, gloss = line.partition(" | ")
    if not sep:
        head, gloss = line.rstrip(), ""
    f = head.split()
    try:
        offset, lex_filenum, ss_type = int(f[0]), int(f[1]), f[2]
        w_cnt = int(f[3], 16)
        lemmas = []
        for j in range(w_cnt):
            word = f[4 + 2 * j]
            lemmas.append(_ADJ_MARKER_RE.sub("", word).lower())
    except (IndexError, ValueError) as exc:
        raise DataFormatError(f"malformed synset line ({exc})", path, lineno) from exc
    pos = "a" if ss_type == "s" else ss_type
    examples = tuple(m.strip() for m in _EXAMPLE_RE.findall(gloss) if m.strip())
    definition = gloss.split(";")[0].strip() if gloss else ""
    return Synset(offset, pos, lex_filenum, tuple(lemmas), definition, examples)


def iter_synsets(source: WordNetSource, pos: str) -> Iterator[Synset]:
    """Synsets of one POS in file order (license header lines skipped)."""
    name = f"data.{POS_FILES[pos]}"
    for i, line in enumerate(source.lines(name)):
        if not line or line.startswith("  "):
            continue
        yield parse_data_line(line, source.path_of(name), i + 1)


@lru_cache(maxsize=4)
def load_exceptions(source: WordNetSource) -> dict[str, dict[str, tuple[str, ...]]]:
    """Irregular inflections per POS: inflected form -> base forms (from the *.exc files)."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for pos, name in POS_FILES.items():
        table: dict[str, tuple[str, ...]] = {}
        if source.has(f"{name}.exc"):
            for line in source.lines(f"{name}.exc"):
                parts = line.split()
                if len(parts) >= 2:
                    table[parts[0].lower()] = tuple(p.lower() for p in parts[1:])
        out[pos] = table
    return out
