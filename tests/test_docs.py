"""The documentation holds: README.md stays short, every docs/ page opens with its question, links resolve, the record's
JSON schema is the model's current one, and every fenced block marked runnable runs (and prints what the page says).

Markers (CONTRIBUTING.md, "Runnable blocks"): a fence whose info string is `python runnable` or `bash runnable` is
run from a scratch copy of the repository root (`.venv`, `configs`, `src`, ... linked; `../shared` linked to the
shared data), so a block is written as a user types it there. A `text output` fence right after it is the block's
exact standard output.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED, require_shared

DOCS = REPO / "docs"
README_MAX_BYTES = 8 * 1024
PAGE_MAX_BYTES = 10 * 1024
RUNNABLE = {"python runnable": "python", "bash runnable": "bash"}
OUTPUT = "text output"
# Pages whose fences are checked for markers and whose links must resolve.
PAGES = sorted(DOCS.glob("*.md"))
ALL_MD = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "benchmarks" / "README.md", *PAGES]
# What a block's scratch repository root links to; everything else it writes stays in the scratch folder.
LINKED = ("configs", "src", "scripts", "benchmarks", "docs", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Fence:
    """One fenced block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    body: str


@dataclass(frozen=True)
class Runnable:
    """A runnable block and, when the page gives it, its expected standard output."""

    fence: Fence
    lang: str
    expected: str | None

    @property
    def id(self) -> str:
        """`docs/page.md:LINE`, the block's test id."""
        return f"{self.fence.path.relative_to(REPO)}:{self.fence.line}"


def fences(path: Path) -> list[Fence]:
    """Every ``` fenced block of a Markdown file, in order; an unclosed fence is an error naming the line."""
    out: list[Fence] = []
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, info = i, lines[i][3:].strip()
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                i += 1
            if i == len(lines):
                raise AssertionError(f"{path}:{start + 1}: fence never closed")
            out.append(Fence(path, start + 1, info, "\n".join(lines[start + 1:i]) + "\n"))
        i += 1
    return out


def _only_blank_between(a: Fence, b: Fence) -> bool:
    lines = a.path.read_text(encoding="utf-8").split("\n")
    end_of_a = a.line + a.body.count("\n")  # 0-based index of a's closing fence
    return all(not line.strip() for line in lines[end_of_a + 1:b.line - 1])


def runnable_blocks(paths: list[Path]) -> list[Runnable]:
    """The runnable blocks of the given pages, each with the `text output` block that follows it, if any."""
    out: list[Runnable] = []
    for path in paths:
        fs = fences(path)
        for n, f in enumerate(fs):
            if f.info in RUNNABLE:
                nxt = fs[n + 1] if n + 1 < len(fs) else None
                expected = nxt.body if nxt and nxt.info == OUTPUT and _only_blank_between(f, nxt) else None
                out.append(Runnable(f, RUNNABLE[f.info], expected))
    return out


def test_readme_is_at_most_8_kb():
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; the limit is {README_MAX_BYTES} (move text to docs/)"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_is_small_and_opens_with_its_question(page):
    text = page.read_text(encoding="utf-8")
    assert len(text.encode()) <= PAGE_MAX_BYTES, f"{page.name}: over {PAGE_MAX_BYTES} bytes; split the page"
    lines = text.split("\n")
    assert lines[0].startswith("# "), f"{page.name}: the first line is the page's title"
    first = next(line for line in lines[1:] if line.strip())
    assert first.startswith("*") and "?" in text.split("\n\n")[1], \
        f"{page.name}: the paragraph after the title is the question the page answers, in italics"


@pytest.mark.parametrize("md", ALL_MD, ids=lambda p: str(p.relative_to(REPO)))
def test_fence_markers_are_known(md):
    fs = fences(md)
    for n, f in enumerate(fs):
        words = f.info.split()
        where = f"{md.relative_to(REPO)}:{f.line}"
        # A misspelt marker (`python runable`) would silently leave a block untested.
        assert len(words) <= 1 or f.info in RUNNABLE or f.info == OUTPUT, f"{where}: unknown fence info {f.info!r}"
        if f.info == OUTPUT:
            assert n > 0 and fs[n - 1].info in RUNNABLE and _only_blank_between(fs[n - 1], f), \
                f"{where}: a `text output` block follows the runnable block whose output it is"


def test_docs_have_runnable_blocks_in_both_languages():
    langs = {b.lang for b in runnable_blocks(PAGES)}
    assert langs == {"python", "bash"}


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    in_code, out = False, set()
    for line in md.read_text(encoding="utf-8").split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(_slug(line.lstrip("#")))
    return out


@pytest.mark.parametrize("md", ALL_MD, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(md):
    text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+://", target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (md.parent / file_part).resolve() if file_part else md
        assert dest.exists(), f"{md.relative_to(REPO)}: link {target!r} points at a missing file"
        if anchor:
            assert anchor in _anchors(dest), f"{md.relative_to(REPO)}: link {target!r}: no such heading"


def _schema_script():
    spec = importlib.util.spec_from_file_location("gen_record_schema", REPO / "scripts" / "gen_record_schema.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_record_schema_is_current():
    gen = _schema_script()
    committed = (DOCS / "record.schema.json").read_text(encoding="utf-8")
    assert committed == gen.render(), "docs/record.schema.json is stale: run scripts/gen_record_schema.py"
    assert gen.main(["--check"]) == 0


def test_record_schema_check_fails_on_a_stale_file(tmp_path):
    gen = _schema_script()
    stale = tmp_path / "record.schema.json"
    stale.write_text(gen.render().replace('"title": "Schema version"', '"title": "Schema"'), encoding="utf-8")
    assert gen.main(["--check", "--out", str(stale)]) == 1
    assert gen.main(["--out", str(stale)]) == 0 and stale.read_text(encoding="utf-8") == gen.render()


def _scratch_root(tmp_path: Path) -> Path:
    """A folder standing for the repository root: the repo's own files linked, `../shared` the shared data."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    # The interpreter running the tests is the venv the blocks' `.venv/bin/...` should use.
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else REPO / ".venv"
    (root / ".venv").symlink_to(venv)
    (tmp_path / "shared").symlink_to(require_shared(SHARED))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("block", runnable_blocks(PAGES), ids=lambda b: b.id)
def test_runnable_block_runs(block, tmp_path):
    root = _scratch_root(tmp_path)
    cmd = [sys.executable, "-c", block.fence.body] if block.lang == "python" else \
        ["bash", "-euo", "pipefail", "-c", block.fence.body]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{block.id} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    if block.expected is not None:
        got = "\n".join(line.rstrip() for line in res.stdout.rstrip("\n").split("\n"))
        want = "\n".join(line.rstrip() for line in block.expected.rstrip("\n").split("\n"))
        assert got == want, f"{block.id}: the page's `text output` differs from what the block prints"
