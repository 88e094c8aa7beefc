"""Many SAEs from one `--sae` value: a glob over folders, a SAELens release with a regex over its ids, or a file
listing specs. Every way an SAE enters (`pseval eval`, `pseval.evaluate`, SAEBench's `run_eval`, `inspect`) expands
its specs here, so the same pattern selects the same SAEs everywhere.

- `saes/**` (any of `*?[`): each matching folder that holds an SAE (cfg.json + weights, ae.pt, params.npz, ...)
  and each matching `.pt`/`.pth`/`.npz` file that is not inside one; sorted, duplicates dropped.
- `saelens:RELEASE/REGEX`: the release's SAE ids that REGEX matches in full (as SAELens' `get_saes_from_regex`), read
  from SAELens' pretrained directory; an id of the release is itself, whatever its characters.
- `@FILE`: one spec per line (globs and regexes too); blank lines and comments (`#` at the start or after a space)
  skipped; relative paths are relative to the file's folder.

A pattern that matches nothing is an error naming it: an empty selection is never scored as "no SAEs".
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pseval.errors import ConfigError, DataFormatError, MissingResourceError, PsevalError
from pseval.saes.formats.detect import detect_format
from pseval.saes.identity import is_identity_spec

GLOB_CHARS = "*?["
# Characters that make a SAELens id a pattern (a dot is left out: ids such as blocks.8.hook_resid_pre use it).
REGEX_CHARS = set("*+?[](){}|^$\\")
SAE_FILE_SUFFIXES = (".pt", ".pth", ".npz")


def is_glob(spec: str) -> bool:
    """Whether a path spec is a glob pattern."""
    return not spec.startswith(("hf://", "saelens:", "@")) and any(c in spec for c in GLOB_CHARS)


def is_sae_folder(path: Path) -> bool:
    """Whether a folder holds an SAE of a format pseval reads."""
    try:
        return path.is_dir() and bool(detect_format(path))
    except MissingResourceError:
        return False


def glob_saes(pattern: str) -> list[str]:
    """The SAE folders and files a glob matches (`**` spans folders), sorted, each once."""
    found: set[Path] = set()
    for m in glob.glob(pattern, recursive=True):
        p = Path(m)
        if is_sae_folder(p):
            found.add(p)
        elif p.is_file() and p.suffix in SAE_FILE_SUFFIXES and not is_sae_folder(p.parent):
            found.add(p)  # a lone SAE file; ae.pt inside a dictionary_learning folder is that folder's
    if not found:
        raise ConfigError(f"--sae {pattern}: the pattern matches no SAE folder or file (an SAE folder holds cfg.json "
                          "and its weights, ae.pt + config.json or params.npz)")
    return [str(p) for p in sorted(found)]


def release_ids(release: str, spec: str) -> list[str]:
    """The SAE ids of a SAELens release, from SAELens' pretrained directory (needs the `sae_lens` package)."""
    try:
        from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    except ImportError as exc:
        raise MissingResourceError(f"--sae {spec}: selecting SAEs of a SAELens release by pattern needs the optional "
                                   "`sae_lens` package (pip install sae-lens); or list the SAE ids one by one") from exc
    directory = get_pretrained_saes_directory()
    if release not in directory:
        raise MissingResourceError(f"--sae {spec}: unknown SAELens release {release!r}")
    return list(directory[release].saes_map)


def match_ids(spec: str, pattern: str, ids: Iterable[str]) -> list[str]:
    """The ids REGEX matches in full, in the release's order; an error naming the pattern when none does."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--sae {spec}: {pattern!r} is not a regular expression ({exc})") from exc
    out = [i for i in ids if rx.fullmatch(i)]
    if not out:
        raise ConfigError(f"--sae {spec}: the pattern {pattern!r} matches no SAE id of the release")
    return out


def saelens_saes(spec: str) -> list[str]:
    """`saelens:RELEASE/ID` as itself; `saelens:RELEASE/REGEX` as one spec per matching id."""
    release, _, sae_id = spec.removeprefix("saelens:").partition("/")
    if not any(c in REGEX_CHARS for c in sae_id):
        return [spec]  # a plain id: the loader checks it (and says when sae_lens is missing)
    ids = release_ids(release, spec)
    if sae_id in ids:
        return [spec]
    return [f"saelens:{release}/{i}" for i in match_ids(spec, sae_id, ids)]


def list_file_saes(spec: str) -> list[str]:
    """The specs a `@FILE` lists, each expanded; an error names the file and line."""
    path = Path(spec[1:])
    if not path.is_file():
        raise MissingResourceError(f"--sae {spec}: no such list file {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"cannot read the SAE list ({exc})", path) from exc
    out: list[str] = []
    for n, raw in enumerate(lines, 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()  # a comment starts a line or follows a space
        if not line:
            continue
        if line.startswith("@"):
            raise DataFormatError(f"{line}: a list file cannot name another list file", path, n)
        if not (is_identity_spec(line) or line.startswith(("hf://", "saelens:")) or Path(line).is_absolute()):
            line = str(path.parent / line)
        if not (is_identity_spec(line) or line.startswith(("hf://", "saelens:")) or is_glob(line)
                or Path(line).exists()):
            raise DataFormatError(f"{line}: no such SAE file or folder", path, n)
        try:
            out.extend(expand_spec(line))
        except PsevalError as exc:
            raise DataFormatError(str(exc), path, n) from exc
    if not out:
        raise DataFormatError("lists no SAE (one spec per line; # starts a comment)", path)
    return out


def expand_spec(spec: str) -> list[str]:
    """One `--sae` value as the SAE specs it names (see the module's doc)."""
    if spec.startswith("@"):
        return list_file_saes(spec)
    if spec.startswith("saelens:"):
        return saelens_saes(spec)
    if is_glob(spec):
        return glob_saes(spec)
    return [spec]


def expand_specs(specs: Sequence[str]) -> list[str]:
    """Every `--sae` value expanded, in order, each SAE once."""
    return list(dict.fromkeys(s for spec in specs for s in expand_spec(spec)))
