"""House rules checked on the source: every `# type: ignore` in src/ names its error code and says why.

mypy itself (`make test`, `make test-fast`) reports an ignore that is no longer needed (warn_unused_ignores); this
test keeps the ones that are needed explained.
"""

from __future__ import annotations

import io
import re
import tokenize

from tests.conftest import REPO

SRC = REPO / "src" / "pseval"
# `# type: ignore[code, ...]  # reason`: the codes in brackets, then a comment of its own with some words in it.
_EXPLAINED = re.compile(r"#\s*type:\s*ignore\[[a-z0-9-]+(,\s*[a-z0-9-]+)*\]\s+#\s*\S.{3,}")


def unexplained_ignores(text: str, name: str = "<text>") -> list[str]:
    """`name:line: comment` for each type-ignore comment in Python source `text` without a code and a reason."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT and re.search(r"type:\s*ignore", tok.string) \
                and not _EXPLAINED.search(tok.string):
            out.append(f"{name}:{tok.start[0]}: {tok.string}")
    return out


def test_the_check_tells_explained_from_bare_ignores() -> None:
    src = ("import a  # type: ignore\n"
           "import b  # type: ignore[import-not-found]\n"
           "x = 1  # type: ignore[misc]  # per object, not per class\n"
           "y = 2  # type: ignore[arg-type, misc]  # stub lacks the overload\n"
           "z = '# type: ignore'  # a string is not a comment\n"
           "w = 3  # type: ignore[misc]  #\n")
    assert [line.split(":")[1] for line in unexplained_ignores(src)] == ["1", "2", "6"]


def test_every_type_ignore_in_src_names_its_code_and_reason() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the package, not an empty glob
    bad = [b for p in files for b in unexplained_ignores(p.read_text(encoding="utf-8"), str(p.relative_to(REPO)))]
    assert not bad, "type: ignore without `[code]  # reason`:\n" + "\n".join(bad)


def test_mypy_runs_in_make_test_and_test_fast() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in ("test", "test-fast"):
        recipe = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", makefile, re.M)
        assert recipe is not None, target
        lines = recipe.group(1).splitlines()
        mypy = [i for i, line in enumerate(lines) if "/mypy" in line]
        ruff = [i for i, line in enumerate(lines) if "ruff check" in line]
        pytest_ = [i for i, line in enumerate(lines) if "pytest" in line]
        assert mypy and ruff and pytest_, (target, lines)
        assert ruff[0] < mypy[0] < pytest_[0], (target, lines)  # lint, types, then the tests


def test_mypy_config_checks_untyped_defs_and_unused_ignores() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert cfg["check_untyped_defs"] is True and cfg["warn_unused_ignores"] is True
    assert "pydantic.mypy" in cfg["plugins"]
