"""Text corpora for training SAEs: WordNet glosses (offline default), local files, Hub datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pseval.data.pairs import POS_TAGS
from pseval.data.wordnet import WordNetSource, find_wordnet, iter_synsets
from pseval.errors import ConfigError, DataFormatError

CORPUS_HELP = ("wordnet (glosses and examples), wordnet-definitions (no usage examples: no overlap with WordNet "
               "pairs), file:PATH[,PATH...] (one text per non-empty line), hf:NAME[:SPLIT[:COLUMN]] (streaming)")


# A corpus whose stream changed under its name: the revision joins every key built from the name (training keys,
# activation caches, sweep settings), so a folder trained on the old stream is never resumed with the new one.
# wordnet-definitions 2: definitions that are, word for word, some synset's usage example are left out (29 of them,
# e.g. "fly a kite"): WordNet pairs read usage examples, so revision 1 trained on 11 of the paper configs' scored
# contexts.
CORPUS_REVISIONS = {"wordnet-definitions": 2}


def corpus_revision(spec: str) -> dict[str, int]:
    """{"corpus_revision": N} for a corpus whose stream changed under its name, else {} (older keys stay valid)."""
    return {"corpus_revision": CORPUS_REVISIONS[spec]} if spec in CORPUS_REVISIONS else {}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def wordnet_texts(source: WordNetSource | None = None, include_examples: bool = True) -> Iterator[str]:
    """Each synset's definition, then (optionally) each usage example, over all POS. Without examples, a definition
    that is also some synset's usage example is left out: the WordNet pairs score those sentences."""
    src = source or find_wordnet()
    examples = set() if include_examples else {_norm(e) for pos in POS_TAGS for syn in iter_synsets(src, pos)
                                               for e in syn.examples}
    for pos in POS_TAGS:
        for syn in iter_synsets(src, pos):
            if syn.definition and _norm(syn.definition) not in examples:
                yield syn.definition
            if include_examples:
                yield from syn.examples


def file_texts(paths: list[str]) -> Iterator[str]:
    """Non-empty lines of local UTF-8 text files."""
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise DataFormatError("text file not found", path)
        with path.open("rb") as fh:
            for i, raw in enumerate(fh):
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError as exc:
                    raise DataFormatError(f"not valid UTF-8 (byte {exc.start})", path, i + 1) from exc
                if i == 0:  # a UTF-8 byte-order mark is not text
                    line = line.removeprefix("\ufeff").strip()
                if line:
                    yield line


def hub_texts(name: str, split: str = "train", column: str = "text") -> Iterator[str]:
    """Texts streamed from a Hugging Face dataset (needs `datasets` and the network)."""
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError("streaming a Hub corpus needs `datasets`: pip install 'pseval[hub]'") from exc
    for row in datasets.load_dataset(name, split=split, streaming=True):
        text = row.get(column)
        if text:
            yield str(text)


def corpus_texts(spec: str) -> Iterator[str]:
    """Texts of a corpus spec (see CORPUS_HELP)."""
    kind, sep, rest = spec.partition(":")
    if spec == "wordnet":
        return wordnet_texts(include_examples=True)
    if spec == "wordnet-definitions":
        return wordnet_texts(include_examples=False)
    if kind == "file" and sep:
        return file_texts(rest.split(","))
    if kind == "hf" and sep:
        parts = rest.split(":")
        return hub_texts(parts[0], *(parts[1:3]))
    raise ConfigError(f"unknown corpus {spec!r}; expected {CORPUS_HELP}")


def check_corpus(spec: str) -> str:
    """A corpus spec checked without reading any text: a known kind, a Hub name, every local file present."""
    if not isinstance(spec, str):
        raise ConfigError(f"corpus {spec!r}: expected a string, one of {CORPUS_HELP}")
    corpus_texts(spec)  # an unknown kind raises here; the readers are generators, so nothing is read yet
    kind, _, rest = spec.partition(":")
    if kind == "hf" and not rest.split(":")[0].strip():
        raise ConfigError(f"corpus {spec!r}: hf: needs a dataset NAME; expected {CORPUS_HELP}")
    if kind == "file":
        for p in rest.split(","):
            if not Path(p).is_file():
                raise DataFormatError(f"corpus {spec!r}: text file not found", p or "''")
            if not _has_text(Path(p)):  # every metric over it would be over zero tokens
                raise DataFormatError(f"corpus {spec!r}: the file holds no text (empty or only whitespace)", p)
    return spec


def _has_text(path: Path) -> bool:
    """Whether a file holds any non-whitespace character (read until the first one)."""
    with open(path, "rb") as fh:
        while block := fh.read(1 << 16):
            if block.strip():
                return True
    return False
